-- silo.memcached against the real memcached (SILO_MEMCACHED_SERVERS).
local memcached = require "silo.memcached"
local core = require "silo.core"

describe("silo.memcached", function()
  local client, prefix
  before_each(function()
    client = memcached.connect()
    prefix = "spec:memcached:" .. core.random_hex(4) .. ":"
  end)
  after_each(function() client:close() end)

  it("gets, sets, adds and deletes", function()
    local key = prefix .. "a"
    assert.is_nil(client:get(key))
    assert.is_true(client:add(key, "first", 60))
    assert.is_false(client:add(key, "second", 60))
    assert.equal("first", client:get(key))
    assert.is_true(client:set(key, "third", 60))
    assert.equal("third", client:get(key))
    assert.is_true(client:delete(key))
    assert.is_false(client:delete(key))
    assert.is_nil(client:get(key))
    assert.is_true(client:set(key, "", 0))
    assert.equal("", client:get(key))
  end)

  it("compares and swaps with the token from gets", function()
    local key = prefix .. "cas"
    assert.is_nil(client:gets(key))
    client:set(key, "v1", 60)
    local value, token = client:gets(key)
    assert.equal("v1", value)
    assert.is_true(client:cas(key, "v2", 60, token))
    assert.same({ false, "exists" }, { client:cas(key, "v3", 60, token) })
    assert.equal("v2", client:get(key))
    client:delete(key)
    assert.same({ false, "not found" }, { client:cas(key, "v4", 60, token) })
  end)

  it("increments, creating the counter from an initial value when asked", function()
    local key = prefix .. "n"
    assert.is_nil(client:incr(key, 1))
    assert.equal(100, client:incr(key, 1, { initial = 100, ttl = 60 }))
    assert.equal(101, client:incr(key))
    assert.equal(111, client:incr(key, 10, { initial = 5 }))
  end)

  it("lets entries expire after their TTL", function()
    client:set(prefix .. "short", "soon gone", 1)
    client:add(prefix .. "long", "stays", 60)
    core.sleep(2.5)
    assert.is_nil(client:get(prefix .. "short"))
    assert.equal("stays", client:get(prefix .. "long"))
  end)

  it("spreads keys over the server list and names the server in errors", function()
    local pair = memcached.connect(require("silo.config").get("memcached_servers") .. ",127.0.0.1:1",
      { connect_timeout = 0.5, timeout = 0.5 })
    finally(function() pair:close() end)
    local stored, refused = 0, 0
    for i = 1, 30 do
      local ok, err = pcall(pair.set, pair, prefix .. "spread" .. i, "x", 60)
      if ok then
        stored = stored + 1
      else
        refused = refused + 1
        assert.matches("^memcached set '" .. prefix:gsub("%p", "%%%0") .. "spread%d+': .+ %(server 127%.0%.0%.1:1%)$", err)
      end
    end
    assert.is_true(stored > 0)
    assert.is_true(refused > 0)
  end)

  it("reports bad keys, unreachable servers, bad arguments and closed clients", function()
    assert.has_error(function() client:get("has spaces") end,
      "memcached get 'has spaces': A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE, Key provided had invalid character.")
    local down = memcached.connect("127.0.0.1:1", { connect_timeout = 0.5 })
    local ok, err = pcall(down.get, down, "k")
    assert.is_false(ok)
    assert.matches("^memcached get 'k': CONNECTION FAILURE.* %(server 127%.0%.0%.1:1%)$", err)
    down:close()
    assert.has_error(function() memcached.connect("") end, "memcached: no servers in '' (expected host:port,host:port)")
    assert.has_error(function() client:set(prefix .. "k", "v", -1) end,
      "bad argument #3 to 'set' (ttl must not be negative)")
    assert.has_error(function() client:cas(prefix .. "k", "v", 1, "token") end,
      "bad argument #4 to 'cas' (cas token from gets expected)")
    assert.has_error(function() client:incr(prefix .. "k", 1, { initial = "x" }) end,
      "bad argument #3 to 'incr' (initial must be an integer)")
    client:close()
    assert.has_error(function() client:get("k") end, "memcached: the client is closed")
    client = memcached.connect()
  end)
end)
