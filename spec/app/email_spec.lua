-- silovators/email.lua: the requests it publishes for users created and deleted.
local app = require "spec.support.app"

describe("the email silovator", function()
  local context = app.context({ "email" })
  setup(context.open)
  teardown(context.close)

  local function published(results)
    assert.equal(1, #results)
    return results[1].published
  end

  local function email_request(kind, user_id, email)
    return { op = "create", model = "EmailRequest", attributes = { kind = kind, user_id = user_id, email = email } }
  end

  local function new_user(name)
    return app.insert(context.db, "users",
      { username = name, email = name .. "@example.com", created_at = "2026-11-28 12:00:00" })
  end

  it("publishes a welcome request for a new user", function()
    local created = new_user("mika")
    local results = context.runtime.dispatch(created)
    assert.same({ email_request("welcome", created.id, "mika@example.com") }, published(results))
  end)

  it("publishes a goodbye request to the address a user had when deleted", function()
    local created = new_user("oats")
    local results = context.runtime.dispatch(app.update(context.db, "users", created.id, { deleted = 1, email = "" }))
    assert.same({ email_request("goodbye", created.id, "oats@example.com") }, published(results))
  end)

  it("publishes nothing when a user is undeleted or changes anything else", function()
    local created = new_user("lexington")
    context.runtime.dispatch(app.update(context.db, "users", created.id, { deleted = 1 }))
    local undeleted = context.runtime.dispatch(app.update(context.db, "users", created.id, { deleted = 0 }))
    assert.same({}, published(undeleted))
    local renamed = context.runtime.dispatch(app.update(context.db, "users", created.id, { username = "lex" }))
    assert.same({}, renamed)
  end)
end)
