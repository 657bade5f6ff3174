-- silo.config: the settings of a silo-lua process.
--
-- A configuration file is Lua returning a table of settings. It is found at --config FILE, else $SILO_CONFIG,
-- else ./silo.conf.lua, else none is used. Every setting has a default, and an environment variable that
-- overrides both the default and the file. Values that are URLs carry passwords: print them with
-- config.redact().
local config = {}

-- The one list of settings. The README's configuration table mirrors it (spec/config_spec.lua checks that).
config.settings = {
  { key = "mysql_url", env = "SILO_MYSQL_URL", type = "string", default = "mysql://root@127.0.0.1:3306/silo",
    doc = "MySQL/MariaDB that presenters read and the feed tails" },
  { key = "mongo_uri", env = "SILO_MONGO_URI", type = "string", default = "mongodb://127.0.0.1:27017/silo",
    doc = "MongoDB where silos are stored (the database is the URI's path)" },
  { key = "amqp_url", env = "SILO_AMQP_URL", type = "string", default = "amqp://guest:guest@127.0.0.1:5672/",
    doc = "RabbitMQ that carries the feed" },
  { key = "memcached_servers", env = "SILO_MEMCACHED_SERVERS", type = "string", default = "127.0.0.1:11211",
    doc = "memcached servers for MegaMutex, comma-separated host:port" },
  { key = "exchange", env = "SILO_EXCHANGE", type = "string", default = "silo.feed",
    doc = "the durable topic exchange of the feed (routing key <op>.<Model>)" },
  { key = "feed_checkpoint", env = "SILO_FEED_CHECKPOINT", type = "string", default = "silo-feed.checkpoint",
    doc = "file where the feed records the binlog position it has published up to" },
  { key = "feed_start", env = "SILO_FEED_START", type = "string", default = "now",
    doc = "where a feed without a checkpoint starts: now, FILE:POS or a GTID" },
  { key = "app_root", env = "SILO_APP_ROOT", type = "string", default = ".",
    doc = "directory holding presenters/ and silovators/" },
  { key = "log_level", env = "SILO_LOG_LEVEL", type = "string", default = "info",
    one_of = { "debug", "info", "warn", "error" }, doc = "least severe log line written to stderr" },
}

local by_key = {}
for _, setting in ipairs(config.settings) do by_key[setting.key] = setting end

-- "mysql://user:secret@host/db" -> "mysql://user:***@host/db"
function config.redact(url)
  return (tostring(url):gsub("^(%a[%w+.-]*://[^:/@]*):[^@]*@", "%1:***@"))
end

local function show(setting, value)
  if setting.type == "string" and setting.key:match("_ur[il]$") then return config.redact(value) end
  return tostring(value)
end

local function check_value(setting, value, origin)
  if type(value) ~= setting.type then
    return nil, string.format("%s: setting '%s' must be a %s, got %s", origin, setting.key, setting.type, type(value))
  end
  if setting.one_of then
    for _, allowed in ipairs(setting.one_of) do
      if value == allowed then return value end
    end
    return nil, string.format("%s: setting '%s' must be one of %s, got '%s'", origin, setting.key,
      table.concat(setting.one_of, ", "), show(setting, value))
  end
  return value
end

local function from_environment(setting, text)
  local origin = "environment variable " .. setting.env
  if setting.type == "number" then
    local number = tonumber(text)
    if not number then return nil, string.format("%s must be a number, got '%s'", origin, text) end
    return check_value(setting, number, origin)
  elseif setting.type == "boolean" then
    local truth = ({ ["true"] = true, ["1"] = true, ["false"] = false, ["0"] = false })[text]
    if truth == nil then return nil, string.format("%s must be true or false, got '%s'", origin, text) end
    return check_value(setting, truth, origin)
  end
  return check_value(setting, text, origin)
end

local function read_file(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, "config " .. err end
  -- the file sees the globals but cannot change them
  setfenv(chunk, setmetatable({}, { __index = _G }))
  local ok, result = pcall(chunk)
  if not ok then return nil, "config " .. tostring(result) end
  if type(result) ~= "table" then
    return nil, string.format("config %s must return a table of settings, got %s", path, type(result))
  end
  return result
end

local function unknown_key_error(path, key)
  local known = {}
  for _, setting in ipairs(config.settings) do known[#known + 1] = setting.key end
  return string.format("config %s: unknown setting '%s' (settings are: %s)", path, tostring(key),
    table.concat(known, ", "))
end

-- Which file to read: an explicit path must exist; the implicit ./silo.conf.lua may be absent.
local function choose_file(path, getenv)
  if path then return path, true end
  local from_env = getenv("SILO_CONFIG")
  if from_env and from_env ~= "" then return from_env, true end
  local implicit = io.open("silo.conf.lua", "r")
  if implicit then implicit:close(); return "silo.conf.lua", true end
  return nil, false
end

-- Builds the settings from defaults, the file and the environment. getenv defaults to os.getenv.
-- Returns values, sources (key -> "default" | "file" | "env") or nil, message.
function config.load(path, getenv)
  getenv = getenv or os.getenv
  local file, required = choose_file(path, getenv)
  local from_file = {}
  if file then
    local handle = io.open(file, "r")
    if not handle and required then return nil, string.format("config %s: file not found", file) end
    if handle then handle:close() end
    local result, err = read_file(file)
    if not result then return nil, err end
    from_file = result
  end
  for key in pairs(from_file) do
    if not by_key[key] then return nil, unknown_key_error(file, key) end
  end

  local values, sources = {}, {}
  for _, setting in ipairs(config.settings) do
    local value, err, source = setting.default, nil, "default"
    local env_text = getenv(setting.env)
    if env_text and env_text ~= "" then
      value, err, source = from_environment(setting, env_text)
      source = "env"
    elseif from_file[setting.key] ~= nil then
      value, err = check_value(setting, from_file[setting.key], "config " .. file)
      source = "file"
    end
    if err then return nil, err end
    values[setting.key], sources[setting.key] = value, source
  end
  return values, sources
end

local current, current_sources

-- Called once by the silo-lua binary before a verb runs. Returns true, or false and the message.
function config.init(path)
  local values, sources = config.load(path)
  if not values then return false, sources end
  current, current_sources = values, sources
  return true
end

-- The process's settings (defaults and environment when init was not called, as in a plain script).
function config.current()
  if not current then
    local values, err = config.load(nil)
    if not values then error(err, 2) end
    current = values
  end
  return current
end

function config.get(key)
  if not by_key[key] then error("unknown setting '" .. tostring(key) .. "'", 2) end
  return config.current()[key]
end

-- One line per setting, passwords redacted: for logs and `silo-lua help config`.
function config.describe(values, sources)
  values, sources = values or config.current(), sources or current_sources or {}
  local lines = {}
  for _, setting in ipairs(config.settings) do
    lines[#lines + 1] = string.format("%-18s = %s (%s)", setting.key, show(setting, values[setting.key]),
      sources[setting.key] or "default")
  end
  return table.concat(lines, "\n")
end

return config
