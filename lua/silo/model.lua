-- silo.model: read-only models over MySQL tables, for presenters and silovators.
--
--   local models = require("silo.model").registry(function() return db end)
--   local Venue = models:define("Venue", { table = "venues" })   -- table and primary key have defaults
--   Venue:belongs_to "city"                                       -- City, venues.city_id
--   Venue:has_many "events"                                       -- Event, events.venue_id
--   Event:has_many("attending_users", { through = "attendances", source = "user" })
--
--   Venue:find(42)  Venue:find_by{ name = "x" }  Venue:where{ city_id = 7 }:order("name"):limit(3)
--   Venue:count()  Venue:pluck("name")  Venue:exists{ city_id = 7 }  venue:city()  venue:events():count()
--
-- Class methods work with a dot or a colon (Venue.find(42) as in Ruby). Records are the rows the MySQL
-- binding returns (column -> typed value, NULL as silo.core.null) with the model's methods: associations and
-- those defined with `function Venue.methods:label() ... end`. Every statement is parameterized; names are
-- checked to be identifiers when declared. Nothing here writes.
local core = require("silo.core")
local inflect = require("silo.inflect")
local errors = require("silo.errors")

local model = {}
local null = core.null

local Model = {}          -- class methods, bound to each model at definition
local Relation = {}       -- methods of a relation (a query not yet run, then its rows)
local relation_state = setmetatable({}, { __mode = "k" })
local association_cache = setmetatable({}, { __mode = "k" })

local function check_identifier(name, what)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    errors.raise(string.format("%s must be an identifier (letters, digits, _), got %s", what,
      type(name) == "string" and ("'" .. name .. "'") or type(name)))
  end
  return name
end

local function quote(name) return "`" .. name .. "`" end
local function column_of(m, column) return quote(m.table) .. "." .. quote(column) end

-- Registry -------------------------------------------------------------------------------------------

local Registry = {}
Registry.__index = Registry

-- connect() returns the silo.mysql handle the models read through; it is called on first use.
function model.registry(connect)
  return setmetatable({ models = {}, connect = connect, snapshot_depth = 0 }, Registry)
end

function Registry:db()
  if not self.handle then self.handle = self.connect() end
  return self.handle
end

function Registry:model(name, needed_by)
  local found = self.models[name]
  if not found then
    errors.raise(string.format("%s: no model named %s (declare it with Model(\"%s\"))", needed_by, name, name))
  end
  return found
end

-- Runs fn() inside one consistent-snapshot read; nested calls join the outer snapshot.
function Registry:snapshot(fn)
  if self.snapshot_depth > 0 then return fn() end
  local db = self:db()
  self.snapshot_depth = 1
  local results = { pcall(db.snapshot, db, fn) }
  self.snapshot_depth = 0
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

