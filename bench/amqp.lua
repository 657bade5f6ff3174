-- bench/amqp.lua - silo.amqp beside a plain librabbitmq-c loop (bench/amqp_baseline.c) on the same broker:
-- confirmed publishes per second (batches) and consumed deliveries per second (prefetch 100, one ack each).
--   silo-lua run bench/amqp.lua BASELINE_BINARY [MESSAGES] [BATCH] [BODY_BYTES]
-- (`cmake --build build --target bench-amqp` builds the baseline and runs this against $SILO_AMQP_URL.)
local amqp = require "silo.amqp"
local core = require "silo.core"
local config = require "silo.config"

local baseline, messages, batch_size, body_bytes = arg[1], tonumber(arg[2] or 20000), tonumber(arg[3] or 100),
  tonumber(arg[4] or 200)
assert(baseline, "usage: silo-lua run bench/amqp.lua BASELINE_BINARY [MESSAGES] [BATCH] [BODY_BYTES]")
local url = config.get("amqp_url")
local body = string.rep("x", body_bytes)

local function silo_figures(queue)
  local conn = amqp.connect(url)
  conn:queue_declare(queue, { durable = false, auto_delete = true })
  local batch = {}
  for i = 1, batch_size do batch[i] = { exchange = "", routing_key = queue, body = body } end
  local started = core.monotonic()
  for _ = 1, messages / batch_size do conn:publish_batch(batch) end
  local published = messages / (core.monotonic() - started)
  conn:consume(queue, { prefetch = 100 })
  started = core.monotonic()
  for _ = 1, messages do conn:ack(assert(conn:receive(30))) end
  local consumed = messages / (core.monotonic() - started)
  conn:close()
  return { publish_confirmed_per_s = published, consume_acked_per_s = consumed }
end

local function baseline_figures(queue)
  local command = string.format("%q %q %q %d %d %d", baseline, url, queue, messages, batch_size, body_bytes)
  local pipe = assert(io.popen(command))
  local figures = {}
  for line in pipe:lines() do
    local name, value = line:match("^(%S+) (%S+)$")
    if name then figures[name] = tonumber(value) end
  end
  pipe:close()
  assert(figures.publish_confirmed_per_s, "the baseline printed no figures")
  return figures
end

-- Alternating rounds and the median of each figure, since the broker and the machine are shared.
local rounds = 3
local samples = { c = {}, lua = {} }
for _ = 1, rounds do
  samples.c[#samples.c + 1] = baseline_figures("bench.amqp.c." .. core.random_hex(4))
  samples.lua[#samples.lua + 1] = silo_figures("bench.amqp.lua." .. core.random_hex(4))
end
local function median(side, name)
  local values = {}
  for i, figures in ipairs(samples[side]) do values[i] = figures[name] end
  table.sort(values)
  return values[math.ceil(#values / 2)]
end
print(string.format("broker %s, %d messages of %d bytes, batches of %d, non-persistent, one machine; " ..
  "median of %d alternating rounds", config.redact(url), messages, body_bytes, batch_size, rounds))
for _, name in ipairs({ "publish_confirmed_per_s", "consume_acked_per_s" }) do
  local lua, c = median("lua", name), median("c", name)
  print(string.format("%-24s silo.amqp %8.0f   librabbitmq-c %8.0f   ratio %.2f", name, lua, c, lua / c))
end
