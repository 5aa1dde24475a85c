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

-- decode (src/json.c) against lua-cjson's decode and the integer walk after it (what json.decode
-- was): the same values, each number of the same Lua type
local cjson = require "cjson"
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b)) end
  if type(a) ~= "table" then return a == b end
  for k, x in pairs(a) do if not same(x, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
-- (the walk json.decode made after lua-cjson: each whole float in the 64-bit range an integer)
local function integers(value)
  if type(value) ~= "table" then return value end
  for k, x in pairs(value) do
    if math.type(x) == "float" and math.tointeger(x) then value[k] = math.tointeger(x) else integers(x) end
  end
  return value
end
local function cjson_way(text) return integers(cjson.decode(text)) end
local corpus = {
  '{"a":1,"a":2}', '[1,2.5,-0,0,1e3,1E-2,1.5e300,-1.25,123456789012,"x",null,true,false,{},[]]',
  ' "tab\\there \\"q\\" \\\\ \\/ \\b\\f\\n\\r" ', '"\\u00e9 \\u20ac \\ud83d\\ude00 \\u0000 end"', '"é raw UTF-8"',
  '[-9223372036854775808, 9223372036854775808, 18446744073709551616, 1.0, -0.0, 9007199254740992]',
  '{"nested":{"deeper":[{"x":[[[]]]}]}}', '  \n\t[ 1 , { "k" : "v" } ]  \n',
}
local rng, keys, items = 12345, {}, {}
for i = 1, 150 do keys[i] = string.format('"k%d":%d', i % 100, i) end -- 150 members, 50 repeated
corpus[#corpus + 1] = "{" .. table.concat(keys, ",") .. "}"
for i = 1, 300 do
  rng = (rng * 1103515245 + 12345) % 2147483648
  items[i] = ({ tostring(rng), tostring(rng / 7), '"s' .. rng .. '"', "null", "[" .. rng .. "]" })[rng % 5 + 1]
end
corpus[#corpus + 1] = "[" .. table.concat(items, ",") .. "]"
corpus[#corpus + 1] = json.encode({ jobs = { { name = "a", exit_code = 0, duration_s = 1.5, fields = {},
  metrics = { loss = { value = 2.31, n = 40 } } } } }, true)
