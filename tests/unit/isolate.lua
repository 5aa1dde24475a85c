-- jobrun.judge.isolate: one call of user code (an expectation function) in a forked child, bounded
-- from outside: what it returns comes back, its errors and limits are said, a signal ends it.
local tap = require "tap"
local isolate = require "jobrun.judge.isolate"
local process = require "jobrun.c.process"

local STUCK = function() local s = string.rep("a", 40000); return s:find(string.rep("a*", 30) .. "b") end

tap.test("results come back as they were returned", function()
  local r = table.pack(isolate.call(1, function(a, b) return a + b, nil, false, "x", { 1, "y" } end, 2, 3))
  tap.is(r.n, 6, "every value, nil included")
  tap.is({ r[1], r[2], r[3], r[4], r[5], r[6] }, { true, 5, nil, false, "x", { 1, "y" } }, "values")
  tap.is({ isolate.call(1, function() return print end) }, { true, "<function>" }, "a function: a placeholder")
  local ok, why = isolate.call(1, function() error("boom") end)
  tap.is(ok, false, "an error: false")
  tap.like(why, "boom", "and the message")
end)

tap.test("a call stuck in one C call ends at its CPU budget", function()
  local wall = isolate.wall_limit
  isolate.wall_limit = function() return 600 end -- only the CPU limit can end it here
  local ok, why = isolate.call(0.2, STUCK)
  isolate.wall_limit = wall
  tap.is({ ok, why }, { false, "CPU budget of 0.2s exceeded" }, "the budget, said")
end)

tap.test("a call that waits is ended at the wall-clock limit", function()
  local wall = isolate.wall_limit
  isolate.wall_limit = function() return 0.3 end
  local t0 = process.now()
  local ok, why = isolate.call(1, function() local p = io.popen("exec sleep 31.25"); return p:read("a") end)
  isolate.wall_limit = wall
  tap.is({ ok, why }, { false, "wall-clock limit of 0.3s exceeded" }, "the limit, said")
  tap.ok(process.now() - t0 < 20, "before the call would have ended")
  -- the orphaned sleep: ended, and gone before the test ends
  os.execute("pkill -KILL -f '^sleep 31.25$'; while pgrep -f '^sleep 31.25$' > /dev/null; do sleep 0.05; done")
end)

tap.test("a signal ends it at once, left pending", function()
  local sigs = assert(process.signals({ "TERM" }))
  local killer = assert(process.spawn({ argv = { "sh", "-c", "sleep 0.5; kill -TERM " .. process.getpid() } }))
  local t0 = process.now()
  -- (a budget of 30 s: the signal, not the budget, ends it however loaded the machine)
  local ok, err = pcall(isolate.call, 30, STUCK)
  local took = process.now() - t0
  killer:wait(true)
  tap.ok(not ok and type(err) == "table" and err.signal == "TERM", "raises { signal = 'TERM' }")
  tap.ok(took < 15, string.format("at once (%.2fs after the start)", took))
  tap.is(sigs:read(), { "TERM" }, "still there for the caller")
  sigs:close()
end)

return tap.done()