local function run(m, operation, sql, params)
  local db = m.registry:db()
  local ok, rows = pcall(db.query, db, sql, unpack(params, 1, params.n or #params))
  if not ok then
    errors.raise(string.format("%s.%s: %s", m.name, operation, tostring(rows)))   -- the binding's names the SQL
  end
  return rows
end

-- Records ----------------------------------------------------------------------------------------------

local function record_of(m, row) return setmetatable(row, m.record_meta) end

function model.of(record)
  local meta = getmetatable(record)
  return meta and meta.__silo_model
end

function model.is_record(value) return model.of(value) ~= nil end

-- The record's columns as a plain table (no methods).
function model.attributes(record)
  local copy = {}
  for k, v in pairs(record) do copy[k] = v end
  return copy
end

local function cached(record, name, load)
  local cache = association_cache[record]
  if not cache then cache = {}; association_cache[record] = cache end
  if cache[name] == nil then cache[name] = load() or false end
  return cache[name] or nil
end

-- Relations --------------------------------------------------------------------------------------------

-- relation[i] loads the rows; relation.model is the model it selects from.
local relation_meta = {
  __index = function(relation, key)
    if type(key) == "number" then
      Relation.load(relation)
      return rawget(relation, key)
    end
    if key == "model" then return relation_state[relation].model end
    return Relation[key]
  end,
  __silo_rows = function(relation) return Relation.load(relation) end,
  __tostring = function(relation) return "relation of " .. relation_state[relation].model.name end,
}

local function new_relation(m, state)
  state = state or {}
  state.model, state.joins, state.conditions = m, state.joins or {}, state.conditions or {}
  local relation = setmetatable({}, relation_meta)
  relation_state[relation] = state
  return relation
end

function model.is_relation(value) return getmetatable(value) == relation_meta end

local function copy_state(relation)
  local s = relation_state[relation]
  local conditions = {}
  for i, c in ipairs(s.conditions) do conditions[i] = c end
  return { model = s.model, joins = s.joins, conditions = conditions, order = s.order, limit = s.limit }
end

local function is_list(value)
  return type(value) == "table" and getmetatable(value) == nil and (#value > 0 or next(value) == nil)
end

-- name: a quoted column
local function condition_for(name, value)
  if value == nil or value == null then return { sql = name .. " IS NULL", params = {} } end
  if model.is_record(value) then value = value[model.of(value).primary_key] end
  if is_list(value) then
    if #value == 0 then return { sql = "1 = 0", params = {} } end
    return { sql = name .. " IN (" .. string.rep("?", #value, ", ") .. ")", params = value }
  end
  return { sql = name .. " = ?", params = { value } }
end

-- where{ col = value, col2 = {1, 2} } (= / IN / IS NULL) or where("starts_at > ?", value, ...)
local function add_conditions(state, where, ...)
  local m = state.model
  state.conditions = state.conditions or {}
  if type(where) == "string" then
    state.conditions[#state.conditions + 1] = { sql = "(" .. where .. ")", params = { n = select("#", ...), ... } }
  elseif type(where) == "table" then
    local columns = {}
    for column in pairs(where) do columns[#columns + 1] = column end
    table.sort(columns, function(a, b) return tostring(a) < tostring(b) end)
    for _, column in ipairs(columns) do
      local name = column_of(m, check_identifier(column, m.name .. ".where: column name"))
      state.conditions[#state.conditions + 1] = condition_for(name, where[column])
    end
  elseif where ~= nil then
    errors.raise(m.name .. ".where: expected a table of column = value or an SQL string, got " .. type(where))
  end
  return state
end

function Relation:where(where, ...)
  return new_relation(self.model, add_conditions(copy_state(self), where, ...))
end

-- order("name"), order("starts_at DESC, id")
function Relation:order(order)
  local s = copy_state(self)
  for item in tostring(order):gmatch("[^,]+") do
    local ok = item:match("^%s*[%a_][%w_]*%s*$") or item:match("^%s*[%a_][%w_]*%.[%a_][%w_]*%s*$")
      or item:upper():match("^%s*[%a_][%w_%.]*%s+ASC%s*$") or item:upper():match("^%s*[%a_][%w_%.]*%s+DESC%s*$")
    if not ok then
      errors.raise(string.format("%s.order: expected columns with an optional ASC or DESC, got '%s'",
        s.model.name, tostring(order)))
    end
  end
  s.order = order
  return new_relation(s.model, s)
end

function Relation:limit(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    errors.raise(self.model.name .. ".limit: expected a whole number >= 0, got " .. tostring(n))
  end
  local s = copy_state(self)
  s.limit = n
  return new_relation(s.model, s)
end

-- The statement and its parameters for `select` (e.g. "`events`.*" or "COUNT(*) AS n").
function Relation:to_sql(select)
  local s = relation_state[self]
  local m = s.model
  local parts, params = { "SELECT " .. (select or (quote(m.table) .. ".*")) .. " FROM " .. quote(m.table) }, {}
  for _, join in ipairs(s.joins) do parts[#parts + 1] = join end
  for i, condition in ipairs(s.conditions) do
    parts[#parts + 1] = (i == 1 and "WHERE " or "AND ") .. condition.sql
    for k = 1, condition.params.n or #condition.params do params[#params + 1] = condition.params[k] end
  end
  if s.order then parts[#parts + 1] = "ORDER BY " .. s.order end
  if s.limit then parts[#parts + 1] = "LIMIT " .. string.format("%d", s.limit) end
  return table.concat(parts, " "), params
end

local function query(relation, operation, select)
  local sql, params = Relation.to_sql(relation, select)
  return run(relation_state[relation].model, operation, sql, params)
end

-- Runs the query once; the records become the relation's array part (ipairs, #, [i]). Returns the relation.
function Relation:load()
  local s = relation_state[self]
  if s.loaded then return self end
  for i, row in ipairs(query(self, "load")) do rawset(self, i, record_of(s.model, row)) end
  s.loaded = true
  return self
end

-- The records as a plain array.
function Relation:all()
  Relation.load(self)
  local records = {}
  for i = 1, #self do records[i] = rawget(self, i) end
  return records
end

function Relation:each()
  Relation.load(self)
  return ipairs(self)
end

function Relation:count()
  local s = relation_state[self]
  if s.loaded then return #self end
  return tonumber(query(self, "count", "COUNT(*) AS n")[1].n)
end

function Relation:exists()
  local s = relation_state[self]
  if s.loaded then return #self > 0 end
  return #query(Relation.limit(self, 1), "exists", "1 AS one") > 0
end

function Relation:first()
  local s = relation_state[self]
  if s.loaded then return rawget(self, 1) end
  return Relation.load(Relation.limit(self, 1))[1]
end

-- pluck("name") == {"a", "b"}; pluck("id", "name") == {{1, "a"}, {2, "b"}}
function Relation:pluck(column, ...)
  local m = relation_state[self].model
  local columns = { column, ... }
  local selected = {}
  for i, name in ipairs(columns) do
    selected[i] = column_of(m, check_identifier(name, m.name .. ".pluck: column name"))
  end
  local values = {}
  for i, row in ipairs(query(self, "pluck", table.concat(selected, ", "))) do
    if #columns == 1 then
      values[i] = row[column]
    else
      local tuple = {}
      for k, name in ipairs(columns) do tuple[k] = row[name] end
      values[i] = tuple
    end
  end
  return values
end

function Relation:ids() return Relation.pluck(self, relation_state[self].model.primary_key) end

-- Associations -----------------------------------------------------------------------------------------

local function belongs_to_reader(m, name, association)
  return function(record)
    return cached(record, name, function()
      local key = rawget(record, association.foreign_key)
      if key == nil or key == null then return nil end
      local target = m.registry:model(association.model, m.name .. " belongs_to " .. name)
      return Model.find_by(target, { [target.primary_key] = key })
    end)
  end
end

-- The relation of a has_many from owner: direct, or through another association of the owner's model.
local function has_many_relation(m, name, association, owner)
  local context = m.name .. " has_many " .. name
  local target = m.registry:model(association.model, context)
  if not association.through then
    return new_relation(target, add_conditions({ model = target }, {
      [association.foreign_key] = owner[m.primary_key] }))
  end
  local through = m.associations[association.through]
  if not through then errors.raise(context .. ": " .. m.name .. " has no association '" .. association.through .. "'") end
  if through.through then errors.raise(context .. ": going through another :through association is not supported") end
  local middle = m.registry:model(through.model, context)
  local source = middle.associations[association.source]
  if not source or source.through then
    errors.raise(string.format("%s: %s has no direct association '%s' (name it with source = ...)", context,
      middle.name, association.source))
  end
  if source.model ~= target.name then
    errors.raise(string.format("%s: %s.%s is a %s, not a %s", context, middle.name, association.source, source.model,
      target.name))
  end
  -- the joined table is named after the through association, so fragments read "performances.billing = ?"
  local alias = association.through
  local function joined(column) return quote(alias) .. "." .. quote(column) end
  local on
  if source.kind == "belongs_to" then
    on = column_of(target, target.primary_key) .. " = " .. joined(source.foreign_key)
  else
    on = column_of(target, source.foreign_key) .. " = " .. joined(middle.primary_key)
  end
  local state = { model = target, joins = { "JOIN " .. quote(middle.table) .. " AS " .. quote(alias) .. " ON " .. on } }
  local condition
  if through.kind == "belongs_to" then
    condition = condition_for(joined(middle.primary_key), owner[through.foreign_key])
  else
    condition = condition_for(joined(through.foreign_key), owner[m.primary_key])
  end
  state.conditions = { condition }
  return new_relation(target, state)
end

local function has_many_reader(m, name, association)
  return function(record)
    return cached(record, name, function() return has_many_relation(m, name, association, record) end)
  end
end

local function declare(m, name, kind, options, defaults)
  check_identifier(name, m.name .. "." .. kind .. ": association name")
  if options ~= nil and type(options) ~= "table" then
    errors.raise(m.name .. "." .. kind .. " " .. name .. ": options must be a table, got " .. type(options))
  end
  local association = { kind = kind, name = name }
  for key, value in pairs(defaults) do association[key] = value end
  for key, value in pairs(options or {}) do
    if defaults[key] == nil and key ~= "through" then
      errors.raise(string.format("%s.%s %s: unknown option '%s'", m.name, kind, name, tostring(key)))
    end
    association[key] = value
  end
  if association.foreign_key then check_identifier(association.foreign_key, m.name .. "." .. name .. " foreign_key") end
  m.associations[name] = association
  return association
end

-- belongs_to("city", { model = "City", foreign_key = "city_id" })
function Model:belongs_to(name, options)
  local association = declare(self, name, "belongs_to", options,
    { model = inflect.camelize(tostring(name)), foreign_key = tostring(name) .. "_id" })
  self.methods[name] = belongs_to_reader(self, name, association)
  return self
end

-- has_many("events", { model = "Event", foreign_key = "venue_id" }) or
-- has_many("artists", { through = "performances", source = "artist" })
function Model:has_many(name, options)
  local defaults = { model = inflect.classify(tostring(name)), foreign_key = inflect.underscore(self.name) .. "_id" }
  if options and options.through then
    defaults.source, defaults.foreign_key = inflect.singularize(tostring(name)), nil
  end
  local association = declare(self, name, "has_many", options, defaults)
  self.methods[name] = has_many_reader(self, name, association)
  return self
end

-- Queries ----------------------------------------------------------------------------------------------

function Model:all() return new_relation(self) end
function Model:where(where, ...) return new_relation(self, add_conditions({ model = self }, where, ...)) end
function Model:order(order) return Relation.order(new_relation(self), order) end
function Model:limit(n) return Relation.limit(new_relation(self), n) end
function Model:count(where, ...) return Relation.count(Model.where(self, where, ...)) end
function Model:exists(where, ...) return Relation.exists(Model.where(self, where, ...)) end
function Model:pluck(...) return Relation.pluck(new_relation(self), ...) end
function Model:ids() return Relation.ids(new_relation(self)) end
function Model:first() return Relation.first(Relation.order(new_relation(self), self.primary_key)) end

-- The first matching record, or nil.
function Model:find_by(where, ...) return Relation.first(Model.where(self, where, ...)) end

-- The record with this primary key; an error when there is none.
function Model:find(id)
  if id == nil or id == null then errors.raise(self.name .. ".find: the id is " .. tostring(id)) end
  local record = Model.find_by(self, { [self.primary_key] = id })
  if not record then errors.raise(string.format("%s.find: no %s with %s = %s", self.name, self.table,
    self.primary_key, tostring(id))) end
  return record
end

-- A record from attributes already at hand (a feed message's row image), without a query.
function Model:new(attributes)
  if type(attributes) ~= "table" then errors.raise(self.name .. ".new: attributes must be a table, got " .. type(attributes)) end
  local record = {}
  for k, v in pairs(attributes) do record[k] = v end
  return record_of(self, record)
end

-- Defines a model in the registry; the class methods above work as Venue.find(1) and Venue:find(1).
function Registry:define(name, options)
  check_identifier(name, "Model name")
  options = options or {}
  if type(options) ~= "table" then errors.raise("Model " .. name .. ": options must be a table, got " .. type(options)) end
  for key in pairs(options) do
    if key ~= "table" and key ~= "primary_key" then
      errors.raise(string.format("Model %s: unknown option '%s' (options are table, primary_key)", name, tostring(key)))
    end
  end
  local m = {
    name = name,
    table = check_identifier(options.table or inflect.tableize(name), "Model " .. name .. ": table"),
    primary_key = check_identifier(options.primary_key or "id", "Model " .. name .. ": primary_key"),
    associations = {}, methods = {}, registry = self,
  }
  for method, fn in pairs(Model) do
    m[method] = function(first, ...)
      if first == m then return fn(m, ...) end
      return fn(m, first, ...)
    end
  end
  m.record_meta = {
    __index = m.methods, __silo_model = m,
    __tostring = function(record) return string.format("#<%s %s=%s>", name, m.primary_key, tostring(record[m.primary_key])) end,
  }
  self.models[name] = setmetatable(m, { __tostring = function() return name end })
  return m
end

return model
