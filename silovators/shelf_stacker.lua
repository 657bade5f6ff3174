-- The ShelfStacker keeps each artist's shelf (presenters/artist_shelf.lua) stacked. Under a distributed mutex
-- per artist, so that of two daemons restacking one shelf the later one reads after the earlier one wrote:
-- neither can store a shelf computed from older rows over a newer one.
local S = AsyncObserver("ShelfStacker")
S.lock_timeout = 10 -- seconds a restack waits while another daemon restacks the same shelf

local function restack(artist_id)
  with_distributed_mutex("Shelf Stacker artist " .. tostring(artist_id), function()
    local artist = Artist:find_by { id = artist_id }
    if artist then Silo.generate(ArtistShelfPresenter.new(artist)) end
  end, { timeout = S.lock_timeout })
end

S:listen({ "create", "destroy" }, Performance, function() restack(performance.artist_id) end)
S:listen("update", Performance, { changing = { "artist_id", "event_id" } }, function()
  restack(performance.artist_id)
  if changes.artist_id then restack(changes.artist_id[1]) end
end)
S:listen("update", Artist, { changing = "name" }, function() restack(artist.id) end)
S:listen("update", Event, { changing = "date" }, function()
  for _, artist_id in ipairs(event:artists():ids()) do restack(artist_id) end
end)

return S
