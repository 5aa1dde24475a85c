-- Issue 21 item 8: a parser stuck in one C call (string.find with a catastrophic pattern, where
-- no count hook fires) can neither hang `run` nor keep it from answering SIGTERM: user parsers
-- run in a forked child under a CPU rlimit and a wall-clock limit, killed from outside.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local process = require "jobrun.c.process"

-- The issue's parser, exactly.
local SUITE = [[
parser "stuck" { fn = function(log) local s = string.rep("a", 40000); return s:find(string.rep("a*", 30) .. "b") end }
suite "p" { run = "echo hi" }
]]

h.test_in(tap, "run ends, the job fails and the stuck parser is named", function(dir)
  h.write(dir .. "/s.lua", SUITE)
  local t0 = process.now()
  -- timeout: the old code spent minutes in that one string.find.
  local code, out, err = h.sh(dir, "timeout -s KILL 60 " .. h.q(h.bin) .. " run s.lua --run-id P --json")
  local took = process.now() - t0
  tap.is(code, 1, string.format("exit 1: the job fails (after %.1fs)", took))
  local doc = json.decode(out) or { jobs = { {} } }
  local job = doc.jobs[1] or {}
  tap.is(job.status, "SUCCEEDED", "the job itself succeeded")
  tap.is(job.verdict, "fail", "its verdict is fail")
  local text = table.concat(job.mismatches or {}, "\n")
  tap.ok(text:find("parser 'stuck' failed: CPU budget of 1s exceeded", 1, true)
    or text:find("parser 'stuck' failed: wall-clock limit of 10s exceeded", 1, true),
    "the parser is named in mismatches, with its limit", text)
  tap.like(err, "parser 'stuck' failed on job p", "and said on screen")
end)

-- The children of pid, from /proc.
local function children(pid)
  local out = {}
  for _, tid in ipairs(fs.list("/proc/" .. pid .. "/task") or {}) do
    for c in (fs.read("/proc/" .. pid .. "/task/" .. tid .. "/children") or ""):gmatch("%d+") do out[#out + 1] = c end
  end
  return out
end

-- (with a budget of 30 s, so that the analysis is still under way however loaded the machine)
local LONG_SUITE = SUITE:gsub('parser "stuck" { fn', 'parser "stuck" { budget = 30, fn')

h.test_in(tap, "SIGTERM during the analysis ends run promptly (143)", function(dir)
  h.write(dir .. "/s.lua", LONG_SUITE)
  local runner = h.spawn(dir, { "run", "s.lua", "--run-id", "T" })
  local pid = runner:pid()
  local cmdline = fs.read("/proc/" .. pid .. "/cmdline")
  -- The analysis is under way once the runner has a child running its own program (a fork);
  -- the job's slot is a child too, but with another command line.
  local analysing
  tap.ok(h.eventually(function()
    for _, c in ipairs(children(pid)) do
      if fs.read("/proc/" .. c .. "/cmdline") == cmdline then analysing = c; return true end
    end
  end, 90), "the analysis started") -- (the job's end comes first: slow on a loaded machine)
  process.sleep(0.5) -- well inside string.find
  local t0 = process.now()
  runner:kill("TERM")
  -- (20 s: on a loaded machine still well before the analysis could end, 30 s of CPU)
  local ended = #process.poll({ runner }, 20) == 1
  local took = process.now() - t0
  if not ended then runner:kill("KILL") end
  local r = runner:wait(true)
  tap.ok(ended, string.format("ended promptly, not after the analysis (%.2fs; a second on an idle machine)", took))
  tap.is(r.exit_code, 143, "exit 143")
  tap.ok(not analysing or h.eventually(function() return h.gone(analysing) end, 2), "the analysis child is gone")
  tap.like(fs.read(dir .. "/.bg.log") or "", "SIGTERM: stopping", "run said it stopped")
end)

-- The same for an expectation function, the other user code that runs once jobs have ended.
local EXPECT_SUITE = [[
suite "e" { run = "echo hi",
  expect = function(job) local s = string.rep("a", 40000); return s:find(string.rep("a*", 30) .. "b") end }
]]

h.test_in(tap, "an expectation function stuck in one C call: run ends, the job fails, saying why", function(dir)
  h.write(dir .. "/s.lua", EXPECT_SUITE)
  local code, out = h.sh(dir, "timeout -s KILL 60 " .. h.q(h.bin) .. " run s.lua --run-id E --json")
  tap.is(code, 1, "exit 1")
  local job = (json.decode(out) or { jobs = { {} } }).jobs[1] or {}
  local text = table.concat(job.mismatches or {}, "\n")
  tap.ok(text:find("the expectation function failed: CPU budget of 1s exceeded", 1, true)
    or text:find("the expectation function failed: wall-clock limit of 10s exceeded", 1, true),
    "the mismatch says the expectation ran past its limit", text)
end)

h.test_in(tap, "SIGTERM during an expectation function ends run promptly (143)", function(dir)
  h.write(dir .. "/s.lua", EXPECT_SUITE)
  local runner = h.spawn(dir, { "run", "s.lua", "--run-id", "F" })
  local pid = runner:pid()
  local cmdline = fs.read("/proc/" .. pid .. "/cmdline")
  tap.ok(h.eventually(function()
    for _, c in ipairs(children(pid)) do
      if fs.read("/proc/" .. c .. "/cmdline") == cmdline then return true end
    end
  end, 90), "the expectation is being judged") -- (after the job's end: slow on a loaded machine)
  process.sleep(0.5)
  local t0 = process.now()
  runner:kill("TERM")
  -- (exit 143 below tells a run that stopped for the TERM from one that judged the job and ended)
  local ended = #process.poll({ runner }, 20) == 1
  local took = process.now() - t0
  if not ended then runner:kill("KILL") end
  local r = runner:wait(true)
  tap.ok(ended, string.format("ended promptly, not after the analysis (%.2fs; a second on an idle machine)", took))
  tap.is(r.exit_code, 143, "exit 143")
end)

return tap.done()
