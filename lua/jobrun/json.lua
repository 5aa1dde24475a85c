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
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

local encode_string = cjson.encode

local function encode_value(v, out, indent, depth)
  local kind = type(v)
  if kind == "string" then
    out[#out + 1] = encode_string(v)
  elseif kind == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(v) == "integer" then
      out[#out + 1] = tostring(v)
    elseif v == math.floor(v) and math.abs(v) < 2^53 then
      out[#out + 1] = string.format("%d", v)
    else
      out[#out + 1] = string.format("%.14g", v)
    end
  elseif kind == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif kind == "table" then
    if depth > 64 then error("json: nesting too deep (a cycle?)") end
    local nl = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
    local close_nl = indent and ("\n" .. string.rep(indent, depth)) or ""
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]"; return end
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl
        encode_value(v[i], out, indent, depth + 1)
      end
      out[#out + 1] = close_nl .. "]"
    else
      local mt = getmetatable(v)
      local keys = sorted_keys(v, mt and mt.order)
      if #keys == 0 then out[#out + 1] = "{}"; return end
      out[#out + 1] = "{"
      local sep = indent and ": " or ":"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = sep
        encode_value(v[k], out, indent, depth + 1)
      end
      out[#out + 1] = close_nl .. "}"
    end
  else
    -- functions and userdata are not data: say what they are rather than fail.
    out[#out + 1] = encode_string("<" .. kind .. ">")
  end
end

-- encode(v [, pretty]): pretty indents by two spaces.
function json.encode(v, pretty)
  local out = {}
  encode_value(v, out, pretty and "  " or nil, 0)
  return table.concat(out)
end

-- decode(text) -> value | nil, message
function json.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then return nil, tostring(value) end
  return value
end

return json
