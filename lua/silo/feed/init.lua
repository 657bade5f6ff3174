-- silo.feed: every committed change to the observed tables, published to the mega-feed, with nothing lost.
--
-- The loop: read the next committed transaction from the binlog (silo.binlog), publish one message per row
-- to the topic exchange with publisher confirms (silo.amqp), and only then move the checkpoint. A crash
-- anywhere replays from the checkpoint: at-least-once, never a gap. The broker or MySQL going away is waited
-- out with backoff; nothing is skipped. SIGTERM/SIGINT: finish the transaction in hand, checkpoint, return.
-- A failure retrying cannot mend (a server not set up for the feed) is logged and ends the run.
local amqp = require "silo.amqp"
local binlog = require "silo.binlog"
local checkpoint = require "silo.feed.checkpoint"
local config = require "silo.config"
local core = require "silo.core"
local errors = require "silo.errors"
local message = require "silo.feed.message"

local log = require("silo.log").named("feed")

local feed = {}
local Feed = {}
Feed.__index = Feed

-- A quiet feed still moves its checkpoint (transactions of other tables advance the position), at most this often.
local CHECKPOINT_INTERVAL = 1.0
local MAX_BACKOFF = 30
-- A large transaction is published in slices of this many messages, each confirmed before the next.
local SLICE = 2000

-- "now", "FILE:POS" or a GTID position ("0-1-1234", comma-separated per domain) -> silo.binlog's start.
function feed.parse_start(text)
  if text == "now" then return "now" end
  local file, pos = text:match("^([^:]+):(%d+)$")
  if file then return { file = file, pos = tonumber(pos) } end
  if text:match("^%d+%-%d+%-%d+[,%d%-]*$") then return { gtid = text } end
  error(string.format("feed_start must be now, FILE:POS or a GTID like 0-1-1234, got '%s'", text), 0)
end

local function database_of(url)
  local database = url:match("^mysql://[^/]*/([^?]+)")
  if not database then
    error("mysql_url " .. config.redact(url) .. " names no database: the feed observes tables of one database", 0)
  end
  return database
end

