-- spec.support.sql: runs SQL on the test MariaDB through the mariadb command-line client, so that specs can
-- write rows without depending on any silo binding.
local cli = require "spec.support.cli"
local config = require "silo.config"

local sql = {}

local function address()
  local url = config.get("mysql_url")
  local user, password, host, port = url:match("^mysql://([^:@/]+):?([^@/]*)@([^:/]+):?(%d*)")
  assert(user, "spec.support.sql: cannot read mysql_url " .. config.redact(url))
  return user, password, host, port ~= "" and port or "3306"
end

-- Runs the statements and returns the rows of the last result as arrays of strings ("NULL" for NULL).
function sql.run(statements)
  local user, password, host, port = address()
  local file = os.tmpname()
  local handle = assert(io.open(file, "w"))
  handle:write(statements)
  handle:close()
  local command = string.format(
    "MYSQL_PWD=%s mariadb -h%s -P%s -u%s --default-character-set=utf8mb4 -N -B -r < %s 2>&1; echo \"exit=$?\"",
    cli.shell_quote(password), host, port, cli.shell_quote(user), file)
  local pipe = assert(io.popen(command))
  local output = pipe:read("*a")
  pipe:close()
  os.remove(file)
  local body, status = output:match("^(.-)exit=(%d+)\n$")
  if status ~= "0" then error("SQL failed: " .. output .. "\n" .. statements, 2) end
  local rows = {}
  for line in body:gmatch("([^\n]*)\n") do
    local row = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = field end
    rows[#rows + 1] = row
  end
  return rows
end

-- The configured MySQL URL, or the same server with database in its path.
function sql.url(database)
  local url = config.get("mysql_url")
  if not database then return url end
  return (url:gsub("^(mysql://[^/]*/)[^?]*", "%1" .. database))
end

return sql
