-- jobrun.c.guard: a pending signal stops user code under guard.call, even through its pcalls,
-- and waits while guard.hold is on (jobrun's own code, called by a script), to be raised once
-- the user code runs again.
local tap = require "tap"
local guard = require "jobrun.c.guard"
local process = require "jobrun.c.process"

local function spin(n) local x = 0; for i = 1, n do x = x + i end; return x end

local signals = assert(process.signals({ "INT" }))

tap.test("a pending signal stops guarded code, whose pcall cannot swallow it", function()
  assert(os.execute("kill -INT " .. process.getpid()))
  local after = false
  local ok, err = guard.call(nil, function()
    pcall(spin, 1e6)
    after = true
    spin(1e6)
  end)
  tap.is({ ok, type(err) == "table" and err.signal }, { false, "INT" }, "raised as { signal = 'INT' }")
  tap.is(after, false, "the pcall did not keep it")
  tap.is(signals:read(), { "INT" }, "still pending until read")
end)

tap.test("guard.hold: the signal waits while held, then is raised", function()
  assert(os.execute("kill -INT " .. process.getpid()))
  local reached, past = false, false
  local ok, err = guard.call(nil, function()
    local prev = guard.hold(true)
    spin(1e6) -- jobrun's own work: not cut off
    reached = true
    guard.hold(prev)
    spin(1e6)
    past = true
  end)
  tap.is({ ok, type(err) == "table" and err.signal }, { false, "INT" }, "raised once the hold ends")
  tap.is({ reached, past }, { true, false }, "after the held part, before the rest")
  tap.is(guard.hold(false), false, "the hold was given back")
  tap.is(signals:read(), { "INT" }, "drained")
end)

tap.test("a budget still applies while held", function()
  local prev = guard.hold(true)
  local ok, err = guard.call(0.05, function() while true do spin(1000) end end)
  guard.hold(prev)
  tap.is(ok, false, "stopped")
  tap.like(tostring(err), "CPU budget of", "by the budget")
end)

signals:close()
return tap.done()
