-- silo.binlog against the test MariaDB: committed row changes of the observed tables, in order, with the
-- project's value mapping; positions to resume from; the server checks and every error path.
local binlog = require "silo.binlog"
local core = require "silo.core"
local sql = require "spec.support.sql"

local db = "silo_binlog_spec_" .. core.random_hex(4)
local other_db = db .. "_other"
local WAIT = 10 -- seconds a transaction may take to arrive; only a failing spec waits that long

local function observed(...)
  local names = {}
  for i, table_name in ipairs { ... } do names[i] = db .. "." .. table_name end
  return names
end

local function open(options)
  options = options or {}
  options.url = options.url or sql.url()
  options.tables = options.tables or observed("people", "types", "markers", "myisam", "pairs")
  options.heartbeat = options.heartbeat or 0.2
  return binlog.open(options)
end

local function next_transaction(stream)
  local transaction, why = stream:next(WAIT)
  assert(transaction, "no transaction arrived within " .. WAIT .. " s " .. tostring(why))
  return transaction
end

-- Writes a marker row and checks it is the next transaction: nothing else was handed out in between.
local function expect_nothing_more(stream)
  local id = math.random(1, 2 ^ 31)
  sql.run(("INSERT INTO %s.markers VALUES (%d)"):format(db, id))
  local transaction = next_transaction(stream)
  assert.equal(1, #transaction.changes)
  assert.same({ id = id }, transaction.changes[1].after)
end

local function with_stream(body, options)
  local stream = open(options)
  local ok, err = pcall(body, stream)
  stream:close()
  if not ok then error(err, 0) end
end

setup(function()
  sql.run(([[
    CREATE DATABASE %s; CREATE DATABASE %s;
    CREATE TABLE %s.people (id INT PRIMARY KEY, name VARCHAR(50), age INT);
    CREATE TABLE %s.markers (id BIGINT PRIMARY KEY);
    CREATE TABLE %s.ignored (id INT PRIMARY KEY, name VARCHAR(50));
    CREATE TABLE %s.people (id INT PRIMARY KEY, name VARCHAR(50), age INT);
    CREATE TABLE %s.myisam (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=MyISAM;
    CREATE TABLE %s.pairs (b INT, a INT, note VARCHAR(10), PRIMARY KEY (a, b));
    CREATE TABLE %s.types (
      id INT PRIMARY KEY, ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT, tu TINYINT UNSIGNED,
      iu INT UNSIGNED, bu BIGINT UNSIGNED, flag TINYINT(1), f FLOAT, dbl DOUBLE, dc DECIMAL(10,2),
      dw DECIMAL(30,10), vc VARCHAR(64) CHARACTER SET utf8mb4, ch CHAR(8), tx TEXT CHARACTER SET utf8mb4,
      bl BLOB, j JSON, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, d DATE, y YEAR,
      t TIME(3), e ENUM('red','green','blue'), s SET('a','b','c','d'), b8 BIT(8), b64 BIT(64));
  ]]):format(db, other_db, db, db, db, other_db, db, db, db))
end)

teardown(function()
  sql.run(("DROP DATABASE IF EXISTS %s; DROP DATABASE IF EXISTS %s"):format(db, other_db))
end)

describe("silo.binlog", function()
  it("hands out inserts, updates and deletes as committed transactions, in order", function()
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.people VALUES (1, 'Ada', 36)"):format(db))
      sql.run(("UPDATE %s.people SET age = 37 WHERE id = 1"):format(db))
      sql.run(("DELETE FROM %s.people WHERE id = 1"):format(db))

      local insert, update, delete = next_transaction(stream), next_transaction(stream), next_transaction(stream)
      assert.same({ { op = "insert", database = db, table = "people", primary_key = { "id" },
                      after = { id = 1, name = "Ada", age = 36 } } }, insert.changes)
      assert.same({ { op = "update", database = db, table = "people", primary_key = { "id" },
                      before = { id = 1, name = "Ada", age = 36 }, after = { id = 1, name = "Ada", age = 37 } } },
        update.changes)
      assert.same({ { op = "delete", database = db, table = "people", primary_key = { "id" },
                      before = { id = 1, name = "Ada", age = 37 } } }, delete.changes)
      assert.matches("^%d+%-%d+%-%d+$", insert.gtid)
      assert.is_true(insert.pos < update.pos and update.pos < delete.pos)
      assert.equal(insert.file, delete.file)
      assert.is_true(math.abs(delete.ts - os.time()) < 60)
      expect_nothing_more(stream)
    end)
  end)

  it("hands out a multi-row statement and a multi-statement transaction as one transaction each", function()
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.people VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', NULL)"):format(db))
      sql.run(([[BEGIN; UPDATE %s.people SET age = age + 10 WHERE id <= 2;
                 DELETE FROM %s.people WHERE id = 3; INSERT INTO %s.people VALUES (4, 'd', 4); COMMIT]])
        :format(db, db, db))

      local bulk = next_transaction(stream)
      assert.equal(3, #bulk.changes)
      assert.same({ 1, 2, 3 }, { bulk.changes[1].after.id, bulk.changes[2].after.id, bulk.changes[3].after.id })
      assert.equal(core.null, bulk.changes[3].after.age)

      local transaction = next_transaction(stream)
      local summary = {}
      for _, change in ipairs(transaction.changes) do
        summary[#summary + 1] = change.op .. ":" .. (change.after or change.before).id
      end
      assert.same({ "update:1", "update:2", "delete:3", "insert:4" }, summary)
      assert.equal(11, transaction.changes[1].after.age)
      expect_nothing_more(stream)
      sql.run(("DELETE FROM %s.people"):format(db))
    end)
  end)

  it("never hands out rolled-back work", function()
    with_stream(function(stream)
      sql.run(([[BEGIN; INSERT INTO %s.people VALUES (100, 'rolled back', 1);
                 UPDATE %s.markers SET id = id + 1; ROLLBACK]]):format(db, db))
      expect_nothing_more(stream)
    end)
  end)

  it("observes exactly the tables named: other tables and databases are skipped", function()
    with_stream(function(stream)
      sql.run(([[BEGIN; INSERT INTO %s.ignored VALUES (1, 'x'); INSERT INTO %s.people VALUES (7, 'other db', 1);
                 INSERT INTO %s.people VALUES (7, 'seen', 1); COMMIT;
                 INSERT INTO %s.ignored VALUES (2, 'y')]]):format(db, other_db, db, db))
      local transaction = next_transaction(stream)
      assert.equal(1, #transaction.changes)
      assert.equal("seen", transaction.changes[1].after.name)
      expect_nothing_more(stream)
      sql.run(("DELETE FROM %s.people"):format(db))
    end)
  end)

  it("sees non-transactional tables (MyISAM commits with a COMMIT query)", function()
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.myisam VALUES (1, 'plain')"):format(db))
      local transaction = next_transaction(stream)
      assert.same({ id = 1, name = "plain" }, transaction.changes[1].after)
    end)
  end)

  it("names the primary key columns in key order", function()
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.pairs VALUES (2, 1, 'x')"):format(db))
      assert.same({ "a", "b" }, next_transaction(stream).changes[1].primary_key)
    end)
  end)

  it("refreshes column names after an ALTER TABLE", function()
    with_stream(function(stream)
      sql.run(([[ALTER TABLE %s.people ADD COLUMN email VARCHAR(50) DEFAULT 'none';
                 INSERT INTO %s.people (id, name, email) VALUES (9, 'new', 'n@example.org')]]):format(db, db))
      local after = next_transaction(stream).changes[1].after
      assert.same({ id = 9, name = "new", age = core.null, email = "n@example.org" }, after)
      sql.run(("ALTER TABLE %s.people DROP COLUMN email; DELETE FROM %s.people"):format(db, db))
    end)
  end)
end)

-- Every column type: the decoded value, shown as text, equals what SELECT shows for the same row.
describe("silo.binlog column values", function()
  local function show(value)
    if value == core.null then return "NULL" end
    if core.is_datetime(value) then return show(value.ms) end
    if type(value) == "cdata" then return (tostring(value):gsub("U?LL$", "")) end
    if type(value) == "number" and value == math.floor(value) then return string.format("%d", value) end
    if type(value) == "number" then -- the shortest text that reads back as the same double, as MariaDB prints
      for digits = 15, 17 do
        local text = string.format("%." .. digits .. "g", value)
        if tonumber(text) == value then return text end
      end
    end
    if type(value) == "table" then return table.concat(value, ",") end
    return value
  end

  -- column, and the SQL that renders its value the way show() renders the decoded one
  local columns = {
    { "ti", "ti" }, { "si", "si" }, { "mi", "mi" }, { "i", "i" }, { "bi", "bi" }, { "tu", "tu" }, { "iu", "iu" },
    { "bu", "bu" }, { "flag", "flag" }, { "f", "f" }, { "dbl", "dbl" }, { "dc", "dc" }, { "dw", "dw" },
    { "vc", "vc" }, { "ch", "ch" }, { "tx", "tx" }, { "bl", "HEX(bl)" }, { "j", "j" },
    { "dt", "TIMESTAMPDIFF(SECOND, '1970-01-01', dt) * 1000" },
    { "dt6", "FLOOR(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', dt6) / 1000)" },
    { "ts", "FLOOR(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', ts) / 1000)" },
    { "d", "TIMESTAMPDIFF(SECOND, '1970-01-01', d) * 1000" }, { "y", "y" }, { "t", "t" }, { "e", "e" },
    { "s", "s" }, { "b8", "CAST(b8 AS UNSIGNED)" }, { "b64", "CAST(b64 AS UNSIGNED)" },
  }

  local rows = {
    "(1, -128, -32768, -8388608, -2147483648, -9223372036854775808, 255, 4294967295, 18446744073709551615, 1,"
      .. " -1.25, 3.141592653589793, -12345678.91, -12345678901234567890.0123456789, 'héllo 😀', 'abc',"
      .. " 'text with ''quote''', x'00FF10', '{\"k\": [1, \"😀\"]}', '2024-02-29 13:45:59',"
      .. " '1000-01-01 00:00:00.000001', '2038-01-19 03:14:07.999', '2024-02-29', 2024, '-838:59:59.000',"
      .. " 'green', 'a,c', b'10100101', 18446744073709551615)",
    "(2, 127, 32767, 8388607, 2147483647, 9223372036854775807, 0, 0, 9007199254740993, 0, 0, -1e-300, 0.05,"
      .. " 0.0000000001, '', '', '', '', '[]', '9999-12-31 23:59:59', '1970-01-01 00:00:00.5',"
      .. " '1970-01-01 00:00:01', '0001-01-01', 1901, '00:00:00.250', 'blue', '', b'0', 1)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
      .. " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
  }

  it("decodes every column type to what SELECT shows", function()
    with_stream(function(stream)
      sql.run(("SET time_zone = '+00:00'; INSERT INTO %s.types VALUES %s"):format(db, table.concat(rows, ",")))
      local changes = next_transaction(stream).changes
      local expressions = {}
      for i, column in ipairs(columns) do expressions[i] = column[2] end
      local selected = sql.run(("SET time_zone = '+00:00'; SELECT %s FROM %s.types ORDER BY id")
        :format(table.concat(expressions, ", "), db))
      assert.equal(3, #changes)
      for r, row in ipairs(selected) do
        local after = changes[r].after
        for i, column in ipairs(columns) do
          local decoded = after[column[1]]
          if column[1] == "bl" and decoded ~= core.null then
            decoded = decoded:gsub(".", function(c) return string.format("%02X", c:byte()) end)
          end
          assert.equal(row[i], show(decoded), ("row %d column %s"):format(r, column[1]))
        end
      end
      sql.run(("DELETE FROM %s.types"):format(db))
      next_transaction(stream)
    end)
  end)

  it("keeps 64-bit integers exact: int64 cdata beyond 2^53, uint64 cdata beyond INT64_MAX", function()
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.types (id, bi, bu, iu) VALUES (10, -9007199254740993, 18446744073709551615, 7)")
        :format(db))
      local after = next_transaction(stream).changes[1].after
      assert.equal("cdata", type(after.bi))
      assert.equal(-9007199254740993LL, after.bi)
      assert.equal(18446744073709551615ULL, after.bu)
      assert.equal(7, after.iu)
      sql.run(("DELETE FROM %s.types"):format(db))
      next_transaction(stream)
    end)
  end)

  it("gives zero dates as null, DATE and DATETIME as UTC points in time", function()
    with_stream(function(stream)
      sql.run(("SET sql_mode = ''; INSERT INTO %s.types (id, dt, d) VALUES (11, '0000-00-00 00:00:00', '2024-00-10')")
        :format(db))
      local after = next_transaction(stream).changes[1].after
      assert.equal(core.null, after.dt)
      assert.equal(core.null, after.d)
      sql.run(("INSERT INTO %s.types (id, dt, d) VALUES (12, '2024-02-29 13:45:59', '2024-02-29')"):format(db))
      after = next_transaction(stream).changes[1].after
      assert.equal("2024-02-29T13:45:59.000Z", tostring(after.dt))
      assert.equal("2024-02-29T00:00:00.000Z", tostring(after.d))
      sql.run(("DELETE FROM %s.types"):format(db))
      next_transaction(stream)
    end)
  end)
end)

