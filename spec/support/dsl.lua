-- What the DSL's specs share: throwaway app directories and loaded apps.
local cli = require "spec.support.cli"

local dsl = {}

local function write(path, text)
  local handle = assert(io.open(path, "w"))
  handle:write(text)
  handle:close()
end

-- A new directory holding files ({ ["silovators/x.lua"] = "..." }); returns its path.
function dsl.write_app(files)
  local root = os.tmpname()
  os.remove(root)
  assert(os.execute("mkdir -p " .. cli.shell_quote(root .. "/presenters") .. " " .. cli.shell_quote(root .. "/silovators")
    .. " " .. cli.shell_quote(root .. "/models")) == 0)
  for relative, text in pairs(files) do write(root .. "/" .. relative, text) end
  return root
end

function dsl.remove_app(root)
  assert(root:match("^/tmp/"), "only temporary apps are removed")
  os.execute("rm -rf " .. cli.shell_quote(root))
end

-- An app loaded from files; fails the spec with the loader's message when it does not load.
function dsl.load_app(files, options)
  local root = dsl.write_app(files)
  options = options or {}
  options.root = root
  local app = require("silo.app").new(options)
  local ok, err = app:load()
  dsl.remove_app(root)
  assert(ok, err)
  return app
end

-- The loader's error for an app made of files.
function dsl.load_error(files)
  local root = dsl.write_app(files)
  local ok, err = require("silo.app").new({ root = root }):load()
  dsl.remove_app(root)
  assert(not ok, "the app loaded")
  return err
end

return dsl
