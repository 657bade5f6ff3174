-- bench/mysql.lua - primary-key SELECTs per second through silo.mysql and through libmariadb in plain C
-- (mysql_raw_bench: same query, same prepared-statement protocol, rows fetched into C buffers).
--   silo-lua run bench/mysql.lua PATH/TO/mysql_raw_bench [QUERIES [ROUNDS]]      (bench/mysql runs this)
local mysql = require "silo.mysql"
local core = require "silo.core"
local config = require "silo.config"

local raw_bench, queries, rounds = arg[1], tonumber(arg[2] or 20000), tonumber(arg[3] or 10)
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

-- wall-clock seconds, CPU seconds of this process
local function binding_seconds()
  local start, cpu_start = core.monotonic(), os.clock()
  for i = 0, queries - 1 do
    assert(db:query(sql, i % 1000 + 1)[1], "no row")
  end
  return core.monotonic() - start, os.clock() - cpu_start
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function raw_seconds()
  local command = table.concat({ quote(raw_bench), quote(host), quote(port ~= "" and port or "3306"), quote(user),
    quote(password), quote(database), quote(table_name), tostring(queries) }, " ")
  local pipe = io.popen(command .. " 2>&1")
  local output = pipe:read("*a")
  pipe:close()
  local seconds, cpu = output:match("in ([%d.]+) s, ([%d.]+) s of CPU")
  if not seconds then error("mysql_raw_bench failed: " .. output) end
  return tonumber(seconds), tonumber(cpu)
end

local function rss_kb()
  return tonumber(assert(io.open("/proc/self/statm")):read("*a"):match("^%d+ (%d+)")) * 4
end

local ok, err = pcall(function()
  binding_seconds() -- warm-up: statement prepared, JIT traces compiled
  local best = { raw = math.huge, binding = math.huge, raw_cpu = math.huge, binding_cpu = math.huge }
  local rss = {}
  local function keep_best(name, seconds, cpu)
    best[name] = math.min(best[name], seconds)
    best[name .. "_cpu"] = math.min(best[name .. "_cpu"], cpu)
  end
  for _ = 1, rounds do -- alternating, best of each: the server is shared, so noise only ever slows a round
    keep_best("raw", raw_seconds())
    keep_best("binding", binding_seconds())
    collectgarbage()
    rss[#rss + 1] = rss_kb()
  end
  local server = db:query("SELECT VERSION() AS v")[1].v
  print(string.format("server: MariaDB %s at %s (loopback), %d primary-key SELECTs per round, best of %d rounds",
    server, config.redact(url), queries, rounds))
  local function line(name, seconds, cpu)
    print(string.format("%-38s %8.0f queries/s, client CPU %5.1f us/query", name, queries / seconds,
      cpu / queries * 1e6))
  end
  line("raw C (libmariadb prepared statement):", best.raw, best.raw_cpu)
  line("silo.mysql db:query:", best.binding, best.binding_cpu)
  print(string.format("binding / raw C queries per second: %.3f (%.1f%% slower)", best.raw / best.binding,
    (best.binding / best.raw - 1) * 100))
  print("silo-lua RSS after each round, KiB: " .. table.concat(rss, " "))
end)
db:exec("DROP TABLE " .. table_name)
db:close()
if not ok then error(err, 0) end
