-- The thumbnail record of an image: the size and address a resizer would produce (the resizing itself is not done).
local Thumbnail = Presenter("ThumbnailPresenter")
Thumbnail:silo { collection = "thumbnails", id = function(self) return self.image.id end,
  find = function(id) return Image:find(id) end }

Thumbnail.WIDTH = 150

function Thumbnail:initialize(image) self.image = image end
function Thumbnail:image_url() return self.image.url end
function Thumbnail:url() return (self.image.url:gsub("(%.%w+)$", "_thumb%1")) end
function Thumbnail:width() return Thumbnail.WIDTH end
function Thumbnail:height() return math.floor(self.image.height * Thumbnail.WIDTH / self.image.width + 0.5) end

Thumbnail:silo_method("image_url", "url", "width", "height")
return Thumbnail
