local checkpoint = require "silo.feed.checkpoint"
local cli = require "spec.support.cli"

-- assert.has_error drops a leading "file:line: " from messages, and that prefix is what is tested here
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return err
end

describe("silo.feed.checkpoint", function()
  it("saves and loads a position", function()
    local path = os.tmpname()
    os.remove(path)
    assert.is_nil(checkpoint.load(path))
    checkpoint.save(path, { gtid = "0-1-77", file = "silo-bin.000002", pos = 4242 })
    assert.same({ gtid = "0-1-77", file = "silo-bin.000002", pos = 4242 }, checkpoint.load(path))
    os.remove(path)
  end)

  it("names the file and line of a damaged checkpoint", function()
    local path = cli.write_temp("gtid=0-1-1\npos=twelve\n")
    assert.equal("checkpoint " .. path .. ":2: pos must be a number, got \"twelve\"", error_of(checkpoint.load, path))
    local junk = cli.write_temp("hello\n")
    assert.equal("checkpoint " .. junk .. ":1: expected gtid=, file= or pos=, got \"hello\"",
      error_of(checkpoint.load, junk))
    local partial = cli.write_temp("file=silo-bin.000001\n")
    assert.equal("checkpoint " .. partial .. ": needs a gtid or a file and pos", error_of(checkpoint.load, partial))
    os.remove(path); os.remove(junk); os.remove(partial)
  end)
end)
