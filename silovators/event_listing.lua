-- Keeps the event listings up to date: every change on Songkick's list "Everything that can change the event
-- listings" regenerates the listings it touches.
local S = AsyncObserver("EventListingSilovator")

local function regenerate(event)
  if event then Silo.generate(EventListingPresenter.new(event)) end
end

-- The listing of the event a row belongs to; when an update moved the row to another event, both listings.
-- A row whose event is gone (destroyed before it) regenerates nothing.
local function regenerate_event_of(record, changes)
  regenerate(Event:find_by { id = record.event_id })
  if changes and changes.event_id then regenerate(Event:find_by { id = changes.event_id[1] }) end
end

local function regenerate_all(events)
  for _, event in ipairs(events:all()) do regenerate(event) end
end

-- The bill: who plays, and as headliner or support (the title).
S:listen({ "create", "destroy" }, Performance, function() regenerate_event_of(performance) end)
S:listen("update", Performance, { changing = { "artist_id", "event_id", "billing", "position" } }, function()
  regenerate_event_of(performance, changes)
end)

-- The counts: a row created, destroyed or moved to another event (the message's row image has its event_id).
for _, Child in ipairs { Ticket, Attendance, Review, Image, Video, Poster } do
  S:listen({ "create", "destroy" }, Child, function() regenerate_event_of(message.attributes) end)
  S:listen("update", Child, { changing = "event_id" }, function() regenerate_event_of(message.attributes, changes) end)
end

-- The names shown on every listing of a venue, city, series or artist.
S:listen("update", Venue, { changing = { "name", "city_id" } }, function() regenerate_all(venue:events()) end)
S:listen("update", City, { changing = "name" }, function()
  for _, venue in ipairs(city:venues():all()) do regenerate_all(venue:events()) end
end)
S:listen("update", EventSeries, { changing = "name" }, function() regenerate_all(event_series:events()) end)
S:listen("update", Artist, { changing = "name" }, function() regenerate_all(artist:events()) end)

-- The event itself: a new one, a new date (into the past too: the listings query silos by date), another venue
-- or series; a destroyed event's listing is removed.
S:listen({ "create", "update" }, Event, function() regenerate(event) end)
S:listen("destroy", Event, function() Silo.remove(presenter_for(event)) end)

return S
