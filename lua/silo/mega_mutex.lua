-- silo.mega_mutex: with_distributed_mutex(name, fn, opts), a lock over memcached (songkick's mega_mutex, fixed).
--
-- Guarantee: an efficiency lock. While memcached keeps the key and every holder finishes within its TTL, at
-- most one process runs fn for a name. Under eviction, a memcached restart, a partition or a holder paused
-- past its TTL, two holders are possible. Each holder gets a fencing number that grows with every acquisition
-- of the name: a store that remembers the highest number it has seen can refuse the older holder's writes.
--
--   acquire  add(key, owner token, ttl): only one add succeeds; the TTL frees the lock of a killed holder
--   wait     jittered exponential backoff until opts.timeout, then an error naming the lock
--   fence    incr on a separate counter key, started from the clock in ms so a counter lost to eviction
--            comes back higher than before
--   renew    lease:renew() (for long work) extends the TTL with gets+cas, only while still the owner
--   release  in every path, fn's errors too; gets+cas to a tombstone, then delete: a holder whose lock expired
--            and was taken never frees the new holder's lock
local core = require "silo.core"
local memcached = require "silo.memcached"

local mega_mutex = {}

mega_mutex.defaults = {
  ttl = 30,          -- seconds the lock lives unless renewed or released
  timeout = 10,      -- seconds to wait for the lock before raising
  min_backoff = 0.005,
  max_backoff = 0.25,
  prefix = "mega_mutex:",
}

local shared_client
local function default_client()
  shared_client = shared_client or memcached.connect()
  return shared_client
end

math.randomseed(tonumber(core.random_hex(4), 16))

local function option(opts, name)
  local value = opts[name]
  if value == nil then return mega_mutex.defaults[name] end
  return value
end

-- Memcached keys allow no spaces or control characters: escape everything but a safe set.
local function key_for(prefix, name)
  local key = prefix .. name:gsub("[^%w%-%._:]", function(c) return string.format("%%%02X", c:byte()) end)
  if #key > 240 then error(string.format("mega_mutex: lock name '%s' is too long for a memcached key", name), 3) end
  return key
end

local function owner_token()
  return string.format("%s:%d:%s", core.hostname(), core.pid(), core.random_hex(8))
end

local function acquire(client, lock)
  local deadline = core.monotonic() + lock.timeout
  local backoff = lock.min_backoff
  while not client:add(lock.key, lock.token, lock.ttl) do
    local remaining = deadline - core.monotonic()
    if remaining <= 0 then
      error(string.format("mega_mutex: timed out after %gs waiting for lock '%s'", lock.timeout, lock.name), 0)
    end
    core.sleep(math.min(backoff * (0.5 + math.random()), remaining))
    backoff = math.min(backoff * 2, lock.max_backoff)
  end
end

-- Replaces our value (only ours) by new_value with ttl; false when someone else holds the key or none does.
local function replace_if_owner(client, lock, new_value, ttl)
  local value, cas = client:gets(lock.key)
  if value ~= lock.token then return false end
  return (client:cas(lock.key, new_value, ttl, cas))
end

local function release(client, lock)
  -- The tombstone keeps others out until the delete; nobody else can hold the key in between.
  if not replace_if_owner(client, lock, "released:" .. lock.token, lock.ttl) then
    error(string.format("mega_mutex: lock '%s' expired before it was released (held past its %ds TTL); " ..
      "another holder may have run at the same time", lock.name, lock.ttl), 0)
  end
  client:delete(lock.key)
end

local Lease = {}
Lease.__index = Lease

-- Extends the lock's TTL (to ttl seconds, default the lock's). Raises when the lock is no longer ours.
function Lease:renew(ttl)
  if not replace_if_owner(self.client, self.lock, self.lock.token, ttl or self.lock.ttl) then
    error(string.format("mega_mutex: lock '%s' was lost before renewal (expired or taken)", self.lock.name), 2)
  end
  return true
end

-- True while the lock is still held by this lease.
function Lease:held()
  return self.client:get(self.lock.key) == self.lock.token
end

local function pack(...) return { n = select("#", ...), ... } end

-- Runs fn(fence, lease) holding the lock `name` and returns fn's results.
-- opts: ttl, timeout, min_backoff, max_backoff, prefix (see defaults), client (a silo.memcached client;
-- default: one client on the memcached_servers setting).
function mega_mutex.with_distributed_mutex(name, fn, opts)
  assert(type(name) == "string" and name ~= "", "with_distributed_mutex: the lock needs a name")
  assert(type(fn) == "function", "with_distributed_mutex: fn must be a function")
  opts = opts or {}
  local client = opts.client or default_client()
  local prefix = option(opts, "prefix")
  local lock = {
    name = name, key = key_for(prefix, name), token = owner_token(),
    ttl = option(opts, "ttl"), timeout = option(opts, "timeout"),
    min_backoff = option(opts, "min_backoff"), max_backoff = option(opts, "max_backoff"),
  }
  assert(lock.ttl >= 1, "with_distributed_mutex: ttl must be at least 1 second")
  acquire(client, lock)
  local got_fence, fence = pcall(client.incr, client, key_for(prefix, name .. "#fence"), 1,
    { initial = math.floor(core.now() * 1000) })
  if not got_fence then
    pcall(release, client, lock)
    error(fence, 0)
  end
  local results = pack(pcall(fn, fence, setmetatable({ client = client, lock = lock, fence = fence }, Lease)))
  local released, release_error = pcall(release, client, lock)
  if not results[1] then
    local fn_error = results[2]
    if not released and type(fn_error) == "string" then fn_error = fn_error .. " (and " .. release_error .. ")" end
    error(fn_error, 0)
  end
  if not released then error(release_error, 0) end
  return unpack(results, 2, results.n)
end

return mega_mutex
