-- Silo.generate / remove / read against the Mongo endpoint, presenters reading MariaDB (tables dsl_spec_*).
local config = require "silo.config"
local core = require "silo.core"
local dsl = require "spec.support.dsl"
local dsl_db = require "spec.support.dsl_db"

local PRESENTER = [[
local Card = Presenter("VenueCardPresenter")
Card:silo { collection = COLLECTION, id = function(self) return self.venue.id end,
  find = function(id) FINDS = FINDS + 1; return Venue:find(id) end }
function Card:initialize(venue) self.venue = venue end
function Card:name() return self.venue.name end
function Card:city() return self.venue:city() end
function Card:events() return self.venue:events():order("id") end
function Card:event_count() return self.venue:events():count() end
function Card:summary() return { names = { self.venue.name }, capacity = self.venue.capacity } end
Card:silo_method("name", "city", "event_count", "events", "summary")
return Card
]]

describe("Silo against MongoDB", function()
  local database, app, env, mongo, collection, name

  setup(function()
    database = dsl_db.open()
    mongo = require("silo.mongo").connect(config.get("mongo_uri"))
    name = "dsl_spec_" .. core.random_hex(4) .. "_cards"
    app = dsl.load_app({
      ["models.lua"] = database.models .. "\nCOLLECTION = '" .. name .. "'\nFINDS = 0\n",
      ["presenters/venue_card.lua"] = PRESENTER,
      ["silovators/venue_card.lua"] = [[
local S = AsyncObserver("VenueCardSilovator")
S:listen("update", Venue, function() Silo.generate(presenter_for(venue)) end)
S:listen("destroy", Venue, function() Silo.remove(presenter_for(venue)) end)
]],
    }, { mysql = database.db, mongo = mongo })
    env = app.env
    collection = mongo:collection(name)
  end)

  teardown(function()
    if collection then collection:drop() end
    if database then database.drop() end
  end)

  before_each(function() collection:delete({}) end)

  local function card(id) return env.VenueCardPresenter.new(env.Venue.find(id)) end

  it("stores every silo method's value by id, with metadata", function()
    local before = core.datetime()
    local doc, written = env.Silo.generate(card(10), { version = { gtid = "0-1-5", file = "mysql-bin.000002", pos = 77 } })
    assert.is_true(written)
    local stored = collection:find_one({ _id = 10 })
    assert.are.equal("Union Chapel", stored.name)
    assert.are.equal(2, stored.event_count)
    assert.are.same({ id = 1, name = "London" }, stored.city)
    assert.are.equal(2, #stored.events)
    assert.are.equal(100, stored.events[1].id)
    assert.are.equal("2026-12-01T20:00:00.000Z", tostring(stored.events[1].starts_at))
    assert.are.same({ names = { "Union Chapel" }, capacity = 900 }, stored.summary)
    assert.are.equal("VenueCardPresenter", stored._silo.presenter)
    assert.is_true(stored._silo.generated_at >= before)
    assert.are.equal("mysql-bin.000002", stored._silo.version.file)
    assert.are.equal(2 * 4294967296 + 77, stored._silo.position)
    assert.are.equal(10, doc._id)
    assert.are.equal("Union Chapel", doc.name)
  end)

  it("computes every silo method inside one consistent-snapshot read", function()
    local other = require("silo.mysql").connect(config.get("mysql_url"))
    local presenter = card(11)
    local original_name = env.VenueCardPresenter.name
    env.VenueCardPresenter.name = function(self)
      other:exec("INSERT INTO " .. database.prefix .. "events (id, venue_id, starts_at) VALUES (555, 11, NOW())")
      return original_name(self)
    end
    local doc = env.Silo.generate(presenter)
    env.VenueCardPresenter.name = original_name
    other:exec("DELETE FROM " .. database.prefix .. "events WHERE id = 555")
    assert.are.equal(1, doc.event_count)
  end)

  it("keeps a document stamped with a later feed position", function()
    local function version(pos) return { file = "mysql-bin.000003", pos = pos } end
    assert.is_true(select(2, env.Silo.generate(card(12), { version = version(200) })))
    database.db:exec("UPDATE " .. database.prefix .. "venues SET name = 'Stale' WHERE id = 12")
    assert.is_false(select(2, env.Silo.generate(card(12), { version = version(100) })))
    assert.are.equal("Olympia", collection:find_one({ _id = 12 }).name)
    assert.is_true(select(2, env.Silo.generate(card(12), { version = version(200) })))
    assert.are.equal("Stale", collection:find_one({ _id = 12 }).name)
    database.db:exec("UPDATE " .. database.prefix .. "venues SET name = 'Olympia' WHERE id = 12")
    assert.is_true(select(2, env.Silo.generate(card(12), { version = { file = "mysql-bin.000004", pos = 4 } })))
    assert.are.equal("Olympia", collection:find_one({ _id = 12 }).name)
    assert.is_true(select(2, env.Silo.generate(card(12))))
  end)

  it("stamps documents generated in a listen block with the message's source, and removes them", function()
    local source = { gtid = "0-1-9", file = "mysql-bin.000007", pos = 4242, ts = 1701234567 }
    local results = assert(app:dispatch({ op = "update", model = "Venue", attributes = { id = 13, name = "Nowhere Hall",
      city_id = env.null, capacity = 50 }, changes = { capacity = { 40, 50 } }, source = source }))
    assert.is_true(results[1].ok, results[1].error)
    local stored = collection:find_one({ _id = 13 })
    assert.are.equal(4242, stored._silo.version.pos)
    assert.are.equal(env.null, stored.city)
    results = assert(app:dispatch({ op = "destroy", model = "Venue", attributes = { id = 13 }, source = source }))
    assert.is_true(results[1].ok, results[1].error)
    assert.is_nil(collection:find_one({ _id = 13 }))
    env.Silo.generate(card(10))
    env.Silo.remove(env.VenueCardPresenter, 10)
    assert.are.equal(0, collection:count())
  end)

  it("reads stored values, touching the models only for a missing document or field", function()
    env.Silo.generate(card(10))
    app:eval("FINDS = 0")
    local read = env.Silo.read(env.VenueCardPresenter, 10)
    assert.are.equal("Union Chapel", read:name())
    assert.are.equal(2, read:event_count())
    assert.are.equal(0, app:eval("return FINDS"))

    collection:upsert(10, { _id = 10, name = "Stored name" })
    read = env.Silo.read(env.VenueCardPresenter, 10)
    assert.are.equal("Stored name", read:name())
    assert.are.equal(0, app:eval("return FINDS"))
    assert.are.equal(2, read:event_count())
    assert.are.equal(1, app:eval("return FINDS"))
    assert.are.equal("London", read:city().name)
    assert.are.equal(1, app:eval("return FINDS"))

    read = env.Silo.read(env.VenueCardPresenter, 11, function(id) return env.Venue.find(id) end)
    assert.is_nil(require("silo.presenter").stored_document(read))
    assert.are.equal("Roundhouse", read:name())
    assert.are.equal(1, app:eval("return FINDS"))
  end)

  describe("errors", function()
    local function error_of(source)
      local ok, err = pcall(app.eval, app, source, "user.lua")
      assert.is_false(ok)
      return err
    end

    it("names the user's line for a misuse", function()
      assert.are.equal("user.lua:1: Silo: expected a presenter instance (Presenter.new(...)), got 42",
        error_of("Silo.generate(42)"))
      assert.are.equal("user.lua:1: Silo.remove: expected a presenter or a presenter class, got nil",
        error_of("Silo.remove(nil)"))
      assert.are.equal("user.lua:1: Silo.read: expected a presenter class, got 3", error_of("Silo.read(3, 1)"))
      assert.are.equal("user.lua:1: Silo.remove(VenueCardPresenter, id): the id is nil",
        error_of("Silo.remove(VenueCardPresenter)"))
      assert.are.equal("user.lua:2: Bare has no silo: declare one with Bare:silo{ ... }",
        error_of("local B = Presenter('Bare')\nSilo.generate(B.new())"))
      assert.are.equal("user.lua:2: NoId: the silo id function returned nil", error_of(
        "local B = Presenter('NoId'):silo{ collection = 'x', id = function() end }\nSilo.generate(B.new())"))
      assert.are.equal("user.lua:2: Ghost: silo_method 'spirit' is not defined (function Ghost:spirit() ... end)",
        error_of("local B = Presenter('Ghost'):silo{ collection = 'x', id = function() return 1 end }:silo_method('spirit')"
          .. "\nSilo.generate(B.new())"))
      assert.are.equal("user.lua:3: Fn:f(): returned a function, which cannot be stored", error_of(
        "local B = Presenter('Fn'):silo{ collection = 'x', id = function() return 1 end }:silo_method('f')"
        .. "\nfunction B:f() return { print } end\nSilo.generate(B.new())"))
      assert.are.equal("user.lua:2: NoFind 7: needs the models but has no way to load them (give :silo a find function)",
        error_of("local B = Presenter('NoFind'):silo{ collection = COLLECTION, id = function() return 7 end }:silo_method('f')"
          .. "\nSilo.read(B, 7):f()"))
    end)
  end)
end)
