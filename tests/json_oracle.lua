-- The oracle of tests/unit/json.lua: the Lua JSON encoder that jobrun used before src/json.c
-- did all encoding (issue 23 #5), kept as the second implementation the C one is held to, byte
-- for byte. Its escapes are lua-cjson's (then "/" unescaped): written independently of json.c's.
-- Values are marked with jobrun.base.json's array, record and object.
local cjson = require "cjson"

local json = {}

json.null = cjson.null

local function is_array(t)
  local mt = getmetatable(t)
  if mt and mt.__name == "json.array" then return true end
  if mt and mt.order then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- What encoding needs to know of an `order` list, worked out once per list: its keys as a set,
-- and whether it names a key twice.
local order_info = setmetatable({}, { __mode = "k" })
local function info_of(order)
  local info = order_info[order]
  if not info or info.n ~= #order then
    local set, dup = {}, false
    for _, k in ipairs(order) do
      if set[k] then dup = true end
      set[k] = true
    end
    info = { set = set, dup = dup, n = #order }
    order_info[order] = info
  end
  return info
end

local function sorted_keys(t, order)
  if order then
    -- Most often every key is in the order: then that is the order, and nothing is sorted.
    local info = info_of(order)
    if not info.dup then
      local set, all_in = info.set, true
      for k in next, t do
        if not set[k] then all_in = false; break end
      end
      if all_in then
        local keys, m = {}, 0
        for _, k in ipairs(order) do
          if t[k] ~= nil then m = m + 1; keys[m] = k end
        end
        return keys
      end
    end
  end
  local keys, seen = {}, {}
  if order then
    for _, k in ipairs(order) do
      if t[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end
    end
  end
  local rest, all_strings = {}, true
  for k in pairs(t) do
    if not seen[k] then
      rest[#rest + 1] = k
      if type(k) ~= "string" then all_strings = false end
    end
  end
  if all_strings then
    table.sort(rest)
  else
    table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  end
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

local cjson_encode = cjson.encode
-- Short strings repeat (statuses, verdicts, keys): each is encoded once, up to a bound.
local short, short_count = {}, 0

-- lua-cjson writes "/" as "\/": valid, but paths should read as paths.
local find = string.find
local function encode_string(s)
  local cached = short[s]
  if cached then return cached end
  -- Printable ASCII without '"' or '\\' needs no escape: it is quoted as it is, without cjson.
  local out
  if not find(s, '[\0-\31"\\\127-\255]') then
    out = '"' .. s .. '"'
  else
    out = cjson_encode(s)
    if s:find("/", 1, true) then out = out:gsub("\\/", "/") end
  end
  if #s <= 32 then
    if short_count >= 10000 then short, short_count = {}, 0 end
    short[s] = out
    short_count = short_count + 1
  end
  return out
end
local math_type, floor, format, concat = math.type, math.floor, string.format, table.concat

-- Object keys repeat in every record: each is encoded once.
local encoded_keys = setmetatable({}, { __index = function(t, k)
  local text = encode_string(tostring(k))
  t[k] = text
  return text
end })

-- Indentation strings, made once per depth.
local newlines = setmetatable({}, { __index = function(t, depth)
  local s = "\n" .. string.rep("  ", depth)
  t[depth] = s
  return s
end })

-- What goes before a value: the comma, the newline and indentation, the key and ":", made
-- once per depth and key. prefixes[pretty][depth * 2 + comma][key]; [ITEM] for array items
-- (not [""]: that is a key too, and an object with it lost the key's text).
local ITEM = {}
local prefixes = { [true] = {}, [false] = {} }
local function prefixes_for(pretty, depth, comma)
  local by = prefixes[pretty and true or false]
  local idx = depth * 2 + (comma and 1 or 0)
  local t = by[idx]
  if not t then
    local lead = (comma and "," or "") .. (pretty and newlines[depth + 1] or "")
    local sep = pretty and ": " or ":"
    t = setmetatable({ [ITEM] = lead }, { __index = function(tt, k)
      local text = lead .. encoded_keys[k] .. sep
      tt[k] = text
      return text
    end })
    by[idx] = t
  end
  return t
end

local encode_value

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if math_type(v) == "integer" then return tostring(v) end
  if v == floor(v) and math.abs(v) < 2^53 then return format("%d", v) end
  return format("%.14g", v)
end

local function encode_table(v, out, n, pretty, depth)
  if depth > 64 then error("json: nesting too deep (a cycle?)") end
  if is_array(v) then
    local len = #v
    if len == 0 then out[n + 1] = "[]"; return n + 1 end
    local first, rest = prefixes_for(pretty, depth, false)[ITEM], prefixes_for(pretty, depth, true)[ITEM]
    n = n + 1; out[n] = "["
    for i = 1, len do
      n = n + 1; out[n] = i == 1 and first or rest
      local x = v[i]
      if type(x) == "string" then n = n + 1; out[n] = encode_string(x)
      else n = encode_value(x, out, n, pretty, depth + 1) end
    end
    n = n + 1; out[n] = pretty and (newlines[depth] .. "]") or "]"
    return n
  end
  local mt = getmetatable(v)
  local exact = mt and mt.exact
  if not exact and next(v) == nil then out[n + 1] = "{}"; return n + 1 end
  local keys = exact and mt.order or sorted_keys(v, mt and mt.order)
  local count = #keys
  if count == 0 then out[n + 1] = "{}"; return n + 1 end
  local first, rest = prefixes_for(pretty, depth, false), prefixes_for(pretty, depth, true)
  n = n + 1; out[n] = "{"
  for i = 1, count do
    local k = keys[i]
    n = n + 1; out[n] = (i == 1 and first or rest)[k]
    local x = v[k]
    local kind = type(x)
    if kind == "string" then n = n + 1; out[n] = encode_string(x)
    elseif x == nil then n = n + 1; out[n] = "null"
    elseif kind == "number" and math_type(x) == "integer" then n = n + 1; out[n] = tostring(x)
    else n = encode_value(x, out, n, pretty, depth + 1) end
  end
  n = n + 1; out[n] = pretty and (newlines[depth] .. "}") or "}"
  return n
end

-- encode_value(v, out, n, pretty, depth) -> n: appends v's text to out[n+1…].
encode_value = function(v, out, n, pretty, depth)
  local kind = type(v)
  if kind == "string" then out[n + 1] = encode_string(v)
  elseif kind == "number" then out[n + 1] = encode_number(v)
  elseif kind == "boolean" then out[n + 1] = v and "true" or "false"
  elseif v == nil or v == json.null then out[n + 1] = "null"
  elseif kind == "table" then return encode_table(v, out, n, pretty, depth)
  else
    -- functions and userdata are not data: say what they are rather than fail.
    out[n + 1] = encode_string("<" .. kind .. ">")
  end
  return n + 1
end

-- encode(v [, pretty]) -> the text.
function json.encode(v, pretty)
  local out = {}
  local n = encode_value(v, out, 0, pretty, 0)
  return concat(out, "", 1, n)
end

return json
