-- isolate.call: one call of user code (an expectation function) in a forked child, under the
-- limits the parser sandbox has (jobrun.judge.analysis): RLIMIT_CPU at its budget, killed at ten times
-- that in wall-clock time, and at once when jobrun gets INT, TERM or HUP. A count hook alone
-- (jobrun.c.guard, which still runs inside) cannot stop code stuck in one C call.
local process = require "jobrun.c.process"
local guard = require "jobrun.c.guard"
local json = require "jobrun.base.json"

local isolate = {}

function isolate.wall_limit(budget)
  return math.max(2, 10 * budget)
end

-- give_up(child, sigs): a signal came while a child ran user code: the child is killed and
-- reaped, and { signal = NAME } raised (the signal left pending for the caller).
function isolate.give_up(child, sigs)
  child:kill("KILL")
  child:wait(true)
  child:close()
  local name = guard.pending() or "TERM"
  sigs:close()
  error({ signal = name }, 0)
end

-- What the child sends: each result as { v = value } ({} for nil), JSON as state.json keeps it;
-- a value JSON cannot hold travels as its tostring.
local function encode(values)
  local list = {}
  for i = 1, values.n do
    local v = values[i]
    if v ~= nil and not pcall(json.encode, v) then v = tostring(v) end
    list[i] = v == nil and json.object({}) or json.object({ v = v })
  end
  return json.encode(json.array(list))
end

-- call(budget, fn, ...) -> true, results… | false, why. Raises { signal = NAME } when a signal
-- came meanwhile (left pending for the caller's signalfd, or delivered when nobody blocked it).
function isolate.call(budget, fn, ...)
  local args = table.pack(...)
  local sigs = assert(process.signals({ "INT", "TERM", "HUP" }))
  local child, fd = process.fork()
  if child == nil and fd then
    collectgarbage("stop") -- see jobrun.judge.analysis: a collection would copy every page
    process.limit_cpu(budget)
    local res = table.pack(guard.call(budget, fn, table.unpack(args, 1, args.n)))
    if not res[1] and type(res[2]) ~= "string" then res[2] = tostring(res[2]) end
    process.limit_cpu(1e9)
    local ok = process.write(fd, encode(res))
    io.stdout:flush()
    io.stderr:flush()
    process.exit_now(ok and 0 or 3)
  end
  if not child then
    sigs:close()
    return false, "could not be run: " .. tostring(fd)
  end
  local stream, buf, killed = child:stdout(), {}, nil
  local deadline = process.now() + isolate.wall_limit(budget)
  while true do
    local ready = process.poll({ sigs, stream }, not killed and deadline - process.now() or nil)
    if #ready == 0 and not killed and process.now() >= deadline then
      killed = string.format("wall-clock limit of %gs exceeded", isolate.wall_limit(budget))
      child:kill("KILL")
    end
    local eof = false
    for _, r in ipairs(ready) do
      if r == 1 then isolate.give_up(child, sigs) end
      repeat
        local data = stream:read()
        if data == nil then eof = true elseif data ~= "" then buf[#buf + 1] = data end
      until data == nil or data == ""
    end
    if eof then break end
  end
  local r = child:wait(true)
  child:close()
  sigs:close()
  if killed then return false, killed end
  if r.signal == "XCPU" then return false, string.format("CPU budget of %gs exceeded", budget) end
  local list = r.exit_code == 0 and json.decode(table.concat(buf)) or nil
  if type(list) ~= "table" or #list == 0 then
    return false, r.signal and ("its process was ended by SIG" .. r.signal) or "its process gave no answer"
  end
  local out = { n = #list }
  for i, e in ipairs(list) do
    local v
    if type(e) == "table" then v = e.v end -- false stays false
    if v == json.null then v = nil end
    out[i] = v
  end
  return table.unpack(out, 1, out.n)
end

return isolate
