-- What listen blocks publish() becomes feed messages, sent only for the blocks that succeeded.
local message = require "silo.feed.message"
local dsl = require "spec.support.dsl"
local support = require "spec.support.feed"

describe("what listen blocks publish", function()
  it("becomes a hand-made feed message", function()
    local body, key, id = message.from_published {
      op = "create", model = "EmailRequest", attributes = { kind = "welcome", user_id = 7 } }
    assert.equal("create.EmailRequest", key)
    assert.matches("^publish%-%x+$", id)
    assert.same({ kind = "welcome", user_id = 7 }, body.attributes)
    assert.equal("email_requests", body.table)
    assert.is_number(body.source.ts)
  end)

  it("must be a table with an op and a model", function()
    assert.has_error(function() message.from_published("hello") end,
      "publish: a message is a table { op =, model =, attributes = }, got string")
    assert.has_error(function() message.from_published { op = "send", model = "EmailRequest" } end,
      "op must be create, update or destroy, got 'send'")
  end)

  it("reaches the exchange from the blocks that succeeded, not from one that failed", function()
    local app = dsl.load_app {
      ["models.lua"] = 'Model("User")\n',
      ["silovators/mail.lua"] = [[
local S = AsyncObserver("MailSilovator")
S:listen("create", User, function()
  publish({ op = "create", model = "EmailRequest", attributes = { kind = "welcome", user_id = user.id } })
end)
S:listen("create", User, function()
  publish({ op = "create", model = "EmailRequest", attributes = { kind = "never sent" } })
  error("the mailer's template is missing")
end)
return S
]],
    }
    local results = assert(app:dispatch {
      op = "create", model = "User", table = "users", id = 7, attributes = { id = 7, email = "a@example.com" },
      source = { ts = 1 } })
    assert.equal(2, #results)
    assert.is_false(results[2].ok)
    assert.matches("silovators/mail.lua:7: the mailer's template is missing", results[2].error)

    local broker, exchange, queue = support.open_queue()
    finally(function()
      broker:queue_delete(queue)
      broker:exchange_delete(exchange)
      broker:close()
    end)
    broker:publish_batch(message.published_envelopes(exchange, results))
    local got = support.drain(broker, 0.5)
    assert.equal(1, #got)
    assert.equal("create.EmailRequest", got[1].key)
    assert.same({ kind = "welcome", user_id = 7 }, got[1].body.attributes)
    assert.is_true(got[1].persistent)
  end)
end)
