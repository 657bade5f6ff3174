-- silo.feed.message: one feed message from one row change, or made by hand (the format in README
-- "The feed message"), and how it is published.
local core = require "silo.core"
local inflect = require "silo.inflect"
local json = require "silo.json"

local message = {}

local operations = { insert = "create", update = "update", delete = "destroy" }

local function same_value(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or getmetatable(a) or getmetatable(b) or #a ~= #b then
    return false
  end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- {column = {old, new}} for every column whose value differs between the two row images.
function message.changes(before, after)
  local changed = {}
  for column, new in pairs(after) do
    local old = before[column]
    if not same_value(old, new) then changed[column] = { old, new } end
  end
  return changed
end

-- The same row change always gets the same id, so consumers can de-duplicate redeliveries.
function message.id(source, index)
  local position = source.gtid or (tostring(source.file) .. ":" .. tostring(source.pos))
  return position .. "/" .. index
end

-- change: { op = "insert" | "update" | "delete", table = ..., before = row, after = row }
-- model: { name = "Venue", table = "venues", primary_key = "id" }
-- source: { gtid = , file = , pos = , ts = } of the transaction; index: the row's place in it, from 1.
-- Returns the message table, its routing key and its message id.
function message.from_change(change, model, source, index)
  local op = assert(operations[change.op], "unknown row operation " .. tostring(change.op))
  local attributes = change.op == "delete" and change.before or change.after
  local body = {
    op = op,
    model = model.name,
    table = model.table,
    id = attributes[model.primary_key or "id"],
    attributes = attributes,
    source = source,
  }
  if change.op == "update" then body.changes = message.changes(change.before, change.after) end
  return body, op .. "." .. model.name, message.id(source, index)
end

-- A hand-made message of the same format, for applications that cannot use the binlog and for requests
-- between daemons. op: create, update or destroy. options: table (default: the model's tableized name),
-- attributes (default { id = id }), changes (updates only). Returns the message, its routing key and a fresh id.
function message.hand_made(op, model_name, id, options)
  options = options or {}
  local valid = { create = true, update = true, destroy = true }
  if not valid[op] then error("op must be create, update or destroy, got '" .. tostring(op) .. "'", 2) end
  if type(model_name) ~= "string" or not model_name:match("^%u[%w_]*$") then
    error("the model must be a class name like Venue, got '" .. tostring(model_name) .. "'", 2)
  end
  if options.changes and op ~= "update" then error("changes are only for update, not " .. op, 2) end
  local body = {
    op = op,
    model = model_name,
    table = options.table or inflect.tableize(model_name),
    id = id,
    attributes = options.attributes or { id = id },
    source = { ts = math.floor(core.now()), host = core.hostname(), pid = core.pid() },
  }
  if op == "update" then body.changes = options.changes or {} end
  return body, op .. "." .. model_name, "publish-" .. core.random_hex(12)
end

-- What a listen block gave publish() ({ op =, model =, id =, attributes =, changes = }, as EmailRequest.new
-- builds it), as a hand-made message of the feed's format: the message, its routing key and a fresh id.
function message.from_published(value)
  if type(value) ~= "table" then
    error("publish: a message is a table { op =, model =, attributes = }, got " .. type(value), 2)
  end
  return message.hand_made(value.op, value.model, value.id, {
    table = value.table, attributes = value.attributes, changes = value.changes,
  })
end

-- The envelopes of everything the successful blocks of one dispatch published, for publish_batch: a daemon
-- sends them, waits for the confirms, and only then acks the message it dispatched.
function message.published_envelopes(exchange, results)
  local list = {}
  for _, result in ipairs(results) do
    for _, value in ipairs(result.ok and result.published or {}) do
      list[#list + 1] = message.envelope(exchange, message.from_published(value))
    end
  end
  return list
end

-- What silo.amqp's publish_batch takes for one message: persistent JSON with the message id.
function message.envelope(exchange, body, routing_key, id)
  return {
    exchange = exchange, routing_key = routing_key, body = json.encode(body),
    persistent = true, content_type = "application/json", message_id = id, timestamp = body.source.ts,
  }
end

return message
