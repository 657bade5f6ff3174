-- silo.inflect: the English inflections the DSL's conventions use (Rails' ActiveSupport, the common cases).
--   underscore("EventListing") == "event_listing"      camelize("event_listing") == "EventListing"
--   pluralize("city") == "cities"                       singularize("cities") == "city"
--   tableize("EventListing") == "event_listings"        classify("attending_users") == "AttendingUser"
local inflect = {}

local irregular = {
  person = "people", man = "men", woman = "women", child = "children", mouse = "mice", ox = "oxen",
  foot = "feet", tooth = "teeth", goose = "geese", quiz = "quizzes",
}
local uncountable = {
  equipment = true, information = true, rice = true, money = true, species = true, series = true,
  fish = true, sheep = true, news = true, data = true, metadata = true,
}
local singular_of = {}
for one, many in pairs(irregular) do singular_of[many] = one end

-- Ordered: the first rule whose pattern matches wins.
local plural_rules = {
  { "(quiz)$", "%1zes" }, { "^(ox)$", "%1en" }, { "([ml])ouse$", "%1ice" },
  { "(matr)ix$", "%1ices" }, { "(vert)ex$", "%1ices" }, { "(ind)ex$", "%1ices" },
  { "(x)$", "%1es" }, { "(ch)$", "%1es" }, { "(sh)$", "%1es" }, { "(ss)$", "%1es" }, { "(us)$", "%1es" },
  { "([^aeiouy])y$", "%1ies" }, { "(hive)$", "%1s" }, { "([^f])fe$", "%1ves" }, { "([lr])f$", "%1ves" },
  { "(sis)$", "ses" }, { "([ti])um$", "%1a" }, { "(buffal)o$", "%1oes" }, { "(tomat)o$", "%1oes" },
  { "(s)$", "%1" }, { "$", "s" },
}
local singular_rules = {
  { "(quiz)zes$", "%1" }, { "(matr)ices$", "%1ix" }, { "(vert)ices$", "%1ex" }, { "(ind)ices$", "%1ex" },
  { "^(ox)en$", "%1" }, { "([ml])ice$", "%1ouse" }, { "(x)es$", "%1" }, { "(ch)es$", "%1" }, { "(sh)es$", "%1" },
  { "(ss)es$", "%1" }, { "(us)es$", "%1" }, { "([^aeiouy])ies$", "%1y" }, { "(hive)s$", "%1" },
  { "([lr])ves$", "%1f" }, { "([^f])ves$", "%1fe" }, { "(analy)ses$", "%1sis" }, { "(ba)ses$", "%1sis" },
  { "(cri)ses$", "%1sis" }, { "(diagno)ses$", "%1sis" }, { "(the)ses$", "%1sis" }, { "([ti])a$", "%1um" },
  { "(o)es$", "%1" }, { "(ss)$", "%1" }, { "(us)$", "%1" }, { "s$", "" },
}

local function apply(word, rules)
  for _, rule in ipairs(rules) do
    if word:find(rule[1]) then return (word:gsub(rule[1], rule[2], 1)) end
  end
  return word
end

-- Inflects the last word of "snake_case" or "CamelCase" words, keeping the capital of the original.
local function inflect_last_word(word, table_of_irregulars, rules)
  local head, last = word:match("^(.-)([%a]+)$")
  if not last then return word end
  local lower = last:lower()
  local result
  if uncountable[lower] then
    result = lower
  else
    result = table_of_irregulars[lower] or apply(lower, rules)
  end
  if last:sub(1, 1):match("%u") then result = result:sub(1, 1):upper() .. result:sub(2) end
  return head .. result
end

function inflect.pluralize(word)
  local head, last = tostring(word):match("^(.-)(%u?%l*)$")
  if last == "" then return word end
  return head .. inflect_last_word(last, irregular, plural_rules)
end

function inflect.singularize(word)
  local head, last = tostring(word):match("^(.-)(%u?%l*)$")
  if last == "" then return word end
  return head .. inflect_last_word(last, singular_of, singular_rules)
end

-- "EventListingPresenter" -> "event_listing_presenter", "HTMLParser" -> "html_parser", "a::B" -> "a/b"
function inflect.underscore(word)
  local s = tostring(word):gsub("::", "/")
  s = s:gsub("(%u+)(%u%l)", "%1_%2"):gsub("([%l%d])(%u)", "%1_%2"):gsub("%-", "_")
  return s:lower()
end

-- "event_listing" -> "EventListing"; "admin/user" -> "Admin::User"
function inflect.camelize(word)
  local s = tostring(word):gsub("/(.?)", function(c) return "::" .. c:upper() end)
  s = s:gsub("^(%l)", string.upper):gsub("_(%w)", string.upper)
  return s
end

function inflect.tableize(class_name) return inflect.pluralize(inflect.underscore(class_name)) end

function inflect.classify(table_name) return inflect.camelize(inflect.singularize(table_name)) end

return inflect
