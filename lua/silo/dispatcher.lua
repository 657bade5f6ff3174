-- silo.dispatcher: runs the listen blocks of every loaded silovator that match one decoded feed message.
--
--   local results, err = dispatcher.dispatch(app, message)
--   -- results: one per matching block, in definition order:
--   --   { silovator = "EventListingSilovator", block = "silovators/event_listing.lua:12", ok = true,
--   --     published = { ... } }                        -- what the block gave publish(), for the daemon to send
--   --   { ..., ok = false, error = "silovators/event_listing.lua:14: attempt to ...", traceback = "..." }
--   -- err: why the message itself is unusable (results is nil then)
--
-- A failing block does not stop the others. Silo.generate inside a block stamps the document with the
-- message's source (its binlog position) as _silo.version.
local errors = require("silo.errors")

local dispatcher = {}

local operations = { create = true, update = true, destroy = true }

local function check_message(message)
  if type(message) ~= "table" then return "feed message: expected a table, got " .. type(message) end
  if not operations[message.op] then
    return "feed message: op must be create, update or destroy, got " .. tostring(message.op)
  end
  if type(message.model) ~= "string" then return "feed message: model must be a string, got " .. type(message.model) end
  if type(message.attributes) ~= "table" then
    return "feed message: attributes must be a table, got " .. type(message.attributes)
  end
  if message.changes ~= nil and type(message.changes) ~= "table" then
    return "feed message: changes must be a table, got " .. type(message.changes)
  end
end

local function presenter_for(app, block)
  return function(record, which)
    which = which or block.observer.presenter
    local class = type(which) == "string" and app.presenters:find(which) or which
    if type(class) ~= "table" or type(class.new) ~= "function" then
      errors.raise("presenter_for: no presenter " .. tostring(which)
        .. " (name one: presenter_for(record, SomePresenter) or AsyncObserver(name, { presenter = ... }))")
    end
    return class.new(record)
  end
end

-- The scope a block runs in: its record, changes, message, publish and presenter_for over the app's globals.
local function scope(app, block, message, published)
  return setmetatable({
    [block.record_name] = block.model.new(message.attributes),
    changes = message.changes or {},
    message = message,
    presenter_for = presenter_for(app, block),
    publish = function(value)
      if value == nil then errors.raise("publish: nothing to publish (nil)") end
      published[#published + 1] = value
    end,
  }, { __index = app.env, __newindex = app.env })
end

local function run(app, block, message)
  local published = {}
  local result = { silovator = block.observer.name, block = block.where, published = published }
  local previous_env, previous_version = getfenv(block.fn), app.silo.version
  app.silo.version = message.source
  local ok, failure = errors.call(function()
    setfenv(block.fn, scope(app, block, message, published))
    block.fn()
  end)
  setfenv(block.fn, previous_env)
  app.silo.version = previous_version
  result.ok = ok
  if not ok then result.error, result.traceback, result.published = failure.message, failure.traceback, {} end
  return result
end

function dispatcher.dispatch(app, message)
  local invalid = check_message(message)
  if invalid then return nil, invalid end
  local results = {}
  for _, block in ipairs(app.silovators:blocks_for(message)) do results[#results + 1] = run(app, block, message) end
  return results
end

return dispatcher
