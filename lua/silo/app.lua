-- silo.app: an application's models, presenters and silovators, loaded from app_root into one environment.
--
--   local app = require("silo.app").new()      -- options: root (default: config app_root), mysql, mongo
--   assert(app:load())                         -- models.lua, models/*.lua, presenters/*.lua, silovators/*.lua
--   local results = app:dispatch(message)      -- see silo.dispatcher
--
-- load() can be called again (hot reload): it builds everything afresh and replaces the previous definitions
-- only when every file loaded, so a broken edit leaves the running app as it was. Connections are kept.
-- Files run in an environment holding the DSL (Model, Presenter, AsyncObserver, Silo, AsynchronousObservers,
-- with_distributed_mutex, publish, the helpers) over the standard globals; reading an undefined name is an
-- error naming the file and line, as Ruby's NameError, so a typo in a model name is caught where it is.
local config = require("silo.config")
local core = require("silo.core")
local errors = require("silo.errors")
local helpers = require("silo.helpers")
local model = require("silo.model")
local presenter = require("silo.presenter")
local silo = require("silo.silo")
local async_observer = require("silo.async_observer")
local observers = require("silo.observers")
local dispatcher = require("silo.dispatcher")

local app = {}
local App = {}
App.__index = App

local helper_names = { "to_sentence", "pluralize", "singularize", "underscore", "camelize", "pluck", "map", "filter" }

-- options.mysql / options.mongo: a connection, or a function returning one; by default one is opened from
-- the configuration (mysql_url, mongo_uri) on first use. options.publish(value): where publish() sends
-- outside a listen block (inside one, the dispatcher collects what is published).
function app.new(options)
  options = options or {}
  return setmetatable({ root = options.root or config.get("app_root"), options = options }, App)
end

local function connector(self, kind, open)
  return function()
    if not self[kind] then
      local given = self.options[kind]
      if type(given) == "function" then given = given() end
      self[kind] = given or open()
    end
    return self[kind]
  end
end

local function with_distributed_mutex(name, fn, ...)
  local ok, mega_mutex = pcall(require, "silo.mega_mutex")
  if not ok then
    errors.raise("with_distributed_mutex: silo.mega_mutex is not available: " .. tostring(mega_mutex):match("^[^\n]*"))
  end
  return mega_mutex.with_distributed_mutex(name, fn, ...)
end

local function strict_globals(env)
  return setmetatable(env, { __index = function(_, name)
    local value = _G[name]
    if value == nil then errors.raise("undefined name '" .. tostring(name) .. "'") end
    return value
  end })
end

-- A fresh set of definitions: registries and the environment files run in.
local function build(self)
  local parts = {
    models = model.registry(connector(self, "mysql", function()
      return require("silo.mysql").connect(config.get("mysql_url"))
    end)),
    presenters = presenter.registry(),
    silovators = async_observer.registry(),
    observed = observers.new(),
  }
  parts.silo = silo.new(parts.models, connector(self, "mongo", function()
    return require("silo.mongo").connect(config.get("mongo_uri"))
  end))
  local env = {
    Silo = parts.silo:facade(), AsynchronousObservers = parts.observed, null = core.null,
    with_distributed_mutex = with_distributed_mutex,
    ipairs = function(list) return ipairs(helpers.rows(list)) end,   -- ipairs(venue:events()) loads the relation
  }
  local function defining(registry)
    return function(name, ...)
      local defined = registry:define(name, ...)
      rawset(env, name, defined)
      return defined
    end
  end
  env.Model, env.Presenter, env.AsyncObserver = defining(parts.models), defining(parts.presenters),
    defining(parts.silovators)
  env.publish = function(value)
    if not self.options.publish then errors.raise("publish: no publisher outside a listen block") end
    return self.options.publish(value)
  end
  for _, name in ipairs(helper_names) do env[name] = helpers[name] end
  parts.env = strict_globals(env)
  return parts
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function rank(path)
  if path == "models.lua" then return 1 end
  return ({ models = 2, presenters = 3, silovators = 4 })[path:match("^[^/]+")]
end

-- The files to load, relative to root, in load order; nil and a message when root is not a directory.
local function app_files(root)
  local listing = io.popen("cd " .. shell_quote(root) .. " 2>/dev/null && echo ok && "
    .. "ls -1d models.lua models/*.lua presenters/*.lua silovators/*.lua 2>/dev/null")
  local found_root, files = listing:read("*l") == "ok", {}
  for line in listing:lines() do files[#files + 1] = line end
  listing:close()
  if not found_root then return nil, "app_root " .. tostring(root) .. " is not a directory" end
  table.sort(files, function(a, b)
    if rank(a) ~= rank(b) then return rank(a) < rank(b) end
    return a < b
  end)
  return files
end

local function read_text(path)
  local handle, err = io.open(path, "r")
  if not handle then return nil, err end
  local text = handle:read("*a")
  handle:close()
  return text
end

-- Runs one file (chunk name: its path relative to root, as error messages show it) in env.
local function run_file(root, relative, env)
  local text, err = read_text(root .. "/" .. relative)
  if not text then return nil, relative .. ": " .. tostring(err) end
  local chunk, syntax_error = loadstring(text, "@" .. relative)
  if not chunk then return nil, syntax_error end
  setfenv(chunk, env)
  local ok, failure = errors.call(chunk)
  if not ok then return nil, failure.message end
  return true
end

-- Loads (or reloads) every file; true, or nil and "file:line: message" with the previous definitions kept.
function App:load()
  local files, err = app_files(self.root)
  if not files then return nil, err end
  local parts = build(self)
  for _, relative in ipairs(files) do
    local ok, failure = run_file(self.root, relative, parts.env)
    if not ok then return nil, failure end
  end
  for key, value in pairs(parts) do self[key] = value end
  self.files = files
  return true
end

-- Runs Lua source in the app's environment (the console, specs): the chunk's results, or an error.
function App:eval(source, chunkname)
  if not self.env then
    for key, value in pairs(build(self)) do self[key] = value end
  end
  local chunk, syntax_error = loadstring(source, "@" .. (chunkname or "eval"))
  if not chunk then error(syntax_error, 0) end
  return setfenv(chunk, self.env)()
end

function App:dispatch(message)
  if not self.silovators then error("app: load() the app before dispatching", 2) end
  return dispatcher.dispatch(self, message)
end

return app
