-- bench/binlog.lua - how fast silo.binlog turns a bulk write into Lua changes, and whether memory stays flat.
--   eval "$(scripts/services env)"; build/silo-lua run bench/binlog.lua [ROWS ...]
-- Writes to the MariaDB of $SILO_MYSQL_URL (scripts/services: 127.0.0.1:3307) in its own database.
--   1. 1,000,000 rows in transactions of 1,000, drained while RSS is sampled every 200,000 rows.
--   2. for each ROWS (default 10000 100000 300000): one INSERT ... SELECT of ROWS rows (7 columns) in one
--      transaction; rows/s = ROWS / time from calling stream:next() after the commit to the transaction in Lua
--      (fetch + decode + Lua tables), and ROWS / time from the start of the write.
package.path = "./?.lua;" .. package.path
local binlog = require "silo.binlog"
local core = require "silo.core"
local sql = require "spec.support.sql"

local sizes = { ... }
if #sizes == 0 then sizes = { 10000, 100000, 300000 } end
local db = "silo_binlog_bench_" .. core.random_hex(4)

local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function insert_sql(first, last)
  return ("INSERT INTO %s.rows SELECT seq, seq %% 1000, CONCAT('name ', seq), seq / 100,"
    .. " '2024-01-01 00:00:00' + INTERVAL seq SECOND, seq * 1.5, seq %% 2 FROM %s.seq_%d_to_%d;"):format(db, db, first, last)
end

local function open()
  return binlog.open { url = sql.url(), tables = { db .. ".rows" }, heartbeat = 0.5 }
end

local function bulk(rows)
  local stream = open()
  local started = core.monotonic()
  sql.run(insert_sql(1, rows))
  local committed = core.monotonic()
  local transaction = assert(stream:next(120), "no transaction")
  local done = core.monotonic()
  assert(#transaction.changes == rows, "got " .. #transaction.changes .. " rows")
  print(("bulk %7d rows: %9.0f rows/s after the commit (%.3f s), %9.0f rows/s from the write's start; RSS %.0f MB")
    :format(rows, rows / (done - committed), done - committed, rows / (done - started), rss_mb()))
  transaction = nil
  stream:close()
  sql.run(("TRUNCATE %s.rows"):format(db))
  collectgarbage()
end

local function many_transactions(total, per_transaction)
  local stream = open()
  local statements = {}
  for first = 1, total, per_transaction do
    statements[#statements + 1] = insert_sql(first, first + per_transaction - 1)
  end
  sql.run(table.concat(statements, "\n"))
  local seen, next_report = 0, 200000
  local started = core.monotonic()
  while seen < total do
    local transaction = assert(stream:next(60), "stalled at " .. seen .. " rows")
    seen = seen + #transaction.changes
    if seen >= next_report then
      print(("%7d rows in transactions of %d: RSS %.0f MB"):format(seen, per_transaction, rss_mb()))
      next_report = next_report + 200000
    end
  end
  print(("%d rows in %d transactions drained at %.0f rows/s"):format(total, total / per_transaction,
    total / (core.monotonic() - started)))
  stream:close()
  sql.run(("TRUNCATE %s.rows"):format(db))
end

sql.run(("CREATE DATABASE %s; CREATE TABLE %s.rows (id BIGINT PRIMARY KEY, a INT, b VARCHAR(40), c DECIMAL(10,2),"
  .. " d DATETIME, e DOUBLE, f TINYINT(1))"):format(db, db))
local ok, err = pcall(function()
  many_transactions(1000000, 1000)
  for _, rows in ipairs(sizes) do bulk(tonumber(rows)) end
end)
sql.run(("DROP DATABASE %s"):format(db))
if not ok then error(err, 0) end
