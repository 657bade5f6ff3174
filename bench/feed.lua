-- bench/feed.lua - the feed's throughput beside a plain librabbitmq-c publishing loop, and its memory as N grows.
--   bench/feed [ROWS ...]     (builds and runs: silo-lua run bench/feed.lua BASELINE_BINARY [ROWS ...])
-- On the servers of $SILO_MYSQL_URL and $SILO_AMQP_URL (scripts/services: MariaDB 127.0.0.1:3307, RabbitMQ 5672).
-- For each ROWS (default 20000 100000 300000):
--   1. a bulk write of ROWS rows in transactions of 1,000 (INSERT ... SELECT) into a table of its own;
--   2. the feed (silo.feed in this process: binlog -> messages -> publish_batch without waiting, the confirms
--      awaited while the next batch is encoded -> checkpoint),
--      connected and positioned before the write, from its first read to the last confirm: rows/s;
--   3. bench/feed_baseline.c: ROWS persistent messages of the feed's average size to the same exchange and
--      durable queue, batches of 1,000 with every confirm awaited: messages/s; then the ratio.
--   Steps 2 and 3 alternate three times (the feed re-reads the same rows) and the best of each is kept.
-- RSS is this process's (the feed, plus a MySQL connection that writes) after each round.
package.path = "./?.lua;" .. package.path
local amqp = require "silo.amqp"
local config = require "silo.config"
local core = require "silo.core"
local feed = require "silo.feed"
local sql = require "spec.support.sql"
local support = require "spec.support.feed"

local baseline = arg[1]
assert(baseline, "usage: silo-lua run bench/feed.lua BASELINE_BINARY [ROWS ...]")
local sizes = { select(2, ...) }
for i, size in ipairs(sizes) do sizes[i] = tonumber(size) end
if #sizes == 0 then sizes = { 20000, 100000, 300000 } end
local PER_TRANSACTION, ROUNDS = 1000, 3

-- A durable exchange and queue, as a silovator's would be, with no consumer: the broker stores every message.
local function open_queue(broker)
  local suffix = core.random_hex(4)
  local exchange, queue = "silo.feed.bench." .. suffix, "silo.feed.bench.q." .. suffix
  broker:exchange_declare(exchange, "topic", { durable = true })
  broker:queue_declare(queue, { durable = true })
  broker:queue_bind(queue, exchange, "#")
  return exchange, queue
end

-- The feed from start until it has published rows; seconds taken and the average message size in bytes.
local function run_feed(model, exchange, start, rows)
  local checkpoint_path = os.tmpname()
  os.remove(checkpoint_path)
  local f = feed.new { models = { model }, mysql_url = sql.url(support.DATABASE), exchange = exchange,
                       checkpoint = checkpoint_path, start = start }
  f:connect_broker()
  f:open_stream(f:resume_position()) -- a running feed is connected already: the clock starts after
  local started = core.monotonic()
  local seen, bytes = 0, 0
  local publish = f.publish
  function f:publish(list, position) -- measures what is published, then publishes it
    for _, message in ipairs(list) do bytes = bytes + #message.body end
    return publish(self, list, position)
  end
  while seen < rows do seen = seen + f:step(30) end
  f:settle()
  local seconds = core.monotonic() - started
  f:close()
  os.remove(checkpoint_path)
  return seconds, math.floor(bytes / rows + 0.5)
end

-- messages/s, or nil when the run failed (the shared broker restarted under it, say).
local function run_baseline(exchange, rows, body_bytes)
  local command = string.format("%q %q %q create.FeedRow %d %d %d", baseline, config.get("amqp_url"), exchange, rows,
    PER_TRANSACTION, body_bytes)
  local pipe = assert(io.popen(command))
  local output = pipe:read("*a")
  pipe:close()
  return tonumber(output:match("published_confirmed_per_s (%d+)"))
end

local function measure(broker, rows, db, table_name, model, exchange, queue)
  local start = support.binlog_position(db)
  local write_started = core.monotonic()
  support.write_rows(db, table_name, rows, PER_TRANSACTION)
  local write_seconds = core.monotonic() - write_started
  -- The broker is shared and only ever slows a round down: alternate, keep the best of each.
  local feed_rate, c_rate, body_bytes = 0, 0, nil
  for _ = 1, ROUNDS do
    local seconds
    seconds, body_bytes = run_feed(model, exchange, start, rows)
    broker:queue_purge(queue)
    feed_rate = math.max(feed_rate, rows / seconds)
    c_rate = math.max(c_rate, run_baseline(exchange, rows, body_bytes) or 0)
    broker:queue_purge(queue)
  end
  assert(c_rate > 0, "every baseline run failed")
  print(string.format("%7d rows (write %.1f s): feed %7.0f rows/s   librabbitmq-c %7.0f msgs/s of %d bytes   "
    .. "ratio %.2f   RSS %.0f MB", rows, write_seconds, feed_rate, c_rate, body_bytes, feed_rate / c_rate,
    support.rss_mb()))
end

local broker = amqp.connect()
print(string.format("MySQL %s, RabbitMQ %s; transactions of %d rows, persistent messages, durable queue",
  config.redact(config.get("mysql_url")), config.redact(config.get("amqp_url")), PER_TRANSACTION))
for _, rows in ipairs(sizes) do
  local db, table_name, model = support.open_table()
  local exchange, queue = open_queue(broker)
  local ok, err = pcall(measure, broker, rows, db, table_name, model, exchange, queue)
  broker:queue_delete(queue)
  broker:exchange_delete(exchange)
  db:exec("DROP TABLE " .. table_name)
  db:close()
  assert(ok, err)
  collectgarbage()
end
broker:close()
