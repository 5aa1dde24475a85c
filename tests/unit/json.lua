local tap = require "tap"
local json = require "jobrun.base.json"
-- The Lua encoder jobrun had before src/json.c did all encoding: the oracle the C one is held to.
local oracle = require "json_oracle"

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

-- The C encoder (src/json.c) writes what the Lua one (tests/json_oracle.lua) does, byte for byte,
-- compact and pretty, at every depth: records, ordered objects (a key named twice, keys left
-- out of the order, non-string keys), arrays by metatable or by shape, escapes, numbers.
local function rec(t, keys) return json.record(t, keys) end
local deep = {}
do
  local t = deep
  for _ = 1, 60 do t.next = {}; t = t.next end
  t.leaf = json.array({ 1, "x" })
end
local values = {
  {}, json.array(), json.object({}), json.object({}, { "a" }), rec({}, {}), rec({}, { "a", "b" }),
  { 1, 2, 3 }, { 1, nil, 3 }, { [1] = "a", [2] = "b", x = "c" }, { [2] = "b" }, { [1.5] = "f", [3] = "i" },
  json.object({ b = 1, a = 2, c = 3 }, { "c", "a" }), json.object({ b = 1, a = 2 }, { "a", "a", "b" }),
  json.object({ z = 1, y = 2 }, { "q" }), json.object({ [1] = "one", two = 2 }), { [true] = 1 },
  rec({ name = "n", x = json.null, y = false }, { "name", "missing", "x", "y" }),
  { s = "a\"b\n\t\1\127é/\\" }, { ["k\"ey"] = "v", ["é"] = 1, [""] = 0, ["a\0b"] = 2, ["a\0c"] = 3, a = 4 },
  { 1.5, 3.0, -0.0, 0 / 0, math.huge, -math.huge, 2 ^ 53, 2 ^ 53 + 2, -2 ^ 60, 1e300, 1e-7, math.maxinteger,
    math.mininteger, 0.1 + 0.2 },
  { f = print, u = io.stdout, n = json.null, t = true, b = false },
  json.array({ json.array(), {}, json.object({}), { a = json.array({ {}, { b = {} } }) } }),
  deep, "plain", "esc\"aped", 12, 1.25, true, json.null,
}
-- Objects past the C encoder's few-keys way (more than 64 keys, a longer order, long keys, an
-- order of other than strings) and within it (each metric record of a big run).
do
  local many, long_order = {}, {}
  for i = 1, 70 do many["k" .. i] = i; long_order[i] = "k" .. (71 - i) end
  local long = string.rep("a long key, longer than Lua's short strings ", 2)
  values[#values + 1] = json.object(many)
  values[#values + 1] = json.object(many, long_order)
  values[#values + 1] = json.object(many, { "k70", "k1" })
  values[#values + 1] = json.object({ [long] = 1, [long .. "2"] = { [long] = 2 }, b = 3 }, { long .. "2", "b" })
  values[#values + 1] = json.object({ a = 1, [2] = 2 }, { 2, "a" })
  values[#values + 1] = json.object({ value = 2.5, agg = "last", n = 3, n_skipped = 0, missing = "why", zz = 1 },
    { "value", "agg", "n", "n_skipped", "last", "first", "min", "max", "error", "missing", "baseline" })
end
-- Numbers: the C encoder's own way with short decimals (2.4, 0.4355) and integers against
-- "%.14g" and "%d", over decimals of every size and places, their neighbours, and random doubles.
do
  local nums, seed = {}, 12345
  local function rand() seed = (seed * 1103515245 + 12345) % 2147483648; return seed end
  for e = -8, 16 do
    for places = 0, 8 do
      for _ = 1, 12 do
        local d = (rand() % 1000003) * 10.0 ^ e / 10 ^ places
        for _, x in ipairs({ d, -d, d * (1 + 2 ^ -52), d * (1 - 2 ^ -53), d + 1e-9 }) do nums[#nums + 1] = x end
      end
    end
  end
  for _ = 1, 3000 do nums[#nums + 1] = (rand() / 2 ^ 31) * 10.0 ^ (rand() % 24 - 8) end
  -- decimals as text: 1 to 17 digits, 0 to 9 of them after the point
  for digits = 1, 17 do
    for places = 0, math.min(9, digits) do
      for _ = 1, 20 do
        local t = {}
        for i = 1, digits do t[i] = tostring(rand() % 10) end
        local text = table.concat(t, "", 1, digits - places) .. "." .. table.concat(t, "", digits - places + 1)
        nums[#nums + 1] = tonumber(text .. "0")
        nums[#nums + 1] = -tonumber("0.000" .. table.concat(t))
      end
    end
  end
  for _, x in ipairs({ 0.1, 0.0001, 0.00009999, 999999999.5, 1e9 - 0.5, 99999999.999999, 0.000123456,
    1e14 / 1e6, 2.675, 1.005, 0.3, 43550.0, -7.25, math.mininteger, math.maxinteger, 123456789012345 }) do
    nums[#nums + 1] = x
  end
  tap.is(json.encode(json.array(nums)), oracle.encode(json.array(nums)),
    string.format("numbers: the C encoder writes %d of them as \"%%.14g\" and \"%%d\" do", #nums))
end

for i, value in ipairs(values) do
  for _, pretty in ipairs({ false, true }) do
    tap.is(json.encode(value, pretty), oracle.encode(value, pretty),
      string.format("C and Lua encoders agree (value %d, %s)", i, pretty and "pretty" or "compact"))
  end
end
tap.is(oracle.encode({ [""] = 0 }), '{"":0}', "an empty key keeps its text (Lua encoder)")
-- Every byte, escaped or not, alone and in a key: C's own escapes, with no Lua function given.
local bytes = {}
for c = 0, 255 do bytes[#bytes + 1] = string.char(c) end
local all = table.concat(bytes)
tap.is(require("jobrun.c.json").encode(all), oracle.encode(all), "all 256 bytes escaped as the oracle does, in C alone")
tap.is(json.encode({ [all] = all }, true), oracle.encode({ [all] = all }, true), "and in a key")
tap.is(json.encode("\1\127\27/é"), '"\\u0001\\u007f\\u001b/é"', "controls and DEL as \\u00XX, / and UTF-8 as they are")
tap.is(json.encode({ f = print, c = coroutine.create(print) }), '{"c":"<thread>","f":"<function>"}',
  "what is not data: its kind")
local parts = {}
tap.is(json.encode_into({ a = 1 }, parts, 0, true, 2), 1, "encode_into appends one piece")
tap.is(parts[1], '{\n      "a": 1\n    }', "indented as at depth 2")
tap.is(json.encode({ [""] = 0 }), '{"":0}', "an empty key keeps its text (C encoder)")
tap.raises(function()
  local t = {}
  for _ = 1, 70 do t = { t } end
  json.encode(t)
end, "json: nesting too deep %(a cycle%?%)", "the C encoder refuses nesting deeper than 64 itself")
tap.raises(function()
  local t = {}
  for _ = 1, 70 do t = { t } end
  oracle.encode(t)
end, "nesting too deep", "as the oracle does")
tap.is(json.decode('{"a":[1.0,2.5,{"b":-0.0,"c":1e3}],"d":1e300}'),
  { a = { 1, 2.5, { b = 0, c = 1000 } }, d = 1e300 }, "whole floats decode as integers, nested")
tap.is(math.type(json.decode('[1e3]')[1]), "integer", "1e3 is the integer 1000")
tap.is(math.type(json.decode('[1e300]')[1]), "float", "a float beyond the integers stays one")

-- raw: checked JSON text put in as it is; number_list: what may go in that way
local c = require "jobrun.c.json"
tap.is(json.encode({ a = json.raw("[1,2.5e3]"), b = 1 }), '{"a":[1,2.5e3],"b":1}', "json.raw goes in as it is")
tap.is(json.encode({ json.raw("[]") }, true), "[\n  []\n]", "pretty, too")
local lists = {}
for _, t in ipairs({ "[]", " [ 1 , -0.5 ,2e-3, 3E+4 ] ", "[1,\"x\"]", "[1,,2]", "[01]", "[1.]", "[-]", "[1", "[1]x",
                     "{}", "", "[1 2]", "[0,1e5,-0]" }) do
  lists[#lists + 1] = c.number_list(t)
end
tap.is(lists, { true, true, 2, 2, 1, 1, 1, 1, 0, 0, 0, 1, true },
  "number_list: true for an array of JSON numbers, else the first bad item (0: no array)")
tap.is(c.not_number({ 1, 2.5, "3", 4 }), 3, "not_number: the first item that is not a number")
tap.is(c.not_number({ 1, 2 }), nil, "none")

return tap.done()
