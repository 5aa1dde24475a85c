-- JOBRUN_PROFILE=FILE: a sampling profile of the Lua side (every 1000 VM instructions), written
-- to FILE at exit, hottest lines first. For finding where time goes; off unless asked.
local profile = {}

function profile.start(path)
  local counts, funcs, total = {}, {}, 0
  debug.sethook(function()
    local info = debug.getinfo(2, "Sl")
    if info then
      local key = info.short_src .. ":" .. (info.currentline or 0)
      counts[key] = (counts[key] or 0) + 1
      -- (and by function: where a function's lines are many, none of them is on top alone)
      local fkey = "function at " .. info.short_src .. ":" .. (info.linedefined or 0)
      funcs[fkey] = (funcs[fkey] or 0) + 1
      total = total + 1
    end
  end, "", 1000)
  local function top(f, t, n)
    local rows = {}
    for k, v in pairs(t) do rows[#rows + 1] = { k, v } end
    table.sort(rows, function(a, b) return a[2] > b[2] end)
    for i = 1, math.min(n, #rows) do f:write(rows[i][2], "\t", rows[i][1], "\n") end
  end
  return function()
    debug.sethook()
    local f = io.open(path, "w")
    if not f then return end
    f:write(total, "\tsamples in all (one each 1000 VM instructions)\n\nBy function:\n")
    top(f, funcs, 30)
    f:write("\nBy line:\n")
    top(f, counts, 60)
    f:close()
  end
end

return profile
