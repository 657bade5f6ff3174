-- bench/mysql.lua - primary-key SELECTs per second through silo.mysql and through libmariadb in plain C
-- (mysql_raw_bench: same query, same prepared-statement protocol, rows fetched into C buffers).
--   silo-lua run bench/mysql.lua PATH/TO/mysql_raw_bench [QUERIES [ROUNDS]]      (bench/mysql runs this)
local mysql = require "silo.mysql"
local core = require "silo.core"
local config = require "silo.config"

local raw_bench, queries, rounds = arg[1], tonumber(arg[2] or 50000), tonumber(arg[3] or 5)
assert(raw_bench, "usage: silo-lua run bench/mysql.lua PATH/TO/mysql_raw_bench [QUERIES [ROUNDS]]")
local url = config.get("mysql_url")
local user, password, host, port, database = url:match("^mysql://([^:@/]*):?([^@]*)@([^:/]+):?(%d*)/([^?]+)")
assert(user, "the bench needs a mysql_url of the form mysql://user:password@host[:port]/database")

local db = mysql.connect(url)
local table_name = "mysql_spec_bench_" .. core.random_hex(4)
db:exec("CREATE TABLE " .. table_name .. " (id INT PRIMARY KEY, name VARCHAR(64), score BIGINT, created DATETIME)")
db:transaction(function()
  for id = 1, 1000 do
    db:exec("INSERT INTO " .. table_name .. " VALUES (?, ?, ?, ?)", id, "row " .. id, id * 7, core.datetime())
  end
end)
local sql = "SELECT id, name, score, created FROM " .. table_name .. " WHERE id = ?"

local function binding_seconds()
  local start = core.monotonic()
  for i = 0, queries - 1 do
    assert(db:query(sql, i % 1000 + 1)[1], "no row")
  end
  return core.monotonic() - start
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function raw_seconds()
  local command = table.concat({ quote(raw_bench), quote(host), quote(port ~= "" and port or "3306"), quote(user),
    quote(password), quote(database), quote(table_name), tostring(queries) }, " ")
  local pipe = io.popen(command .. " 2>&1")
  local output = pipe:read("*a")
  pipe:close()
  return tonumber(output:match("in ([%d.]+) s")) or error("mysql_raw_bench failed: " .. output)
end

local function rss_kb()
  return tonumber(assert(io.open("/proc/self/statm")):read("*a"):match("^%d+ (%d+)")) * 4
end

local ok, err = pcall(function()
  binding_seconds() -- warm-up: statement prepared, JIT traces compiled
  local best_binding, best_raw, rss = math.huge, math.huge, {}
  for _ = 1, rounds do -- alternating, best of each: the server is shared, so noise only ever slows a round
    best_raw = math.min(best_raw, raw_seconds())
    best_binding = math.min(best_binding, binding_seconds())
    collectgarbage()
    rss[#rss + 1] = rss_kb()
  end
  local server = db:query("SELECT VERSION() AS v")[1].v
  print(string.format("server: MariaDB %s at %s (loopback), %d primary-key SELECTs per round, best of %d rounds",
    server, config.redact(url), queries, rounds))
  print(string.format("raw C (libmariadb prepared statement): %8.0f queries/s", queries / best_raw))
  print(string.format("silo.mysql db:query:                   %8.0f queries/s", queries / best_binding))
  print(string.format("binding / raw C: %.3f (%.1f%% slower)", best_raw / best_binding,
    (best_binding / best_raw - 1) * 100))
  print("silo-lua RSS after each round, KiB: " .. table.concat(rss, " "))
end)
db:exec("DROP TABLE " .. table_name)
db:close()
if not ok then error(err, 0) end
