-- A job's last log lines for the reports (failure summary, HTML, Markdown, JUnit): read from the
-- end of the log only (logs can be many GB), a progress bar's carriage returns resolved to what
-- a terminal would have left, and lines beyond a width cut.
local fs = require "jobrun.c.fs"

local logtail = {}

-- How much of a log's end is read to find its last lines.
logtail.BYTES = 65536

-- lines(path, n [, opts]) -> up to n last lines (raw: ANSI codes kept), oldest first.
--   opts.blank   keep blank lines (default: dropped)
--   opts.width   cut each line to this many bytes (on a UTF-8 boundary), ending in "…"
function logtail.lines(path, n, opts)
  opts = opts or {}
  if not path or n <= 0 then return {} end
  local text = fs.read_tail(path, math.max(logtail.BYTES, n * 512))
  if not text or text == "" then return {} end
  local all = {}
  for line in text:gmatch("[^\n]*") do
    line = line:gsub("\r+$", ""):gsub("^.*\r", "") -- a progress bar's last state
    if opts.blank or line:match("%S") then all[#all + 1] = line end
  end
  while #all > 0 and all[#all] == "" do all[#all] = nil end
  local out = {}
  for i = math.max(1, #all - n + 1), #all do
    local line = all[i]
    if opts.width and #line > opts.width then
      local cut = opts.width
      while cut > 1 and (line:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
      line = line:sub(1, cut) .. string.format("… [cut: %d more bytes]", #line - cut)
    end
    out[#out + 1] = line
  end
  return out
end

-- strip(s): s without terminal escape sequences (CSI with any parameters, OSC up to BEL or ST,
-- two-byte ESC sequences).
function logtail.strip(s)
  s = s:gsub("\27%][^\7\27]*\7", ""):gsub("\27%][^\7\27]*\27\\", "")
  s = s:gsub("\27%[[0-?]*[ -/]*[@-~]", ""):gsub("\27[@-Z\\-_]", "")
  return s
end

return logtail
