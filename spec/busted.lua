-- Runs busted inside silo-lua so that specs use the runtime's C bindings:
--   silo-lua run spec/busted.lua [BUSTED FLAGS] SPEC...
-- Run from the source root (ctest does), so that spec.support.* modules are found.
package.path = "./?.lua;./?/init.lua;" .. package.path
local has_output_flag = false
for _, a in ipairs(arg) do
  if a:match("^%-o") or a:match("^%-%-output") then has_output_flag = true end
end
if not has_output_flag then table.insert(arg, 1, "--output=gtest") end

-- On failures busted ends a Lua 5.1 run with error(nil), trusting the interpreter to exit 1.
local ok, err = pcall(require("busted.runner"), { standalone = false })
if not ok then
  if err ~= nil then error(err, 0) end
  os.exit(1)
end
