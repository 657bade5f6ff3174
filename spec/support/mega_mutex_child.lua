-- A process contending for a MegaMutex lock, run by spec/mega_mutex_spec.lua:
--   silo-lua run spec/support/mega_mutex_child.lua contend NAME ROUNDS OUTFILE
--     takes the lock ROUNDS times, writing "enter exit fence" (monotonic seconds) per round, then "done"
--   silo-lua run spec/support/mega_mutex_child.lua hold NAME TTL OUTFILE
--     takes the lock with a TTL, writes its fence, and sleeps until killed
package.path = "./?.lua;" .. package.path
local core = require "silo.core"
local mega_mutex = require "silo.mega_mutex"

local mode, name, number, outfile = ...
local out = assert(io.open(outfile, "w"))
out:setvbuf("line")

if mode == "contend" then
  for _ = 1, tonumber(number) do
    mega_mutex.with_distributed_mutex(name, function(fence)
      local enter = core.monotonic()
      core.sleep(0.002)
      out:write(string.format("%.6f %.6f %s\n", enter, core.monotonic(), tostring(fence)))
    end, { timeout = 60 })
  end
  out:write("done\n")
elseif mode == "hold" then
  mega_mutex.with_distributed_mutex(name, function(fence)
    out:write("fence ", tostring(fence), "\n")
    core.sleep(3600)
  end, { ttl = tonumber(number) })
end
out:close()
