-- Runs the silo-lua binary under test (SILO_BIN, set by ctest) and captures what it printed.
local cli = {}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
cli.shell_quote = shell_quote

function cli.binary()
  local bin = os.getenv("SILO_BIN")
  assert(bin and bin ~= "", "SILO_BIN is not set: run the specs through ctest")
  return bin
end

local function slurp(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  os.remove(path)
  return text
end

-- cli.run({"help", "run"}, { env = { SILO_CONFIG = "x" }, cwd = dir, binary = path })
--   -> { status = n, stdout = s, stderr = s }
function cli.run(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local parts = {}
  for name, value in pairs(opts.env or {}) do parts[#parts + 1] = name .. "=" .. shell_quote(value) end
  parts[#parts + 1] = shell_quote(opts.binary or cli.binary())
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local command = table.concat(parts, " ") .. " >" .. out .. " 2>" .. err .. " </dev/null"
  if opts.cwd then command = "cd " .. shell_quote(opts.cwd) .. " && " .. command end
  local ok, _, code = os.execute(command)
  -- LuaJIT's os.execute returns the raw wait status unless built with 5.2 compatibility
  local status = type(ok) == "number" and math.floor(ok / 256) or code
  return { status = status, stdout = slurp(out), stderr = slurp(err) }
end

-- Writes text to a fresh temporary file and returns its path.
function cli.write_temp(text, suffix)
  local path = os.tmpname() .. (suffix or ".lua")
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

return cli
