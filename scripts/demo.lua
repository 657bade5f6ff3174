-- The demo's Lua half, run by scripts/demo inside silo-lua: shows the settings this process runs with.
local config = require "silo.config"
print(config.describe())
