-- The feed's specs: a database of their own (silo_feed_spec), a table in it, an exchange and a queue of their own.
local amqp = require "silo.amqp"
local cli = require "spec.support.cli"
local config = require "silo.config"
local core = require "silo.core"
local json = require "silo.json"
local mysql = require "silo.mysql"
local sql = require "spec.support.sql"

local support = {}

support.DATABASE = "silo_feed_spec"


-- A table feed_rows_<random> in silo_feed_spec and the model the feed observes for it.
function support.open_table()
  local admin = mysql.connect(config.get("mysql_url"))
  admin:exec("CREATE DATABASE IF NOT EXISTS " .. support.DATABASE)
  admin:close()
  local db = mysql.connect(sql.url(support.DATABASE))
  local table_name = "feed_rows_" .. core.random_hex(4)
  db:exec("CREATE TABLE " .. table_name .. " (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
    .. "amount DECIMAL(10,2) NULL, seen_at DATETIME NULL) ENGINE=InnoDB")
  return db, table_name, { name = "FeedRow", table = table_name, primary_key = "id" }
end

-- A connection to the shared broker, waiting out another spec's restart of it.
local function connect_broker()
  local deadline = core.monotonic() + 60
  while true do
    local ok, broker = pcall(amqp.connect, config.get("amqp_url"))
    if ok then return broker end
    if core.monotonic() > deadline then error(broker, 0) end
    core.sleep(0.5)
  end
end

-- A fresh exchange with a durable queue bound to every routing key.
function support.open_queue()
  local broker = connect_broker()
  local suffix = core.random_hex(4)
  local exchange, queue = "silo.feed.spec." .. suffix, "silo.feed.spec.q." .. suffix
  broker:exchange_declare(exchange, "topic", { durable = true })
  broker:queue_declare(queue, { durable = true })
  broker:queue_bind(queue, exchange, "#")
  broker:consume(queue, { prefetch = 500 })
  return broker, exchange, queue
end

-- Every message that arrives until none came for quiet seconds: { { key =, id =, body = decoded }, ... }.
-- Another spec may restart the shared broker meanwhile: the consumer reconnects, and what the broker delivers
-- again (same message id) is taken once.
function support.drain(broker, quiet)
  local received, seen = {}, {}
  while true do
    local delivery, why = broker:receive(quiet or 1)
    if not delivery and why ~= "reconnected" then return received end
    if delivery and not seen[delivery.message_id] then
      seen[delivery.message_id] = true
      received[#received + 1] = {
        key = delivery.routing_key, id = delivery.message_id, body = json.decode(delivery.body),
        persistent = delivery.persistent, content_type = delivery.content_type,
      }
    end
    if delivery then pcall(broker.ack, broker, delivery) end
  end
end

function support.cleanup(db, table_name, broker, exchange, queue)
  if db then db:exec("DROP TABLE IF EXISTS " .. table_name) end
  if broker then
    broker:queue_delete(queue)
    broker:exchange_delete(exchange)
    broker:close()
  end
end

-- The binlog position now, as SILO_FEED_START takes it: "FILE:POS".
function support.binlog_position(db)
  local status = db:query("SHOW MASTER STATUS")[1]
  return status.File .. ":" .. status.Position
end

