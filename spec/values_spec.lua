-- The one value mapping between Lua, BSON and JSON (silo.bson, silo.json): see README "silo.mongo and the value
-- mapping". No server involved.
local bson = require "silo.bson"
local json = require "silo.json"
local core = require "silo.core"
local ffi = require "ffi"

local function round_trip(value)
  return bson.decode(bson.encode(value))
end

local function is_int64(v)
  return type(v) == "cdata" and ffi.istype("int64_t", v)
end

describe("the value mapping", function()
  describe("tables", function()
    it("encodes string-keyed tables as documents and 1..n tables as arrays", function()
      assert.equal('{"a":1,"b":[1,2,3]}', json.encode({ b = { 1, 2, 3 }, a = 1 }))
      assert.equal('[{"x":"y"},[]]', json.encode({ { x = "y" }, bson.array() }))
    end)

    it("encodes an empty table as a document, and as an array when marked", function()
      assert.equal("{}", json.encode({}))
      assert.equal("[]", json.encode(bson.array()))
      assert.equal("[]", json.encode(bson.array({})))
      assert.equal('{"a":[]}', json.encode({ a = json.array() }))
    end)

    it("marks decoded arrays, so an empty array stays an array", function()
      local doc = round_trip({ list = bson.array(), doc = {}, items = { 1, 2 } })
      assert.is_true(bson.is_array(doc.list))
      assert.is_true(bson.is_array(doc.items))
      assert.is_false(bson.is_array(doc.doc))
      assert.equal('{"doc":{},"items":[1,2],"list":[]}', json.encode(doc))
    end)

    it("writes a document's keys in byte order", function()
      assert.equal('{"A":1,"_id":2,"a":3,"b":4}', json.encode({ b = 4, a = 3, _id = 2, A = 1 }))
    end)

    it("refuses tables that are neither documents nor arrays, naming where", function()
      assert.has_error(function() json.encode({ a = { [1] = 1, [3] = 3 } }) end,
        "json.encode: a table must have only string keys (a document) or keys 1..n (an array) at a")
      assert.has_error(function() json.encode({ 1, x = 2 }) end,
        "json.encode: a table must have only string keys (a document) or keys 1..n (an array)")
      assert.has_error(function() json.encode({ [true] = 1 }) end,
        "json.encode: a table must have only string keys (a document) or keys 1..n (an array)")
      assert.has_error(function() json.encode({ [1.5] = 1 }) end,
        "json.encode: a table must have only string keys (a document) or keys 1..n (an array)")
      assert.has_error(function() json.encode(bson.array({ x = 1 })) end,
        "json.encode: an array (silo.bson.array) must have keys 1..n only")
    end)

    it("bounds nesting depth, so a cycle is an error and not a crash", function()
      local cycle = {}
      cycle.self = cycle
      local ok, err = pcall(json.encode, cycle)
      assert.is_false(ok)
      assert.matches("^json.encode: nested more than 100 levels deep %(or a table contains itself%) at self%.self", err)

      local deep = {}
      for _ = 1, bson.max_depth - 1 do deep = { deep } end
      assert.equal(bson.max_depth - 1, #(json.encode(deep):match("^%[*")))
      assert.has_error(function() json.encode({ deep }) end)
    end)
  end)

  describe("scalars", function()
    it("keeps integers, int64 and doubles apart", function()
      assert.equal('{"big":4294967296,"f":1.5,"i":42,"n":-7}', json.encode({ i = 42, n = -7, big = 4294967296, f = 1.5 }))
      assert.equal('{"big":{"$numberLong":"4294967296"},"i":{"$numberInt":"42"}}',
        json.encode({ i = 42, big = 4294967296 }, "canonical"))
      local doc = round_trip({ i = 42, f = 0.25, i64 = 5LL, huge = 9007199254740993LL, neg = -2 ^ 40 })
      assert.equal(42, doc.i)
      assert.equal(0.25, doc.f)
      assert.is_true(is_int64(doc.i64) and doc.i64 == 5LL)
      assert.is_true(is_int64(doc.huge) and doc.huge == 9007199254740993LL)
      assert.equal(-2 ^ 40, doc.neg)
      assert.equal(bson.encode({ x = 5LL }), bson.encode(round_trip({ x = 5LL })))
    end)

    it("gives an integral double back as an integer (Lua cannot tell 2.0 from 2)", function()
      assert.equal('{"v":2}', json.encode(json.decode('{"v":2.0}')))
    end)

    it("keeps -0, infinities and NaN as doubles", function()
      assert.equal('{"v":-0.0}', json.encode({ v = -0.0 }))
      assert.equal('{"v":{"$numberDouble":"Infinity"}}', json.encode({ v = math.huge }))
      local nan = round_trip({ v = 0 / 0 }).v
      assert.is_true(nan ~= nan)
    end)

    it("maps null, booleans and datetimes", function()
      local doc = round_trip({ n = core.null, t = true, f = false, at = core.datetime(1701234567123) })
      assert.equal(core.null, doc.n)
      assert.is_true(doc.t)
      assert.is_false(doc.f)
      assert.equal(core.datetime(1701234567123), doc.at)
      assert.equal('{"at":{"$date":"2023-11-29T05:09:27.123Z"},"n":null}',
        json.encode({ n = json.null, at = core.datetime(1701234567123) }))
    end)

    it("represents ObjectIds as comparable userdata", function()
      local id = bson.oid("5f43a1d2e3b4c5d6e7f80912")
      assert.equal("5f43a1d2e3b4c5d6e7f80912", tostring(id))
      assert.equal(id, round_trip({ id = id }).id)
      assert.not_equal(bson.oid(), bson.oid())
      assert.equal('{"_id":{"$oid":"5f43a1d2e3b4c5d6e7f80912"}}', json.encode({ _id = id }))
      assert.has_error(function() bson.oid("xyz") end, "bad argument #1 to 'oid' (24 hexadecimal digits expected)")
    end)

    it("represents binaries as {data, subtype} tables", function()
      local doc = round_trip({ b = bson.binary("\0\1\255", 4) })
      assert.equal("\0\1\255", doc.b.data)
      assert.equal(4, doc.b.subtype)
      assert.equal('{"b":{"$binary":{"base64":"AAH/","subType":"04"}}}', json.encode(doc))
      assert.has_error(function() bson.binary("x", 256) end, "bad argument #2 to 'binary' (subtype must be 0..255)")
      assert.has_error(function() json.encode({ b = setmetatable({ data = 1 }, getmetatable(bson.binary(""))) }) end,
        "json.encode: a binary value's data must be a string at b")
    end)

    it("keeps BSON types Lua has no form for as opaque values", function()
      local value = json.decode('{"d":{"$numberDecimal":"1.10"},"ts":{"$timestamp":{"t":5,"i":1}}}')
      assert.equal("userdata", type(value.d))
      assert.equal('{"$numberDecimal":"1.10"}', tostring(value.d))
      assert.equal('{"d":{"$numberDecimal":"1.10"},"ts":{"$timestamp":{"t":5,"i":1}}}', json.encode(value))
    end)

    it("refuses invalid UTF-8 in strings and keys", function()
      assert.has_error(function() json.encode({ a = { s = "caf\233" } }) end,
        "json.encode: invalid UTF-8 in a string at a.s")
      assert.has_error(function() json.encode({ ["k\255"] = 1 }) end, "json.encode: invalid UTF-8 in a key at k\255")
      assert.has_error(function() json.encode({ ["a\0b"] = 1 }) end, "json.encode: a key contains a NUL byte at a")
      assert.equal('{"s":"a\\u0000b"}', json.encode({ s = "a\0b" }))
    end)

    it("refuses values with no BSON form", function()
      assert.has_error(function() json.encode({ f = print }) end, "json.encode: cannot encode a function at f")
      assert.has_error(function() json.encode({ list = { 1, coroutine.create(print) } }) end,
        "json.encode: cannot encode a thread at list.2")
      assert.has_error(function() json.encode({ p = io.stdout }) end, "json.encode: cannot encode a userdata at p")
      assert.has_error(function() json.encode({ c = ffi.new("double", 1) }) end,
        "json.encode: cannot encode a cdata other than int64_t at c")
      assert.has_error(function() bson.encode("x") end, "bson.encode: a table expected, got string")
    end)
  end)

  describe("silo.json", function()
    it("prints ordinary values as plain compact JSON", function()
      assert.equal('{"id":42,"name":"x"}', json.encode({ id = 42, name = "x" }))
      assert.equal('{"s":"a \\"quoted\\" {string}, with : spaces"}',
        json.encode({ s = 'a "quoted" {string}, with : spaces' }))
      assert.equal("42", json.encode(42))
      assert.equal('"x"', json.encode("x"))
      assert.equal("null", json.encode(json.null))
    end)

    it("prints canonical extended JSON on request", function()
      assert.equal('{"id":{"$numberInt":"42"}}', json.encode({ id = 42 }, "canonical"))
      assert.has_error(function() json.encode({}, "pretty") end,
        "bad argument #2 to 'encode' (\"relaxed\" or \"canonical\" expected)")
    end)

    it("parses objects, arrays and scalars", function()
      local message = json.decode('{"op":"update","id":42,"changes":{"name":["a","b"]},"n":null,"big":3000000000}')
      assert.equal("update", message.op)
      assert.equal(42, message.id)
      assert.same({ "a", "b" }, { message.changes.name[1], message.changes.name[2] })
      assert.equal(json.null, message.n)
      assert.equal(3000000000, message.big)
      assert.equal("number", type(message.big))
      assert.is_true(is_int64(json.decode("9007199254740993")))
      assert.equal(2, json.decode(" [1, 2]")[2])
      assert.equal(1.5, json.decode("1.5"))
      assert.is_true(json.decode("true"))
    end)

    it("reports malformed JSON", function()
      assert.has_error(function() json.decode('{"a":') end, "json.decode: Incomplete JSON")
      assert.has_error(function() json.decode('1, "v": 2') end, "json.decode: more than one JSON value")
      assert.has_error(function() json.decode('{"a":"\255"}') end, "json.decode: invalid bytes in UTF8 string")
      local ok, err = pcall(json.decode, string.rep("[", 200) .. string.rep("]", 200))
      assert.is_false(ok)
      assert.matches("LEVELS_EXCEEDED", err)
    end)
  end)

  describe("silo.bson", function()
    it("reports bytes that are not BSON", function()
      assert.has_error(function() bson.decode("nope") end, "bson.decode: invalid BSON (at byte 0)")
    end)
  end)

  describe("round trip property", function()
    local seed = os.time()
    math.randomseed(seed)

    local function random_string()
      local parts = {}
      for i = 1, math.random(0, 8) do
        parts[i] = ({ "a", "é", "z", " ", "\"", "\\", "0", "ü" })[math.random(8)]
      end
      return table.concat(parts)
    end

    local scalars = {
      function() return math.random(-1000, 1000) end,
      function() return math.random() * 1e6 - 5e5 end,
      function() return (math.random(-2 ^ 31, 2 ^ 31)) * 2 ^ 20 end,
      function() return 9007199254740992LL * math.random(2, 1000) end,
      function() return math.random(1, 1000) * 1LL end,
      function() return random_string() end,
      function() return math.random() < 0.5 end,
      function() return core.null end,
      function() return core.datetime(math.random(-2 ^ 40, 2 ^ 41)) end,
      function() return bson.oid() end,
      function() return bson.binary(random_string(), math.random(0, 5)) end,
    }

    local function random_value(depth)
      local pick = math.random(depth > 4 and 1 or 0, #scalars + 3)
      if pick == 0 or pick > #scalars + 1 then
        local t = {}
        if math.random() < 0.5 then
          for i = 1, math.random(0, 5) do t[i] = random_value(depth + 1) end
          if #t == 0 and math.random() < 0.5 then bson.array(t) end
        else
          for _ = 1, math.random(0, 5) do t["k" .. random_string()] = random_value(depth + 1) end
        end
        return t
      end
      return scalars[math.min(pick, #scalars)]()
    end

    it("gives back the same BSON after Lua, for 2,000 random documents (seed printed on failure)", function()
      for i = 1, 2000 do
        local doc = {}
        for k = 1, math.random(0, 6) do doc["f" .. k] = random_value(1) end
        local bytes = bson.encode(doc)
        local again = bson.encode(bson.decode(bytes))
        assert(bytes == again, ("seed %d, document %d: %s became %s"):format(seed, i, json.encode(doc),
          json.encode(bson.decode(again))))
        local text = json.encode(doc)
        assert(json.encode(json.decode(text)) == text, ("seed %d: JSON %s"):format(seed, text))
      end
    end)
  end)
end)
