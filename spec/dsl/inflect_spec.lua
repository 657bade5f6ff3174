local inflect = require "silo.inflect"
local helpers = require "silo.helpers"

describe("silo.inflect", function()
  it("pluralizes and singularizes regular, irregular and uncountable words", function()
    local pairs_of = {
      { "city", "cities" }, { "venue", "venues" }, { "person", "people" }, { "address", "addresses" },
      { "box", "boxes" }, { "wife", "wives" }, { "half", "halves" }, { "index", "indices" },
      { "series", "series" }, { "event_series", "event_series" }, { "attending_user", "attending_users" },
      { "Attendance", "Attendances" }, { "status", "statuses" }, { "category", "categories" }, { "day", "days" },
    }
    for _, pair in ipairs(pairs_of) do
      assert.are.equal(pair[2], inflect.pluralize(pair[1]))
      assert.are.equal(pair[1], inflect.singularize(pair[2]))
    end
  end)

  it("converts between CamelCase and snake_case", function()
    assert.are.equal("event_listing_presenter", inflect.underscore("EventListingPresenter"))
    assert.are.equal("html_parser", inflect.underscore("HTMLParser"))
    assert.are.equal("admin/user", inflect.underscore("Admin::User"))
    assert.are.equal("EventListing", inflect.camelize("event_listing"))
    assert.are.equal("Admin::User", inflect.camelize("admin/user"))
    assert.are.equal("event_series", inflect.tableize("EventSeries"))
    assert.are.equal("AttendingUser", inflect.classify("attending_users"))
  end)
end)

describe("silo.helpers", function()
  it("joins a list as a sentence", function()
    assert.are.equal("", helpers.to_sentence({}))
    assert.are.equal("a", helpers.to_sentence({ "a" }))
    assert.are.equal("a and b", helpers.to_sentence({ "a", "b" }))
    assert.are.equal("a, b and c", helpers.to_sentence({ "a", "b", "c" }))
    assert.are.equal("a; b or c", helpers.to_sentence({ "a", "b", "c" }, { words_connector = "; ",
      last_word_connector = " or " }))
  end)

  it("pluralizes a word, or a count and a word", function()
    assert.are.equal("cities", helpers.pluralize("city"))
    assert.are.equal("1 person", helpers.pluralize(1, "person"))
    assert.are.equal("3 people", helpers.pluralize(3, "person"))
    assert.are.equal("2 octopi", helpers.pluralize(2, "octopus", "octopi"))
  end)

  it("plucks, maps and filters", function()
    local artists = { { name = "Ada", id = 1 }, { name = "Bo", id = 2 } }
    assert.are.same({ "Ada", "Bo" }, helpers.pluck(artists, "name"))
    assert.are.same({ { 1, "Ada" }, { 2, "Bo" } }, helpers.pluck(artists, "id", "name"))
    assert.are.same({ "ADA!", "BO!" }, helpers.map(artists, function(a) return a.name:upper() .. "!" end))
    local shouters = { { shout = function(self) return self.word .. "!" end, word = "hi" } }
    assert.are.same({ "hi!" }, helpers.map(shouters, "shout"))
    assert.are.same({ artists[2] }, helpers.filter(artists, function(a) return a.id > 1 end))
  end)

  it("reports misuse at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline
    local ok, err = pcall(function() helpers.map({ {} }, "shout") end)
    assert.is_false(ok)
    assert.are.equal("spec/dsl/inflect_spec.lua:" .. (line + 1) .. ": map: item has no method 'shout'", err)
    ok, err = pcall(function() helpers.pluck(nil, "x") end)
    assert.are.equal("spec/dsl/inflect_spec.lua:" .. (line + 4) .. ": expected a list or a relation, got nil", err)
    ok, err = pcall(function() helpers.map({}, 42) end)
    assert.are.equal("spec/dsl/inflect_spec.lua:" .. (line + 6) .. ": map: expected a function or a method name, got number", err)
  end)
end)
