-- An artist's shelf: the artist's name, how many events they played, and their ten latest events, newest first.
-- Stacked by silovators/shelf_stacker.lua.
local ArtistShelf = Presenter("ArtistShelfPresenter")
ArtistShelf:silo { collection = "artist_shelves", id = function(self) return self.artist.id end,
  find = function(id) return Artist:find(id) end }

ArtistShelf.SIZE = 10

function ArtistShelf:initialize(artist) self.artist = artist end
function ArtistShelf:name() return self.artist.name end
function ArtistShelf:event_count() return self.artist:events():count() end

function ArtistShelf:latest_events()
  local events = self.artist:events():order("events.date DESC, events.id DESC"):limit(ArtistShelf.SIZE)
  return map(events, function(event) return { id = event.id, date = event.date } end)
end

ArtistShelf:silo_method("name", "event_count", "latest_events")
return ArtistShelf
