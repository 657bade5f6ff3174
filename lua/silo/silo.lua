-- silo.silo: storing presenters' documents in MongoDB, and reading them back ("Mongo by preference").
--
--   Silo.generate(presenter [, { version = source }])  every silo method computed inside one consistent-snapshot
--                                                     read, stored by id with _silo = { presenter,
--                                                     generated_at, version, position }; returns the document
--                                                     and whether it was written (not older than the stored one)
--   Silo.remove(presenter) / Silo.remove(Class, id)    deletes the document (for a destroyed record)
--   Silo.read(Class, id [, find])                      an instance answering from the stored document
--   Silo.document(presenter)                           the document, computed, not stored
local core = require("silo.core")
local errors = require("silo.errors")
local model = require("silo.model")
local presenter = require("silo.presenter")

local silo = {}
local Silo = {}
Silo.__index = Silo

-- models: a silo.model registry (for the snapshot); mongo(): the silo.mongo connection, called on first use.
function silo.new(models, mongo)
  return setmetatable({ models = models, connect_mongo = mongo, collections = {} }, Silo)
end

function Silo:collection(name)
  if not self.collections[name] then
    if not self.mongo then self.mongo = self.connect_mongo() end
    self.collections[name] = self.mongo:collection(name)
  end
  return self.collections[name]
end

-- What a silo method's value becomes in the document: records become their columns, relations arrays of them.
local function storable(value, where, depth)
  if depth > 32 then errors.raise(where .. ": the value nests too deep (a cycle?)") end
  if model.is_relation(value) then value = value:all() end
  if model.is_record(value) then return model.attributes(value) end
  if presenter.is_instance(value) then errors.raise(where .. ": returned a presenter; store its fields instead") end
  local kind = type(value)
  if kind == "function" or kind == "thread" then errors.raise(where .. ": returned a " .. kind .. ", which cannot be stored") end
  if kind ~= "table" or getmetatable(value) then return value end
  local copy = {}
  for k, v in pairs(value) do copy[k] = storable(v, where, depth + 1) end
  return copy
end

local function compute(instance)
  local class, info = presenter.class_of(instance)
  if not class or class == instance then
    errors.raise("Silo: expected a presenter instance (Presenter.new(...)), got " .. tostring(instance))
  end
  local doc = { _id = presenter.silo_id(instance) }
  for _, method in ipairs(info.methods) do
    local fn = instance[method]
    if type(fn) ~= "function" then
      errors.raise(string.format("%s: silo_method '%s' is not defined (function %s:%s() ... end)", info.name,
        method, info.name, method))
    end
    local value = storable(fn(instance), info.name .. ":" .. method .. "()", 0)
    if value == nil then value = core.null end   -- stored, so that reading it does not fall back to the models
    doc[method] = value
  end
  return doc, info
end

function Silo:document(instance)
  return self.models:snapshot(function() return (compute(instance)) end)
end

-- Orders feed positions: the binlog file's sequence number * 2^32 + the position in it; nil without both.
function silo.position(version)
  if type(version) ~= "table" then return nil end
  local sequence = type(version.file) == "string" and tonumber(version.file:match("%.(%d+)$"))
  local pos = tonumber(version.pos)
  if sequence and pos then return sequence * 4294967296 + pos end
end

-- Stores the presenter's document; returns it and whether it was written. A document stamped with a later
-- feed position than version is kept (written = false): of two daemons racing, the older computation loses.
function Silo:generate(instance, options)
  local doc, info = self.models:snapshot(function() return compute(instance) end)
  local version = options and options.version
  if version == nil then version = self.version end   -- set by the dispatcher: the message's source
  local position = silo.position(version)
  doc._silo = { presenter = info.name, generated_at = core.datetime(), version = version, position = position }
  local condition
  if position then
    condition = { where = { ["$or"] = { { ["_silo.position"] = { ["$exists"] = false } },
      { ["_silo.position"] = { ["$lte"] = position } } } } }
  end
  local result = self:collection(info.silo.collection):upsert(doc._id, doc, condition)
  return doc, result.applied ~= false
end

function Silo:remove(instance_or_class, id)
  local class, info = presenter.class_of(instance_or_class)
  if not class then errors.raise("Silo.remove: expected a presenter or a presenter class, got " .. tostring(instance_or_class)) end
  if class ~= instance_or_class then id = presenter.silo_id(instance_or_class) end
  if id == nil then errors.raise("Silo.remove(" .. info.name .. ", id): the id is nil") end
  if not info.silo then errors.raise(info.name .. " has no silo: declare one with " .. info.name .. ":silo{ ... }") end
  return self:collection(info.silo.collection):delete({ _id = id })
end

function Silo:read(class, id, find)
  local _, info = presenter.class_of(class)
  if not info or class ~= presenter.class_of(class) then
    errors.raise("Silo.read: expected a presenter class, got " .. tostring(class))
  end
  if not info.silo then errors.raise(info.name .. " has no silo: declare one with " .. info.name .. ":silo{ ... }") end
  local doc = self:collection(info.silo.collection):find_one({ _id = id })
  return presenter.reader(class, id, doc, find)
end

-- The table a DSL file sees as `Silo`: Silo.generate(p) with a dot, as in Ruby (a colon works too).
function Silo:facade()
  local facade = {}
  for _, name in ipairs({ "generate", "remove", "read", "document" }) do
    facade[name] = function(first, ...)
      if first == facade then return self[name](self, ...) end
      return self[name](self, first, ...)
    end
  end
  return facade
end

return silo
