-- Every change on the list "Everything that can change the event listings": applied in MariaDB, dispatched as the
-- feed's message, and the stored listing compared with app.expected_listing (SQL, not the presenter).
local app = require "spec.support.app"

describe("the event listing silovator", function()
  local context = app.context({ "event_listing" })
  local db, runtime
  setup(function()
    context.open()
    db, runtime = context.db, context.runtime
    runtime.generate_all_listings()
  end)
  teardown(context.close)

  local function listing(event_id) return runtime.document("event_listings", event_id) end

  local function assert_listing(event_id)
    local expected = assert(app.expected_listing(db, event_id), "no event " .. tostring(event_id))
    local stored = assert(listing(event_id), "no listing for event " .. tostring(event_id))
    stored._silo = nil
    assert.same(expected, stored)
  end

  local function dispatch(message, affected_events)
    runtime.dispatch(message)
    for _, event_id in ipairs(affected_events) do assert_listing(event_id) end
  end

  local function one(sql, ...) return db:query(sql, ...)[1].id end
  local function event_with_supports()
    return one("SELECT event_id AS id FROM performances WHERE billing = 'support' LIMIT 1")
  end

  it("starts from listings that match SQL for every event", function()
    for _, row in ipairs(db:query("SELECT id FROM events ORDER BY id")) do assert_listing(row.id) end
  end)

  describe("performances", function()
    it("regenerates the event's listing when a performance is created or destroyed", function()
      local event_id = one([[SELECT id FROM events
        WHERE id NOT IN (SELECT event_id FROM performances WHERE billing = 'support') LIMIT 1]])
      local before = listing(event_id).title
      local created = app.insert(db, "performances",
        { event_id = event_id, artist_id = 1, billing = "support", position = 1 })
      dispatch(created, { event_id })
      assert.matches(" with ", listing(event_id).title)
      dispatch(app.delete(db, "performances", created.id), { event_id })
      assert.equal(before, listing(event_id).title)
    end)

    it("regenerates on a new artist, and both events when a performance moves to another event", function()
      local performance = db:query("SELECT id, event_id FROM performances WHERE billing = 'headline' LIMIT 1")[1]
      local artist_id = one("SELECT id FROM artists WHERE id NOT IN "
        .. "(SELECT artist_id FROM performances WHERE event_id = ?) LIMIT 1", performance.event_id)
      dispatch(app.update(db, "performances", performance.id, { artist_id = artist_id }), { performance.event_id })
      local other = one("SELECT id FROM events WHERE id <> ? ORDER BY id DESC LIMIT 1", performance.event_id)
      dispatch(app.update(db, "performances", performance.id, { event_id = other, position = 9 }),
        { performance.event_id, other })
    end)

    it("regenerates when a support act becomes a headliner", function()
      local event_id = event_with_supports()
      local support = one("SELECT id FROM performances WHERE event_id = ? AND billing = 'support' LIMIT 1", event_id)
      dispatch(app.update(db, "performances", support, { billing = "headline", position = 0 }), { event_id })
    end)
  end)

  -- The rows counted on a listing: created, moved to another event, destroyed.
  for _, table_name in ipairs { "tickets", "attendances", "images", "videos", "posters", "reviews" } do
    it("regenerates the counts when " .. table_name .. " are created, moved and destroyed", function()
      local event_id = one("SELECT id FROM events WHERE id NOT IN (SELECT event_id FROM " .. table_name .. ") LIMIT 1")
      local other = one("SELECT event_id AS id FROM " .. table_name .. " WHERE event_id <> ? LIMIT 1", event_id)
      local created = app.insert(db, table_name, app.new_row(table_name, event_id))
      dispatch(created, { event_id })
      dispatch(app.update(db, table_name, created.id, { event_id = other }), { event_id, other })
      dispatch(app.delete(db, table_name, created.id), { other })
    end)
  end

  it("turns tickets on and off with the first and last ticket", function()
    local event_id = one("SELECT id FROM events WHERE id NOT IN (SELECT event_id FROM tickets) LIMIT 1")
    assert.is_false(listing(event_id).tickets)
    local created = app.insert(db, "tickets", app.new_row("tickets", event_id))
    dispatch(created, { event_id })
    assert.is_true(listing(event_id).tickets)
    dispatch(app.delete(db, "tickets", created.id), { event_id })
    assert.is_false(listing(event_id).tickets)
  end)

  describe("names shown on listings", function()
    local function events_where(sql, ...)
      local ids = {}
      for i, row in ipairs(db:query(sql, ...)) do ids[i] = row.id end
      assert.is_true(#ids > 0)
      return ids
    end

    it("regenerates every event at a venue whose name or city changes", function()
      local venue_id = one("SELECT venue_id AS id FROM events GROUP BY venue_id ORDER BY COUNT(*) DESC LIMIT 1")
      local events = events_where("SELECT id FROM events WHERE venue_id = ?", venue_id)
      dispatch(app.update(db, "venues", venue_id, { name = "Union Chapel" }), events)
      local city_id = one("SELECT id FROM cities WHERE id <> (SELECT city_id FROM venues WHERE id = ?) LIMIT 1", venue_id)
      dispatch(app.update(db, "venues", venue_id, { city_id = city_id }), events)
    end)

    it("regenerates every event in a city whose name changes", function()
      local city_id = one("SELECT v.city_id AS id FROM events e JOIN venues v ON v.id = e.venue_id LIMIT 1")
      dispatch(app.update(db, "cities", city_id, { name = "Londinium" }),
        events_where("SELECT e.id FROM events e JOIN venues v ON v.id = e.venue_id WHERE v.city_id = ?", city_id))
    end)

    it("regenerates every event of a renamed event series", function()
      local series_id = one("SELECT event_series_id AS id FROM events WHERE event_series_id IS NOT NULL LIMIT 1")
      dispatch(app.update(db, "event_series", series_id, { name = "Mika Farewell Tour" }),
        events_where("SELECT id FROM events WHERE event_series_id = ?", series_id))
    end)

    it("regenerates every event of a renamed artist", function()
      local artist_id = one("SELECT artist_id AS id FROM performances GROUP BY artist_id ORDER BY COUNT(*) DESC LIMIT 1")
      dispatch(app.update(db, "artists", artist_id, { name = "Mika" }),
        events_where("SELECT event_id AS id FROM performances WHERE artist_id = ?", artist_id))
    end)
  end)

  describe("events", function()
    it("lists a created event", function()
      local created = app.insert(db, "events", { venue_id = 1, date = "2027-05-01" })
      dispatch(created, { created.id })
      assert.equal("", listing(created.id).title)
    end)

    it("regenerates an event sent into the past, and one moved to another venue or series", function()
      local event_id = one("SELECT id FROM events WHERE date > '2026-06-01' AND venue_id <> 2 LIMIT 1")
      dispatch(app.update(db, "events", event_id, { date = "2019-01-31" }), { event_id })
      dispatch(app.update(db, "events", event_id, { venue_id = 2, event_series_id = 1 }), { event_id })
    end)

    it("removes the listing of a destroyed event", function()
      local event_id = event_with_supports()
      assert.is_not_nil(listing(event_id))
      runtime.dispatch(app.delete(db, "events", event_id))
      assert.is_nil(listing(event_id))
      -- its rows destroyed after it regenerate nothing
      local performance = one("SELECT id FROM performances WHERE event_id = ? LIMIT 1", event_id)
      runtime.dispatch(app.delete(db, "performances", performance))
      assert.is_nil(listing(event_id))
    end)
  end)

  it("is read from its silo by preference, and from the models only for a missing listing", function()
    local function read_title(event_id)
      return runtime.app:eval("return Silo.read(EventListingPresenter, " .. event_id .. "):title()")
    end
    local event_id = one("SELECT event_id AS id FROM performances WHERE billing = 'headline' ORDER BY id DESC LIMIT 1")
    local stored = listing(event_id).title
    db:exec([[UPDATE artists SET name = 'Not Yet Dispatched'
      WHERE id IN (SELECT artist_id FROM performances WHERE event_id = ?)]], event_id)
    assert.equal(stored, read_title(event_id))
    local created = app.insert(db, "events", { venue_id = 3, date = "2027-06-01" })
    app.insert(db, "performances", { event_id = created.id, artist_id = 4, billing = "headline", position = 1 })
    assert.equal(app.expected_listing(db, created.id).title, read_title(created.id))
    assert.is_nil(listing(created.id))
  end)
end)
