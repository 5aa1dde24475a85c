-- Placeholders: "{name}", "{recipe.module}", "{args}". A "{" that starts no identifier (brace
-- expansion, Lua tables), or follows "$" (shell's ${VAR}), is left alone; "{{" and "}}" escape.
local template = {}

-- quote(word): one shell word, quoted only when it needs to be.
function template.quote(word)
  word = tostring(word)
  if word ~= "" and word:match("^[%w@%%+=:,./_-]+$") then return word end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

function template.quote_all(words)
  local out = {}
  for i, w in ipairs(words) do out[i] = template.quote(w) end
  return table.concat(out, " ")
end

-- shell_command(cmd): a run command as one shell string (an argv list quoted word by word).
function template.shell_command(cmd)
  if type(cmd) == "table" then return template.quote_all(cmd) end
  return cmd
end

-- text(v): how a value reads inside a string; a table reads as its label.
function template.text(v)
  if type(v) == "table" then return template.label(v) end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format("%d", v)
  end
  return tostring(v)
end

local function key_before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- label(v): a table value's label in job names (README "Suite files"): its `name` field, else its scalar
-- fields in sorted key order (a list's items in order) joined by "-"; a table inside counts by
-- its own label, as GitHub's job names take every scalar inside a matrix value.
function template.label(v, depth)
  if type(v) ~= "table" then return template.text(v) end
  if v.name ~= nil and type(v.name) ~= "table" then return template.text(v.name) end
  depth = depth or 0
  local keys = {}
  for k, x in pairs(v) do
    local t = type(x)
    if t == "string" or t == "number" or t == "boolean" or (t == "table" and depth < 32) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_before)
  local parts = {}
  for _, k in ipairs(keys) do
    local text = template.label(v[k], depth + 1)
    if text ~= "" then parts[#parts + 1] = text end
  end
  return table.concat(parts, "-")
end

-- Where a placeholder sits in a shell string: outside quotes (nil), inside '…' or inside "…".
-- Backslashes escape outside quotes and inside double quotes, as sh reads them.
local function quote_state(text, state)
  local i, n = 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if state == "'" then
      if c == "'" then state = nil end
    elseif c == "\\" then
      i = i + 1
    elseif state == '"' then
      if c == '"' then state = nil end
    elseif c == "'" or c == '"' then
      state = c
    end
    i = i + 1
  end
  return state
end

-- compile(str) -> list of parts: a string is literal text, a table { key, state } a
-- placeholder and the shell quoting it sits in. Compiled once per template string: a
-- 10,000-job matrix expands the same few templates.
local function compile(str)
  local parts, n = {}, 0
  local literal = {}
  local state
  local function flush()
    if #literal > 0 then
      n = n + 1; parts[n] = table.concat(literal); literal = {}
      state = quote_state(parts[n], state)
    end
  end
  local pos, start = str:find("[{}]"), 1
  while pos do
    literal[#literal + 1] = str:sub(start, pos - 1)
    local byte, following = str:byte(pos), str:byte(pos + 1)
    local stop = pos
    if (byte == 123 and following == 123) or (byte == 125 and following == 125) then
      literal[#literal + 1] = string.char(byte); stop = pos + 1
    else
      local key = byte == 123 and str:byte(pos - 1) ~= 36 and str:match("^{([%a_][%w_.]*)}", pos)
      -- Any other "{text}" (no quotes, backslashes or braces inside) may name an axis such as
      -- {node-version}; when it names nothing it stays as written ({a,b}, {1..3}).
      local other = not key and byte == 123 and str:byte(pos - 1) ~= 36 and str:match("^{([^{}'\"\\]+)}", pos)
      if key or other then
        flush(); n = n + 1; parts[n] = { key or other, state, other and ("{" .. other .. "}") or nil }
        stop = pos + #(key or other) + 1
      else
        literal[#literal + 1] = string.char(byte)
      end
    end
    start = stop + 1
    pos = str:find("[{}]", start)
  end
  literal[#literal + 1] = str:sub(start)
  flush()
  return parts
end

local compiled = setmetatable({}, { __index = function(t, str)
  local parts = compile(str)
  t[str] = parts
  return parts
end })

-- Lists (the args) quote the same way for every job that shares them.
local list_text = setmetatable({}, { __mode = "k" })

local function value_text(v)
  if type(v) == "table" and v.name == nil then
    local s = list_text[v]
    if not s then s = template.quote_all(v); list_text[v] = s end
    return s
  end
  return template.text(v)
end

-- quoted_text(v, state): v as it must be written at that place of a shell string to reach the
-- command verbatim. Words of safe characters (and the empty word) are written as they are, so
-- ordinary values give the commands they always gave.
local function quoted_text(v, state)
  if type(v) == "table" and v.name == nil then
    if state == nil then return value_text(v) end
    local words = {}
    for i, w in ipairs(v) do words[i] = tostring(w) end
    v = table.concat(words, " ")
  end
  local s = template.text(v)
  if state == nil then
    if s == "" or s:match("^[%w@%%+=:,./_-]+$") then return s end
    return template.quote(s)
  elseif state == "'" then
    return (s:gsub("'", "'\\''"))
  end
  return (s:gsub('[\\$`"]', "\\%0"))
end

-- quote_state_at(text, pos) -> the shell quoting at byte pos of text (nil, "'" or '"'), and
-- paste(value, state): value as it must be written there to reach the command verbatim (the
-- outputs of needed jobs, jobrun.plan.needs, are pasted into commands this way at launch).
function template.quote_state_at(text, pos) return quote_state(text:sub(1, pos - 1), nil) end
function template.paste(value, state) return quoted_text(value, state) end

-- The same few axis values are pasted into every job: each is quoted once per place.
local shell_cache, shell_cached = { [false] = {}, ["'"] = {}, ['"'] = {} }, 0

local function shell_text(v, state)
  if type(v) == "table" or v ~= v then return quoted_text(v, state) end -- NaN is no key
  local cache = shell_cache[state or false]
  local s = cache[v]
  if s then return s end
  s = quoted_text(v, state)
  if shell_cached >= 10000 then shell_cache, shell_cached = { [false] = {}, ["'"] = {}, ['"'] = {} }, 0 end
  shell_cache[state or false][v] = s
  shell_cached = shell_cached + 1
  return s
end

-- expand(str, lookup [, shell]) -> string | nil, unknown_key
-- lookup(key) -> value, or nil for an unknown placeholder. Lists (the args) are shell-quoted.
-- A "{text}" that is no identifier stays as written when lookup finds nothing, unless lookup
-- also says that it names something (nil, true): a matrix key that this job lacks.
-- With shell, str is a shell command: each value is quoted for the place it is pasted at.
-- One buffer for the pieces, reused by each expansion (a fresh one when an expansion runs
-- inside another, from a lookup, or after a lookup raised an error).
local buffer, busy = {}, false

function template.expand(str, lookup, shell)
  local parts = compiled[str]
  local out = busy and {} or buffer
  local mine = out == buffer
  busy = true
  for i = 1, #parts do
    local part = parts[i]
    if type(part) == "string" then
      out[i] = part
    else
      local value, named = lookup(part[1]) -- (should it raise, later expansions use fresh tables)
      if value == nil then
        if not part[3] or named then
          if mine then busy = false end
          return nil, part[1]
        end
        out[i] = part[3]
      else
        out[i] = shell and shell_text(value, part[2]) or value_text(value)
      end
    end
  end
  if mine then busy = false end
  return table.concat(out, "", 1, #parts)
end

-- expand_argv(list, lookup) -> list | nil, unknown_key. An element that is exactly "{args}"
-- (or any placeholder holding a list) is spliced element by element.
function template.expand_argv(list, lookup)
  local out = {}
  for _, item in ipairs(list) do
    item = tostring(item)
    local whole = item:match("^{([^{}]+)}$")
    local value = whole and lookup(whole)
    if type(value) == "table" and value.name == nil then
      for _, v in ipairs(value) do out[#out + 1] = tostring(v) end
    else
      local s, unknown = template.expand(item, lookup)
      if not s then return nil, unknown end
      out[#out + 1] = s
    end
  end
  return out
end

return template
