-- The seed's other daemons: emails, thumbnails and the ShelfStacker, each checked against SQL written here.
local app = require "spec.support.app"

describe("the example app's other silovators", function()
  local database, runtime, db

  setup(function()
    database = app.open_database()
    db = database.db
    runtime = app.open_runtime(database)
  end)

  teardown(function()
    if runtime then runtime.close() end
    if database then database.drop() end
  end)

  local function result_of(results, silovator)
    local found
    for _, result in ipairs(results) do
      if result.silovator == silovator then
        assert.is_nil(found, silovator .. " ran twice")
        found = result
      end
    end
    return found
  end

  local function email_request(kind, user_id, email)
    return { op = "create", model = "EmailRequest", attributes = { kind = kind, user_id = user_id, email = email } }
  end

  describe("emails", function()
    local function new_user(name)
      return app.insert(db, "users", { username = name, email = name .. "@example.com", created_at = "2026-11-28 12:00:00" })
    end

    it("publishes a welcome request for a new user", function()
      local created = new_user("mika")
      local results = runtime.dispatch(created)
      assert.same({ email_request("welcome", created.id, "mika@example.com") }, result_of(results, "EmailSilovator").published)
    end)

    it("publishes a goodbye request to the address a user had when deleted", function()
      local created = new_user("oats")
      local results = runtime.dispatch(app.update(db, "users", created.id, { deleted = 1, email = "" }))
      assert.same({ email_request("goodbye", created.id, "oats@example.com") }, result_of(results, "EmailSilovator").published)
    end)

    it("publishes nothing when a user is undeleted or changes anything else", function()
      local created = new_user("lexington")
      runtime.dispatch(app.update(db, "users", created.id, { deleted = 1 }))
      local undeleted = runtime.dispatch(app.update(db, "users", created.id, { deleted = 0 }))
      assert.same({}, result_of(undeleted, "EmailSilovator").published)
      local renamed = runtime.dispatch(app.update(db, "users", created.id, { username = "lex" }))
      assert.is_nil(result_of(renamed, "EmailSilovator"))
    end)
  end)

  describe("thumbnails", function()
    it("writes the thumbnail record of a new image", function()
      local created = app.insert(db, "images", app.new_row("images", 3))
      runtime.dispatch(created)
      local expected = db:query([[SELECT id AS _id, url AS image_url, REPLACE(url, '.jpg', '_thumb.jpg') AS url,
        150 AS width, CAST(ROUND(height * 150 / width) AS SIGNED) AS height FROM images WHERE id = ?]], created.id)[1]
      local stored = runtime.document("thumbnails", created.id)
      stored._silo = nil
      assert.same(expected, stored)
    end)

    it("writes none for an image updated or destroyed", function()
      local image_id = db:query("SELECT id FROM images ORDER BY id LIMIT 1")[1].id
      runtime.dispatch(app.update(db, "images", image_id, { width = 99 }))
      runtime.dispatch(app.delete(db, "images", image_id))
      assert.is_nil(runtime.document("thumbnails", image_id))
    end)
  end)

  describe("the ShelfStacker", function()
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
end)
