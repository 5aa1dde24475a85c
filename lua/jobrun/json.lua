-- JSON for state files and --json output. Decoding is lua-cjson's; encoding is ours because
-- lua-cjson 2.1 cannot tell an empty array from an empty object, nor keep a key order.
local cjson = require "cjson"

local json = {}

local ARRAY = { __name = "json.array" }
json.null = cjson.null

-- array(t): marks t as a JSON array, so that an empty one encodes as [].
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

-- record(t, keys): t encodes with exactly these keys, in this order, nil as null — no key
-- gathering or sorting, for the many records of a big run.
function json.record(t, keys)
  return setmetatable(t, { __name = "json.record", order = keys, exact = true })
end

-- object(t, order): t encodes with the keys of `order` first, in that order, then the rest sorted.
function json.object(t, order)
  return setmetatable(t or {}, { __name = "json.object", order = order })
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == ARRAY then return true end
  if mt and mt.order then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function sorted_keys(t, order)
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
  -- Printable ASCII without '"' or '\\' needs no escape: quoted as it is, not cached (job
  -- names, commands and paths are mostly unique).
  if not find(s, '[\0-\31"\\\127-\255]') then return '"' .. s .. '"' end
  local out = cjson_encode(s)
  if s:find("/", 1, true) then out = out:gsub("\\/", "/") end
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

local encode_value

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if math_type(v) == "integer" then return tostring(v) end
  if v == floor(v) and math.abs(v) < 2^53 then return format("%d", v) end
  return format("%.14g", v)
end

local function encode_table(v, out, n, pretty, depth)
  if depth > 64 then error("json: nesting too deep (a cycle?)") end
  local nl = pretty and newlines[depth + 1] or ""
  if is_array(v) then
    local len = #v
    if len == 0 then out[n + 1] = "[]"; return n + 1 end
    n = n + 1; out[n] = "["
    for i = 1, len do
      if i > 1 then n = n + 1; out[n] = "," end
      n = n + 1; out[n] = nl
      n = encode_value(v[i], out, n, pretty, depth + 1)
    end
    n = n + 1; out[n] = pretty and (newlines[depth] .. "]") or "]"
    return n
  end
  local mt = getmetatable(v)
  local keys = (mt and mt.exact) and mt.order or sorted_keys(v, mt and mt.order)
  if #keys == 0 then out[n + 1] = "{}"; return n + 1 end
  local sep = pretty and ": " or ":"
  n = n + 1; out[n] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then n = n + 1; out[n] = "," end
    n = n + 1; out[n] = nl
    n = n + 1; out[n] = encoded_keys[k]
    n = n + 1; out[n] = sep
    n = encode_value(v[k], out, n, pretty, depth + 1)
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

-- encode_into(v, out, n, pretty, depth) -> n: appends v's text to out[n+1…], as if v stood at
-- that depth of a bigger document (for writing one in pieces).
function json.encode_into(v, out, n, pretty, depth)
  return encode_value(v, out, n, pretty, depth or 0)
end

json.encode_string = encode_string

-- indent(depth) -> "\n" and two spaces per depth.
function json.indent(depth) return newlines[depth] end

-- encode(v [, pretty]): pretty indents by two spaces.
function json.encode(v, pretty)
  local out = {}
  encode_value(v, out, 0, pretty, 0)
  return concat(out)
end

-- lua-cjson 2.1 decodes every number as a float; whole ones become integers again, so that a
-- restart count reads 1, not 1.0.
local function integers(v)
  for k, x in pairs(v) do
    local t = type(x)
    if t == "number" then
      local i = math.tointeger(x)
      if i then v[k] = i end
    elseif t == "table" then
      integers(x)
    end
  end
  return v
end

-- decode(text) -> value | nil, message
function json.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then return nil, tostring(value) end
  if type(value) == "table" then integers(value) end
  return value
end

return json
