-- Text from jobs and suites (names, params, log lines) on its way to a terminal: C0 and C1
-- control characters, DEL and bytes that are not UTF-8 are shown as visible escapes (\x1b,
-- \n, …), so that no name or log line can move the cursor, retitle the window or clear the
-- screen. jobrun's own colours are added after this, to the cleaned text.
local sanitize = {}

local SHORT = { [9] = "\\t", [10] = "\\n", [13] = "\\r" }

local function hex(s)
  return (s:gsub(".", function(c) return string.format("\\x%02x", c:byte()) end))
end

-- utf8_at(s, i) -> length of the well-formed UTF-8 character at i (1 for ASCII), or nil.
local function utf8_at(s, i)
  local c = s:byte(i)
  if c < 0x80 then return 1 end
  local len
  if c >= 0xC2 and c <= 0xDF then len = 2
  elseif c >= 0xE0 and c <= 0xEF then len = 3
  elseif c >= 0xF0 and c <= 0xF4 then len = 4
  else return nil end
  local seq = s:sub(i, i + len - 1)
  if #seq ~= len or utf8.len(seq) ~= 1 then return nil end -- strict: no overlong, surrogate, > U+10FFFF
  return len
end
sanitize.utf8_at = utf8_at

-- text(s [, keep_tab]): s with every control character and every stray byte escaped.
function sanitize.text(s, keep_tab)
  s = tostring(s)
  if not s:find("[%z\1-\31\127-\255]") then return s end
  local out, n = {}, 0
  local i, len = 1, #s
  while i <= len do
    local run = s:match("^[\32-\126]+", i)
    if run then
      n = n + 1; out[n] = run
      i = i + #run
    else
      local c = s:byte(i)
      local size = utf8_at(s, i)
      n = n + 1
      if c == 9 and keep_tab then
        out[n] = "\t"
      elseif c < 0x80 then
        out[n] = SHORT[c] or string.format("\\x%02x", c)
      elseif not size then
        out[n] = string.format("\\x%02x", c); size = 1
      elseif size == 2 and c == 0xC2 and s:byte(i + 1) < 0xA0 then
        out[n] = hex(s:sub(i, i + 1)) -- C1 control (U+0080-U+009F): CSI, OSC… in some terminals
      else
        out[n] = s:sub(i, i + size - 1)
      end
      i = i + (size or 1)
    end
  end
  return table.concat(out)
end

-- message(s): text of several lines (an error, a notice): each line cleaned as text() does it,
-- tabs kept; the line breaks themselves are jobrun's.
function sanitize.message(s)
  s = tostring(s)
  if not s:find("[%z\1-\8\11-\31\127-\255]") then return s end
  return (s:gsub("[^\n]+", function(line) return sanitize.text(line, true) end))
end

-- format(fmt, ...) -> string.format(fmt, ...) with each string argument cleaned (text()): a
-- line jobrun prints that quotes a name, a run id, a path or an argument. fmt is jobrun's.
function sanitize.format(fmt, ...)
  local args = table.pack(...)
  for i = 1, args.n do
    if type(args[i]) == "string" then args[i] = sanitize.text(args[i]) end
  end
  return string.format(fmt, table.unpack(args, 1, args.n))
end

-- cell(s): a table cell. A cell that jobrun painted (one colour code, the text, a reset) keeps
-- its colour; everything inside is cleaned.
function sanitize.cell(s)
  s = tostring(s)
  local open, inner = s:match("^(\27%[[%d;]*m)(.-)\27%[0m$")
  if open then return open .. sanitize.text(inner) .. "\27[0m" end
  return sanitize.text(s)
end

-- utf8(s [, replacement]): s as well-formed UTF-8, each stray byte replaced (default U+FFFD).
function sanitize.utf8(s, replacement)
  s = tostring(s)
  if utf8.len(s) then return s end
  replacement = replacement or "\239\191\189"
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local size = utf8_at(s, i)
    n = n + 1
    if size then out[n] = s:sub(i, i + size - 1); i = i + size
    else out[n] = replacement; i = i + 1 end
  end
  return table.concat(out)
end

return sanitize
