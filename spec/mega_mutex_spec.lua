-- MegaMutex against the real memcached, with silo-lua child processes contending for the same locks.
local mega_mutex = require "silo.mega_mutex"
local core = require "silo.core"
local cli = require "spec.support.cli"

local with_distributed_mutex = mega_mutex.with_distributed_mutex
local started = {}

-- Starts a child process and returns its PID and the file it writes to.
local function spawn(mode, name, number)
  local outfile, pidfile = os.tmpname(), os.tmpname()
  os.execute(string.format("%s run spec/support/mega_mutex_child.lua %s %s %s %s >%s.log 2>&1 & echo $! >%s",
    cli.shell_quote(cli.binary()), mode, cli.shell_quote(name), number, outfile, outfile, pidfile))
  local f = assert(io.open(pidfile))
  local pid = assert(tonumber(f:read("*l")))
  f:close()
  os.remove(pidfile)
  started[#started + 1] = pid
  return pid, outfile
end

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 end

local function read_lines(path)
  local lines = {}
  local f = io.open(path)
  if f then
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
  end
  return lines
end

-- Waits (at most `limit` seconds) until the file's last line matches pattern; returns the lines.
local function wait_for_line(path, pattern, limit)
  local deadline = core.monotonic() + limit
  repeat
    local lines = read_lines(path)
    if lines[#lines] and lines[#lines]:match(pattern) then return lines end
    core.sleep(0.05)
  until core.monotonic() > deadline
  local log = table.concat(read_lines(path .. ".log"), "\n")
  error("no line matching '" .. pattern .. "' in " .. path .. " within " .. limit .. " s; child log:\n" .. log)
end

local function unique_name() return "spec mega mutex " .. core.random_hex(4) end

describe("MegaMutex", function()
  after_each(function()
    for _, pid in ipairs(started) do
      if alive(pid) then os.execute("kill -9 " .. pid) end
    end
    started = {}
  end)

  it("never lets two processes hold a lock at once over many rounds", function()
    local name, files = unique_name(), {}
    for i = 1, 4 do
      local _, outfile = spawn("contend", name, 25)
      files[i] = outfile
    end
    local rounds = {}
    for _, file in ipairs(files) do
      for _, line in ipairs(wait_for_line(file, "^done$", 120)) do
        local enter, exit, fence = line:match("^(%S+) (%S+) (%S+)$")
        if enter then rounds[#rounds + 1] = { tonumber(enter), tonumber(exit), tonumber((fence:gsub("LL$", ""))) } end
      end
    end
    assert.equal(100, #rounds)
    table.sort(rounds, function(a, b) return a[1] < b[1] end)
    for i = 2, #rounds do
      assert(rounds[i][1] >= rounds[i - 1][2], string.format("rounds %d and %d overlap", i - 1, i))
      assert(rounds[i][3] > rounds[i - 1][3], "fencing numbers must grow with each holder")
    end
  end)

  it("frees the lock of a holder killed with SIGKILL once its TTL passes, and times out before", function()
    local name = unique_name()
    local pid, outfile = spawn("hold", name, 2)
    local held_fence = tonumber(wait_for_line(outfile, "^fence", 30)[1]:match("(%d+)"))
    assert.has_error(function() with_distributed_mutex(name, function() end, { timeout = 0.1 }) end,
      "mega_mutex: timed out after 0.1s waiting for lock '" .. name .. "'")
    os.execute("kill -9 " .. pid)
    local fence = with_distributed_mutex(name, function(f) return f end, { timeout = 10 })
    assert.is_true(fence > held_fence)
  end)

  it("releases when fn raises, passing the error through", function()
    local name = unique_name()
    local ok, err = pcall(with_distributed_mutex, name, function() error({ code = 42 }) end)
    assert.is_false(ok)
    assert.same({ code = 42 }, err)
    assert.same({ "a", nil, 3 }, { with_distributed_mutex(name, function() return "a", nil, 3 end, { timeout = 0.1 }) })
  end)

  it("never lets a holder whose lock expired free the next holder's lock", function()
    local name, next_holder, outfile, next_fence = unique_name(), nil, nil, nil
    local ok, err = pcall(with_distributed_mutex, name, function(fence, lease)
      local deadline = core.monotonic() + 10
      while lease:held() and core.monotonic() < deadline do core.sleep(0.1) end -- until the TTL expired
      next_holder, outfile = spawn("hold", name, 30)
      next_fence = tonumber(wait_for_line(outfile, "^fence", 30)[1]:match("(%d+)"))
      assert.is_true(next_fence > fence)
      assert.has_error(function() lease:renew() end,
        "mega_mutex: lock '" .. name .. "' was lost before renewal (expired or taken)")
    end, { ttl = 1 })
    assert.is_false(ok)
    assert.equal("mega_mutex: lock '" .. name .. "' expired before it was released (held past its 1s TTL); " ..
      "another holder may have run at the same time", err)
    assert.has_error(function() with_distributed_mutex(name, function() end, { timeout = 0.2 }) end,
      "mega_mutex: timed out after 0.2s waiting for lock '" .. name .. "'")
    assert.is_true(alive(next_holder))
  end)

  it("keeps a renewed lease past its TTL", function()
    local name = unique_name()
    with_distributed_mutex(name, function(_, lease)
      for _ = 1, 8 do -- memcached counts whole seconds: a 2 s TTL lives between 1 and 2 s
        core.sleep(0.5)
        assert.is_true(lease:renew())
      end
      assert.is_true(lease:held())
      assert.has_error(function() with_distributed_mutex(name, function() end, { timeout = 0.1 }) end,
        "mega_mutex: timed out after 0.1s waiting for lock '" .. name .. "'")
    end, { ttl = 2 })
  end)

  it("checks its arguments and names that the memcached server failed", function()
    assert.has_error(function() with_distributed_mutex("", function() end) end,
      "with_distributed_mutex: the lock needs a name")
    assert.has_error(function() with_distributed_mutex("x", nil) end, "with_distributed_mutex: fn must be a function")
    assert.has_error(function() with_distributed_mutex(string.rep("x", 300), function() end) end)
    local down = require("silo.memcached").connect("127.0.0.1:1", { connect_timeout = 0.2 })
    local ok, err = pcall(with_distributed_mutex, "x", function() end, { client = down })
    assert.is_false(ok)
    assert.matches("memcached add 'mega_mutex:x': CONNECTION FAILURE.* %(server 127%.0%.0%.1:1%)$", err)
  end)
end)
