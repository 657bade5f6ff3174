local core = require "silo.core"
local feed = require "silo.feed"
local checkpoint = require "silo.feed.checkpoint"
local sql = require "spec.support.sql"
local support = require "spec.support.feed"

describe("the feed", function()
  local db, table_name, model, broker, exchange, queue, checkpoint_path

  local function new_feed(start)
    local f = feed.new { models = { model }, mysql_url = sql.url(support.DATABASE), exchange = exchange,
                         checkpoint = checkpoint_path, start = start or "now" }
    f:connect_broker()
    f:open_stream(f:resume_position())
    return f
  end

  -- Steps the feed until it has handed out `rows` row changes.
  local function run_until(f, rows)
    local seen = 0
    while seen < rows do seen = seen + f:step(5) end
  end

  before_each(function()
    db, table_name, model = support.open_table()
    broker, exchange, queue = support.open_queue()
    checkpoint_path = os.tmpname()
    os.remove(checkpoint_path)
  end)

  after_each(function()
    support.cleanup(db, table_name, broker, exchange, queue)
    if checkpoint_path then os.remove(checkpoint_path) end
  end)

  it("publishes inserts, updates, deletes and every row of a multi-row statement, in commit order", function()
    local f = new_feed()
    db:exec("INSERT INTO " .. table_name .. " (name, amount) VALUES ('one', 1.50)")
    db:exec("UPDATE " .. table_name .. " SET name = 'uno', seen_at = '2026-11-28 12:00:00' WHERE name = 'one'")
    db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('two'), ('three')")
    db:exec("DELETE FROM " .. table_name .. " WHERE name = 'two'")
    run_until(f, 5)
    f:close()

    local got = support.drain(broker)
    assert.equal(5, #got)
    local keys = {}
    for i, m in ipairs(got) do keys[i] = m.key end
    assert.same({ "create.FeedRow", "update.FeedRow", "create.FeedRow", "create.FeedRow", "destroy.FeedRow" }, keys)

    local created, updated, destroyed = got[1].body, got[2].body, got[5].body
    assert.equal("create", created.op)
    assert.equal("FeedRow", created.model)
    assert.equal(table_name, created.table)
    assert.equal(1, created.id)
    assert.equal("one", created.attributes.name)
    assert.equal("1.50", created.attributes.amount)
    assert.equal(core.null, created.attributes.seen_at)
    assert.is_nil(created.changes)

    assert.same({ "one", "uno" }, updated.changes.name)
    assert.equal(core.null, updated.changes.seen_at[1])
    assert.equal(core.datetime(1795867200000), updated.changes.seen_at[2])
    assert.is_nil(updated.changes.amount)

    assert.equal("destroy", destroyed.op)
    assert.equal("two", destroyed.attributes.name)
    assert.matches("^%d+%-%d+%-%d+$", updated.source.gtid)
    assert.matches("^silo%-bin%.%d+$", updated.source.file)
    assert.is_true(updated.source.pos > 0)

    assert.is_true(got[1].persistent)
    assert.equal("application/json", got[1].content_type)
    assert.equal(updated.source.gtid .. "/1", got[2].id)
    assert.equal(got[3].body.source.gtid .. "/2", got[4].id)
  end)

  it("never publishes rolled-back work", function()
    local f = new_feed()
    db:transaction(function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('kept')")
    end)
    pcall(db.transaction, db, function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('rolled back')")
      error("abandon")
    end)
    db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('after')")
    run_until(f, 2)
    f:close()
    local got = support.drain(broker)
    assert.equal(2, #got)
    assert.equal("kept", got[1].body.attributes.name)
    assert.equal("after", got[2].body.attributes.name)
  end)

  it("checkpoints after the confirms and resumes from the checkpoint with no gap", function()
    local f = new_feed()
    db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('a'), ('b')")
    run_until(f, 2)
    f:close()
    local saved = checkpoint.load(checkpoint_path)
    assert.matches("^%d+%-%d+%-%d+$", saved.gtid)

    db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('c')")
    local resumed = new_feed("now")   -- the checkpoint wins over the start setting
    run_until(resumed, 1)
    resumed:close()
    local names = {}
    for _, m in ipairs(support.drain(broker)) do names[#names + 1] = m.body.attributes.name end
    assert.same({ "a", "b", "c" }, names)
  end)

  it("publishes the transactions already waiting in one step, and checkpoints the last", function()
    local f = new_feed()
    for i = 1, 3 do db:exec("INSERT INTO " .. table_name .. " (name) VALUES (?)", "single " .. i) end
    local last_gtid = db:query("SELECT @@last_gtid AS gtid")[1].gtid
    core.sleep(0.5) -- the three transactions reach the feed's socket
    assert.equal(3, f:step(5))
    f:close()
    assert.equal(last_gtid, checkpoint.load(checkpoint_path).gtid)
    local names = {}
    for _, m in ipairs(support.drain(broker)) do names[#names + 1] = m.body.attributes.name end
    assert.same({ "single 1", "single 2", "single 3" }, names)
  end)

  it("retries what time mends and stops on what it does not", function()
    for _, message in ipairs {
      "binlog: reading the binlog of mysql://u:***@h/ after f:4: Lost connection to server during query (2013)",
      "binlog: connect to mysql://u:***@h/: Can't connect to server on 'h' (115) (2002)",
      "binlog: reading the binlog of mysql://u:***@h/ after f:4: Connection was killed (1927)",
      "reconnect: cannot reach amqp://guest:***@h:5672/: a socket error occurred (gave up after 60 s)",
      "connect: cannot connect to amqp://guest:***@h:5672/: a socket error occurred",
      "publish: the broker nacked 3 of 10 messages (not stored)",
    } do
      assert.is_true(feed.is_transient(message), message)
    end
    for _, message in ipairs {
      "binlog: the server's binary log cannot be tailed: binlog_format is STATEMENT: set binlog_format=ROW",
      "binlog: start replication from mysql://u:***@h/: Could not find first log file name in binary log (1236)",
      "binlog: SHOW MASTER STATUS: Access denied (1227): GRANT BINLOG MONITOR ON *.* to the feed's user",
      "binlog: connect to mysql://u:***@h/: Access denied for user 'u'@'h' (using password: YES) (1045)",
      "checkpoint /var/lib/feed.checkpoint:1: expected gtid=, file= or pos=, got \"x\"",
      "exchange_declare: 406 PRECONDITION_FAILED - inequivalent arg 'type'",
    } do
      assert.is_false(feed.is_transient(message), message)
    end
  end)

  it("refuses a start position it cannot parse, and a URL without a database", function()
    assert.has_error(function() feed.parse_start("yesterday") end,
      "feed_start must be now, FILE:POS or a GTID like 0-1-1234, got 'yesterday'")
    assert.same({ file = "silo-bin.000002", pos = 4 }, feed.parse_start("silo-bin.000002:4"))
    assert.same({ gtid = "0-1-9,1-2-3" }, feed.parse_start("0-1-9,1-2-3"))
    assert.has_error(function() feed.new { models = { model }, mysql_url = "mysql://u:secret@127.0.0.1:3307/" } end,
      "mysql_url mysql://u:***@127.0.0.1:3307/ names no database: the feed observes tables of one database")
    assert.has_error(function() feed.new { models = {} } end,
      "the feed observes no tables: declare them with AsynchronousObservers.listen(...)")
  end)
end)
