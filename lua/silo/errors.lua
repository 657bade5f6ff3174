-- silo.errors: errors in user code (models, presenters, silovators) point at the user's file and line.
--
-- The runtime's own frames (files under lua/silo/ and C functions) are skipped, so a mistake made through
-- the DSL is reported where the user made it, whatever depth of runtime code lies between.
local errors = {}

local runtime_prefix = debug.getinfo(1, "S").source:match("^@(.*/)[^/]*$") or "\0"

local function is_runtime(info)
  return info.what == "C" or info.source:sub(2, #runtime_prefix + 1) == runtime_prefix
end

-- "file:line" of the innermost frame outside the runtime, starting at `level` (1 = the caller), or nil.
function errors.user_location(level)
  level = (level or 1) + 1
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    if not is_runtime(info) and info.currentline > 0 then return info.short_src .. ":" .. info.currentline end
    level = level + 1
  end
end

-- Raises message prefixed with the user's file:line.
function errors.raise(message)
  local where = errors.user_location(2)
  error(where and (where .. ": " .. message) or message, 0)
end

-- Whether a message already starts with a "file:line:" location.
function errors.has_location(message)
  return type(message) == "string" and message:match("^[^\n]-:%d+: ") ~= nil
end

-- The message without a leading "file:line: ": for runtime errors shown to an operator, where the runtime's
-- own line tells nothing.
function errors.without_location(message)
  return (tostring(message):gsub("^[^\n]-%.lua:%d+: ", ""))
end

-- For xpcall: the error as a string that names the user's file:line, and the traceback.
function errors.handler(err)
  local message = tostring(err)
  if not errors.has_location(message) then
    local where = errors.user_location(2)
    if where then message = where .. ": " .. message end
  end
  return { message = message, traceback = debug.traceback(message, 2) }
end

-- Runs fn(...) under errors.handler: true, results... or false, { message, traceback }.
function errors.call(fn, ...)
  local n, args = select("#", ...), { ... }
  return xpcall(function() return fn(unpack(args, 1, n)) end, errors.handler)
end

return errors
