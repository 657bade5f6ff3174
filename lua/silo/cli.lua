-- silo.cli: the verbs written in Lua. Each gets its arguments as strings and returns the exit status;
-- a usage error prints to stderr and returns 2.
local config = require "silo.config"

local cli = {}

local EXIT_USAGE = 2

local function usage_error(verb, text)
  io.stderr:write("silo-lua ", verb, ": ", text, "\n(see silo-lua help ", verb, ")\n")
  return EXIT_USAGE
end

-- Splits "--name VALUE" / "--name=VALUE" flags (only those in allowed) from positional arguments.
local function parse_flags(args, allowed)
  local positional, flags, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^%-%-([%w-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w-]+)$") end
    if name then
      if not allowed[name] then return nil, "unknown flag '--" .. name .. "'" end
      if not value then
        i = i + 1
        value = args[i]
        if value == nil then return nil, "--" .. name .. " needs a value" end
      end
      flags[name] = value
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return positional, flags
end

-- A feed of the observed models of the application in app_root.
local function new_feed()
  local app = require("silo.app").new()
  local loaded, err = app:load()
  if not loaded then error(err, 0) end
  return require("silo.feed").new { models = app.observed.models() }
end

function cli.feed(...)
  if select("#", ...) > 0 then return usage_error("feed", "takes no arguments") end
  local ok, feed = pcall(new_feed)
  if not ok then
    io.stderr:write("silo-lua feed: ", tostring(feed), "\n")
    return 1
  end
  return feed:run()
end

local function decode_json_flag(flags, name)
  if not flags[name] then return true end
  local ok, value = pcall(require("silo.json").decode, flags[name])
  if not ok or type(value) ~= "table" then
    return nil, string.format("--%s must be a JSON object: %s", name, ok and "got " .. type(value) or tostring(value))
  end
  return true, value
end

function cli.publish(...)
  local args, flags = parse_flags({ ... }, { attributes = true, changes = true })
  if not args then return usage_error("publish", flags) end
  if #args ~= 3 then return usage_error("publish", "needs OP MODEL ID") end
  local op, model, id = args[1], args[2], tonumber(args[3]) or args[3]
  local ok_attributes, attributes = decode_json_flag(flags, "attributes")
  if not ok_attributes then return usage_error("publish", attributes) end
  local ok_changes, changes = decode_json_flag(flags, "changes")
  if not ok_changes then return usage_error("publish", changes) end
  local message = require("silo.feed.message")
  local built, body, routing_key, message_id = pcall(message.hand_made, op, model, id,
    { attributes = attributes, changes = changes })
  if not built then return usage_error("publish", require("silo.errors").without_location(body)) end
  local exchange = config.get("exchange")
  local sent, err = pcall(function()
    local broker = require("silo.amqp").connect(config.get("amqp_url"), { reconnect_timeout = 10 })
    broker:exchange_declare(exchange, "topic", { durable = true })
    broker:publish_batch({ message.envelope(exchange, body, routing_key, message_id) })
    broker:close()
  end)
  if not sent then
    io.stderr:write("silo-lua publish: ", require("silo.errors").without_location(err), "\n")
    return 1
  end
  print(string.format("published %s %s to %s (message id %s)", routing_key, tostring(id), exchange, message_id))
  return 0
end

return cli
