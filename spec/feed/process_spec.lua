-- `silo-lua feed` as a process on the shared MariaDB and RabbitMQ: SIGTERM, kill -9, a broker restart and a
-- killed replica connection in the middle of a stream, each ending with every row delivered at least once.
-- The broker restart is the one disruption of a shared service; start_app runs in a finally.
local checkpoint = require "silo.feed.checkpoint"
local cli = require "spec.support.cli"
local config = require "silo.config"
local feed_module = require "silo.feed"
local mysql = require "silo.mysql"
local sql = require "spec.support.sql"
local support = require "spec.support.feed"

local ROWS, PER_TRANSACTION = 50000, 500
local QUIET = 60 -- seconds without a delivery before a spec gives up waiting; only a failing spec waits

describe("silo-lua feed, the process", function()
  local db, table_name, broker, exchange, queue, root, checkpoint_path, start
  local processes

  local function start_feed()
    local process = support.start_feed {
      SILO_APP_ROOT = root, SILO_MYSQL_URL = sql.url(support.DATABASE), SILO_EXCHANGE = exchange,
      SILO_FEED_CHECKPOINT = checkpoint_path, SILO_FEED_START = start,
    }
    processes[#processes + 1] = process
    return process
  end

  before_each(function()
    processes = {}
    db, table_name = support.open_table()
    broker, exchange, queue = support.open_queue()
    root = support.app_root(table_name)
    checkpoint_path = os.tmpname()
    os.remove(checkpoint_path)
    start = support.binlog_position(db)
  end)

  after_each(function()
    for _, process in ipairs(processes) do process:finish() end
    support.cleanup(db, table_name, broker, exchange, queue)
    support.remove_app_root(root)
    os.remove(checkpoint_path)
  end)

  -- Half the rows; the feed, disrupted as soon as its first checkpoint shows it publishing them; the other half;
  -- recover(feed), which returns the feed that runs on; then every row delivered: as many distinct message ids
  -- as rows written, and every row id present.
  local function survives(disrupt, recover)
    support.write_rows(db, table_name, ROWS / 2, PER_TRANSACTION)
    local feed = start_feed()
    assert.truthy(support.wait_for(function() return checkpoint.load(checkpoint_path) end, QUIET),
      "no checkpoint was written:\n" .. feed:output())
    disrupt(feed)
    support.write_rows(db, table_name, ROWS / 2, PER_TRANSACTION)
    feed = recover(feed)
    local received = support.collector(broker)
    local complete = received:receive_distinct(ROWS, QUIET)
    local missing = received:missing_rows(support.row_ids(db, table_name))
    assert.is_true(complete, string.format("%d of %d distinct messages, %d rows missing, e.g. %s\n%s",
      received.distinct, ROWS, #missing, tostring(missing[1]), feed:output()))
    assert.equal(ROWS, received.distinct)
    assert.same({}, missing)
    feed:signal("TERM")
    assert.equal(0, feed:wait(30))
    return received, feed
  end

  it("on SIGTERM publishes the transaction in hand, checkpoints after its confirms and exits 0", function()
    local feed = start_feed()
    assert.truthy(feed:wait_for_log("reading the binlog", 10), feed:output())
    local gtids = support.write_rows(db, table_name, 20 * PER_TRANSACTION, PER_TRANSACTION)
    local received = support.collector(broker)
    assert.is_true(received:receive_distinct(1, QUIET), "no messages arrived:\n" .. feed:output())
    feed:signal("TERM")
    assert.equal(0, feed:wait(30), feed:output())
    assert.matches("SIGTERM: checkpointing and stopping", feed:output())
    assert.matches("stopped after publishing %d+ messages", feed:output())

    local saved = checkpoint.load(checkpoint_path)
    assert.truthy(saved, "no checkpoint was written")
    received:receive_until(function() return false end, 2)
    -- Every transaction up to the checkpoint arrived whole; none after it was published.
    local saved_sequence = tonumber(saved.gtid:match("(%d+)$"))
    local published = 0
    for _, gtid in ipairs(gtids) do
      if tonumber(gtid:match("(%d+)$")) <= saved_sequence then
        published = published + 1
        assert.equal(PER_TRANSACTION, received.gtids[gtid], "transaction " .. gtid .. " is incomplete")
      else
        assert.is_nil(received.gtids[gtid], "transaction " .. gtid .. " was published after the checkpoint")
      end
    end
    assert.is_true(published >= 1)
    assert.equal(published * PER_TRANSACTION, received.distinct)
    local file, pos = start:match("^(.+):(%d+)$")
    assert.is_true(saved.file > file or (saved.file == file and saved.pos > tonumber(pos)),
      "the checkpoint did not move")
  end)

  it("exits 1 on a damaged checkpoint and on an exchange of another type, naming them", function()
    local f = assert(io.open(checkpoint_path, "w"))
    f:write("position 12\n")
    f:close()
    local damaged = start_feed()
    assert.equal(1, damaged:wait(30), damaged:output())
    assert.matches("ERROR feed: checkpoint " .. checkpoint_path:gsub("%p", "%%%0") .. ":1: expected gtid=, file= or "
      .. "pos=, got \"position 12\"; stopping: retrying cannot help\n", damaged:output())
    os.remove(checkpoint_path)

    broker:exchange_delete(exchange)
    broker:exchange_declare(exchange, "direct", { durable = true })
    local mistyped = start_feed()
    assert.equal(1, mistyped:wait(30), mistyped:output())
    assert.matches("ERROR feed: exchange_declare: [^\n]*PRECONDITION_FAILED[^\n]*; stopping: retrying cannot help\n",
      mistyped:output())
  end)

  it("exits 2 when given arguments and 1 when the application does not load", function()
    local r = cli.run({ "feed", "extra" })
    assert.equal(2, r.status)
    assert.matches("silo%-lua feed: takes no arguments", r.stderr)
    local f = assert(io.open(root .. "/models.lua", "a"))
    f:write("AsynchronousObservers.listen(Nothing)\n")
    f:close()
    local broken = start_feed()
    assert.equal(1, broken:wait(30))
    assert.matches("^silo%-lua feed: models%.lua:3: undefined name 'Nothing'\n$", broken:output())
  end)

  it("delivers every change at least once when killed with SIGKILL mid-stream and restarted", function()
    local saved
    local _, feed = survives(function(feed)
      feed:signal("KILL")
      assert.equal(128 + 9, feed:wait(10))
      saved = checkpoint.load(checkpoint_path)
    end, start_feed)
    local resumed_from = "reading the binlog of [^\n]* from " .. feed_module.describe(saved):gsub("%p", "%%%0")
    assert.matches(resumed_from, feed:output())
  end)

  it("delivers every change at least once across a broker restart (stop_app, start_app)", function()
    local _, feed = survives(function()
      finally(function()
        os.execute("rabbitmqctl start_app >/dev/null 2>&1; rabbitmqctl await_startup >/dev/null 2>&1")
      end)
      assert.is_true(os.execute("rabbitmqctl stop_app >/dev/null 2>&1") == 0, "rabbitmqctl stop_app failed")
    end, function(feed)
      assert.is_true(os.execute("rabbitmqctl start_app >/dev/null 2>&1") == 0, "rabbitmqctl start_app failed")
      return feed
    end)
    assert.matches("WARN  feed: the connection to the broker was lost and re%-established; unconfirmed messages "
      .. "were published again", feed:output())
  end)

  it("logs a killed replica connection, reconnects and resumes from the last confirmed position", function()
    local admin = mysql.connect(config.get("mysql_url"))
    finally(function() admin:close() end)
    local _, feed = survives(function(feed)
      local id = tonumber(feed:wait_for_log("%(connection (%d+)%)", 10))
      local dump = admin:query("SELECT COMMAND AS command FROM information_schema.PROCESSLIST WHERE ID = ?", id)[1]
      assert.equal("Binlog Dump", dump and dump.command)
      admin:exec("KILL CONNECTION " .. id)
    end, function(feed)
      return feed
    end)
    local log = feed:output()
    assert.matches("ERROR feed: binlog: reading the binlog of mysql://silo:%*%*%*@[^ ]+ after [^ ]+: [^\n]+; "
      .. "retrying in [%d.]+s from silo%-bin%.%d+:%d+ %(gtid %d+%-%d+%-%d+%)", log)
    local _, reads = log:gsub("reading the binlog of", "")
    assert.is_true(reads >= 2)
  end)
end)
