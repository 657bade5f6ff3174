-- db/generator.lua: the example app's data, generated deterministically from a seed at a chosen scale.
--
--   local generator = require "db.generator"
--   generator.sizes(scale)                      -- rows per parent table for `scale` events ("small" = 200)
--   for row in generator.rows("events", sizes, seed) do ... end   -- rows as arrays in generator.columns order
--   generator.load(db, scale, seed)             -- (re)creates db/schema.sql's tables and inserts every row
--
-- Every table draws from its own random stream derived from (seed, table name), and rows carry explicit ids, so
-- a table's rows depend only on the seed and the scale: the same seed always gives the same data.
local generator = {}

generator.SMALL = 200
generator.BATCH_ROWS = 500           -- rows per multi-row INSERT
generator.BATCHES_PER_TRANSACTION = 20
local FIRST_DAY = 1767268800         -- 2026-01-01T12:00:00Z: dates are day offsets from it
local MODULUS = 2147483647           -- Park-Miller minimal standard generator: exact in doubles, same everywhere

-- The tables in load order, with their columns in insert order.
generator.tables = { "cities", "venues", "artists", "event_series", "users", "events", "performances",
  "attendances", "tickets", "images", "videos", "posters", "reviews" }
generator.columns = {
  cities = { "id", "name", "country" },
  venues = { "id", "city_id", "name", "capacity" },
  artists = { "id", "name" },
  event_series = { "id", "name" },
  users = { "id", "username", "email", "deleted", "created_at" },
  events = { "id", "venue_id", "event_series_id", "date" },
  performances = { "id", "event_id", "artist_id", "billing", "position" },
  attendances = { "id", "user_id", "event_id" },
  tickets = { "id", "event_id", "vendor", "price", "url" },
  images = { "id", "event_id", "url", "width", "height" },
  videos = { "id", "event_id", "url" },
  posters = { "id", "event_id", "url" },
  reviews = { "id", "event_id", "user_id", "rating", "body" },
}

local Random = {}
Random.__index = Random

local function stream(seed, name)
  local state = seed % (MODULUS - 1) + 1
  for i = 1, #name do state = (state * 31 + name:byte(i)) % (MODULUS - 1) + 1 end
  local random = setmetatable({ state = state }, Random)
  for _ = 1, 3 do random:next() end
  return random
end

function Random:next()
  self.state = self.state * 48271 % MODULUS
  return self.state
end

