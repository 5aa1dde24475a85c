-- Durations as users write them: 90, "90s", "30m", "2h", "1h30m", "0.03h", "1d".
local duration = {}

local UNIT = { s = 1, m = 60, h = 3600, d = 86400 }

-- parse(v) -> seconds | nil, why
function duration.parse(v)
  if type(v) == "number" then
    if v > 0 and v == v and v < math.huge then return v end
    return nil, "a duration must be positive"
  end
  if type(v) ~= "string" then return nil, "a duration is a number of seconds or a string like \"2h\"" end
  local text = v:gsub("%s+", "")
  if text == "" then return nil, "empty duration" end
  local plain = tonumber(text)
  if plain then return duration.parse(plain) end
  local total, rest = 0, text
  while rest ~= "" do
    local num, unit, tail = rest:match("^(%d*%.?%d+)([smhd])(.*)$")
    if not num then
      return nil, string.format("'%s' is not a duration (use s, m, h or d, e.g. \"1h30m\")", v)
    end
    total = total + tonumber(num) * UNIT[unit]
    rest = tail
  end
  if total <= 0 then return nil, "a duration must be positive" end
  return total
end

-- format(seconds) -> "1h02m", "3m05s", "12.3s"
function duration.format(s)
  if not s then return "-" end
  if s < 60 then return string.format("%.1fs", s) end
  s = math.floor(s + 0.5)
  if s < 3600 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%dh%02dm", s // 3600, (s % 3600) // 60)
end

return duration
