-- The DSL's integration specs: their own tables (dsl_spec_<random>_*) in the configured MariaDB database.
local config = require "silo.config"
local core = require "silo.core"

local dsl_db = {}

local SCHEMA = {
  cities = "id INT PRIMARY KEY, name VARCHAR(100) NOT NULL",
  venues = "id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, city_id INT NULL, capacity INT NOT NULL DEFAULT 0",
  events = "id BIGINT PRIMARY KEY, venue_id INT NOT NULL, starts_at DATETIME NOT NULL",
  artists = "id INT PRIMARY KEY, name VARCHAR(100) NOT NULL",
  performances = "id INT PRIMARY KEY, event_id BIGINT NOT NULL, artist_id INT NOT NULL, position INT NOT NULL",
}

local ROWS = {
  { "cities", "id, name", { { 1, "London" }, { 2, "Paris" } } },
  { "venues", "id, name, city_id, capacity",
    { { 10, "Union Chapel", 1, 900 }, { 11, "Roundhouse", 1, 3300 }, { 12, "Olympia", 2, 2000 },
      { 13, "Nowhere Hall", core.null, 50 } } },
  { "events", "id, venue_id, starts_at",
    { { 100, 10, "2026-12-01 20:00:00" }, { 101, 10, "2026-12-02 20:00:00" }, { 102, 12, "2026-12-03 20:00:00" },
      { 9007199254740993LL, 11, "2026-12-04 20:00:00" } } },
  { "artists", "id, name", { { 1, "Ada" }, { 2, "Bo" }, { 3, "Cy" } } },
  { "performances", "id, event_id, artist_id, position",
    { { 1, 100, 2, 2 }, { 2, 100, 1, 1 }, { 3, 101, 1, 1 }, { 4, 102, 3, 1 } } },
}

-- Creates the tables and rows; returns { db = , prefix = , models = <Lua for models.lua>, drop = fn }.
function dsl_db.open()
  local db = require("silo.mysql").connect(config.get("mysql_url"))
  local prefix = "dsl_spec_" .. core.random_hex(4) .. "_"
  for name, columns in pairs(SCHEMA) do db:exec("CREATE TABLE " .. prefix .. name .. " (" .. columns .. ")") end
  for _, t in ipairs(ROWS) do
    for _, values in ipairs(t[3]) do
      db:exec(string.format("INSERT INTO %s%s (%s) VALUES (%s)", prefix, t[1], t[2], string.rep("?", #values, ", ")),
        unpack(values))
    end
  end
  local models = ([[
Model("City", { table = "PREFIXcities" }):has_many("venues")
Model("Venue", { table = "PREFIXvenues" }):belongs_to("city"):has_many("events")
Model("Event", { table = "PREFIXevents" }):belongs_to("venue"):has_many("performances")
Event:has_many("artists", { through = "performances" })
Model("Artist", { table = "PREFIXartists" }):has_many("performances"):has_many("events", { through = "performances" })
Model("Performance", { table = "PREFIXperformances" }):belongs_to("event"):belongs_to("artist")
]]):gsub("PREFIX", prefix)
  return {
    db = db, prefix = prefix, models = models,
    drop = function()
      for name in pairs(SCHEMA) do db:exec("DROP TABLE IF EXISTS " .. prefix .. name) end
    end,
  }
end

return dsl_db
