-- bench/feed_latency.lua - commit-to-delivery latency of `silo-lua feed` under a steady stream of small writes.
--   eval "$(scripts/services env)"; build/silo-lua run bench/feed_latency.lua [RATE [SECONDS]]   (1000, 10)
-- A writer process inserts single-row transactions at RATE per second for SECONDS, each row carrying the
-- client's clock at the insert; a `silo-lua feed` process publishes them (persistent, confirmed); this process
-- consumes them from a durable queue and records arrival time minus that clock. The first second is warm-up.
-- Prints p50, p99 and the maximum, the rate the writer achieved and the feed process's RSS.
-- Servers: $SILO_MYSQL_URL, $SILO_AMQP_URL.
package.path = "./?.lua;" .. package.path
local core = require "silo.core"
local json = require "silo.json"
local mysql = require "silo.mysql"
local cli = require "spec.support.cli"
local sql = require "spec.support.sql"
local support = require "spec.support.feed"

local function write(table_name, rate, seconds)
  local db = mysql.connect(sql.url(support.DATABASE))
  local sql = "INSERT INTO " .. table_name .. " (name, sent_at) VALUES ('latency', ?)"
  local total = rate * seconds
  local started = core.monotonic()
  for i = 1, total do
    local wait = started + i / rate - core.monotonic()
    if wait > 0 then core.sleep(wait) end
    db:exec(sql, core.now())
  end
  print(string.format("wrote %d rows at %.0f rows/s", total, total / (core.monotonic() - started)))
end

local function percentile(sorted, p)
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- Consumes total deliveries (or until none came for 10 s); arrival minus stamp in ms, past the first second.
local function latencies_of(broker, total)
  local latencies, arrived, first_sent = {}, 0, nil
  while arrived < total do
    local delivery = broker:receive(10)
    if not delivery then break end
    local now = core.now()
    arrived = arrived + 1
    broker:ack(delivery)
    local sent = json.decode(delivery.body).attributes.sent_at
    first_sent = first_sent or sent
    if sent - first_sent >= 1 then latencies[#latencies + 1] = (now - sent) * 1000 end
  end
  table.sort(latencies)
  return latencies, arrived
end

local function run(broker, exchange, table_name, root, checkpoint_path, processes, rate, seconds)
  local feed = support.start_feed {
    SILO_APP_ROOT = root, SILO_MYSQL_URL = sql.url(support.DATABASE), SILO_EXCHANGE = exchange,
    SILO_FEED_CHECKPOINT = checkpoint_path, SILO_FEED_START = "now", SILO_LOG_LEVEL = "info",
  }
  processes[#processes + 1] = feed
  assert(feed:wait_for_log("reading the binlog", 30), feed:output())
  local writer = support.spawn(string.format("exec %s run bench/feed_latency.lua --write %s %d %d",
    cli.shell_quote(cli.binary()), table_name, rate, seconds))
  processes[#processes + 1] = writer
  local latencies, arrived = latencies_of(broker, rate * seconds)
  writer:wait(30)
  print(writer:output():match("wrote[^\n]*") or writer:output())
  print(string.format("%d of %d rows arrived; after the first second: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
    arrived, rate * seconds, percentile(latencies, 0.5), percentile(latencies, 0.99), latencies[#latencies]))
  print(string.format("silo-lua feed RSS after them: %.0f MB", support.rss_mb(feed.pid)))
  feed:signal("TERM")
  feed:wait(30)
end

local function measure(rate, seconds)
  local db, table_name = support.open_table()
  db:exec("ALTER TABLE " .. table_name .. " ADD COLUMN sent_at DOUBLE NOT NULL")
  local broker, exchange, queue = support.open_queue()
  local root = support.app_root(table_name)
  local checkpoint_path = os.tmpname()
  os.remove(checkpoint_path)
  local processes = {}
  local ok, err = pcall(run, broker, exchange, table_name, root, checkpoint_path, processes, rate, seconds)
  for _, process in ipairs(processes) do process:finish() end
  support.cleanup(db, table_name, broker, exchange, queue)
  support.remove_app_root(root)
  os.remove(checkpoint_path)
  assert(ok, err)
end

if arg[1] == "--write" then
  write(arg[2], tonumber(arg[3]), tonumber(arg[4]))
else
  measure(tonumber(arg[1] or 1000), tonumber(arg[2] or 10))
end