describe("silo.binlog positions", function()
  it("resumes after a checkpoint given as file and position, or as a GTID", function()
    local first
    with_stream(function(stream)
      sql.run(("INSERT INTO %s.people VALUES (20, 'first', 1); INSERT INTO %s.people VALUES (21, 'second', 1)")
        :format(db, db))
      first = next_transaction(stream)
      assert.equal(20, first.changes[1].after.id)
    end)
    with_stream(function(stream)
      assert.same({ file = first.file, pos = first.pos, gtid = first.gtid }, stream:position())
      assert.equal(21, next_transaction(stream).changes[1].after.id)
    end, { start = { file = first.file, pos = first.pos } })
    with_stream(function(stream)
      assert.equal(21, next_transaction(stream).changes[1].after.id)
      assert.equal(first.file, stream:position().file)
    end, { start = { gtid = first.gtid } })
    sql.run(("DELETE FROM %s.people"):format(db))
  end)

  it("starts at the end of the binlog by default and tracks the position of unobserved transactions", function()
    sql.run(("INSERT INTO %s.ignored VALUES (30, 'before the stream')"):format(db))
    with_stream(function(stream)
      local start = stream:position()
      assert.matches("%.%d+$", start.file)
      assert.is_true(start.pos >= 4)
      sql.run(("INSERT INTO %s.ignored VALUES (31, 'unobserved')"):format(db))
      assert.is_nil(stream:next(1))
      assert.is_true(stream:position().pos > start.pos or stream:position().file ~= start.file)
      expect_nothing_more(stream)
    end)
  end)

  it("returns nil when the timeout passes first, so the caller can do other work", function()
    with_stream(function(stream)
      assert.is_nil(stream:next(0))
    end)
  end)

  it("ends a wait with interrupt(): nil, \"interrupted\" from then on", function()
    local stream = open()
    stream:interrupt()
    local transaction, why = stream:next(5)
    assert.is_nil(transaction)
    assert.equal("interrupted", why)
    assert.same({ nil, "interrupted" }, { stream:next() })
    stream:close()
    assert.has_error(function() stream:next() end, "binlog: the stream is closed")
    stream:close()
  end)

  it("raises a clear error when the server drops the connection, and a new stream resumes", function()
    local stream = open()
    sql.run(("INSERT INTO %s.people VALUES (40, 'before', 1)"):format(db))
    local seen = next_transaction(stream)
    sql.run(("KILL %d"):format(stream:connection_id()))
    local ok, err = pcall(stream.next, stream, WAIT)
    assert.is_false(ok)
    assert.matches("^binlog: reading the binlog of mysql://[^:]+:%*%*%*@.* after .*:%d+: ", err)
    stream:close()
    sql.run(("INSERT INTO %s.people VALUES (41, 'after', 1)"):format(db))
    with_stream(function(resumed)
      assert.equal(41, next_transaction(resumed).changes[1].after.id)
    end, { start = { file = seen.file, pos = seen.pos } })
    sql.run(("DELETE FROM %s.people"):format(db))
  end)
end)

