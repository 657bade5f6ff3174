-- silo.async_observer: silovators, the listen blocks that the dispatcher runs for feed messages.
--
--   local S = AsyncObserver("EventListingSilovator")
--   S:listen("create", Attendance, function() Silo.generate(presenter_for(attendance:event())) end)
--   S:listen({ "create", "destroy" }, Ticket, function() ... end)
--   S:listen("update", User, { changing = { "deleted", "email" } }, function() ... end)
--
-- A block runs with the record (named after its model in snake_case: attendance, venue, email_request),
-- `changes` ({old, new} per changed column), the raw `message`, `publish(...)` and `presenter_for(...)` in
-- scope, on top of the environment its file was loaded in (models, helpers, Silo...).
-- `changing` restricts updates to those changing at least one of the columns; creates and destroys always run.
local errors = require("silo.errors")
local inflect = require("silo.inflect")

local async_observer = {}

local operations = { create = true, update = true, destroy = true }

local Observer = {}
Observer.__index = Observer

local function list_of_strings(value, what, name)
  local list = type(value) == "table" and value or { value }
  if #list == 0 then errors.raise(string.format("%s:listen: %s is empty", name, what)) end
  for _, item in ipairs(list) do
    if type(item) ~= "string" then
      errors.raise(string.format("%s:listen: %s must be a string or a list of strings, got %s", name, what, type(item)))
    end
  end
  return list
end

local function set_of_operations(ops, name)
  local set = {}
  for _, op in ipairs(list_of_strings(ops, "the operation", name)) do
    if not operations[op] then
      errors.raise(string.format("%s:listen: unknown operation '%s' (create, update or destroy)", name, op))
    end
    set[op] = true
  end
  return set
end

local function parse_options(options, name)
  if options == nil then return {} end
  for key in pairs(options) do
    if key ~= "changing" then
      errors.raise(string.format("%s:listen: unknown option '%s' (the option is changing)", name, tostring(key)))
    end
  end
  if options.changing == nil then return {} end
  return { changing = list_of_strings(options.changing, "changing", name) }
end

local function is_model(value)
  return type(value) == "table" and value.record_meta ~= nil and value.record_meta.__silo_model == value
end

-- listen(op_or_ops, Model, [options], fn)
function Observer:listen(ops, model, options, fn)
  local name = self.name
  if fn == nil and type(options) == "function" then options, fn = nil, options end
  local set = set_of_operations(ops, name)
  if not is_model(model) then
    errors.raise(string.format("%s:listen: the second argument must be a model, got %s", name,
      model == nil and "nil" or tostring(model)))
  end
  if options ~= nil and type(options) ~= "table" then
    errors.raise(name .. ":listen: options must be a table, got " .. type(options))
  end
  if type(fn) ~= "function" then errors.raise(name .. ":listen: the last argument must be a function, got " .. type(fn)) end
  local info = debug.getinfo(fn, "S")
  self.blocks[#self.blocks + 1] = {
    observer = self, operations = set, model = model, options = parse_options(options, name), fn = fn,
    record_name = inflect.underscore(model.name), where = info.short_src .. ":" .. info.linedefined,
  }
  return self
end

-- Whether a block runs for a message (op and model already known to be strings).
function async_observer.matches(block, message)
  if not block.operations[message.op] or block.model.name ~= message.model then return false end
  local changing = block.options.changing
  if not changing or message.op ~= "update" then return true end
  local changes = message.changes or {}
  for _, column in ipairs(changing) do
    if changes[column] ~= nil then return true end
  end
  return false
end

local Registry = {}
Registry.__index = Registry

function async_observer.registry() return setmetatable({ observers = {}, order = {} }, Registry) end

-- AsyncObserver(name [, { presenter = "EventListingPresenter" }]); the presenter presenter_for uses is by default
-- the name with Silovator/Observer replaced by Presenter.
function Registry:define(name, options)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    errors.raise("AsyncObserver: expected a name like \"EventListingSilovator\", got " .. tostring(name))
  end
  if self.observers[name] then errors.raise("AsyncObserver " .. name .. " is already defined") end
  options = options or {}
  for key in pairs(options) do
    if key ~= "presenter" then errors.raise("AsyncObserver " .. name .. ": unknown option '" .. tostring(key) .. "'") end
  end
  local default_presenter = name:gsub("Silovator$", ""):gsub("Observer$", "") .. "Presenter"
  local observer = setmetatable({ name = name, blocks = {}, presenter = options.presenter or default_presenter }, Observer)
  self.observers[name] = observer
  self.order[#self.order + 1] = observer
  return observer
end

-- Every block, in the order of definition, that runs for message.
function Registry:blocks_for(message)
  local found = {}
  for _, observer in ipairs(self.order) do
    for _, block in ipairs(observer.blocks) do
      if async_observer.matches(block, message) then found[#found + 1] = block end
    end
  end
  return found
end

async_observer.is_model = is_model

return async_observer
