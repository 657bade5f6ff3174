-- Loads the example app's tables with generated data into the database of the mysql_url setting:
--   silo-lua run scripts/generate.lua [--scale small|EVENTS] [--seed N]
-- It drops and recreates the tables of db/schema.sql first. The same scale and seed always give the same rows.
local root = debug.getinfo(1, "S").source:match("^@(.-)scripts/generate%.lua$")
package.path = (root ~= "" and root or "./") .. "?.lua;" .. package.path
local generator = require "db.generator"

local USAGE = "usage: silo-lua run scripts/generate.lua [--scale small|EVENTS] [--seed N]"

local function parse(args)
  local options = { scale = "small", seed = 1 }
  local i = 1
  while i <= #args do
    local flag, value = args[i], args[i + 1]
    if flag ~= "--scale" and flag ~= "--seed" then return nil, "unknown argument '" .. flag .. "'" end
    if value == nil then return nil, flag .. " needs a value" end
    if flag == "--seed" then
      options.seed = tonumber(value)
      if not options.seed or options.seed % 1 ~= 0 then return nil, "--seed must be an integer, got '" .. value .. "'" end
    else
      options.scale = value
    end
    i = i + 2
  end
  local ok, err = pcall(generator.sizes, options.scale)
  if not ok then return nil, (err:gsub("^generator: ", "--")) end
  return options
end

local options, problem = parse({ ... })
if not options then
  io.stderr:write("generate: ", problem, "\n", USAGE, "\n")
  return 2
end

local config = require "silo.config"
local db = require("silo.mysql").connect(config.get("mysql_url"))
local counts = generator.load(db, options.scale, options.seed)
local total = 0
for _, name in ipairs(generator.tables) do
  print(string.format("%-13s %9d", name, counts[name]))
  total = total + counts[name]
end
print(string.format("%d rows into %s (scale %s, seed %d)", total, config.redact(config.get("mysql_url")),
  options.scale, options.seed))
