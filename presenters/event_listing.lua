-- An event as the listings show it: Songkick's EventListingPresenter. One silo document per event, by its id.
local EventListing = Presenter("EventListingPresenter")
EventListing:silo { collection = "event_listings", id = function(self) return self.event.id end,
  find = function(id) return Event:find(id) end }

function EventListing:initialize(event) self.event = event end

-- The names of the artists billed as `billing` ("headline" or "support"), in bill order.
function EventListing:billed(billing)
  local artists = self.event:artists():where("performances.billing = ?", billing)
  return pluck(artists:order("performances.position, performances.id"), "name")
end

-- "Mika with The Oats": the headliners, then the supports when there are any, each as a sentence.
function EventListing:title()
  if not self.computed_title then
    local title, supports = to_sentence(self:billed("headline")), self:billed("support")
    if #supports > 0 then title = title .. " with " .. to_sentence(supports) end
    self.computed_title = title
  end
  return self.computed_title
end

function EventListing:url()
  local slug = self:title():lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return "/concerts/" .. self.event.id .. "-" .. slug
end

-- How many rows of an association the event has, counted once per presenter.
function EventListing:count(association)
  self.counts = self.counts or {}
  self.counts[association] = self.counts[association] or self.event[association](self.event):count()
  return self.counts[association]
end

function EventListing:date() return self.event.date end
function EventListing:venue_name() return self.event:venue().name end
function EventListing:city_name() return self.event:venue():city().name end

function EventListing:series_name()
  local series = self.event:event_series()
  return series and series.name or null
end

function EventListing:ticket_count() return self:count("tickets") end
function EventListing:tickets() return self:ticket_count() > 0 end
function EventListing:attendance_count() return self:count("attending_users") end
function EventListing:review_count() return self:count("reviews") end
function EventListing:image_count() return self:count("images") end
function EventListing:video_count() return self:count("videos") end
function EventListing:poster_count() return self:count("posters") end
function EventListing:media_count() return self:image_count() + self:video_count() + self:poster_count() end

for _, name in ipairs { "url", "date", "title", "venue_name", "city_name", "series_name", "tickets", "ticket_count",
  "attendance_count", "review_count", "image_count", "video_count", "poster_count", "media_count" } do
  EventListing:silo_method(name)
end

return EventListing
