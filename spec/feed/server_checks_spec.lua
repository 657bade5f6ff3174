-- `silo-lua feed` against throwaway mariadbd servers of this spec's own (temporary data directory, a free port,
-- binlog settings of the test's choosing), stopped by their PIDs afterwards: one not set up for the feed, one
-- that goes silent (SIGSTOP). The shared server is never reconfigured or stopped.
local cli = require "spec.support.cli"
local core = require "silo.core"
local mysql = require "silo.mysql"
local support = require "spec.support.feed"

local function sh(command)
  local status = os.execute(command)
  return status == 0 or status == true
end

-- A port below the kernel's ephemeral range (which outgoing connections take their ports from, so a port that
-- is free there can be taken before mariadbd binds it) that no socket uses, in any state.
local function free_port()
  local range = io.open("/proc/sys/net/ipv4/ip_local_port_range")
  local ephemeral_low = range and tonumber(range:read("*l"):match("^(%d+)")) or 32768
  if range then range:close() end
  for _ = 1, 100 do
    local port = math.random(20000, ephemeral_low - 1)
    local pipe = io.popen("ss -Htan 'sport = :" .. port .. "'")
    local in_use = pipe:read("*a")
    pipe:close()
    if in_use == "" then return port end
  end
  error("no free port found")
end

-- A mariadbd with the given binlog options on a free port; { url =, root_url =, process =, directory = }.
local function start_server(binlog_options)
  local directory = os.tmpname()
  os.remove(directory)
  local q = cli.shell_quote
  assert(sh("mkdir " .. q(directory) .. " && chown mysql:mysql " .. q(directory)))
  assert(sh(string.format("mariadb-install-db --no-defaults --datadir=%s --user=mysql "
    .. "--auth-root-authentication-method=normal --skip-test-db >%s 2>&1", q(directory .. "/data"),
    q(directory .. "/install.log"))), "mariadb-install-db failed: see " .. directory .. "/install.log")
  local port = free_port()
  local root_url = "mysql://root@127.0.0.1:" .. port .. "/"
  local server = { directory = directory, url = root_url .. support.DATABASE, root_url = root_url }
  server.process = support.spawn(string.format("exec mariadbd --no-defaults --datadir=%s --port=%d "
    .. "--bind-address=127.0.0.1 --socket=%s --pid-file=%s --user=mysql --server-id=1 --log-bin=%s "
    .. "--innodb-buffer-pool-size=16M %s", q(directory .. "/data"), port, q(directory .. "/mariadbd.sock"),
    q(directory .. "/mariadbd.pid"), q(directory .. "/data/bin"), binlog_options))
  local deadline = core.monotonic() + 60
  repeat
    local ok, db = pcall(mysql.connect, root_url)
    if ok then
      db:close()
      return server
    end
    core.sleep(0.2)
  until server.process:status() or core.monotonic() > deadline
  error("the throwaway mariadbd did not start:\n" .. server.process:output())
end

local function stop_server(server)
  server.process:signal("CONT")
  server.process:signal("TERM")
  assert(server.process:wait(60), "the throwaway mariadbd did not stop")
  server.process:finish()
  sh("rm -rf " .. cli.shell_quote(server.directory))
end

describe("silo-lua feed on a server without row-based binlog", function()
  it("exits non-zero naming binlog_format and the value to set", function()
    local server, root, feed = start_server("--binlog-format=STATEMENT"), nil, nil
    local broker, exchange, queue
    local checkpoint_path = os.tmpname()
    finally(function() -- busted keeps one finally per test
      if feed then feed:finish() end
      if root then support.remove_app_root(root) end
      support.cleanup(nil, nil, broker, exchange, queue) -- the feed declared the exchange before it read
      stop_server(server)
      os.remove(checkpoint_path)
    end)
    os.remove(checkpoint_path)
    root = support.app_root("feed_rows")
    broker, exchange, queue = support.open_queue()

    feed = support.start_feed {
      SILO_APP_ROOT = root, SILO_MYSQL_URL = server.url, SILO_EXCHANGE = exchange,
      SILO_FEED_CHECKPOINT = checkpoint_path, SILO_FEED_START = "now",
    }
    assert.equal(1, feed:wait(60), "the feed did not stop:\n" .. feed:output())
    local log = feed:output()
    assert.matches("ERROR feed: binlog: the server's binary log cannot be tailed: binlog_format is STATEMENT: "
      .. "set binlog_format=ROW;[^\n]*; stopping: retrying cannot help\n", log)
    assert.matches("binlog_row_metadata is NO_LOG: set binlog_row_metadata=FULL", log)
    assert.is_nil(io.open(checkpoint_path), "a feed that never read wrote a checkpoint")
  end)
end)

describe("silo-lua feed when the server goes silent", function()
  it("takes the silence for a lost connection, retries, and resumes from the last confirmed position", function()
    local server = start_server("--binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL")
    local db, root, feed, broker, exchange, queue
    local checkpoint_path = os.tmpname()
    finally(function() -- busted keeps one finally per test
      if feed then feed:finish() end
      if root then support.remove_app_root(root) end
      if db then db:close() end
      support.cleanup(nil, nil, broker, exchange, queue)
      stop_server(server)
      os.remove(checkpoint_path)
    end)
    os.remove(checkpoint_path)
    local admin = mysql.connect(server.root_url)
    admin:exec("CREATE DATABASE " .. support.DATABASE)
    admin:close()
    db = mysql.connect(server.url)
    db:exec("CREATE TABLE feed_rows (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL)")
    root = support.app_root("feed_rows")
    broker, exchange, queue = support.open_queue()
    feed = support.start_feed {
      SILO_APP_ROOT = root, SILO_MYSQL_URL = server.url, SILO_EXCHANGE = exchange,
      SILO_FEED_CHECKPOINT = checkpoint_path, SILO_FEED_START = support.binlog_position(db),
    }
    db:exec("INSERT INTO feed_rows (name) VALUES ('before')")
    local received = support.collector(broker)
    assert.is_true(received:receive_distinct(1, 30), feed:output())

    server.process:signal("STOP")
    assert.truthy(feed:wait_for_log("ERROR feed: (binlog: reading the binlog of [^\n]*%(20%d%d%)); retrying", 60),
      feed:output())
    server.process:signal("CONT")
    db:exec("INSERT INTO feed_rows (name) VALUES ('after')")
    assert.is_true(received:receive_distinct(2, 60), feed:output())
    assert.same({ [1] = true, [2] = true }, received.row_ids)
    feed:signal("TERM")
    assert.equal(0, feed:wait(30), feed:output())
  end)
end)
