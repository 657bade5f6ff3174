-- Emails: a welcome request for every new user, a goodbye one when a user is deleted. The requests are published
-- to the feed, where a mailer consumes them.
local S = AsyncObserver("EmailSilovator")

local EmailRequest = {}

-- A request as a feed message: create.EmailRequest
function EmailRequest.new(kind, user_id, email)
  return { op = "create", model = "EmailRequest", attributes = { kind = kind, user_id = user_id, email = email } }
end

local function is_set(flag) return flag == true or flag == 1 end

S:listen("create", User, function() publish(EmailRequest.new("welcome", user.id, user.email)) end)

S:listen("update", User, { changing = "deleted" }, function()
  if is_set(changes.deleted[2]) then
    local email = changes.email and changes.email[1] or user.email -- the address before a deletion scrubbed it
    publish(EmailRequest.new("goodbye", user.id, email))
  end
end)

return S
