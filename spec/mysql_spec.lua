-- silo.mysql against the real MariaDB (SILO_MYSQL_URL): every function and its error paths.
local mysql = require "silo.mysql"
local core = require "silo.core"
local config = require "silo.config"
local ffi = require "ffi"

local url = config.get("mysql_url")
local suffix = core.random_hex(4)
local table_name = "mysql_spec_" .. suffix
local database = url:match("^mysql://[^/]*/([^?]+)")

local function connection_id(db)
  return db:query("SELECT CONNECTION_ID() AS id")[1].id
end

-- Kills db's connection from admin and waits until the server has dropped it.
local function kill(admin, db)
  local id = connection_id(db)
  admin:exec("KILL CONNECTION " .. id)
  while #admin:query("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?", id) > 0 do core.sleep(0.005) end
  return id
end

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function with_password(password)
  return (url:gsub("^(mysql://[^:/@]*):[^@]*@", function(user) return user .. ":" .. password .. "@" end))
end

describe("silo.mysql", function()
  local db, admin

  setup(function()
    db = mysql.connect(url)
    admin = mysql.connect(url)
    db:exec("DROP TABLE IF EXISTS " .. table_name)
    db:exec("CREATE TABLE " .. table_name .. [[ (
      id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) UNIQUE, big BIGINT, ubig BIGINT UNSIGNED,
      price DECIMAL(12,4), ratio DOUBLE, at DATETIME(3), day DATE, stamp TIMESTAMP(3) NULL, span TIME,
      data MEDIUMBLOB, body MEDIUMTEXT, year YEAR, flag BOOLEAN)]])
  end)

  teardown(function()
    if not admin then return end
    admin:exec("DROP TABLE IF EXISTS " .. table_name)
    db:close()
    admin:close()
  end)

  before_each(function()
    db:exec("DELETE FROM " .. table_name)
  end)

  describe("connect", function()
    it("connects to the URL, or to the mysql_url setting without one", function()
      local default = mysql.connect()
      assert.equal(1, default:query("SELECT 1 AS one")[1].one)
      assert.equal("silo.mysql connection " .. config.redact(url), tostring(default))
      default:close()
    end)

    it("connects through a Unix socket", function()
      local socket = os.getenv("SILO_MYSQL_ADMIN_SOCKET")
      if not socket or socket == "" then pending("SILO_MYSQL_ADMIN_SOCKET is not set") return end
      local user, password = url:match("^mysql://([^:/@]*):([^@]*)@")
      local local_db = mysql.connect(string.format("mysql://%s:%s@/%s?socket=%s&connect_timeout=5&read_timeout=30"
        .. "&write_timeout=30", user, password, database, socket))
      assert.equal(database, local_db:query("SELECT DATABASE() AS db")[1].db)
      local_db:close()
    end)

    it("rejects a bad URL, naming it without its password", function()
      local cases = {
        ["http://u:secret@h/db"] = "bad URL 'http://u:***@h/db': it must start with mysql://",
        ["mysql://u:secret@h:99999/db"] = "bad URL 'mysql://u:***@h:99999/db': the port must be a number up to 65535, got '99999'",
        ["mysql://u:secret@h:x/db"] = "the port must be a number up to 65535, got 'x'",
        ["mysql://u:secret@h/db?frobnicate=1"] = "unknown option 'frobnicate' (options are: socket, ssl, ssl_ca, ssl_cert, ssl_key, ssl_verify, connect_timeout, read_timeout, write_timeout)",
        ["mysql://u:secret@h/db?ssl=maybe"] = "option 'ssl' must be true or false, got 'maybe'",
        ["mysql://u:secret@h/db?connect_timeout=soon"] = "option 'connect_timeout' must be a whole number of seconds, got 'soon'",
        ["mysql://u:secret@h/db?ssl"] = "an option must be key=value",
        ["mysql://u:secret%zz@h/db"] = "'%' must be followed by two hex digits",
        ["mysql://u:secret@[::1/db"] = "'[' without ']' in the host",
        ["mysql://u:secret@[::1]x/db"] = "unexpected text after the host",
      }
      for bad, message in pairs(cases) do
        local err = error_of(mysql.connect, bad)
        assert.matches("^mysql connect: bad URL", err)
        assert.is_truthy(err:find(message, 1, true), err)
        assert.is_falsy(err:find("secret", 1, true), err)
      end
      assert.matches("bad argument #1 to 'connect' %(string expected, got table%)",
        error_of(function() mysql.connect({}) end))
    end)

    it("reports a server that is down (a closed port) with the error number", function()
      local err = error_of(mysql.connect, "mysql://silo:secret@127.0.0.1:1/silo_test?connect_timeout=2")
      assert.equal("mysql connect mysql://silo:***@127.0.0.1:1/silo_test?connect_timeout=2: "
        .. "Can't connect to server on '127.0.0.1' (115) (error 2002)", err:gsub("%(111%)", "(115)"))
    end)

    it("reports a wrong password without showing it", function()
      local err = error_of(mysql.connect, with_password("wrong%2Fsecret"))
      assert.matches("^mysql connect mysql://silo:%*%*%*@.*: Access denied for user 'silo'.* %(error 1045%)$", err)
      assert.is_falsy(err:find("secret", 1, true))
    end)

    it("refuses ssl=true when the server offers no TLS", function()
      local err = error_of(mysql.connect, url .. "?ssl=true")
      assert.matches("TLS/SSL error: ssl=true but the server does not support TLS %(error 2026%)$", err)
      err = error_of(mysql.connect, url .. "?ssl=1&ssl_verify=true&ssl_ca=/nonexistent.pem")
      assert.matches("%(error 2026%)$", err)
    end)

    it("runs the session in UTC", function()
      assert.equal("+00:00", db:query("SELECT @@session.time_zone AS tz")[1].tz)
      assert.equal("1970-01-02T00:00:00.000Z", tostring(db:query("SELECT FROM_UNIXTIME(86400) AS t")[1].t))
    end)
  end)

  describe("query", function()
    it("returns rows keyed by column name with typed values", function()
      db:exec("INSERT INTO " .. table_name .. [[ (name, big, ubig, price, ratio, at, day, stamp, span, data, body,
        year, flag) VALUES ('a', 9007199254740993, 18446744073709551615, 12.3400, 0.25, '2023-11-29 05:09:27.123',
        '2024-02-29', '2024-01-01 00:00:01.5', '-838:59:59', X'00FF0061', 'text', 2024, TRUE)]])
      local rows = db:query("SELECT * FROM " .. table_name)
      assert.equal(1, #rows)
      local row = rows[1]
      assert.equal("number", type(row.id))
      assert.equal("a", row.name)
      assert.is_true(ffi.istype("int64_t", row.big))
      assert.equal(9007199254740993LL, row.big)
      assert.equal("18446744073709551615", row.ubig)
      assert.equal("12.3400", row.price)
      assert.equal(0.25, row.ratio)
      assert.equal(core.datetime(1701234567123), row.at)
      assert.equal("2024-02-29T00:00:00.000Z", tostring(row.day))
      assert.equal("2024-01-01T00:00:01.500Z", tostring(row.stamp))
      assert.equal("-838:59:59", row.span)
      assert.equal("\0\255\0a", row.data)
      assert.equal("text", row.body)
      assert.equal(2024, row.year)
      assert.equal(1, row.flag)
    end)

    it("keeps every key of a row whose values are NULL", function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('nulls')")
      local row = db:query("SELECT name, big, at, data, price FROM " .. table_name)[1]
      for _, column in ipairs({ "big", "at", "data", "price" }) do
        assert.equal(core.null, row[column])
      end
    end)

    it("gives small integers as numbers and keeps big ones exact", function()
      local row = db:query("SELECT 9007199254740992 AS edge, -9007199254740993 AS below, "
        .. "9223372036854775807 AS max, -9223372036854775808 AS min, 255 AS small")[1]
      assert.equal("number", type(row.edge))
      assert.equal(-9007199254740993LL, row.below)
      assert.equal(9223372036854775807LL, row.max)
      assert.equal(-9223372036854775807LL - 1, row.min)
      assert.equal(255, row.small)
    end)

    it("reads a zero date as null", function()
      db:exec("SET SESSION sql_mode = ''")
      db:exec("INSERT INTO " .. table_name .. " (name, at, day) VALUES ('zero', '0000-00-00 00:00:00', '0000-00-00')")
      db:exec("SET SESSION sql_mode = DEFAULT")
      local row = db:query("SELECT at, day FROM " .. table_name)[1]
      assert.equal(core.null, row.at)
      assert.equal(core.null, row.day)
    end)

    it("reads long values whole, in every row", function()
      local long = string.rep("x", 100000) .. "\0end"
      db:exec("INSERT INTO " .. table_name .. " (name, data, body) VALUES ('long', ?, ?), ('short', 'a', 'b')", long,
        string.rep("é", 3000))
      db:exec("INSERT INTO " .. table_name .. " (name, data) VALUES ('long2', ?)", long .. long)
      local rows = db:query("SELECT name, data, body FROM " .. table_name .. " ORDER BY id")
      assert.equal(long, rows[1].data)
      assert.equal(string.rep("é", 3000), rows[1].body)
      assert.equal("a", rows[2].data)
      assert.equal(long .. long, rows[3].data)
    end)

    it("returns an empty array when nothing matches or the statement has no result", function()
      assert.same({}, db:query("SELECT * FROM " .. table_name .. " WHERE id = ?", -1))
      assert.same({}, db:query("DO 1"))
    end)

    it("binds every kind of parameter", function()
      local when = core.datetime(1701234567123)
      db:exec("INSERT INTO " .. table_name .. " (name, big, ratio, at, flag, body, price) VALUES (?, ?, ?, ?, ?, ?, ?)",
        "bound", 2 ^ 60 + 1LL, 2.5, when, true, nil, core.null)
      local row = db:query("SELECT * FROM " .. table_name .. " WHERE name = ?", "bound")[1]
      assert.equal(2 ^ 60 + 1LL, row.big)
      assert.equal(2.5, row.ratio)
      assert.equal(when, row.at)
      assert.equal(1, row.flag)
      assert.equal(core.null, row.body)
      assert.equal(core.null, row.price)
      -- an integral number is bound as an integer, a fractional one as a double
      db:exec("UPDATE " .. table_name .. " SET name = ?, body = ? WHERE name = 'bound'", 3, 0.5)
      row = db:query("SELECT name, body FROM " .. table_name)[1]
      assert.equal("3", row.name)
      assert.equal("0.5", row.body)
      assert.equal(1, #db:query("SELECT * FROM " .. table_name .. " WHERE flag = ? AND name = ?", true, 3))
      assert.equal(1, #db:query("SELECT * FROM " .. table_name .. " WHERE big = ?", 1152921504606846977ULL))
    end)

    it("rejects parameters it cannot bind, naming the parameter and the SQL", function()
      local sql = "SELECT ? AS a, ? AS b"
      assert.equal("mysql query: parameter 2: cannot bind a table (bind nil, silo.null, a boolean, number, int64, "
        .. "string or silo.datetime) (sql: " .. sql .. ")", error_of(db.query, db, sql, 1, {}))
      assert.matches("parameter 1: cannot bind a function", error_of(db.query, db, sql, print, 1))
      assert.equal("mysql query: 1 parameters given for 2 placeholders (sql: " .. sql .. ")",
        error_of(db.query, db, sql, 1))
      assert.equal("mysql exec: parameter 1: the datetime is outside the years 1..9999 (sql: " .. sql .. ")",
        error_of(db.exec, db, sql, core.datetime(-62135596800001), 1))
      assert.matches("bad argument #1 to 'query' %(string expected, got no value%)",
        error_of(function() db:query() end))
      assert.matches("bad argument #1 to 'query' %(silo.mysql.connection expected, got table%)",
        error_of(function() db.query({}, "SELECT 1") end))
      assert.equal(1, db:query("SELECT 1 AS one")[1].one)
    end)

    it("reports a syntax error with its number, message and SQL", function()
      assert.equal("mysql query: You have an error in your SQL syntax; check the manual that corresponds to your "
        .. "MariaDB server version for the right syntax to use near 'SELEC 1' at line 1 (error 1064, sql: SELEC 1)",
        error_of(db.query, db, "SELEC 1"))
      assert.matches("^mysql query: Table '" .. database .. ".mysql_spec_missing' doesn't exist %(error 1146, sql: SELECT",
        error_of(db.query, db, "SELECT * FROM mysql_spec_missing"))
    end)

    it("reports an error the server raises while sending rows, and stays usable", function()
      local sql = "SELECT seq - 5 AS r FROM seq_1_to_10 ORDER BY seq DESC"
      for _ = 1, 2 do
        local err = error_of(db.query, db, sql)
        assert.matches("^mysql query: BIGINT UNSIGNED value is out of range in .* %(error 1690, sql: ", err)
        assert.equal(#err - #sql, (err:find(sql, 1, true)))
      end
      assert.equal(1, db:query("SELECT 1 AS one")[1].one)
    end)

    it("prepares a statement once per connection", function()
      local sql = "SELECT name FROM " .. table_name .. " WHERE id = ?"
      local function prepares()
        return tonumber(db:query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")[1].Value)
      end
      prepares()
      local before = prepares()
      db:query(sql, 1)
      assert.equal(before + 1, prepares())
      for i = 1, 10 do db:query(sql, i) end
      assert.equal(before + 1, prepares())
    end)

    it("keeps working past the size of the statement cache", function()
      for i = 1, 300 do
        assert.equal(i, db:query("SELECT " .. i .. " AS n")[1].n)
      end
      assert.equal(7, db:query("SELECT 7 AS n")[1].n)
    end)
  end)

  describe("exec", function()
    it("returns the affected rows and the last insert id", function()
      local affected, id = db:exec("INSERT INTO " .. table_name .. " (name) VALUES (?), (?)", "x", "y")
      assert.equal(2, affected)
      assert.equal(db:query("SELECT MIN(id) AS id FROM " .. table_name)[1].id, id)
      affected = db:exec("UPDATE " .. table_name .. " SET ratio = 1")
      assert.equal(2, affected)
    end)

    it("reports a duplicate key", function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES (?)", "dup")
      assert.equal("mysql exec: Duplicate entry 'dup' for key 'name' (error 1062, sql: INSERT INTO " .. table_name
        .. " (name) VALUES (?))", error_of(db.exec, db, "INSERT INTO " .. table_name .. " (name) VALUES (?)", "dup"))
    end)

    it("discards the rows of a statement that returns some", function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('a'), ('b')")
      db:exec("SELECT * FROM " .. table_name)
      assert.equal(2, #db:query("SELECT * FROM " .. table_name))
    end)
  end)

  describe("transaction", function()
    local function count()
      return db:query("SELECT COUNT(*) AS n FROM " .. table_name)[1].n
    end

    it("commits and returns what the function returns", function()
      local a, b = db:transaction(function(tx)
        assert.equal(db, tx)
        tx:exec("INSERT INTO " .. table_name .. " (name) VALUES ('t')")
        return 1, "two"
      end)
      assert.equal(1, a)
      assert.equal("two", b)
      assert.equal(1, #admin:query("SELECT * FROM " .. table_name .. " WHERE name = 't'"))
    end)

    it("rolls back and re-raises the function's error", function()
      local raised = { reason = "boom" }
      local ok, err = pcall(db.transaction, db, function()
        db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('t')")
        error(raised)
      end)
      assert.is_false(ok)
      assert.equal(raised, err)
      assert.equal(0, count())
      assert.matches("mysql_spec.lua:%d+: oops$", error_of(db.transaction, db, function() error("oops") end))
    end)

    it("does not nest, and needs a function", function()
      assert.matches("^spec/mysql_spec.lua:%d+: mysql transaction: already inside a transaction %(transactions do not "
        .. "nest%)$", error_of(db.transaction, db, function() db:transaction(function() end) end))
      assert.matches("bad argument #1 to 'transaction' %(function expected, got no value%)",
        error_of(function() db:transaction() end))
      assert.equal(0, count())
    end)

    it("gives a snapshot that later commits do not change, and that refuses writes", function()
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('before')")
      local seen = db:snapshot(function()
        local first = count()
        admin:exec("INSERT INTO " .. table_name .. " (name) VALUES ('during')")
        return { first, count() }
      end)
      assert.same({ 1, 1 }, seen)
      assert.equal(2, count())
      assert.matches("mysql exec: Cannot execute statement in a READ ONLY transaction %(error 1792, sql: DELETE",
        error_of(db.snapshot, db, function() db:exec("DELETE FROM " .. table_name) end))
      assert.equal(2, count())
    end)
  end)

  describe("a lost connection", function()
    it("is re-established transparently for a read", function()
      local sql = "SELECT CONNECTION_ID() AS id, @@session.time_zone AS tz"
      local before = db:query(sql)[1].id
      kill(admin, db)
      local row = db:query(sql)[1]
      assert.not_equal(before, row.id)
      assert.equal("+00:00", row.tz)
    end)

    it("is re-established for a write that had not reached the server, which then runs once", function()
      kill(admin, db)
      db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('fresh " .. suffix .. "')")
      assert.equal(1, #db:query("SELECT * FROM " .. table_name))
    end)

    it("fails a write that may have run, then reconnects for the next statement", function()
      local insert = "INSERT INTO " .. table_name .. " (name) VALUES (?)"
      db:exec(insert, "first")
      kill(admin, db)
      assert.equal("mysql exec: connection lost; not retried as the statement may have run: Lost connection to "
        .. "server during query (error 2013, sql: " .. insert .. ")", error_of(db.exec, db, insert, "second"))
      db:exec(insert, "third")
      assert.same({ { name = "first" }, { name = "third" } },
        db:query("SELECT name FROM " .. table_name .. " ORDER BY id"))
    end)

    it("fails inside a transaction, which then fails as a whole", function()
      local seen = {}
      local err = error_of(db.transaction, db, function()
        db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('lost')")
        kill(admin, db)
        seen[1] = error_of(db.query, db, "SELECT COUNT(*) AS n FROM " .. table_name)
        seen[2] = error_of(db.query, db, "SELECT 1")
        return "caught"
      end)
      assert.equal("mysql query: connection lost inside a transaction, which the server rolled back: Lost connection "
        .. "to server during query (error 2013, sql: SELECT COUNT(*) AS n FROM " .. table_name .. ")", seen[1])
      assert.equal("mysql query: the connection was lost inside this transaction, which the server rolled back; "
        .. "end the transaction (return or raise from its function)", seen[2])
      assert.equal("mysql transaction: the connection was lost inside the transaction, which the server rolled back",
        err)
      assert.equal(0, #db:query("SELECT * FROM " .. table_name))
    end)

    it("re-raises the function's error when it was raised by the lost connection", function()
      local err = error_of(db.transaction, db, function()
        kill(admin, db)
        db:query("SELECT 1")
      end)
      assert.matches("connection lost inside a transaction, which the server rolled back: .* %(error 2013", err)
      assert.equal(1, db:query("SELECT 1 AS one")[1].one)
    end)

    it("is re-established before a transaction starts", function()
      kill(admin, db)
      assert.equal("ok", db:transaction(function() return "ok" end))
    end)

    it("during COMMIT leaves the outcome unknown, and says so", function()
      assert.equal("mysql commit: connection lost during COMMIT; the transaction may or may not be committed: Lost "
        .. "connection to server during query (error 2013, sql: COMMIT)", error_of(db.transaction, db, function()
          db:exec("INSERT INTO " .. table_name .. " (name) VALUES ('maybe')")
          kill(admin, db)
        end))
    end)

    it("during a rollback still re-raises the function's error", function()
      assert.matches(": after the kill$", error_of(db.transaction, db, function()
        kill(admin, db)
        error("after the kill")
      end))
      assert.equal(1, db:query("SELECT 1 AS one")[1].one)
    end)

    it("that cannot be re-established says why", function()
      local user = "mysql_spec_" .. suffix
      admin:exec("CREATE USER '" .. user .. "'@'127.0.0.1' IDENTIFIED BY 'pw'")
      admin:exec("GRANT SELECT ON " .. database .. ".* TO '" .. user .. "'@'127.0.0.1'")
      local doomed = mysql.connect((url:gsub("^mysql://[^@]*@", "mysql://" .. user .. ":pw@")))
      admin:exec("DROP USER '" .. user .. "'@'127.0.0.1'")
      kill(admin, doomed)
      local err = error_of(doomed.query, doomed, "SELECT 1")
      assert.matches("^mysql query: reconnecting to mysql://" .. user .. ":%*%*%*@.* after a lost connection failed: "
        .. "Access denied for user .* %(error %d+%)$", err)
      doomed:close()
    end)
  end)

  describe("close", function()
    it("makes the connection refuse statements, and can be repeated", function()
      local closing = mysql.connect(url)
      closing:query("SELECT 1")
      closing:close()
      closing:close()
      assert.matches("%(closed%)$", tostring(closing))
      assert.equal("mysql query: the connection is closed", error_of(closing.query, closing, "SELECT 1"))
      assert.equal("mysql exec: the connection is closed", error_of(closing.exec, closing, "SELECT 1"))
      assert.equal("mysql transaction: the connection is closed",
        error_of(closing.transaction, closing, function() end))
    end)

    it("happens when a connection is garbage", function()
      for _ = 1, 5 do mysql.connect(url):query("SELECT 1") end
      collectgarbage()
      collectgarbage()
    end)
  end)

  it("runs 100,000 queries in flat memory", function()
    local function rss_kb()
      local statm = assert(io.open("/proc/self/statm")):read("*a")
      return tonumber(statm:match("^%d+ (%d+)")) * 4
    end
    local function sanitized()
      return assert(io.open("/proc/self/maps")):read("*a"):find("libasan", 1, true) ~= nil
    end
    db:exec("INSERT INTO " .. table_name .. " (id, name, data) VALUES (1, 'loop', ?)", string.rep("d", 1000))
    local sql = "SELECT id, name, data, at FROM " .. table_name .. " WHERE id = ?"
    local samples = {}
    for i = 1, 100000 do
      assert(db:query(sql, 1)[1].name == "loop")
      if i % 20000 == 0 then
        collectgarbage()
        samples[#samples + 1] = rss_kb()
      end
    end
    print(string.format("\nRSS over 100,000 queries, KiB at every 20,000: %s", table.concat(samples, " ")))
    if not sanitized() then -- AddressSanitizer's quarantine holds freed memory: RSS says nothing there
      assert.is_true(samples[#samples] - samples[1] < 2048, "RSS grew from " .. samples[1] .. " to " .. samples[#samples])
    end
  end)
end)
