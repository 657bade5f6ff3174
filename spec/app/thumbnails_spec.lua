-- silovators/thumbnails.lua: the thumbnail record of a new image, checked against SQL written here.
local app = require "spec.support.app"

describe("the thumbnail silovator", function()
  local context = app.context({ "thumbnails" })
  setup(context.open)
  teardown(context.close)

  it("writes the thumbnail record of a new image", function()
    local created = app.insert(context.db, "images", app.new_row("images", 3))
    context.runtime.dispatch(created)
    local expected = context.db:query([[SELECT id AS _id, url AS image_url, REPLACE(url, '.jpg', '_thumb.jpg') AS url,
      150 AS width, CAST(ROUND(height * 150 / width) AS SIGNED) AS height FROM images WHERE id = ?]], created.id)[1]
    local stored = context.runtime.document("thumbnails", created.id)
    stored._silo = nil
    assert.same(expected, stored)
  end)

  it("writes none for an image updated or destroyed", function()
    local image_id = context.db:query("SELECT id FROM images ORDER BY id LIMIT 1")[1].id
    context.runtime.dispatch(app.update(context.db, "images", image_id, { width = 99 }))
    context.runtime.dispatch(app.delete(context.db, "images", image_id))
    assert.is_nil(context.runtime.document("thumbnails", image_id))
  end)
end)
