-- YAML as SkyPilot reads it: libyaml (src/yaml.c, the parser under PyYAML's CSafeLoader) for
-- the syntax, and here PyYAML SafeLoader's implicit types for plain scalars (YAML 1.1: `yes`,
-- `off` are booleans, `0o17`/`017` octal, `1_000` an integer, `1e3` a string, `~` null).
-- null is json.null and sequences are json arrays, so that a value read here encodes back to
-- the same JSON (and so the same YAML) the server reads.
local cyaml = require "jobrun.c.yaml"
local json = require "jobrun.base.json"

local yaml = {}

local BOOL = { yes = true, Yes = true, YES = true, ["true"] = true, True = true, TRUE = true,
               on = true, On = true, ON = true,
               no = false, No = false, NO = false, ["false"] = false, False = false, FALSE = false,
               off = false, Off = false, OFF = false }
local NULL = { [""] = true, ["~"] = true, null = true, Null = true, NULL = true }

-- sexagesimal("1:30:00") -> 5400 (YAML 1.1's base 60), else nil.
local function sexagesimal(digits)
  local value = 0
  for part in (digits .. ":"):gmatch("([^:]*):") do
    local n = tonumber(part)
    if not n then return nil end
    value = value * 60 + n
  end
  return value
end

local function integer(text)
  local sign, body = text:match("^([-+]?)(.*)$")
  local neg = sign == "-"
  local digits = body:gsub("_", "")
  local value
  if body:match("^0b[01_]+$") then value = tonumber(digits:sub(3), 2)
  elseif body:match("^0x[%x_]+$") then value = tonumber(digits:sub(3), 16)
  elseif body:match("^0[0-7_]+$") then value = tonumber(digits, 8)
  elseif body == "0" or body:match("^[1-9][%d_]*$") then value = math.tointeger(tonumber(digits)) or tonumber(digits)
  elseif body:match("^[1-9][%d_]*:[0-5]?%d") and body:match("^[%d_:]+$") then value = sexagesimal(digits)
  end
  if value == nil then return nil end
  return neg and -value or value
end

local INF = { [".inf"] = true, [".Inf"] = true, [".INF"] = true }
local NAN = { [".nan"] = true, [".NaN"] = true, [".NAN"] = true }

local function float(text)
  local unsigned = text:gsub("^[-+]", "")
  if INF[unsigned] then return text:sub(1, 1) == "-" and -math.huge or math.huge end
  if NAN[text] then return 0 / 0 end
  local sign, body = text:match("^([-+]?)(.*)$")
  local v
  if body:match("^[%d][%d_]*%.[%d_]*$") or body:match("^[%d][%d_]*%.[%d_]*[eE][-+]%d+$")
      or body:match("^%.[%d_]+$") or body:match("^%.[%d_]+[eE][-+]%d+$") then
    v = tonumber((body:gsub("_", "")))
  elseif body:match("^%d[%d_]*:[0-5]?%d") and body:match("^[%d_:]+%.[%d_]*$") then
    local whole, frac = body:match("^(.-)(%.[%d_]*)$")
    local w = sexagesimal(whole:gsub("_", ""))
    v = w and (w + (tonumber(frac:gsub("_", "")) or 0))
  end
  if v == nil then return nil end
  return sign == "-" and -v or v + 0.0
end

-- resolve(text, tag): a plain scalar's value (tag nil), or a tagged one's.
local function resolve(text, tag)
  if tag == nil then
    if NULL[text] then return json.null end
    if BOOL[text] ~= nil then return BOOL[text] end
    local first = text:sub(1, 1)
    if first:match("[-+.%d]") then
      local n = integer(text)
      if n ~= nil then return n end
      n = float(text)
      if n ~= nil then return n end
    end
    return text
  end
  local short = tag:match("^tag:yaml%.org,2002:(%w+)$")
  if short == "null" and NULL[text] then return json.null end
  if short == "bool" and BOOL[text] ~= nil then return BOOL[text] end
  if short == "int" and integer(text) then return integer(text) end
  if short == "float" and (float(text) or integer(text)) then return float(text) or (integer(text) + 0.0) end
  error(string.format("cannot read %q as %s", text, tag), 0)
end
yaml.resolve = resolve

local ARRAY_MT = getmetatable(json.array({}))

-- load_all(text) -> { doc… } | nil, why
function yaml.load_all(text)
  return cyaml.load(text, { null = json.null, array = ARRAY_MT, resolve = resolve })
end

-- load(text) -> the one document's value (json.null for an empty text) | nil, why
function yaml.load(text)
  local docs, why = yaml.load_all(text)
  if not docs then return nil, why end
  if #docs > 1 then return nil, string.format("%d YAML documents where one was expected", #docs) end
  if #docs == 0 then return json.null end
  return docs[1]
end

return yaml
