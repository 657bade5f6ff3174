-- silovators/shelf_stacker.lua: artists' shelves restacked under a distributed mutex, checked against SQL written here.
local app = require "spec.support.app"

describe("the ShelfStacker", function()
  local database, runtime, db

  setup(function()
    database = app.open_database()
    db = database.db
    runtime = app.open_runtime(database, { "shelf_stacker" })
  end)

  teardown(function()
    if runtime then runtime.close() end
    if database then database.drop() end
  end)

  local function assert_shelf(artist_id)
    local artist = db:query("SELECT id, name FROM artists WHERE id = ?", artist_id)[1]
    local latest = db:query([[SELECT e.id, e.date FROM events e JOIN performances p ON p.event_id = e.id
      WHERE p.artist_id = ? ORDER BY e.date DESC, e.id DESC LIMIT 10]], artist_id)
    local count = db:query("SELECT COUNT(*) AS n FROM performances WHERE artist_id = ?", artist_id)[1].n
    local stored = assert(runtime.document("artist_shelves", artist_id), "no shelf for artist " .. artist_id)
    stored._silo = nil
    assert.same({ _id = artist.id, name = artist.name, event_count = tonumber(count), latest_events = latest }, stored)
  end

  it("stacks the shelf of an artist given or losing a performance", function()
    local created = app.insert(db, "performances", { event_id = 5, artist_id = 7, billing = "support", position = 5 })
    runtime.dispatch(created)
    assert_shelf(7)
    runtime.dispatch(app.delete(db, "performances", created.id))
    assert_shelf(7)
  end)

  it("restacks both artists' shelves when a performance changes artist", function()
    local performance = db:query("SELECT id, artist_id FROM performances ORDER BY id LIMIT 1")[1]
    runtime.dispatch(app.update(db, "performances", performance.id, { artist_id = 8 }))
    assert_shelf(8)
    assert_shelf(performance.artist_id)
  end)

  it("restacks on a renamed artist and on a new date of their event", function()
    local performance = db:query("SELECT artist_id, event_id FROM performances ORDER BY id DESC LIMIT 1")[1]
    runtime.dispatch(app.update(db, "artists", performance.artist_id, { name = "The Oats" }))
    assert_shelf(performance.artist_id)
    runtime.dispatch(app.update(db, "events", performance.event_id, { date = "2031-01-01" }))
    assert_shelf(performance.artist_id)
    assert.equal(performance.event_id, runtime.document("artist_shelves", performance.artist_id).latest_events[1].id)
  end)
end)
