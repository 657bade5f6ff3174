-- silo.log: one line per event on stderr, "2026-11-28T12:40:31.123Z INFO  feed: message".
-- The threshold is the log_level setting; a logger is named after the component that writes.
local core = require "silo.core"
local config = require "silo.config"

local log = {}

local severities = { debug = 1, info = 2, warn = 3, error = 4 }
local threshold

local function enabled(level)
  threshold = threshold or severities[config.get("log_level")]
  return severities[level] >= threshold
end

local function write(name, level, format, ...)
  if not enabled(level) then return end
  local message = select("#", ...) > 0 and string.format(format, ...) or format
  io.stderr:write(string.format("%s %-5s %s: %s\n", tostring(core.datetime()), level:upper(), name, message))
end

-- log.named("feed").info("published %d messages", n)
function log.named(name)
  local logger = {}
  for level in pairs(severities) do
    logger[level] = function(format, ...) write(name, level, format, ...) end
  end
  return logger
end

-- For specs and long-running processes whose settings changed.
function log.set_level(level)
  assert(severities[level], "log level must be debug, info, warn or error")
  threshold = severities[level]
end

return log
