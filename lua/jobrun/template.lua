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

-- text(v): how a value reads inside a string.
function template.text(v)
  if type(v) == "table" then
    if v.name ~= nil then return template.text(v.name) end
    return template.quote_all(v)
  end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format("%d", v)
  end
  return tostring(v)
end

-- expand(str, lookup) -> string | nil, unknown_key
-- lookup(key) -> value, or nil for an unknown placeholder. Lists (the args) are shell-quoted.
function template.expand(str, lookup)
  if not str:find("[{}]") then return str end
  local out, i, n = {}, 1, #str
  while i <= n do
    local c = str:sub(i, i)
    if c == "{" and str:sub(i + 1, i + 1) == "{" then
      out[#out + 1] = "{"; i = i + 2
    elseif c == "}" and str:sub(i + 1, i + 1) == "}" then
      out[#out + 1] = "}"; i = i + 2
    elseif c == "{" and str:sub(i - 1, i - 1) ~= "$" then
      local key = str:match("^{([%a_][%w_]*[%w_.]*)}", i)
      if key then
        local value = lookup(key)
        if value == nil then return nil, key end
        out[#out + 1] = template.text(value)
        i = i + #key + 2
      else
        out[#out + 1] = c; i = i + 1
      end
    else
      out[#out + 1] = c; i = i + 1
    end
  end
  return table.concat(out)
end

-- expand_argv(list, lookup) -> list | nil, unknown_key. An element that is exactly "{args}"
-- (or any placeholder holding a list) is spliced element by element.
function template.expand_argv(list, lookup)
  local out = {}
  for _, item in ipairs(list) do
    item = tostring(item)
    local whole = item:match("^{([%a_][%w_.]*)}$")
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
