-- The loader, the environment DSL files run in, and the dispatcher, without the databases.
local dsl = require "spec.support.dsl"

local MODELS = [[
Model("Venue"):belongs_to("city"):has_many("events")
Model("City")
Model("Event"):belongs_to("venue")
Model("User")
Model("EmailRequest")
function Venue.methods:label() return self.name .. "!" end
AsynchronousObservers.listen(Venue, User)
]]

local PRESENTER = [[
local P = Presenter("VenueCardPresenter")
P:silo { collection = "venue_cards", id = function(self) return self.venue.id end }
function P:initialize(venue) self.venue = venue end
function P:name() return self.venue:label() end
P:silo_method "name"
return P
]]

local function message(op, model, attributes, changes)
  return { op = op, model = model, attributes = attributes or { id = 1 }, changes = changes,
    source = { gtid = "0-1-9", file = "mysql-bin.000001", pos = 120, ts = 1701234567 } }
end

describe("silo.app loading", function()
  it("loads models, presenters and silovators into one environment", function()
    local app = dsl.load_app({
      ["models.lua"] = MODELS,
      ["models/extra.lua"] = "Model('Ticket'):belongs_to('event')",
      ["presenters/venue_card.lua"] = PRESENTER,
      ["silovators/venue_card.lua"] = "AsyncObserver('VenueCardSilovator'):listen('update', Venue, function() end)",
    })
    assert.are.same({ "models.lua", "models/extra.lua", "presenters/venue_card.lua", "silovators/venue_card.lua" },
      app.files)
    assert.are.equal("venues", app.env.Venue.table)
    assert.are.equal("tickets", app.env.Ticket.table)
    assert.are.equal("event_id", app.env.Ticket.associations.event.foreign_key)
    assert.are.equal(app.presenters:find("VenueCardPresenter"), app.env.VenueCardPresenter)
    assert.are.same({ "Venue", "User" }, { app.observed.models()[1].name, app.observed.models()[2].name })
    assert.are.equal(app.env.Venue, app.observed.by_table().venues)
  end)

  it("names the file and line of a typo in a silovator", function()
    local err = dsl.load_error({
      ["models.lua"] = MODELS,
      ["silovators/typo.lua"] = "local S = AsyncObserver('S')\n\nS:listen('create', Atendance, function() end)\n",
    })
    assert.are.equal("silovators/typo.lua:3: undefined name 'Atendance'", err)
  end)

  it("names the file and line of a syntax error and of an error raised while loading", function()
    assert.matches("^presenters/broken%.lua:2: ", dsl.load_error({ ["presenters/broken.lua"] = "local x =\n=" }))
    assert.are.equal("models.lua:2: boom", dsl.load_error({ ["models.lua"] = "Model('Venue')\nerror('boom')" }))
  end)

  it("reports a missing app_root", function()
    local ok, err = require("silo.app").new({ root = "/nonexistent/silo-app" }):load()
    assert.is_nil(ok)
    assert.are.equal("app_root /nonexistent/silo-app is not a directory", err)
  end)

  it("replaces the definitions on reload, and keeps them when the reload fails", function()
    local root = dsl.write_app({
      ["models.lua"] = MODELS,
      ["silovators/a.lua"] = "AsyncObserver('A'):listen('update', Venue, function() end)",
    })
    local app = require("silo.app").new({ root = root })
    assert(app:load())
    assert(app:load())
    assert.are.equal(1, #app.silovators.order)
    assert.are.equal(1, #app:dispatch(message("update", "Venue")))
    local handle = assert(io.open(root .. "/silovators/a.lua", "w"))
    handle:write("AsyncObserver('A'):listen('update', Venue, function() end)\nAsyncObserver('A')")
    handle:close()
    local ok, err = app:load()
    dsl.remove_app(root)
    assert.is_nil(ok)
    assert.are.equal("silovators/a.lua:2: AsyncObserver A is already defined", err)
    assert.are.equal(1, #app:dispatch(message("update", "Venue")))
  end)
end)

describe("DSL declaration errors name the user's file and line", function()
  local cases = {
    { "listen('explode', Venue, f)", "S:listen: unknown operation 'explode' (create, update or destroy)" },
    { "listen({}, Venue, f)", "S:listen: the operation is empty" },
    { "listen('update', 'Venue', f)", "S:listen: the second argument must be a model, got Venue" },
    { "listen('update', Venue, { chaning = 'x' }, f)", "S:listen: unknown option 'chaning' (the option is changing)" },
    { "listen('update', Venue, { changing = 4 }, f)", "S:listen: changing must be a string or a list of strings, got number" },
    { "listen('update', Venue)", "S:listen: the last argument must be a function, got nil" },
    { "listen('update', Venue, 3, f)", "S:listen: options must be a table, got number" },
  }
  for _, case in ipairs(cases) do
    it(case[2], function()
      local err = dsl.load_error({
        ["models.lua"] = MODELS,
        ["silovators/s.lua"] = "local S = AsyncObserver('S')\nlocal f = function() end\nS:" .. case[1],
      })
      assert.are.equal("silovators/s.lua:3: " .. case[2], err)
    end)
  end

  local model_cases = {
    { "Model('venues table')", "Model name must be an identifier (letters, digits, _), got 'venues table'" },
    { "Model('Venue', { tabel = 'v' })", "Model Venue: unknown option 'tabel' (options are table, primary_key)" },
    { "Model('Venue', { table = 'v; DROP' })", "Model Venue: table must be an identifier (letters, digits, _), got 'v; DROP'" },
    { "Model('Venue'):has_many('events', { foreign = 'x' })", "Venue.has_many events: unknown option 'foreign'" },
    { "Model('Venue'):belongs_to('city', { foreign_key = 'a b' })",
      "Venue.city foreign_key must be an identifier (letters, digits, _), got 'a b'" },
    { "Model('Venue').find()", "Venue.find: the id is nil" },
    { "Model('Venue'):where(3)", "Venue.where: expected a table of column = value or an SQL string, got number" },
    { "Model('Venue'):where({ ['a-b'] = 1 })", "Venue.where: column name must be an identifier (letters, digits, _), got 'a-b'" },
    { "Model('Venue'):order('name; DROP')", "Venue.order: expected columns with an optional ASC or DESC, got 'name; DROP'" },
    { "Model('Venue'):limit(-1)", "Venue.limit: expected a whole number >= 0, got -1" },
    { "Model('Venue'):pluck('x y')", "Venue.pluck: column name must be an identifier (letters, digits, _), got 'x y'" },
    { "Model('Venue').new(3)", "Venue.new: attributes must be a table, got number" },
    { "Model('Venue'):belongs_to('city').new({ city_id = 1 }):city()",
      "Venue belongs_to city: no model named City (declare it with Model(\"City\"))" },
    { "Model('Venue'):has_many('gigs', { through = 'bookings' }).new({ id = 1 }):gigs()",
      "Venue has_many gigs: no model named Gig (declare it with Model(\"Gig\"))" },
    { "Model('Gig'); Model('Venue'):has_many('gigs', { through = 'bookings' }).new({ id = 1 }):gigs()",
      "Venue has_many gigs: Venue has no association 'bookings'" },
    { "Model('Gig'); Model('Booking'); Model('Venue'):has_many('bookings'):has_many('gigs', { through = 'bookings' })"
      .. ".new({ id = 1 }):gigs()",
      "Venue has_many gigs: Booking has no direct association 'gig' (name it with source = ...)" },
    { "Presenter('P'):silo(3)", "P:silo: expected a table of options, got number" },
    { "Presenter('P'):silo{ collection = 'p', id = 3 }", "P:silo: id must be a function, got number" },
    { "Presenter('P'):silo{ colection = 'p' }", "P:silo: unknown option 'colection' (options are collection, id, find)" },
    { "Presenter('P'):silo{ collection = 'p' }", "P:silo: collection and id are required" },
    { "Presenter('P'):silo_method('a b')", "P:silo_method: expected a method name, got a b" },
    { "Presenter('P'):silo_method('_id')", "P:silo_method: '_id' starts with _, which silos keep for metadata" },
    { "Presenter('P'); Presenter('P')", "Presenter P is already defined" },
    { "Presenter(3)", "Presenter: expected a name like \"EventListingPresenter\", got 3" },
    { "AsyncObserver('S', { presenters = 'P' })", "AsyncObserver S: unknown option 'presenters'" },
    { "AsynchronousObservers.listen(Model('Venue'), nil)", "AsynchronousObservers.listen: argument 2 must be a model, got nil" },
    { "publish(1)", "publish: no publisher outside a listen block" },
  }
  for _, case in ipairs(model_cases) do
    it(case[2], function()
      assert.are.equal("models.lua:2: " .. case[2], dsl.load_error({ ["models.lua"] = "\n" .. case[1] }))
    end)
  end
end)

describe("relations", function()
  local app = dsl.load_app({ ["models.lua"] = [[
Model("Venue"):has_many("events"):belongs_to("city")
Model("City")
Model("Artist"):has_many("performances"):has_many("events", { through = "performances" })
Model("Performance"):belongs_to("event"):belongs_to("artist")
Model("Event"):belongs_to("venue"):has_many("performances"):has_many("artists", { through = "performances" })
Event:has_many("headliners", { through = "performances", source = "artist", model = "Artist" })
Model("Ticket", { table = "event_tickets", primary_key = "ticket_id" }):belongs_to("event")
Ticket:has_many("venues", { through = "event", source = "venue" })
Model("Attendance"):belongs_to("event"):belongs_to("user")
]] })
  local env = app.env

  it("builds parameterized SQL for where, order and limit", function()
    local sql, params = env.Venue:where({ city_id = 7, name = { "a", "b" }, closed_at = env.null })
      :where("capacity > ?", 100):order("name DESC, id"):limit(5):to_sql()
    assert.are.equal("SELECT `venues`.* FROM `venues` WHERE `venues`.`city_id` = ? AND `venues`.`closed_at` IS NULL"
      .. " AND `venues`.`name` IN (?, ?) AND (capacity > ?) ORDER BY name DESC, id LIMIT 5", sql)
    assert.are.same({ 7, "a", "b", 100 }, params)
    assert.are.equal("SELECT `venues`.* FROM `venues` WHERE 1 = 0", (env.Venue:where({ id = {} }):to_sql()))
  end)

  it("builds has_many and has_many through from a record", function()
    local venue = env.Venue.new({ id = 42, city_id = 7 })
    local sql, params = venue:events():to_sql()
    assert.are.equal("SELECT `events`.* FROM `events` WHERE `events`.`venue_id` = ?", sql)
    assert.are.same({ 42 }, params)
    sql, params = env.Event.new({ id = 5 }):artists():to_sql()
    assert.are.equal("SELECT `artists`.* FROM `artists` JOIN `performances` AS `performances` ON `artists`.`id` = "
      .. "`performances`.`artist_id` WHERE `performances`.`event_id` = ?", sql)
    assert.are.same({ 5 }, params)
    sql = env.Event.new({ id = 5 }):headliners():to_sql()
    assert.matches("JOIN `performances` AS `performances` ON `artists`.`id` = `performances`.`artist_id`", sql, 1, true)
    sql, params = env.Artist.new({ id = 3 }):events():to_sql()
    assert.are.equal("SELECT `events`.* FROM `events` JOIN `performances` AS `performances` ON `events`.`id` = "
      .. "`performances`.`event_id` WHERE `performances`.`artist_id` = ?", sql)
    sql, params = env.Ticket.new({ ticket_id = 1, event_id = 9 }):venues():to_sql()
    assert.are.equal("SELECT `venues`.* FROM `venues` JOIN `events` AS `event` ON `venues`.`id` = `event`.`venue_id` "
      .. "WHERE `event`.`id` = ?", sql)
    assert.are.same({ 9 }, params)
  end)

  it("gives records their model's methods and a readable name", function()
    local venue = env.Venue.new({ id = 42, city_id = env.null })
    assert.is_nil(venue:city())
    assert.are.equal("#<Venue id=42>", tostring(venue))
    assert.are.equal(env.Venue, require("silo.model").of(venue))
    assert.are.same({ id = 42, city_id = env.null }, require("silo.model").attributes(venue))
    assert.are.equal(venue:events(), venue:events())
  end)
end)

describe("silo.dispatcher", function()
  local published
  local app = dsl.load_app({
    ["models.lua"] = MODELS,
    ["presenters/venue_card.lua"] = PRESENTER,
    ["silovators/venue_card.lua"] = [[
local S = AsyncObserver("VenueCardSilovator")
S:listen("update", Venue, function()
  publish({ label = venue:label(), card = presenter_for(venue):name(), old = changes.name[1], op = message.op })
end)
S:listen({ "create", "destroy" }, Venue, function() publish(message.op .. " " .. venue.name) end)
S:listen("update", User, { changing = { "deleted", "email" } }, function() publish("user " .. user.id) end)
S:listen("create", User, { changing = "deleted" }, function() publish("created " .. user.id) end)
S:listen("create", EmailRequest, function() publish(email_request.kind) end)
]],
    ["silovators/failing.lua"] = [[
local F = AsyncObserver("FailingSilovator")
F:listen("update", User, function()
  local missing = nil
  return missing.field
end)
F:listen("destroy", User, function() presenter_for(user) end)
F:listen("destroy", User, function() publish(nil) end)
F:listen("destroy", User, function() Venue:limit("x") end)
F:listen("destroy", User, function() error("no location given", 0) end)
F:listen("destroy", User, function() string.rep() end)
]],
  }, { publish = function(value) published = value end })

  local function dispatch(m)
    local results = assert(app:dispatch(m))
    local summary = {}
    for i, r in ipairs(results) do summary[i] = r.ok and r.published or r.error end
    return summary, results
  end

  it("runs the matching blocks with the record, changes, message, publish and presenter_for in scope", function()
    local summary, results = dispatch(message("update", "Venue", { id = 4, name = "Chapel" },
      { name = { "Old", "Chapel" } }))
    assert.are.same({ { { label = "Chapel!", card = "Chapel!", old = "Old", op = "update" } } }, summary)
    assert.are.equal("VenueCardSilovator", results[1].silovator)
    assert.are.equal("silovators/venue_card.lua:2", results[1].block)
    assert.are.same({ { "create Hall" } }, (dispatch(message("create", "Venue", { id = 5, name = "Hall" }))))
    assert.are.same({ { "created 3" } }, (dispatch(message("create", "User", { id = 3 }))))
    assert.are.same({ { "welcome" } }, (dispatch(message("create", "EmailRequest", { kind = "welcome" }))))
    assert.are.same({}, (dispatch(message("update", "City"))))
  end)

  it("runs an update block with changing only when one of the columns changed", function()
    local _, results = dispatch(message("update", "User", { id = 3 }, { email = { "a", "b" } }))
    assert.are.same({ "FailingSilovator", "VenueCardSilovator" }, { results[1].silovator, results[2].silovator })
    assert.are.same({ "user 3" }, results[2].published)
    _, results = dispatch(message("update", "User", { id = 3 }, { name = { "a", "b" } }))
    assert.are.equal(1, #results)   -- only the failing block, which has no changing option
    assert.are.equal("FailingSilovator", results[1].silovator)
  end)

  it("reports each failing block with its file and line, and runs the others", function()
    local summary, results = dispatch(message("update", "User", { id = 3 }, { deleted = { false, true } }))
    assert.are.equal("silovators/failing.lua:4: attempt to index local 'missing' (a nil value)", summary[1])
    assert.are.equal("FailingSilovator", results[1].silovator)
    assert.are.equal("silovators/failing.lua:2", results[1].block)
    assert.matches("stack traceback", results[1].traceback)
    assert.are.same({}, results[1].published)
    assert.are.same({ "user 3" }, summary[2])
    summary = dispatch(message("destroy", "User", { id = 3 }))
    assert.are.same({
      "silovators/failing.lua:6: presenter_for: no presenter FailingPresenter (name one: "
        .. "presenter_for(record, SomePresenter) or AsyncObserver(name, { presenter = ... }))",
      "silovators/failing.lua:7: publish: nothing to publish (nil)",
      "silovators/failing.lua:8: Venue.limit: expected a whole number >= 0, got x",
      "silovators/failing.lua:9: no location given",
      "silovators/failing.lua:10: bad argument #1 to 'rep' (string expected, got no value)",
    }, summary)
  end)

  it("finds the presenter named by the silovator's option or by the call", function()
    local other = dsl.load_app({
      ["models.lua"] = MODELS,
      ["presenters/venue_card.lua"] = PRESENTER,
      ["silovators/cards.lua"] = [[
AsyncObserver("Cards", { presenter = "VenueCardPresenter" }):listen("update", Venue, function()
  publish(presenter_for(venue):name() .. presenter_for(venue, VenueCardPresenter):name()
    .. presenter_for(venue, "VenueCardPresenter"):name())
end)
]],
    })
    local results = assert(other:dispatch(message("update", "Venue", { id = 1, name = "Hall" })))
    assert.are.same({ "Hall!Hall!Hall!" }, results[1].published)
  end)

  it("gives what is published outside a listen block to the app's publisher", function()
    app:eval("publish('outside')")
    assert.are.equal("outside", published)
  end)

  it("refuses a malformed message", function()
    local cases = {
      { 42, "feed message: expected a table, got number" },
      { { op = "upsert", model = "User", attributes = {} }, "feed message: op must be create, update or destroy, got upsert" },
      { { op = "create", attributes = {} }, "feed message: model must be a string, got nil" },
      { { op = "create", model = "User" }, "feed message: attributes must be a table, got nil" },
      { { op = "update", model = "User", attributes = {}, changes = "x" }, "feed message: changes must be a table, got string" },
    }
    for _, case in ipairs(cases) do
      local results, err = app:dispatch(case[1])
      assert.is_nil(results)
      assert.are.equal(case[2], err)
    end
  end)
end)

describe("with_distributed_mutex", function()
  local app = dsl.load_app({})
  local saved_loaded, saved_preload

  before_each(function()
    saved_loaded, saved_preload = package.loaded["silo.mega_mutex"], package.preload["silo.mega_mutex"]
    package.loaded["silo.mega_mutex"] = nil
  end)

  after_each(function()
    package.loaded["silo.mega_mutex"], package.preload["silo.mega_mutex"] = saved_loaded, saved_preload
  end)

  it("runs the block through silo.mega_mutex, looked up when first used", function()
    package.preload["silo.mega_mutex"] = function()
      return { with_distributed_mutex = function(name, fn, ...) return "held " .. name, fn(...) end }
    end
    assert.are.same({ "held Shelf", 42 }, { app:eval("return with_distributed_mutex('Shelf', function(x) return x end, 42)") })
  end)

  it("says so when silo.mega_mutex cannot be loaded", function()
    package.preload["silo.mega_mutex"] = function() error("no memcached client", 0) end
    local ok, err = pcall(app.eval, app, "with_distributed_mutex('Shelf', function() end)", "user.lua")
    assert.is_false(ok)
    assert.are.equal("user.lua:1: with_distributed_mutex: silo.mega_mutex is not available: no memcached client", err)
  end)
end)
