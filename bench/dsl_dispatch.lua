-- What the DSL adds per feed message, on the servers of the configuration (mysql_url, mongo_uri):
--   eval "$(scripts/services env)"; build/silo-lua run bench/dsl_dispatch.lua [COUNT]
-- Prints messages/s for: a matching block that does nothing (dispatch alone), a block regenerating a small
-- silo (2 queries in a snapshot + 1 upsert), and Silo.read of a stored document (1 find_one).
package.path = "./?.lua;" .. package.path
local config = require "silo.config"
local core = require "silo.core"
local dsl = require "spec.support.dsl"
local dsl_db = require "spec.support.dsl_db"

local count = tonumber((...)) or 2000
local database = dsl_db.open()
local mongo = require("silo.mongo").connect(config.get("mongo_uri"))
local collection = "dsl_bench_" .. core.random_hex(4)
local app = dsl.load_app({
  ["models.lua"] = database.models,
  ["presenters/card.lua"] = ([[
local Card = Presenter("CardPresenter")
Card:silo { collection = "COLLECTION", id = function(self) return self.venue.id end }
function Card:initialize(venue) self.venue = venue end
function Card:name() return self.venue.name end
function Card:city() return self.venue:city().name end
function Card:event_count() return self.venue:events():count() end
Card:silo_method("name", "city", "event_count")
]]):gsub("COLLECTION", collection),
  ["silovators/card.lua"] = [[
local S = AsyncObserver("CardSilovator")
S:listen("update", Venue, { changing = "capacity" }, function() end)
S:listen("update", Venue, { changing = "name" }, function() Silo.generate(presenter_for(venue)) end)
]],
}, { mysql = database.db, mongo = mongo })

local function message(column)
  return { op = "update", model = "Venue", attributes = { id = 10, name = "Union Chapel", city_id = 1, capacity = 900 },
    changes = { [column] = { 1, 2 } }, source = { file = "mysql-bin.000001", pos = 4 } }
end

local function measure(label, fn)
  local started = core.monotonic()
  for _ = 1, count do fn() end
  local seconds = core.monotonic() - started
  print(string.format("%-44s %6d in %.2f s: %8.0f/s (%.3f ms each)", label, count, seconds, count / seconds,
    seconds * 1000 / count))
end

local noop, regenerate = message("capacity"), message("name")
measure("dispatch to an empty block", function() assert(app:dispatch(noop)[1].ok) end)
measure("dispatch + Silo.generate (MariaDB + Mongo)", function() assert(app:dispatch(regenerate)[1].ok) end)
local Card = app.env.CardPresenter
measure("Silo.read + 3 stored fields (Mongo)", function()
  local card = app.env.Silo.read(Card, 10)
  return card:name(), card:city(), card:event_count()
end)
print(string.format("servers: %s, %s", config.redact(config.get("mysql_url")), config.get("mongo_uri")))
mongo:collection(collection):drop()
database.drop()