describe("silo.binlog server checks", function()
  local good = { log_bin = "ON", binlog_format = "ROW", binlog_row_image = "FULL", binlog_row_metadata = "FULL",
                 log_bin_compress = "OFF" }
  local function with(changes)
    local settings = {}
    for k, v in pairs(good) do settings[k] = v end
    for k, v in pairs(changes) do settings[k] = v ~= false and v or nil end
    return settings
  end

  it("accepts the settings the reader needs", function()
    assert.is_true(binlog.check_settings(good))
    assert.is_true(binlog.check_settings(with { log_bin_compress = false }))
  end)

  it("names every setting to change", function()
    assert.has_error(function() binlog.check_settings(with { binlog_format = "STATEMENT" }) end,
      "binlog: the server's binary log cannot be tailed: binlog_format is STATEMENT: set binlog_format=ROW")
    assert.has_error(function()
      binlog.check_settings(with { log_bin = "OFF", binlog_row_image = "MINIMAL", binlog_row_metadata = false,
                                   log_bin_compress = "ON" })
    end, "binlog: the server's binary log cannot be tailed: log_bin is OFF: start the server with log_bin=<basename>;"
      .. " binlog_row_image is MINIMAL: set binlog_row_image=FULL; binlog_row_metadata is unknown to this server:"
      .. " set binlog_row_metadata=FULL (MariaDB 10.5+) so that rows carry column names; log_bin_compress is ON:"
      .. " set log_bin_compress=OFF: compressed events are not decoded")
  end)

  it("passes on the test server", function()
    open():close()
  end)

  describe("with a user lacking grants", function()
    local user = "silo_binlog_" .. core.random_hex(4)
    local url = sql.url():gsub("^(mysql://)[^@]*@", "%1" .. user .. ":pw@")
    setup(function() sql.run(("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'pw'"):format(user)) end)
    teardown(function() sql.run(("DROP USER '%s'@'127.0.0.1'"):format(user)) end)

    it("says to grant BINLOG MONITOR for the current position", function()
      local ok, err = pcall(open, { url = url })
      assert.is_false(ok)
      assert.matches("^binlog: SHOW MASTER STATUS: Access denied; .* %(1227%): GRANT BINLOG MONITOR ON %*%.%* to the"
        .. " feed's user$", err)
    end)

    it("says to grant REPLICATION SLAVE for streaming", function()
      local ok, err = pcall(open, { url = url, start = { gtid = "0-1-1" } })
      assert.is_false(ok)
      assert.matches("GRANT REPLICATION SLAVE ON %*%.%* to the feed's user$", err)
      assert.matches("^binlog: start replication from mysql://" .. user .. ":%*%*%*@", err)
    end)
  end)
end)

