-- models.lua: a model for every table of the schema, each observed by the feed.
local app = require "spec.support.app"
local generator = require "db.generator"

describe("the example app's models", function()
  local context = app.context({})
  setup(context.open)
  teardown(context.close)

  it("has the feed observe every table of db/schema.sql, each with its model", function()
    local observed = {}
    for table_name, model in pairs(context.runtime.app.observed.by_table()) do
      observed[#observed + 1] = table_name
      assert.equal(app.models[table_name], model.name)
    end
    local tables = { unpack(generator.tables) }
    table.sort(observed)
    table.sort(tables)
    assert.same(tables, observed)
  end)

  it("reaches an event's artists and attending users through their join tables", function()
    local counts = context.runtime.app:eval([[
      local event = Event:find(1)
      return { artists = event:artists():count(), attending_users = event:attending_users():count() }]])
    assert.same({
      artists = tonumber(context.db:query("SELECT COUNT(*) AS n FROM performances WHERE event_id = 1")[1].n),
      attending_users = tonumber(context.db:query("SELECT COUNT(*) AS n FROM attendances WHERE event_id = 1")[1].n),
    }, counts)
  end)
end)
