local app = require "spec.support.app"
local cli = require "spec.support.cli"
local generator = require "db.generator"

-- A fingerprint of every table's contents: row count and a sum of per-row checksums.
local function fingerprint(db)
  local prints = {}
  for _, name in ipairs(generator.tables) do
    local columns = table.concat(generator.columns[name], ", ")
    local r = db:query("SELECT COUNT(*) AS n, SUM(CRC32(CONCAT_WS('|', " .. columns .. "))) AS h FROM " .. name)[1]
    prints[name] = tostring(r.n) .. ":" .. tostring(r.h)
  end
  return prints
end

describe("the generator loading MariaDB", function()
  local first, second

  setup(function()
    first = app.open_database(11)
    second = app.open_database(11)
  end)

  teardown(function()
    if first then first.drop() end
    if second then second.drop() end
  end)

  it("loads every generated row", function()
    local sizes = generator.sizes("small")
    for _, name in ipairs(generator.tables) do
      local expected = 0
      for _ in generator.rows(name, sizes, 11) do expected = expected + 1 end
      assert.equal(expected, tonumber(first.db:query("SELECT COUNT(*) AS n FROM " .. name)[1].n), name)
    end
  end)

  it("loads the same data for the same seed, and other data for another seed", function()
    assert.same(fingerprint(first.db), fingerprint(second.db))
    generator.load(second.db, "small", 12)
    assert.are_not.same(fingerprint(first.db), fingerprint(second.db))
  end)

  it("loads from the command line at the scale and seed given", function()
    local r = cli.run({ "run", "scripts/generate.lua", "--scale", "60", "--seed", "11" },
      { env = { SILO_MYSQL_URL = second.url } })
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    assert.matches("events%s+60\n", r.stdout)
    assert.matches("rows into mysql://[^:]+:%*%*%*@.*/" .. second.name .. " %(scale 60, seed 11%)", r.stdout)
    assert.equal(60, tonumber(second.db:query("SELECT COUNT(*) AS n FROM events")[1].n))
  end)

  it("fails with the server's error when MariaDB is not reachable", function()
    local r = cli.run({ "run", "scripts/generate.lua" }, { env = { SILO_MYSQL_URL = "mysql://silo:silo@127.0.0.1:1/x" } })
    assert.equal(1, r.status)
    assert.matches("127%.0%.0%.1", r.stderr)
  end)
end)
