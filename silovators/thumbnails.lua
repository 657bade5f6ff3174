-- Thumbnails: every new image gets its thumbnail record.
local S = AsyncObserver("ThumbnailSilovator")

S:listen("create", Image, function() Silo.generate(presenter_for(image)) end)

return S