function Random:int(low, high) return low + self:next() % (high - low + 1) end
function Random:chance(probability) return self:next() < probability * MODULUS end
function Random:pick(list) return list[self:int(1, #list)] end

-- `count` distinct integers from 1..max (all of them when max <= count)
function Random:distinct(count, max)
  local chosen, seen = {}, {}
  while #chosen < math.min(count, max) do
    local n = self:int(1, max)
    if not seen[n] then seen[n], chosen[#chosen + 1] = true, n end
  end
  return chosen
end

local CITIES = {
  { "London", "UK" }, { "Manchester", "UK" }, { "Glasgow", "UK" }, { "Berlin", "Germany" },
  { "Paris", "France" }, { "Amsterdam", "Netherlands" }, { "Madrid", "Spain" }, { "New York", "US" },
  { "Chicago", "US" }, { "Austin", "US" }, { "Toronto", "Canada" }, { "Melbourne", "Australia" },
}
local VENUE_WORDS = { "Union", "Electric", "Royal", "Roundhouse", "Forum", "Garage", "Academy", "Lexington",
  "Scala", "Jazz", "Corn", "Palace" }
local VENUE_KINDS = { "Chapel", "Ballroom", "Hall", "Arena", "Club", "Theatre", "Bar", "Exchange" }
local ARTIST_WORDS = { "Velvet", "Oats", "Arctic", "Foxes", "Mika", "Static", "Harbour", "Neon", "Wolves",
  "Echo", "Paper", "Lions", "Silver", "Tides", "Glass", "Animals", "Midnight", "Kites" }
local SERIES_NAMES = { "Tour", "Festival", "Weekender", "Residency", "Sessions" }
local VENDORS = { "Ticketmaster", "See Tickets", "Dice", "Eventim", "AXS" }

local function ceil_div(n, d) return math.max(1, math.ceil(n / d)) end

-- Rows per parent table for `scale` events ("small" or a positive integer).
function generator.sizes(scale)
  local events = scale == "small" and generator.SMALL or tonumber(scale)
  if not events or events < 1 or events % 1 ~= 0 then
    error(string.format("generator: scale must be 'small' or a positive integer, got '%s'", tostring(scale)), 2)
  end
  return {
    events = events,
    cities = math.max(5, ceil_div(events, 500)),
    venues = math.max(10, ceil_div(events, 25)),
    artists = math.max(20, ceil_div(events, 4)),
    event_series = math.max(3, ceil_div(events, 100)),
    users = math.max(30, ceil_div(events, 2)),
  }
end

local function day(offset) return os.date("!%Y-%m-%d", FIRST_DAY + offset * 86400) end

local function numbered(name, i, list_size)
  if i <= list_size then return name end
  return name .. " " .. math.floor((i - 1) / list_size + 1)
end

-- Row makers for the parent tables: make(random, i, sizes) -> row
local parents = {
  cities = function(_, i)
    local city = CITIES[(i - 1) % #CITIES + 1]
    return { i, numbered(city[1], i, #CITIES), city[2] }
  end,
  venues = function(random, i, sizes)
    return { i, random:int(1, sizes.cities), random:pick(VENUE_WORDS) .. " " .. random:pick(VENUE_KINDS),
      random:int(2, 200) * 50 }
  end,
  artists = function(random, i)
    if random:chance(0.3) then return { i, random:pick(ARTIST_WORDS) } end
    return { i, "The " .. random:pick(ARTIST_WORDS) .. " " .. random:pick(ARTIST_WORDS) }
  end,
  event_series = function(random, i)
    return { i, random:pick(ARTIST_WORDS) .. " " .. random:pick(SERIES_NAMES) .. " " .. (2025 + i % 3) }
  end,
  users = function(random, i)
    local username = "fan" .. i
    return { i, username, username .. "@example.com", random:chance(0.02) and 1 or 0,
      day(-random:int(1, 1500)) .. " 10:00:00" }
  end,
  events = function(random, i, sizes)
    local series = random:chance(0.2) and random:int(1, sizes.event_series) or nil
    return { i, random:int(1, sizes.venues), series, day(random:int(-180, 540)) }
  end,
}

-- Child rows of one event: add(random, event_id, sizes, add_row) calls add_row(row_without_id) per row.
local children = {
  performances = function(random, event_id, sizes, add_row)
    local headliners = random:chance(0.1) and 2 or 1
    local artists = random:distinct(headliners + random:int(0, 3), sizes.artists)
    for position, artist_id in ipairs(artists) do
      local support = position > headliners
      add_row { event_id, artist_id, support and "support" or "headline", support and position - headliners or position }
    end
  end,
  attendances = function(random, event_id, sizes, add_row)
    for _, user_id in ipairs(random:distinct(random:int(0, 10), sizes.users)) do add_row { user_id, event_id } end
  end,
  tickets = function(random, event_id, _, add_row)
    for n = 1, random:int(0, 3) do
      local price = string.format("%d.%02d", random:int(5, 120), random:pick { 0, 50, 99 })
      add_row { event_id, random:pick(VENDORS), price, string.format("https://tickets.example.com/%d/%d", event_id, n) }
    end
  end,
  images = function(random, event_id, _, add_row)
    for n = 1, random:int(0, 2) do
      local url = string.format("https://img.example.com/%d/%d.jpg", event_id, n)
      add_row { event_id, url, random:pick { 640, 1024, 2048 }, random:pick { 480, 768, 1536 } }
    end
  end,
  videos = function(random, event_id, _, add_row)
    if random:chance(0.3) then add_row { event_id, string.format("https://video.example.com/%d", event_id) } end
  end,
  posters = function(random, event_id, _, add_row)
    if random:chance(0.3) then add_row { event_id, string.format("https://img.example.com/%d/poster.jpg", event_id) } end
  end,
  reviews = function(random, event_id, sizes, add_row)
    for _, user_id in ipairs(random:distinct(random:int(0, 2), sizes.users)) do
      local rating = random:int(1, 5)
      add_row { event_id, user_id, rating, string.rep("Loud. ", rating) .. "Would go again." }
    end
  end,
}

local function parent_rows(name, sizes, random)
  return coroutine.wrap(function()
    for i = 1, sizes[name] do coroutine.yield(parents[name](random, i, sizes)) end
  end)
end

local function child_rows(name, sizes, random)
  return coroutine.wrap(function()
    local id = 0
    local function add_row(row)
      id = id + 1
      table.insert(row, 1, id)
      coroutine.yield(row)
    end
    for event_id = 1, sizes.events do children[name](random, event_id, sizes, add_row) end
  end)
end

-- An iterator over table `name`'s rows, each an array in generator.columns[name] order (nil for NULL).
function generator.rows(name, sizes, seed)
  local random = stream(seed, name)
  if parents[name] then return parent_rows(name, sizes, random) end
  if children[name] then return child_rows(name, sizes, random) end
  error(string.format("generator: no table '%s'", tostring(name)), 2)
end

local function read_file(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("*a")
  file:close()
  return text
end

local function schema_path()
  local here = debug.getinfo(1, "S").source:match("^@(.*)generator%.lua$")
  return (here ~= "" and here or "./") .. "schema.sql"
end

-- db/schema.sql's statements (split at the semicolons that end its lines)
function generator.schema_statements()
  local statements = {}
  for statement in read_file(schema_path()):gsub("%-%-[^\n]*", ""):gmatch("(.-);%s*\n") do
    if statement:match("%S") then statements[#statements + 1] = statement end
  end
  return statements
end

local function insert_sql(name, row_count)
  local columns = generator.columns[name]
  local row = "(" .. string.rep("?", #columns, ", ") .. ")"
  return string.format("INSERT INTO %s (%s) VALUES %s", name, table.concat(columns, ", "),
    string.rep(row, row_count, ", "))
end

local NULL = require("silo.core").null

-- Inserts one table's rows in multi-row INSERTs, BATCHES_PER_TRANSACTION of them per transaction.
local function insert_rows(db, name, rows)
  local width, count, values, batches = #generator.columns[name], 0, {}, {}
  local function flush_transaction()
    db:transaction(function() for _, batch in ipairs(batches) do db:exec(batch.sql, unpack(batch.values)) end end)
    batches = {}
  end
  local function flush_batch()
    batches[#batches + 1] = { sql = insert_sql(name, #values / width), values = values }
    values = {}
    if #batches == generator.BATCHES_PER_TRANSACTION then flush_transaction() end
  end
  for row in rows do
    for c = 1, width do values[#values + 1] = row[c] == nil and NULL or row[c] end
    count = count + 1
    if count % generator.BATCH_ROWS == 0 then flush_batch() end
  end
  if #values > 0 then flush_batch() end
  if #batches > 0 then flush_transaction() end
  return count
end

-- Drops and recreates the app's tables in db's database, then loads every table. Returns the row counts by table.
function generator.load(db, scale, seed)
  local sizes = generator.sizes(scale)
  if type(seed) ~= "number" or seed % 1 ~= 0 then
    error(string.format("generator: seed must be an integer, got '%s'", tostring(seed)), 2)
  end
  for _, statement in ipairs(generator.schema_statements()) do db:exec(statement) end
  local counts = {}
  for _, name in ipairs(generator.tables) do counts[name] = insert_rows(db, name, generator.rows(name, sizes, seed)) end
  return counts
end

return generator
