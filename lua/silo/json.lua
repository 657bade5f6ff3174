-- silo.json: JSON text <-> Lua values through the one value mapping (silo.bson, libbson's relaxed extended
-- JSON): {"id":42,"name":"x"} stays plain; int64 beyond 2^53, dates, ObjectIds and binaries use "$"-keys.
local bson = require "silo.bson"

local json = { null = bson.null, array = bson.array, is_array = bson.is_array }

-- json.encode(value [, "canonical"]): compact JSON text; tables follow silo.bson's array/document rule.
function json.encode(value, mode)
  return bson.to_json(value, mode)
end

-- json.decode(text): the value; integers within 2^53 are Lua numbers, larger ones int64_t cdata.
function json.decode(text)
  return bson.from_json(text)
end

return json
