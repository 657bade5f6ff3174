-- Models against the real MariaDB: queries, associations, typed values, errors at the caller's line.
local core = require "silo.core"
local dsl = require "spec.support.dsl"
local dsl_db = require "spec.support.dsl_db"

describe("silo.model against MariaDB", function()
  local database, app, M

  setup(function()
    database = dsl_db.open()
    app = dsl.load_app({ ["models.lua"] = database.models }, { mysql = database.db })
    M = app.env
  end)

  teardown(function() if database then database.drop() end end)

  local function names(list) return require("silo.helpers").pluck(list, "name") end

  it("finds records by primary key, with typed values", function()
    local venue = M.Venue.find(10)
    assert.are.equal("Union Chapel", venue.name)
    assert.are.equal(900, venue.capacity)
    assert.are.equal(venue.name, M.Venue:find(10).name)
    assert.are.equal(core.null, M.Venue.find(13).city_id)
    local event = M.Event.find(100)
    assert.is_true(core.is_datetime(event.starts_at))
    assert.are.equal("2026-12-01T20:00:00.000Z", tostring(event.starts_at))
    assert.are.equal(9007199254740993LL, M.Event.find(9007199254740993LL).id)
  end)

  it("raises for a missing record at the caller's line, and find_by gives nil", function()
    local line = debug.getinfo(1, "l").currentline
    local ok, err = pcall(function() M.Venue.find(999) end)
    assert.is_false(ok)
    assert.are.equal(string.format("spec/dsl/model_spec.lua:%d: Venue.find: no %svenues with id = 999", line + 1,
      database.prefix), err)
    assert.is_nil(M.Venue:find_by({ name = "Nope" }))
  end)

  it("queries with where, order, limit, count, pluck, exists, ids and first", function()
    assert.are.same({ "Union Chapel", "Roundhouse" }, names(M.Venue:where({ city_id = 1 }):order("id")))
    assert.are.same({ "Roundhouse", "Union Chapel" }, M.Venue:where({ city_id = 1 }):order("name"):pluck("name"))
    assert.are.same({ "Nowhere Hall" }, names(M.Venue:where({ city_id = M.null })))
    assert.are.same({ 11, 12 }, M.Venue:where({ id = { 11, 12, 99 } }):order("id"):ids())
    assert.are.same({ 12 }, M.Venue:where("capacity BETWEEN ? AND ?", 1000, 2500):ids())
    assert.are.same({ { 11, "Roundhouse" } }, M.Venue:where({ id = 11 }):pluck("id", "name"))
    assert.are.equal(4, M.Venue:count())
    assert.are.equal(2, M.Venue:count({ city_id = 1 }))
    assert.are.equal(1, M.Venue:where({ city_id = 1 }):where("capacity > ?", 1000):count())
    assert.is_true(M.Venue:exists({ name = "Olympia" }))
    assert.is_false(M.Venue:exists({ name = "x' OR '1'='1" }))
    assert.are.equal("Roundhouse", M.Venue:order("capacity DESC"):first().name)
    assert.are.equal("Union Chapel", M.Venue:first().name)
    assert.are.same({ "Roundhouse" }, names(M.Venue:order("id"):limit(1):where({ capacity = 3300 })))
    assert.are.same({ 10, 11, 12, 13 }, M.Venue:pluck("id"))
  end)

  it("loads a relation once, when it is first read", function()
    local relation = M.Venue:where({ city_id = 1 }):order("id")
    assert.are.equal(0, #relation)
    assert.are.equal("Union Chapel", relation[1].name)
    assert.are.equal(2, #relation)
    assert.are.equal(2, relation:count())
    local seen = {}
    for _, venue in relation:each() do seen[#seen + 1] = venue.id end
    assert.are.same({ 10, 11 }, seen)
    assert.are.same({ 10, 11 }, app:eval("local r = {} for _, v in ipairs(Venue:where{ city_id = 1 }:order('id')) do "
      .. "r[#r + 1] = v.id end return r"))
    assert.are.equal(2, #relation:all())
  end)

  it("follows belongs_to, has_many and has_many through", function()
    local venue = M.Venue.find(10)
    assert.are.equal("London", venue:city().name)
    assert.is_nil(M.Venue.find(13):city())
    assert.are.same({ 100, 101 }, venue:events():order("id"):ids())
    assert.are.equal(2, venue:events():count())
    local event = M.Event.find(100)
    assert.are.equal("Union Chapel", event:venue().name)
    assert.are.same({ "Bo", "Ada" }, names(event:artists():order("performances.position DESC")))
    assert.are.same({ "Bo" }, names(event:artists():where("performances.position = ?", 2)))
    assert.are.same({ 100, 101 }, M.Artist.find(1):events():order(database.prefix .. "events.id"):ids())
    assert.are.equal(2, #M.City.find(1):venues():all())
    assert.are.equal("Union Chapel", M.Performance.find(1):event():venue().name)
    assert.are.equal("Union Chapel and Roundhouse",
      app:eval("return to_sentence(pluck(Event.find(100):venue():city():venues():order('id'), 'name'))"))
  end)

  it("reports a failing query with the model, the server's message and the caller's line", function()
    local line = debug.getinfo(1, "l").currentline
    local ok, err = pcall(function() return M.Venue:where("no_such_column = ?", 1):count() end)
    assert.is_false(ok)
    assert.matches("^spec/dsl/model_spec%.lua:" .. (line + 1) .. ": Venue%.count: mysql query: Unknown column "
      .. "'no_such_column'", err)
  end)

  it("reads every query of a snapshot as of its start", function()
    local other = require("silo.mysql").connect(require("silo.config").get("mysql_url"))
    local before, after = app.models:snapshot(function()
      local count = M.Venue:count()
      other:exec("INSERT INTO " .. database.prefix .. "venues (id, name) VALUES (14, 'Late')")
      return count, M.Venue:count()
    end)
    assert.are.equal(4, before)
    assert.are.equal(4, after)
    assert.are.equal(5, M.Venue:count())
    local nested = app.models:snapshot(function() return app.models:snapshot(function() return "nested" end) end)
    assert.are.equal("nested", nested)
    other:exec("DELETE FROM " .. database.prefix .. "venues WHERE id = 14")
  end)
end)
