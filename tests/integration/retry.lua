-- Retry policies on the local backend (issue #28): a preemption is retried and reads "pass
-- after 1 retry"; an exception is not; max is honoured; an unknown reason in `on` is an error at
-- file:line; and GPU-hours from the suite's gpus.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

local PREEMPT = "slurmstepd: error: *** STEP 4242.0 ON node3 CANCELLED AT 2026-12-07T06:10:05 DUE TO PREEMPTION ***"

local function suite(dir, retry_text, extra)
  h.write(dir .. "/s.lua", string.format([[
suite "r" {
  matrix = { kind = { "preempt_once", "bug", "preempt_always" } },
  nodes = 2,
  gpus = 2,
  run = [=[
case {kind} in
preempt_once) if [ "$JOBRUN_NODE_RANK" = 0 ]; then
    if [ -e ../seen_{kind} ]; then sleep 0.3; echo done; else touch ../seen_{kind}; echo '%s'; exit 1; fi
  else sleep 0.3; fi ;;
bug) echo 'Traceback (most recent call last):'; echo '  File "train.py", line 3, in <module>'
     echo 'ValueError: shapes (3,) and (4,) not aligned'; exit 1 ;;
preempt_always) [ "$JOBRUN_NODE_RANK" = 0 ] && echo '%s'; exit 1 ;;
esac
echo "$JOBRUN_ATTEMPT_MARK" > /dev/null]=],
  retry = %s,
  %s
}
]], PREEMPT, PREEMPT, retry_text, extra or ""))
end

local function by_name(doc)
  local out = {}
  for _, j in ipairs(doc and doc.jobs or {}) do out[j.name] = j end
  return out
end

