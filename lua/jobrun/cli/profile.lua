-- JOBRUN_PROFILE=FILE: a sampling profile of the Lua side (every 1000 VM instructions), written
-- to FILE at exit, hottest lines first. For finding where time goes; off unless asked.
local profile = {}

function profile.start(path)
  local counts = {}
  debug.sethook(function()
    local info = debug.getinfo(2, "Sl")
    if info then
      local key = info.short_src .. ":" .. (info.currentline or 0)
      counts[key] = (counts[key] or 0) + 1
    end
  end, "", 1000)
  return function()
    debug.sethook()
    local rows = {}
    for k, v in pairs(counts) do rows[#rows + 1] = { k, v } end
    table.sort(rows, function(a, b) return a[2] > b[2] end)
    local f = io.open(path, "w")
    if not f then return end
    for i = 1, math.min(60, #rows) do f:write(rows[i][2], "\t", rows[i][1], "\n") end
    f:close()
  end
end

return profile
