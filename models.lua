-- The example app's models: one per table of db/schema.sql, with the associations presenters and silovators use.
local City = Model("City")
City:has_many "venues"

local Venue = Model("Venue")
Venue:belongs_to "city"
Venue:has_many "events"

local Artist = Model("Artist")
Artist:has_many "performances"
Artist:has_many("events", { through = "performances" })

local EventSeries = Model("EventSeries")
EventSeries:has_many "events"

local Event = Model("Event")
Event:belongs_to "venue"
Event:belongs_to "event_series"
Event:has_many "performances"
Event:has_many("artists", { through = "performances" })
Event:has_many "attendances"
Event:has_many("attending_users", { through = "attendances", source = "user", model = "User" })
Event:has_many "tickets"
Event:has_many "images"
Event:has_many "videos"
Event:has_many "posters"
Event:has_many "reviews"

local Performance = Model("Performance")
Performance:belongs_to "event"
Performance:belongs_to "artist"

local User = Model("User")
User:has_many "attendances"

for _, name in ipairs { "Attendance", "Review" } do
  local m = Model(name)
  m:belongs_to "event"
  m:belongs_to "user"
end

for _, name in ipairs { "Ticket", "Image", "Video", "Poster" } do
  Model(name):belongs_to "event"
end

-- The feed publishes changes to every table above.
AsynchronousObservers.listen(City, Venue, Artist, EventSeries, Event, Performance, User, Attendance, Review, Ticket,
  Image, Video, Poster)