h.test_in(tap, "infrastructure is retried, a program failure is not, max is honoured", function(dir)
  h.write(dir .. "/w/.keep", "")
  suite(dir, '{ on = { "infrastructure" }, max = 2 }')
  local code, out, err = h.sh(dir .. "/w",
    "timeout 120 " .. h.q(h.bin) .. " run ../s.lua --run-id A --json --summary sum.md --html out.html --junit out.xml")
  tap.is(code, 1, "the run fails: one job fails every time, one is a bug", err)
  local jobs = by_name(json.decode(out))
  local once, bug, always = jobs.r_preempt_once or {}, jobs.r_bug or {}, jobs.r_preempt_always or {}
  tap.is({ once.verdict, once.retries, once.attempt }, { "pass", 1, 2 }, "preempted once: passes on its 2nd attempt")
  tap.is(#(once.attempts or {}), 1, "the preempted attempt is kept")
  local first = (once.attempts or {})[1] or {}
  tap.is({ first.termination_reason, first.cause_class, first.retried },
    { "preempted", "infrastructure", "preempted on node3" }, "the kept attempt says why it was retried")
  tap.is(first.culprit and first.culprit.node, "node3", "its culprit: the node Slurm named")
  tap.is({ bug.verdict, bug.cause_class, bug.attempt }, { "fail", "program", 1 },
    "an exception is a program failure: never retried by an infrastructure policy")
  tap.ok(bug.retries == json.null and bug.attempts == nil, "no retries, no earlier attempts")
  tap.is({ always.verdict, always.retries, #(always.attempts or {}) }, { "fail", 2, 2 },
    "preempted every time: stops after max = 2 retries (3 attempts)")
  tap.like(err, "r_preempt_once: retrying %(preempted on node3%), retry 1 of 2", "says so on stderr")

  local _, table_out = h.sh(dir .. "/w", "jobrun check A")
  tap.like(table_out, "pass after 1 retry %(preempted on node3%)", "the table's verdict says it")
  tap.like(table_out, "fail after 2 retries", "and for the job that kept failing")
  tap.like(table_out, "culprit: rank 0 %(node node3%): preempted → exit 1", "the failure summary has the culprit line")
  tap.like(table_out, "cause class: program", "and the cause class")
  local md = require("jobrun.c.fs").read(dir .. "/w/sum.md") or ""
  tap.like(md, "`r_preempt_once`: pass after 1 retry \\%(preempted on node3\\%)", "Markdown says it")
  tap.like(md, "cause class: program", "Markdown: the cause class")
  local page = require("jobrun.c.fs").read(dir .. "/w/out.html") or ""
  tap.like(page, "pass after 1 retry %(preempted on node3%)", "HTML says it")
  tap.like(page, "GPU%-hours", "HTML: GPU-hours")
  local xml = require("jobrun.c.fs").read(dir .. "/w/out.xml") or ""
  tap.like(xml, '<property name="retries" value="pass after 1 retry %(preempted on node3%)"/>', "JUnit says it")
  tap.like(xml, '<property name="cause_class" value="program"/>', "JUnit: the cause class")

  -- GPU-hours: gpus = 2 per node × 2 nodes × each attempt's duration.
  tap.ok(type(once.gpu_hours) == "number" and once.gpu_hours > 0, "GPU-hours on the latest attempt", once.gpu_hours)
  local d = once.duration_s or 0
  tap.ok(math.abs((once.gpu_hours or 0) - 2 * 2 * d / 3600) < 1e-4, "= gpus × nodes × duration",
    string.format("%s vs %s", tostring(once.gpu_hours), tostring(2 * 2 * d / 3600)))
  tap.ok(type(first.gpu_hours) == "number", "each attempt keeps its own")
  tap.like(table_out, "GPU: [%d.]+ GPU%-hours, [%d.]+ of them on retries", "the total under the table")
end)

h.test_in(tap, "a named reason; max_total caps the run; an exception is not a preemption", function(dir)
  h.write(dir .. "/w/.keep", "")
  suite(dir, '{ on = { "preempted" }, max = 5, max_total = 1 }')
  local code, out, err = h.sh(dir .. "/w", "timeout 120 " .. h.q(h.bin) .. " run ../s.lua --json")
  tap.is(code, 1, "fails", err)
  local jobs = by_name(json.decode(out))
  local total = 0
  for _, j in pairs(jobs) do total = total + (math.tointeger(j.retries) or 0) end
  tap.is(total, 1, "max_total = 1: one retry in the whole run")
  tap.is((jobs.r_bug or {}).retries, json.null, "the exception was not retried")
end)

h.test_in(tap, "backoff: the new attempt waits", function(dir)
  h.write(dir .. "/s.lua", string.format([[
suite "r" {
  run = "if [ -e ../seen ]; then echo ok; else touch ../seen; echo '%s'; exit 1; fi",
  retry = { on = { "preempted" }, backoff = "2s" },
}
]], PREEMPT))
  h.write(dir .. "/w/.keep", "")
  local process = require "jobrun.c.process"
  local t0 = process.now()
  local code, out, err = h.sh(dir .. "/w", "timeout 120 " .. h.q(h.bin) .. " run ../s.lua --json")
  local took = process.now() - t0
  tap.is(code, 0, "passes after the retry", err)
  local job = (json.decode(out) or { jobs = {} }).jobs[1] or {}
  tap.is({ job.verdict, job.retries }, { "pass", 1 }, "one retry")
  tap.ok(took >= 2, "the run waited out the 2 s backoff", took)
end)

h.test_in(tap, "an include cell's retry policy is its own, not a parameter", function(dir)
  h.write(dir .. "/s.lua", [[
suite "r" {
  matrix = { kind = { "a", "b" } },
  include = { { kind = "b", retry = { on = { "program" }, max = 1 } } },
  run = "echo 'ValueError: no'; exit 1",
  retry = { on = { "infrastructure" } },
}
]])
  local code, out, err = h.sh(dir, "timeout 120 " .. h.q(h.bin) .. " run s.lua --json")
  tap.is(code, 1, "both fail", err)
  local jobs = by_name(json.decode(out))
  tap.is({ (jobs.r_a or {}).retries, (jobs.r_b or {}).retries }, { json.null, 1 },
    "the cell retries a program failure; the suite's policy does not")
  tap.is((jobs.r_b or {}).params, { kind = "b" }, "retry is no parameter")
  h.write(dir .. "/t.lua", [[
suite "r" {
  matrix = { kind = { "a" } },
  include = { { kind = "a", retry = { on = { "prempted" } } } },
  run = "true",
}
]])
  local _
  code, _, err = h.sh(dir, "jobrun plan t.lua")
  tap.is(code, 2, "a cell's unknown reason is an error")
  tap.like(err, "t%.lua:1: .*include retry.*'prempted'.*did you mean 'preempted'", "at the suite's line")
end)

h.test_in(tap, "an unknown reason in on is an error at file:line, with did you mean", function(dir)
  suite(dir, '{ on = { "preemted" } }')
  local code, _, err = h.sh(dir, "jobrun plan s.lua")
  tap.is(code, 2, "usage error")
  tap.like(err, "s%.lua:1: .*retry%.on names 'preemted'", "names the file and line")
  tap.like(err, "did you mean 'preempted'", "and the reason meant")
  h.write(dir .. "/c.lua", [[
condition "c" {
  retry = { on = { "infrastructur" } },
}
suite "r" { matrix = { condition = { "c" } }, run = "true" }
]])
  code, _, err = h.sh(dir, "jobrun plan c.lua")
  tap.is(code, 2, "a condition's too")
  tap.like(err, "c%.lua:1: condition \"c\": retry%.on names 'infrastructur'.*did you mean 'infrastructure'",
    "at its line")
  h.write(dir .. "/k.lua", [[
suite "r" { run = "true", retry = { on = { "preempted" }, maxx = 2 } }
]])
  code, _, err = h.sh(dir, "jobrun plan k.lua")
  tap.is(code, 2, "an unknown key")
  tap.like(err, "k%.lua:1: unknown key 'maxx'.*did you mean 'max'", "did you mean")
  h.write(dir .. "/l.lua", [[
suite "r" { run = "true", classes = { shm_exhausted = "infra" } }
]])
  code, _, err = h.sh(dir, "jobrun plan l.lua")
  tap.is(code, 2, "a class that is none")
  tap.like(err, "l%.lua:1: .*shm_exhausted = 'infra'.*did you mean 'infrastructure'", "did you mean")
end)

h.test_in(tap, "classes re-class a reason; a suite without retry never retries", function(dir)
  h.write(dir .. "/s.lua", [[
suite "r" {
  run = "echo 'RuntimeError: DataLoader worker (pid 7) is killed by signal: Bus error. It is possible that "
    .. "the workers are out of shared memory.'; exit 1",
  classes = { shm_exhausted = "infrastructure" },
}
]])
  local code, out = h.sh(dir, "timeout 120 " .. h.q(h.bin) .. " run s.lua --json")
  tap.is(code, 1, "fails")
  local job = (json.decode(out) or { jobs = {} }).jobs[1] or {}
  tap.is({ job.termination_reason, job.cause_class, job.retries, job.attempt }, { "shm_exhausted", "infrastructure",
    json.null, 1 }, "re-classed, and not retried without a policy")
end)

tap.done()
