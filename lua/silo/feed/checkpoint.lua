-- silo.feed.checkpoint: where the feed resumes. A small text file, replaced atomically after the broker has
-- confirmed every message up to that position:
--   gtid=0-1-1234
--   file=silo-bin.000003
--   pos=8812
local core = require "silo.core"

local checkpoint = {}

local fields = { gtid = "string", file = "string", pos = "number" }

-- The saved position, nil when there is none yet, or an error naming the file and line that is wrong.
function checkpoint.load(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local position, line_number = {}, 0
  for line in f:lines() do
    line_number = line_number + 1
    local key, value = line:match("^(%w+)=(.*)$")
    if not fields[key] then
      f:close()
      error(string.format("checkpoint %s:%d: expected gtid=, file= or pos=, got %q", path, line_number, line), 0)
    end
    if fields[key] == "number" then value = tonumber(value) or value end
    if type(value) ~= fields[key] then
      f:close()
      error(string.format("checkpoint %s:%d: %s must be a number, got %q", path, line_number, key, value), 0)
    end
    position[key] = value
  end
  f:close()
  if not position.gtid and not (position.file and position.pos) then
    error(string.format("checkpoint %s: needs a gtid or a file and pos", path), 0)
  end
  return position
end

function checkpoint.save(path, position)
  local lines = {}
  for _, key in ipairs({ "gtid", "file", "pos" }) do
    if position[key] ~= nil then lines[#lines + 1] = key .. "=" .. tostring(position[key]) end
  end
  core.write_file_atomic(path, table.concat(lines, "\n") .. "\n")
end

return checkpoint
