-- The demo's Lua half, run by scripts/demo inside silo-lua with the demo's settings in the environment:
--   silo-lua run scripts/demo.lua SILO_LUA_BINARY
-- It fills the event listing silos, starts `silo-lua feed` as a child process, changes rows in MariaDB, and
-- runs what a silovator daemon does (consume the feed, dispatch to the listen blocks, send what they
-- published, ack) until the listing of the changed event shows the change.
local amqp = require "silo.amqp"
local config = require "silo.config"
local core = require "silo.core"
local feed_message = require "silo.feed.message"
local json = require "silo.json"
local mysql = require "silo.mysql"

local binary = assert(..., "usage: silo-lua run scripts/demo.lua SILO_LUA_BINARY")
local say = function(format, ...) io.write(string.format(format, ...), "\n") io.flush() end

local app = require("silo.app").new()
assert(app:load())
local db = mysql.connect(config.get("mysql_url"))
local listings = require("silo.mongo").connect(config.get("mongo_uri")):collection("event_listings")

say("== the silos: one event listing per event, computed from MySQL by presenters/event_listing.lua")
local started = core.monotonic()
app:eval([[for _, event in ipairs(Event:all()) do Silo.generate(EventListingPresenter.new(event)) end]], "demo")
say("generated %d listings in %.2f s", listings:count({}), core.monotonic() - started)

local event_id = 1
local function show_listing(label)
  local doc = listings:find_one({ _id = event_id })
  say("%s: %s | %s, %s | going: %s | tickets: %s", label, doc.title, doc.venue_name, doc.city_name,
    tostring(doc.attendance_count), tostring(doc.ticket_count))
  return doc
end
local before = show_listing("listing of event " .. event_id)

say("\n== the feed: silo-lua feed tails the binlog and publishes every change to '%s'", config.get("exchange"))
local broker = amqp.connect(config.get("amqp_url"))
local queue = "silo.demo.silovators"
broker:exchange_declare(config.get("exchange"), "topic", { durable = true })
broker:queue_declare(queue, { durable = true })
broker:queue_bind(queue, config.get("exchange"), "#")
broker:queue_purge(queue)
local log = os.getenv("SILO_SERVICES_DIR") .. "/demo-feed.log"
local pipe = io.popen(string.format("%s feed > %s 2>&1 & echo $!", binary, log))
local feed_pid = tonumber(pipe:read("*l"))
pipe:close()
say("feed running as pid %d, its log in %s", feed_pid, log)
local function feed_says(text)
  local f = io.open(log)
  local content = f and f:read("*a") or ""
  if f then f:close() end
  return content:find(text, 1, true)
end
local deadline = core.monotonic() + 30
while not feed_says("reading the binlog") do
  assert(core.monotonic() < deadline, "the feed did not start: see " .. log)
  core.sleep(0.1)
end

say("\n== a change in MySQL, made by plain SQL (no ORM, no callbacks)")
local headliner = db:query([[SELECT a.id, a.name FROM artists a JOIN performances p ON p.artist_id = a.id
  WHERE p.event_id = ? AND p.billing = 'headline' ORDER BY p.position LIMIT 1]], event_id)[1]
local renamed = headliner.name .. " (Reunion Tour)"
db:exec("UPDATE artists SET name = ? WHERE id = ?", renamed, headliner.id)
local user = db:query("SELECT id FROM users WHERE id NOT IN (SELECT user_id FROM attendances WHERE event_id = ?) LIMIT 1",
  event_id)[1]
db:exec("INSERT INTO attendances (id, event_id, user_id) SELECT MAX(id) + 1, ?, ? FROM attendances", event_id, user.id)
local _, new_user = db:exec("INSERT INTO users (username, email, created_at) VALUES (?, ?, ?)", "ada",
  "ada@example.com", core.datetime())
say("renamed artist %d to %q; user %d is going to event %d; user %d signed up", headliner.id, renamed, user.id,
  event_id, new_user)

say("\n== the silovators: each message dispatched to the listen blocks that match it")
broker:consume(queue, { prefetch = 100 })
local changed, delivery
deadline = core.monotonic() + 60
repeat
  delivery = broker:receive(1)
  if delivery then
    local results = assert(app:dispatch(json.decode(delivery.body)))
    if #results == 0 then say("%-22s (no listen block: for a mailer)", delivery.routing_key) end
    for _, result in ipairs(results) do
      say("%-22s %-26s %s %s", delivery.routing_key, result.silovator, result.block,
        result.ok and "ok" or ("FAILED: " .. result.error))
    end
    -- what the blocks published (EmailRequests...) is confirmed before the message that caused it is acked
    local published = feed_message.published_envelopes(config.get("exchange"), results)
    if #published > 0 then broker:publish_batch(published) end
    broker:ack(delivery)
  end
  local doc = listings:find_one({ _id = event_id })
  changed = doc.title:find(renamed, 1, true) and doc.attendance_count == before.attendance_count + 1
until (changed and not delivery) or core.monotonic() > deadline

local after = show_listing("\nlisting of event " .. event_id)
say("stamped with the change's binlog position: %s", json.encode(after._silo.version))

os.execute("kill -TERM " .. feed_pid)
while os.execute("kill -0 " .. feed_pid .. " 2>/dev/null") == 0 do core.sleep(0.1) end
say("\nfeed stopped; it resumes from %s", config.get("feed_checkpoint"))
broker:queue_delete(queue)
broker:close()
if not changed then
  io.stderr:write("demo: the listing did not change within 60 s; see ", log, "\n")
  return 1
end
say("demo: the change flowed from MySQL through the feed to the silo")
return 0
