-- `silo-lua feed` against a server that is not set up for it: a throwaway mariadbd of this spec's own
-- (temporary data directory, a free port, STATEMENT binlog), stopped by its PID afterwards. The shared server
-- is never reconfigured.
local cli = require "spec.support.cli"
local core = require "silo.core"
local mysql = require "silo.mysql"
local support = require "spec.support.feed"

local function sh(command)
  local status = os.execute(command)
  return status == 0 or status == true
end

local function free_port()
  for _ = 1, 100 do
    local port = math.random(20000, 60000)
    local listening = io.popen("ss -Htln 'sport = :" .. port .. "'"):read("*a")
    if listening == "" then return port end
  end
  error("no free port found")
end

-- A mariadbd with binlog_format=STATEMENT on a free port; { url =, process =, directory = }.
local function start_statement_server()
  local directory = os.tmpname()
  os.remove(directory)
  local q = cli.shell_quote
  assert(sh("mkdir " .. q(directory) .. " && chown mysql:mysql " .. q(directory)))
  assert(sh(string.format("mariadb-install-db --no-defaults --datadir=%s --user=mysql "
    .. "--auth-root-authentication-method=normal --skip-test-db >%s 2>&1", q(directory .. "/data"),
    q(directory .. "/install.log"))), "mariadb-install-db failed: see " .. directory .. "/install.log")
  local port = free_port()
  local server = { directory = directory, url = "mysql://root@127.0.0.1:" .. port .. "/silo_feed_spec" }
  server.process = support.spawn(string.format("exec mariadbd --no-defaults --datadir=%s --port=%d "
    .. "--bind-address=127.0.0.1 --socket=%s --pid-file=%s --user=mysql --server-id=1 --log-bin=%s "
    .. "--binlog-format=STATEMENT --innodb-buffer-pool-size=16M", q(directory .. "/data"), port,
    q(directory .. "/mariadbd.sock"), q(directory .. "/mariadbd.pid"), q(directory .. "/data/bin")))
  local deadline = core.monotonic() + 60
  repeat
    local ok, db = pcall(mysql.connect, "mysql://root@127.0.0.1:" .. port .. "/")
    if ok then
      db:close()
      return server
    end
    core.sleep(0.2)
  until server.process:status() or core.monotonic() > deadline
  error("the throwaway mariadbd did not start:\n" .. server.process:output())
end

local function stop_server(server)
  server.process:signal("TERM")
  assert(server.process:wait(60), "the throwaway mariadbd did not stop")
  server.process:finish()
  sh("rm -rf " .. cli.shell_quote(server.directory))
end

describe("silo-lua feed on a server without row-based binlog", function()
  it("exits non-zero naming binlog_format and the value to set", function()
    local server, root, feed = start_statement_server(), nil, nil
    local checkpoint_path = os.tmpname()
    finally(function() -- busted keeps one finally per test
      if feed then feed:finish() end
      if root then support.remove_app_root(root) end
      stop_server(server)
      os.remove(checkpoint_path)
    end)
    os.remove(checkpoint_path)
    root = support.app_root("feed_rows")

    feed = support.start_feed {
      SILO_APP_ROOT = root, SILO_MYSQL_URL = server.url, SILO_EXCHANGE = "silo.feed.spec." .. core.random_hex(4),
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
