-- silo.presenter: presenters compute the small document a page needs; silo methods are what is stored.
--
--   local EventListing = Presenter("EventListingPresenter")
--   EventListing:silo { collection = "event_listing", id = function(self) return self.event.id end,
--                       find = function(id) return Event:find(id) end }   -- find: optional, for read-through
--   function EventListing:initialize(event) self.event = event end
--   function EventListing:title() return to_sentence(pluck(self.event:artists(), "name")) end
--   EventListing:silo_method "title"
--
--   EventListing.new(event) (or :new) makes an instance; Silo.generate(instance) stores it.
local errors = require("silo.errors")

local presenter = {}

local classes = setmetatable({}, { __mode = "k" })   -- class -> { name, silo, methods, is_silo_method }
local readers = setmetatable({}, { __mode = "k" })   -- instance read from a silo -> { doc, id, find, ready }

local Class = {}

-- Class metadata: name, silo (the :silo options), methods (silo method names in declaration order).
function presenter.class_of(value)
  if classes[value] then return value, classes[value] end
  local meta = getmetatable(value)
  if meta and classes[meta] then return meta, classes[meta] end
  if meta and meta.__silo_presenter then return meta.__silo_presenter, classes[meta.__silo_presenter] end
  return nil
end

function presenter.is_instance(value)
  local class = presenter.class_of(value)
  return class ~= nil and class ~= value
end

local function silo_options(class)
  local info = classes[class]
  if not info.silo then errors.raise(info.name .. " has no silo: declare one with " .. info.name .. ":silo{ ... }") end
  return info.silo
end

local known_silo_options = { collection = "string", id = "function", find = "function" }

function Class:silo(options)
  local name = classes[self].name
  if type(options) ~= "table" then errors.raise(name .. ":silo: expected a table of options, got " .. type(options)) end
  for key, value in pairs(options) do
    local expected = known_silo_options[key]
    if not expected then
      errors.raise(string.format("%s:silo: unknown option '%s' (options are collection, id, find)", name, tostring(key)))
    end
    if type(value) ~= expected then
      errors.raise(string.format("%s:silo: %s must be a %s, got %s", name, key, expected, type(value)))
    end
  end
  if not options.collection or not options.id then errors.raise(name .. ":silo: collection and id are required") end
  classes[self].silo = options
  return self
end

-- silo_method "title" (or several names): the method's result is stored in the silo under its name.
function Class:silo_method(...)
  local info = classes[self]
  for i = 1, select("#", ...) do
    local method = select(i, ...)
    if type(method) ~= "string" or not method:match("^[%a_][%w_]*$") then
      errors.raise(info.name .. ":silo_method: expected a method name, got " .. tostring(method))
    end
    if method:sub(1, 1) == "_" then
      errors.raise(info.name .. ":silo_method: '" .. method .. "' starts with _, which silos keep for metadata")
    end
    if not info.is_silo_method[method] then
      info.is_silo_method[method] = true
      info.methods[#info.methods + 1] = method
    end
  end
  return self
end

function Class:initialize() end

local function new_instance(class, ...)
  local instance = setmetatable({}, class)
  class.initialize(instance, ...)
  return instance
end

-- The silo id of an instance (the :silo id function's result).
function presenter.silo_id(instance)
  local class, info = presenter.class_of(instance)
  local id = silo_options(class).id(instance)
  if id == nil then errors.raise(info.name .. ": the silo id function returned nil") end
  return id
end

-- Read-through instances -------------------------------------------------------------------------------

local function ensure_initialized(instance, class, info)
  local state = readers[instance]
  if state.ready then return end
  local find = state.find or silo_options(class).find
  if not find then
    errors.raise(string.format("%s %s: needs the models but has no way to load them (give :silo a find function)",
      info.name, tostring(state.id)))
  end
  class.initialize(instance, find(state.id))
  state.ready = true
end

local function stored_reader(class, info, method)
  return function(instance, ...)
    local state = readers[instance]
    local value = state.doc and state.doc[method]
    if value ~= nil then return value end
    ensure_initialized(instance, class, info)
    local computed = class[method]
    if type(computed) ~= "function" then errors.raise(info.name .. " has no method '" .. method .. "'") end
    return computed(instance, ...)
  end
end

local function reader_meta(class, info)
  if info.reader_meta then return info.reader_meta end
  local stored = {}
  info.reader_meta = {
    __silo_presenter = class,
    __index = function(instance, key)
      if info.is_silo_method[key] then
        stored[key] = stored[key] or stored_reader(class, info, key)
        return stored[key]
      end
      local value = class[key]
      if value == nil and not readers[instance].ready and type(key) == "string" then
        ensure_initialized(instance, class, info)
        return rawget(instance, key)
      end
      return value
    end,
  }
  return info.reader_meta
end

-- An instance backed by a stored document: silo methods return stored values, and the models are loaded
-- (find(id)) only for a missing document or field. doc may be nil.
function presenter.reader(class, id, doc, find)
  local info = classes[class]
  local instance = setmetatable({}, reader_meta(class, info))
  readers[instance] = { doc = doc, id = id, find = find }
  return instance
end

-- The document an instance was read from, or nil (not read from a silo, or no document was stored).
function presenter.stored_document(instance)
  local state = readers[instance]
  return state and state.doc
end

-- Registry ---------------------------------------------------------------------------------------------

local Registry = {}
Registry.__index = Registry

function presenter.registry() return setmetatable({ classes = {}, order = {} }, Registry) end

function Registry:define(name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    errors.raise("Presenter: expected a name like \"EventListingPresenter\", got " .. tostring(name))
  end
  if self.classes[name] then errors.raise("Presenter " .. name .. " is already defined") end
  local class = {}
  class.__index = class
  for method, fn in pairs(Class) do class[method] = fn end
  class.new = function(first, ...)
    if first == class then return new_instance(class, ...) end
    return new_instance(class, first, ...)
  end
  classes[class] = { name = name, methods = {}, is_silo_method = {} }
  self.classes[name] = class
  self.order[#self.order + 1] = class
  return setmetatable(class, { __tostring = function() return name end })
end

function Registry:find(name) return self.classes[name] end

return presenter
