-- silo.helpers: the helpers presenters and silovators expect from Ruby (ActiveSupport and Enumerable).
-- Every function taking a list also takes a model relation (venue:events()), which it loads.
local inflect = require("silo.inflect")
local errors = require("silo.errors")

local helpers = {}

-- The array behind a list or a relation (a relation's metatable has __silo_rows).
function helpers.rows(list)
  local meta = getmetatable(list)
  if meta and meta.__silo_rows then return meta.__silo_rows(list) end
  if type(list) ~= "table" then errors.raise("expected a list or a relation, got " .. type(list)) end
  return list
end

-- to_sentence({"a", "b", "c"}) == "a, b and c"; options words_connector, two_words_connector, last_word_connector
-- (the defaults are ", ", " and ", " and ": British usage, no Oxford comma).
function helpers.to_sentence(list, options)
  local items, words = helpers.rows(list), {}
  for i = 1, #items do words[i] = tostring(items[i]) end
  options = options or {}
  local n = #words
  if n == 0 then return "" end
  if n == 1 then return words[1] end
  if n == 2 then return words[1] .. (options.two_words_connector or " and ") .. words[2] end
  return table.concat(words, options.words_connector or ", ", 1, n - 1)
    .. (options.last_word_connector or " and ") .. words[n]
end

-- pluralize("city") == "cities"; pluralize(1, "event") == "1 event"; pluralize(3, "person") == "3 people";
-- pluralize(2, "octopus", "octopi") == "2 octopi".
function helpers.pluralize(count_or_word, singular, plural)
  if singular == nil then return inflect.pluralize(count_or_word) end
  local word = count_or_word == 1 and singular or (plural or inflect.pluralize(singular))
  return tostring(count_or_word) .. " " .. word
end

helpers.singularize = inflect.singularize
helpers.underscore = inflect.underscore
helpers.camelize = inflect.camelize

-- pluck(artists, "name") == {"Ada", "Bo"}; several keys give a row of values per item.
function helpers.pluck(list, key, ...)
  local items, result = helpers.rows(list), {}
  local keys = select("#", ...) > 0 and { key, ... } or nil
  for i = 1, #items do
    if keys then
      local row = {}
      for k, name in ipairs(keys) do row[k] = items[i][name] end
      result[i] = row
    else
      result[i] = items[i][key]
    end
  end
  return result
end

-- map(list, function(item, index) ... end), or map(list, "method"): calls item:method() on each.
function helpers.map(list, fn)
  local items, result = helpers.rows(list), {}
  if type(fn) == "string" then
    local name = fn
    fn = function(item)
      if type(item[name]) ~= "function" then errors.raise("map: item has no method '" .. name .. "'") end
      return item[name](item)
    end
  elseif type(fn) ~= "function" then
    errors.raise("map: expected a function or a method name, got " .. type(fn))
  end
  for i = 1, #items do result[i] = fn(items[i], i) end
  return result
end

-- filter(list, fn): the items for which fn(item, index) is true.
function helpers.filter(list, fn)
  local items, result = helpers.rows(list), {}
  for i = 1, #items do
    if fn(items[i], i) then result[#result + 1] = items[i] end
  end
  return result
end

return helpers
