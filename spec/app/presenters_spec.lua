-- The example app's presenters, computed (not stored) for generated data and compared with SQL written here.
local app = require "spec.support.app"

describe("the example app's presenters", function()
  local context = app.context({})
  local db, runtime
  setup(function()
    context.open()
    db, runtime = context.db, context.runtime
  end)
  teardown(context.close)

  it("lists every event as SQL says: title, url, date, names and counts", function()
    for _, row in ipairs(db:query("SELECT id FROM events ORDER BY id")) do
      assert.same(app.expected_listing(db, row.id), runtime.computed("EventListingPresenter", "Event", row.id))
    end
  end)

  it("titles an event with its headliners, then its supports, each as a sentence", function()
    local event_id = db:query("SELECT id FROM events ORDER BY id DESC LIMIT 1")[1].id
    db:exec("DELETE FROM performances WHERE event_id = ?", event_id)
    db:exec("INSERT INTO artists (id, name) VALUES (1001, 'Mika'), (1002, 'The Oats'), (1003, 'Lions'), (1004, 'Kites')")
    local function bill(rows)
      for _, r in ipairs(rows) do
        db:exec("INSERT INTO performances (event_id, artist_id, billing, position) VALUES (?, ?, ?, ?)", event_id,
          r[1], r[2], r[3])
      end
      return runtime.computed("EventListingPresenter", "Event", event_id)
    end
    assert.equal("", bill({}).title)
    assert.equal("Mika", bill({ { 1001, "headline", 1 } }).title)
    assert.equal("Mika with The Oats", bill({ { 1002, "support", 1 } }).title)
    local listing = bill({ { 1003, "support", 2 }, { 1004, "headline", 2 } })
    assert.equal("Mika and Kites with The Oats and Lions", listing.title)
    assert.equal("/concerts/" .. event_id .. "-mika-and-kites-with-the-oats-and-lions", listing.url)
  end)

  it("computes an image's thumbnail record", function()
    local thumbnail = runtime.computed("ThumbnailPresenter", "Image", 1)
    local image = db:query("SELECT id, url, width, height FROM images WHERE id = 1")[1]
    assert.same({ _id = image.id, image_url = image.url, url = image.url:gsub("%.jpg$", "_thumb.jpg"), width = 150,
      height = math.floor(image.height * 150 / image.width + 0.5) }, thumbnail)
  end)

  it("computes an artist's shelf: name, event count and the ten latest events", function()
    local artist_id = db:query([[SELECT artist_id AS id FROM performances
      GROUP BY artist_id ORDER BY COUNT(*) DESC, artist_id LIMIT 1]])[1].id
    local latest = db:query([[SELECT e.id, e.date FROM events e JOIN performances p ON p.event_id = e.id
      WHERE p.artist_id = ? ORDER BY e.date DESC, e.id DESC LIMIT 10]], artist_id)
    local shelf = runtime.computed("ArtistShelfPresenter", "Artist", artist_id)
    assert.equal(#latest, #shelf.latest_events)
    assert.same(latest, shelf.latest_events)
    assert.equal(tonumber(db:query("SELECT COUNT(*) AS n FROM performances WHERE artist_id = ?", artist_id)[1].n),
      shelf.event_count)
  end)
end)
