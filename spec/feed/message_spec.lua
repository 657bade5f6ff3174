local message = require "silo.feed.message"
local core = require "silo.core"

local venue = { name = "Venue", table = "venues", primary_key = "id" }
local source = { gtid = "0-1-1234", file = "silo-bin.000003", pos = 8812, ts = 1701234567 }

describe("silo.feed.message", function()
  it("turns an update into the design's message, with only the changed columns", function()
    local body, key, id = message.from_change({
      op = "update", table = "venues",
      before = { id = 42, name = "Union Chapel (old)", city_id = 7 },
      after = { id = 42, name = "Union Chapel", city_id = 7 },
    }, venue, source, 1)
    assert.same({
      op = "update", model = "Venue", table = "venues", id = 42,
      attributes = { id = 42, name = "Union Chapel", city_id = 7 },
      changes = { name = { "Union Chapel (old)", "Union Chapel" } },
      source = source,
    }, body)
    assert.equal("update.Venue", key)
    assert.equal("0-1-1234/1", id)
  end)

  it("names creates and destroys, with the before-image for a destroy and no changes", function()
    local created, create_key = message.from_change({ op = "insert", after = { id = 1, name = "a" } }, venue, source, 2)
    assert.equal("create", created.op)
    assert.equal("create.Venue", create_key)
    assert.is_nil(created.changes)
    local destroyed, destroy_key = message.from_change({ op = "delete", before = { id = 9, name = "b" } }, venue, source, 3)
    assert.equal("destroy", destroyed.op)
    assert.equal(9, destroyed.id)
    assert.same({ id = 9, name = "b" }, destroyed.attributes)
    assert.equal("destroy.Venue", destroy_key)
  end)

  it("compares NULL, 64-bit integers, datetimes and sets by value", function()
    local before = { a = core.null, b = 1152921504606846976LL, c = core.datetime(5), d = { "x", "y" } }
    local after = { a = core.null, b = 1152921504606846976LL, c = core.datetime(5), d = { "x", "y" } }
    assert.same({}, message.changes(before, after))
    after.a, after.c, after.d = "now set", core.datetime(6), { "x" }
    local changed = message.changes(before, after)
    assert.equal(core.null, changed.a[1])
    assert.equal("now set", changed.a[2])
    assert.equal(core.datetime(6), changed.c[2])
    assert.same({ "x" }, changed.d[2])
    assert.is_nil(changed.b)
  end)

  it("gives a row the same message id every time, from its transaction's position", function()
    assert.equal(message.id(source, 7), message.id(source, 7))
    assert.equal("silo-bin.000003:8812/7", message.id({ file = "silo-bin.000003", pos = 8812 }, 7))
  end)

  it("refuses an unknown row operation", function()
    assert.has_error(function() message.from_change({ op = "truncate" }, venue, source, 1) end,
      "unknown row operation truncate")
  end)
end)
