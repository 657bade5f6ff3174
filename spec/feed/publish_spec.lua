-- `silo-lua publish`: one hand-made message in the feed's format, confirmed by the shared RabbitMQ.
local cli = require "spec.support.cli"
local support = require "spec.support.feed"

describe("silo-lua publish", function()
  local broker, exchange, queue

  before_each(function()
    broker, exchange, queue = support.open_queue()
  end)

  after_each(function()
    support.cleanup(nil, nil, broker, exchange, queue)
  end)

  local function publish(args, env)
    env = env or {}
    env.SILO_EXCHANGE = env.SILO_EXCHANGE or exchange
    return cli.run({ "publish", unpack(args) }, { env = env })
  end

  it("publishes an update in the feed's format, persistent, with a message id", function()
    local r = publish { "update", "Venue", "42", "--attributes", '{"id":42,"name":"Union Chapel","city_id":7}',
                        "--changes=" .. '{"name":["Union Chapel (old)","Union Chapel"]}' }
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    local id = r.stdout:match("^published update%.Venue 42 to " .. exchange:gsub("%p", "%%%0")
      .. " %(message id (publish%-%x+)%)\n$")
    assert.truthy(id, r.stdout)

    local got = support.drain(broker)
    assert.equal(1, #got)
    local m = got[1]
    assert.equal("update.Venue", m.key)
    assert.equal(id, m.id)
    assert.is_true(m.persistent)
    assert.equal("application/json", m.content_type)
    assert.equal("update", m.body.op)
    assert.equal("Venue", m.body.model)
    assert.equal("venues", m.body.table)
    assert.equal(42, m.body.id)
    assert.same({ id = 42, name = "Union Chapel", city_id = 7 }, m.body.attributes)
    assert.same({ name = { "Union Chapel (old)", "Union Chapel" } }, m.body.changes)
    assert.equal("number", type(m.body.source.ts))
    assert.equal("number", type(m.body.source.pid))
    assert.equal("string", type(m.body.source.host))
  end)

  it("defaults the attributes to the id and gives create and destroy no changes", function()
    assert.equal(0, publish({ "create", "EventListing", "7" }).status)
    assert.equal(0, publish({ "destroy", "Venue", "abc" }).status)
    local got = support.drain(broker)
    assert.equal(2, #got)
    assert.equal("create.EventListing", got[1].key)
    assert.equal("event_listings", got[1].body.table)
    assert.same({ id = 7 }, got[1].body.attributes)
    assert.is_nil(got[1].body.changes)
    assert.equal("destroy.Venue", got[2].key)
    assert.equal("abc", got[2].body.id)
  end)

  it("exits 2 with the reason for a usage error, publishing nothing", function()
    local cases = {
      { {}, "needs OP MODEL ID" },
      { { "update", "Venue" }, "needs OP MODEL ID" },
      { { "change", "Venue", "1" }, "op must be create, update or destroy, got 'change'" },
      { { "create", "venue", "1" }, "the model must be a class name like Venue, got 'venue'" },
      { { "create", "Venue", "1", "--changes", "{}" }, "changes are only for update, not create" },
      { { "update", "Venue", "1", "--attributes", "[1,2" }, "--attributes must be a JSON object: " },
      { { "update", "Venue", "1", "--changes", "3" }, "--changes must be a JSON object: got number" },
      { { "update", "Venue", "1", "--attributes" }, "--attributes needs a value" },
      { { "update", "Venue", "1", "--colour", "red" }, "unknown flag '--colour'" },
    }
    for _, case in ipairs(cases) do
      local r = publish(case[1])
      assert.equal(2, r.status)
      assert.equal("", r.stdout)
      assert.equal("silo-lua publish: " .. case[2], r.stderr:sub(1, #("silo-lua publish: " .. case[2])))
      assert.matches("%(see silo%-lua help publish%)\n$", r.stderr)
    end
    assert.same({}, support.drain(broker, 0.5))
  end)

  it("exits 1 naming the broker it cannot reach", function()
    local r = publish({ "create", "Venue", "1" }, { SILO_AMQP_URL = "amqp://guest:secret@127.0.0.1:1/silo" })
    assert.equal(1, r.status)
    assert.matches("^silo%-lua publish: connect: cannot connect to amqp://guest:%*%*%*@127%.0%.0%.1:1/silo: [^\n]+\n$",
      r.stderr)
  end)
end)
