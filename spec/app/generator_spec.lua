local generator = require "db.generator"
local cli = require "spec.support.cli"

local function all_rows(name, sizes, seed)
  local rows = {}
  for row in generator.rows(name, sizes, seed) do rows[#rows + 1] = row end
  return rows
end

describe("the example app's data generator", function()
  local sizes = generator.sizes("small")

  it("sizes the parent tables from the number of events, with a small default", function()
    assert.same({ events = 200, cities = 5, venues = 10, artists = 50, event_series = 3, users = 100 }, sizes)
    local big = generator.sizes(100000)
    assert.same({ events = 100000, cities = 200, venues = 4000, artists = 25000, event_series = 1000, users = 50000 },
      big)
  end)

  it("gives the same rows for the same seed and other rows for another seed", function()
    for _, name in ipairs(generator.tables) do
      assert.same(all_rows(name, sizes, 7), all_rows(name, sizes, 7))
      if name ~= "cities" then -- a fixed list
        assert.are_not.same(all_rows(name, sizes, 7), all_rows(name, sizes, 8))
      end
    end
  end)

  it("numbers ids from 1 and refers only to rows that exist", function()
    local parents = { event_id = "events", user_id = "users", artist_id = "artists", venue_id = "venues",
      city_id = "cities", event_series_id = "event_series" }
    for _, name in ipairs(generator.tables) do
      local columns = generator.columns[name]
      for i, row in ipairs(all_rows(name, sizes, 3)) do
        assert.equal(i, row[1])
        for c, column in ipairs(columns) do
          if parents[column] and row[c] ~= nil then
            assert.is_true(row[c] >= 1 and row[c] <= sizes[parents[column]], name .. "." .. column)
          end
        end
      end
    end
  end)

  it("bills one or two headliners first on every event, then supports, with distinct artists", function()
    local bills = {}
    for _, p in ipairs(all_rows("performances", sizes, 5)) do
      local bill = bills[p[2]] or { artists = {}, headline = 0, support = 0 }
      bills[p[2]] = bill
      assert.is_nil(bill.artists[p[3]])
      bill.artists[p[3]] = true
      bill[p[4]] = bill[p[4]] + 1
      if p[4] == "headline" then assert.equal(0, bill.support) end
      assert.equal(bill[p[4]], p[5])
    end
    for event_id = 1, sizes.events do
      assert.is_true(bills[event_id].headline == 1 or bills[event_id].headline == 2)
    end
  end)

  it("reads db/schema.sql's statements", function()
    local statements = generator.schema_statements()
    assert.matches("^%s*DROP TABLE IF EXISTS reviews", statements[1])
    local created = 0
    for _, statement in ipairs(statements) do
      if statement:match("CREATE TABLE") then created = created + 1 end
    end
    assert.equal(#generator.tables, created)
  end)

  it("rejects a bad scale, seed or table name", function()
    assert.has_error(function() generator.sizes("huge") end,
      "generator: scale must be 'small' or a positive integer, got 'huge'")
    assert.has_error(function() generator.sizes(0) end, "generator: scale must be 'small' or a positive integer, got '0'")
    assert.has_error(function() generator.load(nil, "small", 1.5) end, "generator: seed must be an integer, got '1.5'")
    assert.has_error(function() generator.rows("gigs", sizes, 1) end, "generator: no table 'gigs'")
  end)

  it("refuses bad arguments on its command line with its usage and exit 2", function()
    local cases = {
      { { "--scale", "huge" }, "generate: %-%-scale must be 'small' or a positive integer, got 'huge'" },
      { { "--seed", "x" }, "generate: %-%-seed must be an integer, got 'x'" },
      { { "--seed" }, "generate: %-%-seed needs a value" },
      { { "--fast" }, "generate: unknown argument '%-%-fast'" },
    }
    for _, case in ipairs(cases) do
      local args = { "run", "scripts/generate.lua" }
      for _, a in ipairs(case[1]) do args[#args + 1] = a end
      local r = cli.run(args)
      assert.equal(2, r.status)
      assert.matches(case[2], r.stderr)
      assert.matches("usage: silo%-lua run scripts/generate%.lua", r.stderr)
    end
  end)
end)
