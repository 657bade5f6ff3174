-- silovators/shelf_stacker.lua: artists' shelves restacked under a distributed mutex, checked against SQL written here.
local app = require "spec.support.app"

describe("the ShelfStacker", function()
  local context = app.context({ "shelf_stacker" })
  setup(context.open)
  teardown(context.close)

  local function assert_shelf(artist_id)
    local artist = context.db:query("SELECT id, name FROM artists WHERE id = ?", artist_id)[1]
    local latest = context.db:query([[SELECT e.id, e.date FROM events e JOIN performances p ON p.event_id = e.id
      WHERE p.artist_id = ? ORDER BY e.date DESC, e.id DESC LIMIT 10]], artist_id)
    local count = context.db:query("SELECT COUNT(*) AS n FROM performances WHERE artist_id = ?", artist_id)[1].n
    local stored = assert(context.runtime.document("artist_shelves", artist_id), "no shelf for artist " .. artist_id)
    stored._silo = nil
    assert.same({ _id = artist.id, name = artist.name, event_count = tonumber(count), latest_events = latest }, stored)
  end

  it("stacks the shelf of an artist given or losing a performance", function()
    local created = app.insert(context.db, "performances",
      { event_id = 5, artist_id = 7, billing = "support", position = 5 })
    context.runtime.dispatch(created)
    assert_shelf(7)
    context.runtime.dispatch(app.delete(context.db, "performances", created.id))
    assert_shelf(7)
  end)

  it("restacks both artists' shelves when a performance changes artist", function()
    local performance = context.db:query("SELECT id, artist_id FROM performances ORDER BY id LIMIT 1")[1]
    context.runtime.dispatch(app.update(context.db, "performances", performance.id, { artist_id = 8 }))
    assert_shelf(8)
    assert_shelf(performance.artist_id)
  end)

  it("restacks on a renamed artist and on a new date of their event", function()
    local performance = context.db:query("SELECT artist_id, event_id FROM performances ORDER BY id DESC LIMIT 1")[1]
    context.runtime.dispatch(app.update(context.db, "artists", performance.artist_id, { name = "The Oats" }))
    assert_shelf(performance.artist_id)
    context.runtime.dispatch(app.update(context.db, "events", performance.event_id, { date = "2031-01-01" }))
    assert_shelf(performance.artist_id)
    local shelf = context.runtime.document("artist_shelves", performance.artist_id)
    assert.equal(performance.event_id, shelf.latest_events[1].id)
  end)

  it("restacks only while holding the artist's distributed mutex", function()
    local stacker = context.runtime.app.silovators.observers.ShelfStacker
    local created = app.insert(context.db, "performances",
      { event_id = 6, artist_id = 11, billing = "support", position = 6 })
    local results
    stacker.lock_timeout = 0.05
    require("silo.mega_mutex").with_distributed_mutex("Shelf Stacker artist 11", function()
      results = context.runtime.app:dispatch(created)
    end)
    stacker.lock_timeout = 10
    assert.is_false(results[1].ok)
    assert.matches("silovators/shelf_stacker.lua:%d+: .*mega_mutex: timed out after 0.05s waiting for lock " ..
      "'Shelf Stacker artist 11'", results[1].error)
    context.runtime.dispatch(created)
    assert_shelf(11)
  end)
end)
