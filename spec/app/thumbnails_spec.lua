-- silovators/thumbnails.lua: the thumbnail record of a new image, checked against SQL written here.
local app = require "spec.support.app"

describe("the thumbnail silovator", function()
  local database, runtime, db

  setup(function()
    database = app.open_database()
    db = database.db
    runtime = app.open_runtime(database, { "thumbnails" })
  end)

  teardown(function()
    if runtime then runtime.close() end
    if database then database.drop() end
  end)

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