describe("silo.binlog.open argument errors", function()
  it("refuses what it cannot use", function()
    assert.has_error(function() binlog.open {} end, "binlog.open: url (mysql://user:password@host:port/) is required")
    assert.has_error(function() binlog.open { url = "postgres://x", tables = { "a.b" } } end,
      "binlog.open: url must look like mysql://user:password@host:port/, got postgres://x")
    assert.has_error(function() binlog.open { url = sql.url() } end,
      "binlog.open: tables must be a list of \"database.table\" names")
    assert.has_error(function() binlog.open { url = sql.url(), tables = { "nodot" } } end,
      "binlog.open: tables[1] must be a \"database.table\" name")
    assert.has_error(function() open { start = "yesterday" } end,
      "binlog.open: start must be \"now\", {gtid=...} or {file=..., pos=...}")
    assert.has_error(function() open { start = { file = "x.000001" } } end,
      "binlog.open: start must be \"now\", {gtid=...} or {file=..., pos=<at least 4>}")
    assert.has_error(function() open { start = { gtid = "0-1-1'; DROP TABLE x" } } end,
      "binlog.open: start.gtid must be domain-server-sequence[,...], got '0-1-1'; DROP TABLE x'")
    assert.has_error(function() open { heartbeat = 0 } end)
    assert.has_error(function() open { server_id = "x" } end, "binlog.open: server_id must be a number")
  end)

  it("names the server it cannot reach, without the password", function()
    local ok, err = pcall(binlog.open, { url = "mysql://silo:secret@127.0.0.1:1/", tables = { "a.b" } })
    assert.is_false(ok)
    assert.matches("^binlog: connect to mysql://silo:%*%*%*@127%.0%.0%.1:1/: .*%(%d+%)$", err)
    assert.is_nil(err:find("secret"))
  end)
end)
