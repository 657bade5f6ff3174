-- silo.mongo against the Mongo endpoint of the local services (SILO_MONGO_URI). The Mongo test server re-types
-- whole numbers by size, so these specs compare values, never BSON kinds read back from the server.
local mongo = require "silo.mongo"
local bson = require "silo.bson"
local core = require "silo.core"
local config = require "silo.config"

local uri = config.get("mongo_uri")
-- a closed port on loopback: the "server down" case, without stopping the shared server
local closed_port_uri = "mongodb://127.0.0.1:1/silo?serverSelectionTimeoutMS=300&connectTimeoutMS=300"

local function ids(iterator, state)
  local list = {}
  for doc in iterator, state do list[#list + 1] = doc._id end
  return list
end

describe("silo.mongo", function()
  local client, coll

  before_each(function()
    client = mongo.connect(uri)
    coll = client:collection("spec_mongo_" .. core.random_hex(6))
  end)

  after_each(function()
    client:collection(coll:name()):drop()
    client:close()
  end)

  describe("connect", function()
    it("takes the database from the URI path", function()
      assert.equal(uri:match("^mongodb://[^/]+/([^?]+)"), client:database())
      assert.is_true(client:ping())
    end)

    it("uses the database silo when the URI has no path", function()
      local bare = mongo.connect((uri:gsub("^(mongodb://[^/]+)/[^?]*", "%1/")))
      assert.equal("silo", bare:database())
      bare:close()
    end)

    it("uses the mongo_uri setting without an argument", function()
      local default = mongo.connect()
      assert.equal(client:database(), default:database())
      default:close()
    end)

    it("rejects a malformed URI", function()
      assert.has_error(function() mongo.connect("http://127.0.0.1/") end,
        "mongo.connect: Invalid URI Schema, expecting 'mongodb://' or 'mongodb+srv://' (code 22)")
    end)

    it("reports a server that does not answer, with libmongoc's code", function()
      local ok, err = pcall(mongo.connect, closed_port_uri)
      assert.is_false(ok)
      assert.matches("^mongo.connect: No suitable servers found", err)
      assert.matches("127.0.0.1:1", err)
      assert.matches("%(code 13053%)$", err)
    end)

    it("refuses to work once closed", function()
      client:close()
      client:close()
      assert.has_error(function() coll:count() end, "count: the client is closed")
      assert.has_error(function() client:ping() end, "ping: the client is closed")
      assert.has_error(function() client:collection("x") end, "collection: the client is closed")
      assert.has_error(function() client:database() end, "database: the client is closed")
      client = mongo.connect(uri)
    end)
  end)

  describe("upsert", function()
    it("inserts, then replaces the whole document", function()
      local first = coll:upsert(7, { name = "a", tags = { "x", "y" }, extra = true })
      assert.same({ matched = 0, modified = 0, upserted = true, applied = true }, first)
      local second = coll:upsert(7, { name = "b" })
      assert.same({ matched = 1, modified = 1, upserted = false, applied = true }, second)
      local doc = coll:find_one({ _id = 7 })
      assert.equal("b", doc.name)
      assert.is_nil(doc.extra)
      assert.equal(1, coll:count())
    end)

    it("stores every mapped value", function()
      local at, id = core.datetime(1701234567123), bson.oid()
      coll:upsert("all", { s = "héllo", i = 42, f = 2.5, big = 9007199254740993LL, t = true, n = core.null, at = at,
                           oid = id, bin = bson.binary("\0\1"), list = { 1, "two", { three = 3 } }, empty = bson.array() })
      local doc = coll:find_one({ _id = "all" })
      assert.equal("héllo", doc.s)
      assert.is_true(doc.i == 42 and doc.f == 2.5 and doc.big == 9007199254740993LL)
      assert.is_true(doc.t)
      assert.equal(core.null, doc.n)
      assert.equal(at, doc.at)
      assert.equal(id, doc.oid)
      assert.equal("\0\1", doc.bin.data)
      assert.equal("two", doc.list[2])
      assert.equal(3, doc.list[3].three)
      assert.is_true(bson.is_array(doc.empty))
    end)

    it("accepts a write concern", function()
      assert.is_true(coll:upsert(1, { v = 1 }, { w = 1, j = true, wtimeout = 1000 }).applied)
      coll:upsert(2, { v = 2 }, { w = 0 })
      assert.equal(2, coll:count({ _id = 2, v = 2 }) + coll:count({ _id = 1 }))
    end)

    it("with a where condition writes only over matching documents, and says when it did not", function()
      local function stamped(version)
        return coll:upsert(9, { name = "v" .. version, _silo = { version = version } },
          { where = { ["_silo.version"] = { ["$lt"] = version } } })
      end
      assert.is_true(stamped(5).applied)
      assert.is_true(stamped(6).applied)
      local stale = stamped(4)
      assert.same({ matched = 0, modified = 0, upserted = false, applied = false }, stale)
      assert.is_false(stamped(6).applied)
      assert.equal("v6", coll:find_one({ _id = 9 }).name)
    end)

    it("raises the server's duplicate key error for a unique index", function()
      assert.equal("email_1", coll:create_index({ email = 1 }, { unique = true }))
      coll:upsert(1, { email = "a@example.com" })
      local ok, err = pcall(coll.upsert, coll, 2, { email = "a@example.com" })
      assert.is_false(ok)
      assert.matches("^upsert: E11000 duplicate key error", err)
      assert.matches("%(code 11000%)$", err)
      -- also with a where condition: the conflict is not on _id, so it is not a stale write
      assert.has_error(function() coll:upsert(3, { email = "a@example.com" }, { where = { v = 1 } }) end)
    end)

    it("checks its arguments", function()
      assert.has_error(function() coll:upsert(nil, {}) end, "bad argument #1 to 'upsert' (an _id expected, got nil)")
      assert.has_error(function() coll:upsert(1, "doc") end, "bad argument #2 to 'upsert' (table expected, got string)")
      assert.has_error(function() coll:upsert(1, {}, 5) end, "bad argument #3 to 'upsert' (table expected, got number)")
      assert.has_error(function() coll:upsert(1, {}, { wait = 1 }) end, "upsert: unknown option wait")
      assert.has_error(function() coll:upsert(1, {}, { [1] = 1 }) end, "upsert: option names must be strings")
      assert.has_error(function() coll:upsert(1, {}, { w = true }) end, "upsert: option w must be a number or a string")
      assert.has_error(function() coll:upsert(1, {}, { j = 1 }) end, "upsert: option j must be a boolean")
      assert.has_error(function() coll:upsert(1, {}, { wtimeout = 0.5 }) end,
        "upsert: option wtimeout must be an integer")
      assert.has_error(function() coll:upsert(1, {}, { wtimeout = -1 }) end,
        "upsert: option wtimeout must not be negative")
      assert.has_error(function() coll:upsert(1, {}, { where = 1 }) end, "upsert: option where must be a table")
      assert.has_error(function() coll:upsert(1, { f = print }) end, "upsert: cannot encode a function at f")
      assert.has_error(function() coll:upsert(print, {}) end, "upsert: _id: cannot encode a function")
      assert.has_error(function() coll.upsert({}, 1, {}) end,
        "bad argument #1 to 'upsert' (silo.mongo.collection expected, got table)")
    end)

    it("reports what the server refuses", function()
      assert.has_error(function() coll:upsert(1, { ["$set"] = { a = 1 } }) end,
        "upsert: Invalid key '$set': replace prohibits $ operators (code 22)")
      local ok, err = pcall(coll.upsert, coll, 1, { big = string.rep("x", 17 * 1024 * 1024) })
      assert.is_false(ok)
      assert.matches("^upsert: Document 0 is too large", err)
    end)
  end)

  describe("replace", function()
    it("replaces the first match and never inserts", function()
      coll:upsert(1, { kind = "a", v = 1 })
      assert.same({ matched = 1, modified = 1, upserted = false, applied = true },
        coll:replace({ kind = "a" }, { kind = "a", v = 2 }))
      assert.equal(2, coll:find_one({ _id = 1 }).v)
      assert.same({ matched = 0, modified = 0, upserted = false, applied = true },
        coll:replace({ kind = "zzz" }, { kind = "zzz" }))
      assert.equal(1, coll:count())
    end)

    it("checks its arguments and reports the server's refusal", function()
      assert.has_error(function() coll:replace(1, {}) end, "bad argument #1 to 'replace' (table expected, got number)")
      assert.has_error(function() coll:replace({}, {}, { upsert = true }) end, "replace: unknown option upsert")
      assert.has_error(function() coll:replace({}, { ["$inc"] = { a = 1 } }) end,
        "replace: Invalid key '$inc': replace prohibits $ operators (code 22)")
    end)
  end)

  describe("find and find_one", function()
    before_each(function()
      for i = 1, 6 do coll:upsert(i, { n = i, odd = i % 2 == 1, name = "doc" .. i }) end
    end)

    it("iterates over matches with sort, limit, skip and projection", function()
      assert.same({ 5, 3, 1 }, ids(coll:find({ odd = true }, { sort = { n = -1 } })))
      assert.same({ 1, 3 }, ids(coll:find({}, { sort = { { "odd", -1 }, { "n", 1 } }, limit = 2 })))
      assert.same({ 3, 4 }, ids(coll:find(nil, { sort = { n = 1 }, skip = 2, limit = 2, batch_size = 1 })))
      for doc in coll:find({ _id = 1 }, { projection = { name = 1 } }) do
        assert.same({ _id = 1, name = "doc1" }, doc)
      end
      assert.same({}, ids(coll:find({ n = 100 })))
    end)

    it("returns one document or nil", function()
      assert.equal("doc3", coll:find_one({ n = 3 }).name)
      assert.equal(6, coll:find_one({}, { sort = { n = -1 } }).n)
      assert.is_nil(coll:find_one({ n = 100 }))
      assert.is_nil(coll:find_one({ _id = 1 }, { projection = { n = 1 } }).name)
    end)

    it("interleaves open cursors with other operations", function()
      local cursors = {}
      for i = 1, 200 do
        local next_doc, cursor = coll:find({}, { sort = { n = 1 }, batch_size = 2 })
        assert.equal(1, next_doc(cursor).n)
        cursors[i] = cursor
      end
      coll:upsert(7, { n = 7 })
      assert.equal(2, cursors[200]:next().n)
      for _, cursor in ipairs(cursors) do cursor:close() end
      assert.is_nil(cursors[1]:next())
      for _ = 1, 100 do
        for _ in coll:find({}) do break end
      end
      assert.equal(7, coll:count())
    end)

    it("lets open cursors finish after the client is closed", function()
      local next_doc, cursor = coll:find({}, { sort = { n = 1 }, batch_size = 2 })
      assert.equal(1, next_doc(cursor).n)
      client:close()
      local rest = ids(next_doc, cursor)
      assert.same({ 2, 3, 4, 5, 6 }, rest)
      assert.has_error(function() coll:find({}) end, "find: the client is closed")
      client = mongo.connect(uri)
    end)

    it("checks its arguments and reports the server's errors", function()
      assert.has_error(function() coll:find_one(42) end, "bad argument #1 to 'find_one' (table expected, got number)")
      assert.has_error(function() coll:find({}, { limt = 1 }) end, "find: unknown option limt")
      assert.has_error(function() coll:find({}, { sort = "n" }) end, "find: option sort must be a table")
      assert.has_error(function() coll:find({}, { limit = -1 }) end, "find: option limit must not be negative")
      assert.has_error(function() coll:find({}, { sort = { { 1, 1 } } }) end,
        "find: sort must be {field = order} or {{field, order}, ...}")
      assert.has_error(function() coll:find_one({}, { limit = 2 }) end, "find_one: unknown option limit")
      local ok, err = pcall(function() for _ in coll:find({ n = { ["$bogus"] = 1 } }) do end end)
      assert.is_false(ok)
      assert.matches("find: .*%$bogus.* %(code %d+%)$", err)
      ok, err = pcall(coll.find_one, coll, { n = { ["$bogus"] = 1 } })
      assert.is_false(ok)
      assert.matches("^find_one: .*%$bogus.* %(code %d+%)$", err)
    end)
  end)

  describe("delete and count", function()
    before_each(function()
      for i = 1, 5 do coll:upsert(i, { even = i % 2 == 0 }) end
    end)

    it("count matching documents", function()
      assert.equal(5, coll:count())
      assert.equal(2, coll:count({ even = true }))
      assert.equal(1, coll:count({}, { skip = 1, limit = 1 }))
    end)

    it("delete every match and say how many", function()
      assert.equal(3, coll:delete({ even = false }))
      assert.equal(0, coll:delete({ even = false }, { w = 1 }))
      assert.equal(2, coll:count())
    end)

    it("check their arguments and report the server's errors", function()
      assert.has_error(function() coll:delete() end, "bad argument #1 to 'delete' (table expected, got nil)")
      assert.has_error(function() coll:count({}, { sort = 1 }) end, "count: unknown option sort")
      assert.has_error(function() coll:delete({ even = { ["$bogus"] = 1 } }) end,
        "delete: unknown query operator $bogus (code 1)")
      assert.has_error(function() coll:count({ even = { ["$bogus"] = 1 } }) end,
        "count: unknown query operator $bogus (code 1)")
    end)
  end)

  describe("create_index and drop", function()
    it("names indexes after their ordered keys, or as asked", function()
      assert.equal("a_1_b_-1", coll:create_index({ { "a", 1 }, { "b", -1 } }))
      assert.equal("by_c", coll:create_index({ c = 1 }, { name = "by_c", sparse = true }))
      assert.has_error(function() coll:create_index("a") end,
        "bad argument #1 to 'create_index' (table expected, got string)")
      assert.has_error(function() coll:create_index({ a = print }) end, "create_index: cannot encode a function at a")
    end)

    it("drop says whether the collection existed", function()
      coll:upsert(1, {})
      assert.is_true(coll:drop())
      assert.is_false(coll:drop())
    end)
  end)

  describe("bulk", function()
    it("sends many upserts and deletes in one execute, and can be reused", function()
      local bulk = coll:bulk({ ordered = false, w = 1 })
      for i = 1, 100 do bulk:upsert(i, { n = i }) end
      assert.equal(100, bulk:pending())
      assert.same({ matched = 0, modified = 0, upserted = 100, deleted = 0 }, bulk:execute())
      assert.equal(0, bulk:pending())
      bulk:upsert(1, { n = -1 })
      bulk:delete({ n = { ["$gt"] = 50 } })
      assert.same({ matched = 1, modified = 1, upserted = 0, deleted = 50 }, bulk:execute())
      assert.equal(50, coll:count())
      assert.same({ matched = 0, modified = 0, upserted = 0, deleted = 0 }, bulk:execute())
    end)

    it("reports the first write error with its code", function()
      coll:create_index({ k = 1 }, { unique = true })
      local bulk = coll:bulk()
      bulk:upsert(1, { k = "same" })
      bulk:upsert(2, { k = "same" })
      local ok, err = pcall(bulk.execute, bulk)
      assert.is_false(ok)
      assert.matches("^bulk:execute: E11000 duplicate key error.*%(code 11000%)$", err)
      assert.equal(0, bulk:pending())
    end)

    it("checks its arguments", function()
      assert.has_error(function() coll:bulk({ order = true }) end, "bulk: unknown option order")
      local bulk = coll:bulk()
      assert.has_error(function() bulk:upsert(nil, {}) end, "bad argument #1 to 'upsert' (an _id expected, got nil)")
      assert.has_error(function() bulk:upsert(1, { f = print }) end, "bulk:upsert: cannot encode a function at f")
      assert.has_error(function() bulk:upsert(1, { ["$set"] = {} }) end,
        "bulk:upsert: Invalid key '$set': replace prohibits $ operators (code 22)")
      assert.equal(0, bulk:pending())
      bulk:upsert(1, { ok = true })
      assert.equal(1, bulk:execute().upserted)
      assert.has_error(function() bulk:delete("x") end, "bad argument #1 to 'delete' (table expected, got string)")
    end)
  end)
end)
