local cli = require "spec.support.cli"

describe("silo.log", function()
  local function run(script, env)
    local path = cli.write_temp(script)
    local result = cli.run({ "run", path }, { env = env })
    os.remove(path)
    return result
  end

  it("writes timestamped, named lines at or above the configured level to stderr", function()
    local r = run([[
      local log = require("silo.log").named("feed")
      log.debug("hidden")
      log.info("published %d messages", 3)
      log.error("broker gone")
    ]], { SILO_LOG_LEVEL = "info" })
    assert.equal(0, r.status)
    assert.equal("", r.stdout)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ INFO  feed: published 3 messages\n", r.stderr)
    assert.matches("ERROR feed: broker gone\n$", r.stderr)
    assert.not_matches("hidden", r.stderr)
  end)

  it("writes debug lines when asked to", function()
    local r = run('require("silo.log").named("x").debug("shown %s", "too")', { SILO_LOG_LEVEL = "debug" })
    assert.matches("DEBUG x: shown too", r.stderr)
  end)
end)
