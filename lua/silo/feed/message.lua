-- silo.feed.message: one feed message from one row change (the format in README "The feed message").
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

return message