-- options: models (observed: { name, table, primary_key }), and optionally mysql_url, amqp_url, exchange,
-- checkpoint (path), start, server_id, heartbeat; defaults from the configuration.
function feed.new(options)
  local settings = config.current()
  local self = setmetatable({
    mysql_url = options.mysql_url or settings.mysql_url,
    amqp_url = options.amqp_url or settings.amqp_url,
    exchange = options.exchange or settings.exchange,
    checkpoint_path = options.checkpoint or settings.feed_checkpoint,
    start = options.start or settings.feed_start,
    server_id = options.server_id,
    heartbeat = options.heartbeat,
    models = {},
    published = 0,
  }, Feed)
  local database = database_of(self.mysql_url)
  self.tables = {}
  for _, model in ipairs(options.models) do
    self.models[model.table] = model
    self.tables[#self.tables + 1] = database .. "." .. model.table
  end
  if #self.tables == 0 then
    error("the feed observes no tables: declare them with AsynchronousObservers.listen(...)", 0)
  end
  return self
end

-- Where to resume: the checkpoint when there is one, else the configured start.
function Feed:resume_position()
  return checkpoint.load(self.checkpoint_path) or feed.parse_start(self.start)
end

function Feed:open_stream(position)
  self.stream = binlog.open {
    url = self.mysql_url, tables = self.tables, start = position,
    server_id = self.server_id, heartbeat = self.heartbeat,
  }
  log.info("reading the binlog of %s from %s (connection %d)", config.redact(self.mysql_url), feed.describe(position),
    self.stream:connection_id())
end

function feed.describe(position)
  if type(position) ~= "table" then return tostring(position) end
  if position.gtid and position.file then
    return string.format("%s:%d (gtid %s)", position.file, position.pos, position.gtid)
  end
  return position.gtid and ("gtid " .. position.gtid) or (position.file .. ":" .. position.pos)
end

function Feed:connect_broker()
  self.broker = amqp.connect(self.amqp_url)
  self.broker:exchange_declare(self.exchange, "topic", { durable = true })
  self.broker_reconnections = 0
end

-- silo.amqp re-establishes a lost connection by itself and publishes the unconfirmed messages again: say so.
function Feed:report_reconnections()
  local reconnections = self.broker:status().reconnections
  if reconnections > self.broker_reconnections then
    log.warn("the connection to the broker was lost and re-established; unconfirmed messages were published again")
    self.broker_reconnections = reconnections
  end
end

-- The messages of one transaction, ready for publish_batch.
function Feed:messages_of(txn)
  local source = { gtid = txn.gtid, file = txn.file, pos = txn.pos, ts = txn.ts }
  local list = {}
  for index, change in ipairs(txn.changes) do
    local model = self.models[change.table]
    if model then
      list[#list + 1] = message.envelope(self.exchange, message.from_change(change, model, source, index))
    end
  end
  return list
end

-- Waits for the confirms of the messages in flight; the position they end at is then confirmed.
function Feed:settle()
  local flight = self.in_flight
  if not flight then return end
  self.broker:wait_confirms()
  self.in_flight = nil
  self:report_reconnections()
  self.published = self.published + flight.count
  if flight.position then self:confirm(flight.position) end
end

function Feed:confirm(position)
  self.confirmed, self.unsaved = position, position
  if core.monotonic() - (self.saved_at or 0) >= CHECKPOINT_INTERVAL then self:save_checkpoint(position) end
end

-- Sends the messages of the transactions ending at position without waiting for their confirms, in slices
-- each sent once the one before is confirmed: the next transactions are read and encoded meanwhile.
function Feed:publish(list, position)
  if #list == 0 then
    self:settle()
    return self:confirm(position)
  end
  for first = 1, #list, SLICE do
    local last = math.min(first + SLICE - 1, #list)
    self:settle()
    self.broker:publish_batch({ unpack(list, first, last) }, { wait = false })
    self.in_flight = { count = last - first + 1, position = last == #list and position or nil }
  end
end

function Feed:save_checkpoint(position)
  checkpoint.save(self.checkpoint_path, position)
  self.saved_at = core.monotonic()
  self.unsaved = nil
end

-- One step: take the transactions that have arrived (waiting up to timeout seconds for one when nothing is in
-- flight), encode them while the confirms of the step before are outstanding, then send them without
-- waiting (one wait for all their confirms, at the next step, so small transactions do not each cost a round
-- trip). A position is checkpointed only once every message up to it is confirmed. Returns the number of
-- messages sent (0 when none came). Raises when MySQL or the broker failed; the caller recovers.
function Feed:step(timeout)
  local txn = self.stream:next(self.in_flight and 0 or timeout)
  local list, received = {}, txn ~= nil
  while txn do
    for _, m in ipairs(self:messages_of(txn)) do list[#list + 1] = m end
    txn = #list < SLICE and self.stream:next(0) or nil
  end
  if received then
    -- the stream's position, not the transaction's own GTID: it holds the last GTID of every domain
    self:publish(list, self.stream:position())
  elseif self.in_flight then
    self:settle()
  else
    local position = self.stream:position()
    if position then self:confirm(position) end
  end
  return #list
end

function Feed:close()
  if self.in_flight then
    local ok, err = pcall(self.settle, self)
    if not ok then
      log.error("%s; the checkpoint stays before the unconfirmed messages", errors.without_location(err))
    end
  end
  if self.unsaved then self:save_checkpoint(self.unsaved) end
  if self.stream then self.stream:close() end
  if self.broker then self.broker:close() end
  self.stream, self.broker = nil, nil
end

local function stop_requested()
  local signal = core.pending_signal()
  if signal == "TERM" or signal == "INT" then
    log.info("SIG%s: checkpointing and stopping", signal)
    return true
  end
  return false
end

-- Failures that time mends: MySQL or the broker unreachable or gone (client errors 2000-2999, a killed
-- connection, a server shutting down) and a nack. Anything else (the server's settings, a missing grant, a
-- purged start position, a damaged checkpoint, a refused declaration) stops the feed: retrying cannot help.
function feed.is_transient(message)
  local code = tonumber(message:match("%((%d+)%)$"))
  if code and ((code >= 2000 and code < 3000) or code == 1927 or code == 1053 or code == 4031) then return true end
  return message:find("^reconnect: cannot reach ") ~= nil or message:find("^connect: cannot connect to ") ~= nil
    or message:find("^publish: the broker nacked ") ~= nil or message:find("^wait_confirms: the broker nacked ") ~= nil
end

-- Runs until SIGTERM or SIGINT (returns 0) or a failure retrying cannot mend (logs it, returns 1). MySQL or
-- the broker going away is logged and retried with backoff from the last confirmed position, for ever: the
-- feed never skips a change.
function Feed:run()
  core.trap_signals()
  local backoff, status = 0.5, 0
  while not stop_requested() do
    local ok, err = pcall(function()
      if not self.broker then self:connect_broker() end
      if not self.stream then self:open_stream(self.confirmed or self:resume_position()) end
      self:step(1.0)
    end)
    if ok then
      backoff = 0.5
    else
      self.in_flight = nil -- sent again from the last confirmed position
      if stop_requested() then break end
      local message = errors.without_location(err)
      if not feed.is_transient(message) then
        log.error("%s; stopping: retrying cannot help", message)
        status = 1
        break
      end
      log.error("%s; retrying in %.1fs from %s", message, backoff, feed.describe(self.confirmed or "the checkpoint"))
      if self.stream then pcall(self.stream.close, self.stream) end
      self.stream = nil
      core.sleep(backoff)
      backoff = math.min(backoff * 2, MAX_BACKOFF)
    end
  end
  self:close()
  log.info("stopped after publishing %d messages", self.published)
  return status
end

return feed
