-- What the example app's specs share: a private database loaded by the generator, changes applied in MariaDB
-- with the feed message each would produce, and the event listing computed independently in SQL.
local config = require "silo.config"
local core = require "silo.core"
local mysql = require "silo.mysql"
local generator = require "db.generator"
local json = require "silo.json"
local sql = require "spec.support.sql"

local app = {}
app.SEED = 20100326 -- the day of the Songkick talk

-- A new database silo_app_spec_<random> on the configured server, loaded at the small scale. The app's tables
-- have fixed names, so each spec file gets its own database and no other spec can collide with it.
function app.open_database(seed)
  local url = config.get("mysql_url")
  local admin = mysql.connect(url)
  local name = "silo_app_spec_" .. core.random_hex(6)
  admin:exec("CREATE DATABASE " .. name)
  local database_url = sql.url(name)
  local db = mysql.connect(database_url)
  generator.load(db, "small", seed or app.SEED)
  return {
    db = db, name = name, url = database_url,
    drop = function() admin:exec("DROP DATABASE " .. name) end,
  }
end

-- A directory holding the app's models and presenters and only the silovators named (e.g. { "email" }), so that a
-- spec dispatches to the silovator it is about.
local function app_root_with(silovators)
  local root = os.tmpname()
  os.remove(root)
  local commands = { "mkdir -p " .. root .. "/silovators",
    "ln -s \"$(pwd -P)/models.lua\" \"$(pwd -P)/presenters\" " .. root }
  for _, name in ipairs(silovators) do
    commands[#commands + 1] = string.format("ln -s \"$(pwd -P)/silovators/%s.lua\" %s/silovators/", name, root)
  end
  assert(os.execute(table.concat(commands, " && ")) == 0, "cannot build an app root in " .. root)
  return root
end

-- The app (models.lua, presenters/, the silovators named) loaded with the DSL, reading `database` and storing
-- silos in a Mongo database of the same private name.
function app.open_runtime(database, silovators)
  local mongo_uri = config.get("mongo_uri"):gsub("^(mongodb://[^/]*/)[^?]*", "%1" .. database.name)
  local mongo
  local function connect_mongo()
    mongo = mongo or require("silo.mongo").connect(mongo_uri)
    return mongo
  end
  local root = app_root_with(silovators or {})
  local loaded = require("silo.app").new {
    root = root, mongo = connect_mongo, mysql = function() return mysql.connect(database.url) end,
  }
  assert(loaded:load())
  local runtime = { app = loaded }

  -- Runs every matching listen block, failing with the first block's error; returns the results.
  function runtime.dispatch(message)
    local results = assert(loaded:dispatch(message))
    for _, result in ipairs(results) do
      if not result.ok then error(result.block .. ": " .. result.error, 0) end
    end
    return results
  end

  function runtime.document(collection, id) return connect_mongo():collection(collection):find_one({ _id = id }) end

  -- The document a presenter computes for a record, without storing it.
  function runtime.computed(presenter, model, id)
    return loaded:eval(string.format("return Silo.document(%s.new(%s:find(%d)))", presenter, model, id))
  end

  function runtime.generate_all_listings()
    loaded:eval("for _, event in ipairs(Event:all():all()) do Silo.generate(EventListingPresenter.new(event)) end")
  end

  function runtime.close()
    os.execute("rm -r " .. root)
    if not mongo then return end
    for _, collection in ipairs { "event_listings", "thumbnails", "artist_shelves" } do
      mongo:collection(collection):drop()
    end
  end
  return runtime
end

-- What a spec about some silovators needs: setup(context.open) gives it context.db (a private database loaded by
-- the generator) and context.runtime (the app with those silovators); teardown(context.close) drops them.
function app.context(silovators)
  local context = {}
  function context.open()
    context.database = app.open_database()
    context.db = context.database.db
    context.runtime = app.open_runtime(context.database, silovators)
  end
  function context.close()
    if context.runtime then context.runtime.close() end
    if context.database then context.database.drop() end
  end
  return context
end

app.models = {
  cities = "City", venues = "Venue", artists = "Artist", event_series = "EventSeries", events = "Event",
  performances = "Performance", users = "User", attendances = "Attendance", tickets = "Ticket", images = "Image",
  videos = "Video", posters = "Poster", reviews = "Review",
}

local function row(db, table_name, id)
  return db:query("SELECT * FROM " .. table_name .. " WHERE id = ?", id)[1]
end

local binlog_position = 4

-- The message the feed publishes for one row change (attributes: the after-image, or the before-image for a destroy),
-- decoded from its JSON as the daemon receives it.
function app.message(op, table_name, attributes, changes)
  binlog_position = binlog_position + 1
  return json.decode(json.encode {
    op = op, model = app.models[table_name], table = table_name, id = attributes.id,
    attributes = attributes, changes = changes,
    source = { gtid = "0-1-" .. binlog_position, file = "mysql-bin.000001", pos = binlog_position, ts = os.time() },
  })
end

local function assignments(values)
  local columns, params = {}, {}
  for column, value in pairs(values) do
    columns[#columns + 1] = column
    params[#params + 1] = value
  end
  return columns, params
end

-- Each applies one change in MariaDB and returns the feed's message for it.
function app.insert(db, table_name, values)
  local columns, params = assignments(values)
  local sql = string.format("INSERT INTO %s (%s) VALUES (%s)", table_name, table.concat(columns, ", "),
    string.rep("?", #columns, ", "))
  local _, id = db:exec(sql, unpack(params))
  return app.message("create", table_name, row(db, table_name, values.id or id))
end

function app.update(db, table_name, id, values)
  local before = row(db, table_name, id)
  local columns, params = assignments(values)
  for i, column in ipairs(columns) do columns[i] = column .. " = ?" end
  params[#params + 1] = id
  db:exec(string.format("UPDATE %s SET %s WHERE id = ?", table_name, table.concat(columns, ", ")), unpack(params))
  local after, changes = row(db, table_name, id), {}
  for column, old in pairs(before) do
    if after[column] ~= old then changes[column] = { old, after[column] } end
  end
  return app.message("update", table_name, after, changes)
end

function app.delete(db, table_name, id)
  local before = row(db, table_name, id)
  db:exec("DELETE FROM " .. table_name .. " WHERE id = ?", id)
  return app.message("destroy", table_name, before)
end

-- Values for a new row of a table that belongs to an event.
local NEW_ROWS = {
  tickets = { vendor = "Dice", price = "12.50", url = "https://tickets.example.com/new" },
  attendances = { user_id = 1 },
  images = { url = "https://img.example.com/new.jpg", width = 1200, height = 800 },
  videos = { url = "https://video.example.com/new" },
  posters = { url = "https://img.example.com/new-poster.jpg" },
  reviews = { user_id = 2, rating = 5, body = "Loud." },
}

function app.new_row(table_name, event_id)
  local values = { event_id = event_id }
  for column, value in pairs(NEW_ROWS[table_name]) do values[column] = value end
  return values
end

-- Independent of the presenter: what an event's listing must say, from one SQL query and the same sentence rules.
local LISTING_SQL = [[
SELECT e.id, e.date, v.name AS venue_name, c.name AS city_name, s.name AS series_name,
  (SELECT COUNT(*) FROM tickets x WHERE x.event_id = e.id) AS ticket_count,
  (SELECT COUNT(*) FROM images x WHERE x.event_id = e.id) AS image_count,
  (SELECT COUNT(*) FROM videos x WHERE x.event_id = e.id) AS video_count,
  (SELECT COUNT(*) FROM posters x WHERE x.event_id = e.id) AS poster_count,
  (SELECT COUNT(*) FROM attendances x JOIN users u ON u.id = x.user_id WHERE x.event_id = e.id) AS attendance_count,
  (SELECT COUNT(*) FROM reviews x WHERE x.event_id = e.id) AS review_count,
  (SELECT GROUP_CONCAT(a.name ORDER BY p.position, p.id SEPARATOR '\n') FROM performances p
     JOIN artists a ON a.id = p.artist_id WHERE p.event_id = e.id AND p.billing = 'headline') AS headliners,
  (SELECT GROUP_CONCAT(a.name ORDER BY p.position, p.id SEPARATOR '\n') FROM performances p
     JOIN artists a ON a.id = p.artist_id WHERE p.event_id = e.id AND p.billing = 'support') AS supports
FROM events e
JOIN venues v ON v.id = e.venue_id
JOIN cities c ON c.id = v.city_id
LEFT JOIN event_series s ON s.id = e.event_series_id
WHERE e.id = ?]]

local function names(text)
  local list = {}
  if text == core.null then return list end
  for name in text:gmatch("[^\n]+") do list[#list + 1] = name end
  return list
end

local function sentence(list)
  if #list <= 1 then return list[1] or "" end
  return table.concat(list, ", ", 1, #list - 1) .. " and " .. list[#list]
end

function app.expected_listing(db, event_id)
  local r = db:query(LISTING_SQL, event_id)[1]
  if not r then return nil end
  local title = sentence(names(r.headliners))
  if r.supports ~= core.null then title = title .. " with " .. sentence(names(r.supports)) end
  local slug = title:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return {
    _id = r.id, url = "/concerts/" .. r.id .. "-" .. slug, date = r.date, title = title,
    venue_name = r.venue_name, city_name = r.city_name, series_name = r.series_name,
    tickets = r.ticket_count > 0, ticket_count = r.ticket_count, image_count = r.image_count,
    video_count = r.video_count, poster_count = r.poster_count,
    media_count = r.image_count + r.video_count + r.poster_count,
    attendance_count = r.attendance_count, review_count = r.review_count,
  }
end

return app