local differ = {}
for i, text in ipairs(corpus) do
  if not same(c.decode(text), cjson_way(text)) then differ[#differ + 1] = i end
end
tap.is(differ, {}, "decode: what lua-cjson and the integer walk made, on " .. #corpus .. " texts (big objects, "
  .. "repeated keys, escapes, surrogate pairs, numbers at the integers' edges)")
tap.is(c.decode("[1,2,3]"), { 1, 2, 3 }, "decode: an array")
-- (lua-cjson read every number as a double: 2^63 - 1 came out as the float 2^63)
tap.is(c.decode("[9223372036854775807]")[1], math.maxinteger, "decode: the largest integer is itself")
tap.is(math.type(c.decode("[9223372036854775808]")[1]), "float", "decode: one past it is a float")
tap.is(c.decode("null"), json.null, "decode: null is json.null")
local errs = {}
for _, text in ipairs({ "", "[1,]", '{"a"}', '"\\ud800"', '"\\udc00"', "01", "1.", "[1] x", '{"a":1', '"abc',
                        "tru", "[1 2]", '{1:2}', '"\\x"', "-", "1e", "[" }) do
  local got, reason = json.decode(text)
  errs[#errs + 1] = got == nil and type(reason) == "string" and reason:match("^json: .+ at byte %d+$") ~= nil
end
tap.is(errs, { true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true },
  "decode: each of 17 bad texts is nil and 'json: <what> at byte N'")
tap.is(select(2, json.decode('{"a":[1,x]}')), "json: invalid value at byte 9",
  "decode: the byte named is the bad one's")
tap.ok(json.decode(string.rep("[", 500) .. string.rep("]", 500)) ~= nil, "decode: 500 deep is read")
tap.like(select(2, json.decode(string.rep("[", 5000) .. string.rep("]", 5000))), "nesting too deep",
  "decode: 5,000 deep is an error, not a crash")

-- encode keeps its buffer between calls: a call inside another (a key's __tostring) and a call
-- after an error each get what they should
local key = setmetatable({}, { __tostring = function() return json.encode({ 1, { a = "b" } }) end })
tap.is(json.encode({ [key] = 2 }), [[{"[1,{\"a\":\"b\"}]":2}]], "encode inside encode (a key's __tostring)")
local cycle = {}
cycle[1] = cycle
tap.ok(not pcall(json.encode, cycle), "a cycle is an error")
tap.is(json.encode({ x = { 1, 2 } }), '{"x":[1,2]}', "and the next encode is whole")
tap.is(#json.encode(string.rep("x", 3 * 1024 * 1024)), 3 * 1024 * 1024 + 2, "a 3 MB string (a buffer not kept)")
tap.is(json.encode("small"), '"small"', "then a small one")

-- with_series: a job's metric records with their series taken from its series-file line
local ORDER = { "value", "n", "series", "series_step" }
local line = '{"key":"k","job":"j","metrics":{"b":{"series":[1,2.5,-3e2]},"a":{"series":[4],"series_step":2},'
  .. '"bad":{"series":[1,"x"]},"own":{"series":[9]}}}'
local records = { b = { value = 1, n = 3 }, a = { n = 1, value = 4, extra = true }, bad = { value = 0 },
                  own = { value = 7, series = json.array({ 8 }) }, none = { value = 5 } }
tap.is(json.encode(json.with_series(records, line, ORDER)),
  '{"a":{"value":4,"n":1,"series":[4],"series_step":2,"extra":true},"b":{"value":1,"n":3,"series":[1,2.5,-3e2]},'
  .. '"bad":{"value":0},"none":{"value":5},"own":{"value":7,"series":[8]}}',
  "with_series: names sorted, keys in order, each series (and step) from the line as it is; one not of numbers, "
  .. "or not there, left out; a record's own series kept")
tap.is(json.encode(json.with_series({ m = { value = 1 } }, line:gsub('"b"', '"m"'), ORDER), true),
  '{\n  "m": {\n    "value": 1,\n    "series": [1,2.5,-3e2]\n  }\n}', "with_series: pretty, the series on one line")
tap.is(json.encode(json.with_series({ b = { value = 1 } }, nil, ORDER)), '{"b":{"value":1}}', "with_series: no line")
tap.is(json.encode(json.with_series({ b = { value = 1 } }, (line:gsub("%[1,2", "[1, 2")), ORDER)),
  '{"b":{"value":1}}', "with_series: a series not as jobrun writes it is left out")
tap.is(json.encode(json.with_series({}, line, ORDER)), "{}", "with_series: no records")
tap.is(json.encode(json.with_series({ s = { value = 1 } },
  '{"key":"k","job":"j","metrics":{"s":{"series":[1],"series_step":2\0}}}', ORDER)),
  '{"s":{"value":1,"series":[1]}}', "with_series: a step with a NUL byte in it is left out (the answer stays JSON)")

-- with_series with `at`: the line that starts at byte `at` of a text of lines, and only it
local lines = '{"key":"a","job":"a","metrics":{"m":{"series":[1]}}}\n' .. line .. '\n'
  .. '{"key":"c","job":"c","metrics":{"none":{"series":[6]},"m":{"series":[2]}}}'
local at = #lines:match("^[^\n]*\n") + 1
tap.is(json.encode(json.with_series({ b = { value = 1 }, none = { value = 5 } }, lines, ORDER, at)),
  '{"b":{"value":1,"series":[1,2.5,-3e2]},"none":{"value":5}}',
  "with_series at a line: its series, none from the line after it")
local last_at = #lines - #lines:match("[^\n]*$") + 1
tap.is(json.encode(json.with_series({ m = { value = 1 } }, lines, ORDER, last_at)),
  '{"m":{"value":1,"series":[2]}}', "with_series at the last line (no newline after it)")
tap.is(json.encode(json.with_series({ m = { value = 1 } }, lines, ORDER, #lines + 5)), '{"m":{"value":1}}',
  "with_series at a byte past the text: no series")
local cut = lines:sub(1, at - 1) .. '{"key":"b","job":"b","metrics":{"m":{"series":[3,'
tap.is(json.encode(json.with_series({ m = { value = 1 } }, cut .. "\n2]}}}\n" .. lines, ORDER, at)),
  '{"m":{"value":1}}', "with_series: a line cut inside its series takes nothing from the line after it")

-- write(file, v, pretty): the bytes encode makes, to a file a chunk at a time, and flushed
local big = { jobs = json.array(), text = string.rep("y", 200 * 1024) }
for i = 1, 3000 do
  big.jobs[i] = json.object({ name = "job" .. i, n = i, x = i / 7, tags = json.array({ "a", "b" }) })
end
local out_path = os.tmpname()
for _, pretty in ipairs({ true, false }) do
  local f = assert(io.open(out_path, "w"))
  tap.is(json.write(f, big, pretty), true, "write: true (" .. (pretty and "pretty" or "compact") .. ")")
  local written = assert(io.open(out_path)):read("a")
  f:close()
  tap.ok(written == json.encode(big, pretty) and #written > 300 * 1024,
    "write: what encode makes, flushed before it returns, in 64 KB pieces and a bigger one (" .. #written .. " B)")
end
os.remove(out_path)
local full = assert(io.open("/dev/full", "w"))
local wrote, write_error = json.write(full, big, true)
tap.ok(wrote == nil and tostring(write_error):find("^json: write: ") ~= nil,
  "write to a full device: nil, " .. tostring(write_error))
tap.is(json.write(full, 1), nil, "and a small value: its error comes with the flush")
full:close()
local closed = assert(io.open("/dev/null", "w"))
closed:close()
tap.ok(not pcall(json.write, closed, 1), "write to a closed file: an error")
tap.is(json.encode({ after = true }), '{"after":true}', "encode after write: whole")

-- Numbers with a fraction or an exponent: the double strtod reads (Lua's tonumber), bit for bit,
-- whether the decoder's short path (digits <= 2^53, |power of ten| <= 22) or strtod takes them.
do
  math.randomseed(26)
  local n_differ, first = 0, nil
  local function as_strtod(text)
    local got, want = json.decode(text), tonumber(text)
    got = got + 0.0
    if string.pack("<d", got) ~= string.pack("<d", want) and not (got == 0 and want == 0) then
      n_differ = n_differ + 1
      first = first or text
    end
  end
  for _ = 1, 20000 do
    local frac = {}
    for j = 1, math.random(1, 12) do frac[j] = tostring(math.random(0, 9)) end
    local text = (math.random() < 0.3 and "-" or "") .. math.random(0, 10 ^ math.random(0, 9)) .. "."
      .. table.concat(frac) .. (math.random() < 0.3 and ("e" .. math.random(-30, 30)) or "")
    as_strtod(text)
  end
  for _, text in ipairs({ "9007199254740993.0", "9007199254740992.5", "0.1", "0.3", "2.4", "0.4355", "1e22",
    "1e23", "1E-22", "1e-23", "123456789012345678e-5", "4.35e-22", "0.000", "1.7976931348623157e308",
    "2.2250738585072014e-308", "5e-324", "1e400", "12.5E+3" }) do
    as_strtod(text)
  end
  tap.is(n_differ, 0, "decimals read as strtod reads them, bit for bit" .. (first and (": " .. first) or ""))
  tap.is(math.type(json.decode("-0.0")) .. " " .. json.decode("-0.0"), "integer 0", "-0.0: the integer 0, as before")
  tap.is(math.type(json.decode("2.50e1")), "integer", "a whole number written with a fraction: an integer")
end

-- Key orders are read once an encode call (a few kept at a time): objects of six orders taking
-- turns, nested in one another, each keeps its own.
do
  local orders = { { "a", "b", "c" }, { "c", "b", "a" }, { "b", "c", "a" }, { "a", "c", "b" }, { "c", "a", "b" },
                   { "b", "a", "c" } }
  local list, want = json.array(), {}
  for i = 1, 30 do
    local order = orders[(i - 1) % #orders + 1]
    local inner = json.object({ a = 1, b = 2, c = 3 }, orders[(i + 2) % #orders + 1])
    list[i] = json.object({ a = i, b = inner, c = "x" }, order)
    local members = {}
    for k, name in ipairs(order) do
      local text = name == "a" and tostring(i) or name == "c" and '"x"' or json.encode(inner)
      members[k] = '"' .. name .. '":' .. text
    end
    want[i] = "{" .. table.concat(members, ",") .. "}"
  end
  tap.is(json.encode(list), "[" .. table.concat(want, ",") .. "]", "six key orders taking turns, nested: each its own")
end

return tap.done()
