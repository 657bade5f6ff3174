-- silo.observers: what the feed observes, declared as in Ruby:
--   AsynchronousObservers.listen(Attendance, Ticket, Venue, Artist, Event)
-- The feed publishes row changes of these models' tables only.
local errors = require("silo.errors")
local async_observer = require("silo.async_observer")

local observers = {}

function observers.new()
  local observed, by_name = {}, {}
  local facade = {}

  function facade.listen(...)
    for i = 1, select("#", ...) do
      local model = select(i, ...)
      if not async_observer.is_model(model) then
        errors.raise(string.format("AsynchronousObservers.listen: argument %d must be a model, got %s", i,
          model == nil and "nil" or tostring(model)))
      end
      if not by_name[model.name] then
        by_name[model.name] = model
        observed[#observed + 1] = model
      end
    end
  end

  -- The observed models ({ name, table, primary_key, ... }), in the order declared.
  function facade.models()
    local copy = {}
    for i, model in ipairs(observed) do copy[i] = model end
    return copy
  end

  -- table name -> model, for the feed.
  function facade.by_table()
    local tables = {}
    for _, model in ipairs(observed) do tables[model.table] = model end
    return tables
  end

  return facade
end

return observers
