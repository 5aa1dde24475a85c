local tap = require "tap"
local json = require "jobrun.json"

tap.is(json.encode(json.array()), "[]", "empty array")
tap.is(json.encode({}), "{}", "empty object")
tap.is(json.encode(json.object({ b = 1, a = 2, c = 3 }, { "c", "a" })), '{"c":3,"a":2,"b":1}', "key order")
tap.is(json.encode({ 1, "two", true, json.null }), '[1,"two",true,null]', "array values")
tap.is(json.encode({ s = "a\"b\n" }), '{"s":"a\\"b\\n"}', "string escapes")
tap.is(json.encode(1.5), "1.5", "float")
tap.is(json.encode(3.0), "3", "whole float")
tap.is(json.encode(0 / 0), "null", "NaN is null")
tap.is(json.encode("a/b\\/c"), '"a/b\\\\/c"', "slashes stay plain, backslashes escaped")
tap.is(json.decode(json.encode("a/b\\/c")), "a/b\\/c", "and round-trip")
tap.is(math.type(json.decode("[3]")[1]), "integer", "whole numbers decode as integers")
local v = json.decode('{"a":[1,2],"b":"x"}')
tap.is(v, { a = { 1, 2 }, b = "x" }, "decode")
local bad, why = json.decode('{"a":')
tap.is(bad, nil, "bad JSON gives nil")
tap.ok(type(why) == "string" and #why > 0, "with a reason")
tap.is(json.decode(json.encode({ x = { y = { 1, 2 } } }, true)), { x = { y = { 1, 2 } } }, "pretty round trip")
tap.raises(function()
  local t = {}
  t.self = t
  json.encode(t)
end, "nesting too deep", "cycles are refused")

return tap.done()
