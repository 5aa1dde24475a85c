-- Text tables whose column widths count what is visible: ANSI colour codes take no room,
-- UTF-8 characters one column each. Control characters in cells are shown escaped (jobrun.report.sanitize).
local color = require "jobrun.report.color"
local sanitize = require "jobrun.report.sanitize"

local textable = {}

local function width(s)
  local plain = color.strip(s)
  return utf8.len(plain) or #plain
end
textable.width = width

-- count(n, word) -> "1 job", "2 jobs": every count jobrun prints in words.
function textable.count(n, word)
  return string.format("%d %s%s", n, word, n == 1 and "" or "s")
end

-- cut(s, n): at most n visible columns, ending in "…" when cut (colour codes dropped then).
function textable.cut(s, n)
  if width(s) <= n then return s end
  local plain = color.strip(s)
  if n < 1 then return "" end
  if n == 1 then return "…" end
  local ok, stop = pcall(utf8.offset, plain, n)
  if not ok or not stop then return plain:sub(1, n - 1) .. "…" end
  return plain:sub(1, stop - 1) .. "…"
end

local function pad(s, n)
  return s .. string.rep(" ", math.max(0, n - width(s)))
end

-- render(headers, rows, opts) -> text. opts.max = { [col] = max width }; opts.sep = "  ".
-- The last column is not padded, so no line ends in spaces.
function textable.render(headers, rows, opts)
  opts = opts or {}
  local sep = opts.sep or "  "
  local widths = {}
  local heads = {}
  for i, h in ipairs(headers) do heads[i] = sanitize.cell(h); widths[i] = width(heads[i]) end
  local cells = {}
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i = 1, #headers do
      local s = sanitize.cell(row[i] == nil and "" or row[i])
      local max = opts.max and opts.max[i]
      if max then s = textable.cut(s, max) end
      cells[r][i] = s
      if width(s) > widths[i] then widths[i] = width(s) end
    end
  end
  local paint = opts.paint or function(s) return s end
  local lines = {}
  local function line(row, is_header)
    local parts = {}
    for i = 1, #headers do
      local s = row[i]
      if is_header then s = paint(s, "bold") end
      parts[i] = (i < #headers) and pad(s, widths[i]) or s
    end
    -- Trailing blanks cut from the end, in a loop: gsub("%s+$") retries at every blank and is
    -- quadratic in a wide column's padding (a 100,000-byte job name took 30 s).
    local text = table.concat(parts, sep)
    local stop = #text
    while stop > 0 and text:byte(stop) == 32 do stop = stop - 1 end
    return text:sub(1, stop)
  end
  lines[1] = line(heads, true)
  for _, row in ipairs(cells) do lines[#lines + 1] = line(row) end
  return table.concat(lines, "\n") .. "\n"
end

return textable