-- Inserts count rows into table_name, rows_per_transaction to a transaction (one statement each), and
-- returns the GTIDs of those transactions in commit order.
function support.write_rows(db, table_name, count, rows_per_transaction)
  local sql = string.format("INSERT INTO %s (name) SELECT CONCAT('row ', seq) FROM seq_1_to_%d",
    table_name, rows_per_transaction)
  local gtids = {}
  for _ = 1, count / rows_per_transaction do
    db:exec(sql)
    gtids[#gtids + 1] = db:query("SELECT @@last_gtid AS gtid")[1].gtid
  end
  return gtids
end

-- The ids of every row in table_name.
function support.row_ids(db, table_name)
  local ids = {}
  for _, row in ipairs(db:query("SELECT id FROM " .. table_name)) do ids[#ids + 1] = row.id end
  return ids
end

-- An application directory whose models.lua observes table_name as FeedRow.
function support.app_root(table_name)
  local root = os.tmpname()
  os.remove(root)
  assert(os.execute("mkdir " .. cli.shell_quote(root)) == 0)
  local f = assert(io.open(root .. "/models.lua", "w"))
  f:write(string.format('Model("FeedRow", { table = %q })\nAsynchronousObservers.listen(FeedRow)\n', table_name))
  f:close()
  return root
end

function support.remove_app_root(root)
  os.remove(root .. "/models.lua")
  os.remove(root)
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- Polls condition() until it returns a true value (returned) or seconds passed (nil).
function support.wait_for(condition, seconds)
  local deadline = core.monotonic() + seconds
  repeat
    local value = condition()
    if value then return value end
    core.sleep(0.01)
  until core.monotonic() > deadline
end

-- The resident memory of a process (default: this one), in MB.
function support.rss_mb(pid)
  for line in io.lines("/proc/" .. (pid or "self") .. "/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

-- A process started by a spec: only its PID is ever signalled.
local Process = {}
Process.__index = Process

-- Runs command (a shell command line that execs one program) in the background; its stdout and stderr go
-- to process.log.
function support.spawn(command)
  local base = os.tmpname()
  local process = setmetatable({ log = base .. ".log", pid_file = base .. ".pid", status_file = base }, Process)
  os.remove(base)
  -- the subshell waits for the program to record its exit status; $! is the program's own PID
  os.execute(string.format("(%s >%s 2>&1 </dev/null & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &",
    command, process.log, process.pid_file, process.status_file))
  local deadline = core.monotonic() + 10
  repeat
    process.pid = tonumber(read_file(process.pid_file) or "")
    if not process.pid then core.sleep(0.01) end
  until process.pid or core.monotonic() > deadline
  assert(process.pid, "did not start: " .. command)
  return process
end

-- Starts `silo-lua feed` with env added to the environment.
function support.start_feed(env)
  local parts = {}
  for name, value in pairs(env) do parts[#parts + 1] = name .. "=" .. cli.shell_quote(value) end
  parts[#parts + 1] = cli.shell_quote(cli.binary()) .. " feed"
  return support.spawn(table.concat(parts, " "))
end

-- The exit status once the process ended (128 + N for signal N), else nil.
function Process:status()
  return tonumber(read_file(self.status_file) or "")
end

function Process:signal(name)
  if not self:status() then os.execute("kill -" .. name .. " " .. self.pid) end
end

-- Waits up to seconds for the process to end; its exit status, or nil when it still runs.
function Process:wait(seconds)
  return support.wait_for(function() return self:status() end, seconds)
end

function Process:output()
  return read_file(self.log) or ""
end

-- Waits up to seconds for a line of the log matching pattern; its first capture, or nil.
function Process:wait_for_log(pattern, seconds)
  return support.wait_for(function() return self:output():match(pattern) end, seconds)
end

-- Ends the process if it still runs (SIGKILL) and removes its files.
function Process:finish()
  if not self:status() then
    self:signal("KILL")
    self:wait(10)
  end
  os.remove(self.log); os.remove(self.pid_file); os.remove(self.status_file)
end

-- What arrived on a queue, by message id and by row id.
local Collector = {}
Collector.__index = Collector

function support.collector(broker)
  return setmetatable({ broker = broker, message_ids = {}, distinct = 0, deliveries = 0, row_ids = {},
                        gtids = {} }, Collector)
end

function Collector:take(delivery)
  local body = json.decode(delivery.body)
  self.deliveries = self.deliveries + 1
  if not self.message_ids[delivery.message_id] then
    self.message_ids[delivery.message_id] = true
    self.distinct = self.distinct + 1
  end
  self.row_ids[body.id] = true
  self.gtids[body.source.gtid] = (self.gtids[body.source.gtid] or 0) + 1
  pcall(self.broker.ack, self.broker, delivery) -- on a lost connection the broker delivers it again
end

-- Receives until done(collector) is true or nothing arrived for quiet seconds; whether done. A
-- reconnection of the consumer (the broker restarted) is waited through: unacked messages come again.
function Collector:receive_until(done, quiet)
  local idle_since = core.monotonic()
  while not done(self) do
    local delivery = self.broker:receive(0.5)
    if delivery then
      self:take(delivery)
      idle_since = core.monotonic()
    elseif core.monotonic() - idle_since > quiet then
      return false
    end
  end
  return true
end

-- Receives until at least count distinct messages arrived, or nothing came for quiet seconds.
function Collector:receive_distinct(count, quiet)
  return self:receive_until(function(c) return c.distinct >= count end, quiet)
end

-- The ids in list that never arrived.
function Collector:missing_rows(ids)
  local missing = {}
  for _, id in ipairs(ids) do
    if not self.row_ids[id] then missing[#missing + 1] = id end
  end
  return missing
end

return support
