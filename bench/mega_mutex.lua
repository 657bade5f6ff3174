-- bench/mega_mutex.lua - uncontended MegaMutex acquire+release pairs per second on $SILO_MEMCACHED_SERVERS.
--   silo-lua run bench/mega_mutex.lua [PAIRS]
local mega_mutex = require "silo.mega_mutex"
local core = require "silo.core"
local config = require "silo.config"

local pairs_count = tonumber(arg[1] or 5000)
local name = "bench mega mutex " .. core.random_hex(4)
local noop = function() end
local started = core.monotonic()
for _ = 1, pairs_count do mega_mutex.with_distributed_mutex(name, noop) end
local elapsed = core.monotonic() - started
print(string.format("memcached %s, %d uncontended acquire+release pairs: %.0f pairs/s (%.0f us each)",
  config.get("memcached_servers"), pairs_count, pairs_count / elapsed, elapsed / pairs_count * 1e6))
