-- Issue 24 items 8 and 9, with real runs on the local backend: --only '!GLOB' on check, kill and
-- rerun; -x/--fail-fast on run and rerun; --durations N; kill's "withdrawn (never started)";
-- "1 job"; every report written is echoed.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

local SUITE = [[
suite "ff" { matrix = { x = { 1, 2, 3, 4 } }, run = "sleep 0.{x}; test {x} != 2", max_parallel = 1 }
]]

h.test_in(tap, "-x stops launching after the first failure, whatever the suite says", function(dir)
  h.write(dir .. "/s.lua", SUITE)
  local code, out = h.sh(dir, "jobrun run s.lua -x --run-id X --json")
  tap.is(code, 1, "exit 1")
  local by = h.jobs_by_name(json.decode(out) or { jobs = {} })
  tap.is({ by.ff_1 and by.ff_1.status, by.ff_2 and by.ff_2.status, by.ff_3 and by.ff_3.status,
           by.ff_4 and by.ff_4.status }, { "SUCCEEDED", "FAILED", "CANCELLED", "CANCELLED" },
    "the jobs after the failure never started")
  tap.is(by.ff_3 and by.ff_3.termination_reason, "fail_fast", "and say why")
  local code2 = h.sh(dir, "jobrun run s.lua --fail-fast --run-id Y")
  tap.is(code2, 1, "--fail-fast is the long form")
  tap.is(h.jobs_by_name((h.state(dir))).ff_4.status, "CANCELLED", "the same")
  -- Without it, all four run (the suite has no fail_fast).
  h.sh(dir, "jobrun run s.lua --run-id Z")
  tap.is(h.jobs_by_name((h.state(dir))).ff_4.status, "SUCCEEDED", "without -x every job runs")

  -- rerun -x: the run's other failures from before do not stop it; a new one does.
  local rcode, rout = h.sh(dir, "jobrun rerun Z --all -x --json")
  tap.is(rcode, 1, "rerun exits 1")
  local rby = h.jobs_by_name(json.decode(rout) or { jobs = {} })
  tap.is({ rby.ff_1 and rby.ff_1.status, rby.ff_2 and rby.ff_2.status, rby.ff_3 and rby.ff_3.status },
    { "SUCCEEDED", "FAILED", "CANCELLED" }, "rerun -x: nothing starts after the new failure")
end)

h.test_in(tap, "--only '!GLOB' on check, rerun and kill", function(dir)
  h.write(dir .. "/s.lua", SUITE)
  h.sh(dir, "jobrun run s.lua --only '!ff_2' --run-id N")
  local data = h.state(dir)
  local names = {}
  for i, j in ipairs(data.jobs) do names[i] = j.name end
  tap.is(names, { "ff_1", "ff_3", "ff_4" }, "run --only '!ff_2': every job but ff_2")
  local _, out = h.sh(dir, "jobrun check N --only '!ff_1' --only '!ff_4' --json")
  local shown = {}
  for i, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do shown[i] = j.name end
  tap.is(shown, { "ff_3" }, "check --only '!a' --only '!b': the others")
  local _, rout, rerr = h.sh(dir, "jobrun rerun N --only '!ff_[13]'")
  tap.like(rerr, "rerun of 1 job of run N", "rerun --only '!…': the one left (and '1 job')")
  tap.like(rout, "ff_4", "it ran")

  h.write(dir .. "/k.lua", [[suite "k" { matrix = { x = { 1, 2, 3 } }, run = "sleep 30", max_parallel = 3 }]])
  tap.is(h.sh(dir, "jobrun launch k.lua --run-id K"), 0, "launched")
  local _, kout = h.sh(dir, "jobrun kill K --only '!k_1' --only '!k_2'")
  tap.like(kout, "k_3: ✓ Killed", "kill --only '!…' kills the others")
  tap.ok(not kout:find("k_1", 1, true) and not kout:find("k_2", 1, true), "and not the negated ones")
  h.sh(dir, "jobrun kill K")
end)

h.test_in(tap, "kill: a job that never started is withdrawn, not killed", function(dir)
  h.write(dir .. "/k.lua", [[suite "k" { matrix = { x = { 1, 2, 3 } }, run = "sleep 30", max_parallel = 1 }]])
  tap.is(h.sh(dir, "jobrun launch k.lua --run-id W"), 0, "launched, one at a time")
  tap.ok(h.eventually(function() return h.sh(dir, "jobrun check W | grep -q 'k_1 *RUNNING'") == 0 end, 10),
    "the first started")
  local code, out = h.sh(dir, "jobrun kill W")
  tap.is(code, 0, "kill exits 0")
  tap.like(out, "k_1: ✓ Killed\n", "the running job: killed")
  tap.like(out, "k_2: ✓ Withdrawn %(never started%)\n", "a job that never started: withdrawn")
  tap.like(out, "Killed: 1 · Withdrawn %(never started%): 2 · Already completed: 0", "the summary counts both")
  local _, jout = h.sh(dir, "jobrun kill W --json")
  tap.ok(jout:find('"result": "already completed"', 1, true), "--json after the fact: already completed")
end)

h.test_in(tap, "--durations N, 1 job, reports echoed", function(dir)
  h.write(dir .. "/s.lua",
    [[suite "d" { matrix = { t = { "0.1", "2", "1" } }, run = "sleep {t}", max_parallel = 3 }]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id D --durations 2 --junit j.xml --summary s.md --html p.html")
  tap.is(code, 0, "exit 0")
  local section = out:match("\nSlowest 2 jobs:\n(.-)\n\n") or out:match("\nSlowest 2 jobs:\n(.*)$") or ""
  local order = {}
  for name in section:gmatch("(d_[%d.]+)") do order[#order + 1] = name end
  tap.is(order, { "d_2", "d_1" }, "the two slowest, slowest first", out)
  -- Each duration is the job's own: at least its sleep (a slot's clock read on another CPU than
  -- the job's once made `sleep 0.1` last 0.003 s, and `sleep 1` 0.001 s).
  local short = {}
  for _, job in ipairs(h.state(dir).jobs) do
    if not (job.duration_s and job.duration_s >= tonumber(job.params.t)) then short[#short + 1] = job.name end
  end
  tap.is(short, {}, "every duration at least the job's sleep")
  tap.ok(out:find("Verdict:.-Slowest 2 jobs:"), "after the table")
  tap.like(out, "JUnit report: j.xml\n", "--junit echoed")
  tap.like(out, "Summary: s.md\n", "--summary echoed")
  tap.like(out, "HTML report: p.html\n", "--html echoed")
  local c2, _, e2 = h.sh(dir, "jobrun check D --durations x")
  tap.is(c2, 2, "--durations x: usage error")
  tap.like(e2, "%-%-durations must be a whole number", "says so")
  local _, all = h.sh(dir, "jobrun check D --durations 0")
  tap.like(all, "Durations, slowest first:", "0: every job")

  h.write(dir .. "/one.lua", [[suite "one" { run = "false" }]])
  local _, oout, oerr = h.sh(dir, "jobrun run one.lua --run-id O")
  tap.like(oerr, "run O: 1 job of suite one", "the header says 1 job")
  tap.like(oout, "=== Failures: 1 of 1 job ===", "the failures block too")
  tap.ok(not (oout .. oerr):find("1 jobs", 1, true), "never '1 jobs'")
end)

return tap.done()
