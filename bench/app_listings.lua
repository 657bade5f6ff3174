-- Event listings computed per second by presenters/event_listing.lua (Silo.document: computed in one consistent
-- snapshot each, not stored), on the database of the mysql_url setting loaded by scripts/generate.lua:
--   silo-lua run scripts/generate.lua --scale 100000 --seed 1
--   silo-lua run bench/app_listings.lua [COUNT]
local core = require "silo.core"
local count = tonumber((...)) or 2000

local root = debug.getinfo(1, "S").source:match("^@(.-)bench/app_listings%.lua$")
local app = require("silo.app").new { root = root ~= "" and root or "." }
assert(app:load())
local events = app:eval("return Event:count()")
local compute = app:eval("return function(id) return Silo.document(EventListingPresenter.new(Event:find(id))) end")

local db = app.models:db()
local function statements_run()
  return tonumber(db:query("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[1].Value)
end

local statements, started = statements_run(), core.monotonic()
for i = 1, count do compute((i * 7919) % events + 1) end
local seconds = core.monotonic() - started
statements = statements_run() - statements - 1
print(string.format("%d listings of %d events in %.2f s: %.0f listings/s (%.2f ms each, %.1f statements each)",
  count, events, seconds, count / seconds, seconds * 1000 / count, statements / count))
