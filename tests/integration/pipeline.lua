-- Pipelines (SPEC §3 "Several suites in one file"): per-cell settings in include entries,
-- several suites in one run, needs, outputs, SKIPPED, rerun of a failed need and its dependents.
local tap = require "tap"
local h = require "helpers"
local json = require "jobrun.base.json"

tap.test("include entries set a cell's expect and timeout; other keys stay parameters", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "cells" {
  matrix = { model = { "small", "big", "slow" } },
  include = {
    { model = "big", expect = { status = "FAILED", exit_code = 3 }, size = "7b" },
    { model = "slow", timeout = "1s", expect = { status = "TIMEOUT" } },
    { model = "small", expct = 1 },
  },
  run = "case {model} in big) exit 3;; slow) sleep 30;; esac; echo ok",
}
]])
  local pc, pout, perr = h.sh(dir, "jobrun plan s.lua --json")
  tap.is(pc, 0, "plan exits 0")
  local doc = json.decode(pout)
  local by = {}
  for _, j in ipairs(doc and doc.jobs or {}) do by[j.name] = j end
  tap.is(by.cells_big_7b and by.cells_big_7b.expect, { status = "FAILED", exit_code = 3 }, "big carries its own expect")
  tap.is(by.cells_big_7b and by.cells_big_7b.params, { model = "big", size = "7b" }, "expect is no parameter; size is")
  tap.is(by.cells_slow and by.cells_slow.timeout, 1, "slow carries its own timeout")
  tap.is(by.cells_small_1 and by.cells_small_1.expect, json.null, "small keeps the suite's (none)")
  tap.like(perr, "s%.lua:1: suite \"cells\": include entry 3: 'expct' is taken as a parameter; did you mean "
    .. "the job field 'expect'%?", "a misspelt job field is warned of, with file:line")
  local code, out = h.sh(dir, "jobrun run s.lua --run-id r1")
  tap.is(code, 0, "every cell passes by its own expectation: " .. out)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.cells_slow.status, "TIMEOUT", "the 1s timeout of the slow cell applied")
  tap.is(jobs.cells_big_7b.verdict, "pass", "the FAILED cell passes by its own expect")
end)

tap.test("a bad value in an include cell is an error at file:line", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[

suite "cells" {
  matrix = { model = { "small" } },
  include = { { model = "small", timeout = "soon" } },
  run = "true",
}
]])
  local code, _, err = h.sh(dir, "jobrun plan s.lua")
  tap.is(code, 2, "exit 2")
  tap.like(err, "s%.lua:2: .*include entry 1.*timeout", "names file:line, the entry and the key")
end)

-- The trainer stand-in writes a checkpoint line; FAIL_BIG makes the big training fail with a
-- CUDA OOM until the "fix" (removing the file) is made.
local PIPELINE = [[
parser "ckpt" { contains = "checkpoint:", pattern = "checkpoint: (.*)", field = "checkpoint_uri" }

suite "train" {
  matrix = { size = { "small", "big" } },
  run = "echo training {size}; if [ {size} = big ] && [ -e fail_big ]; then "
     .. "echo 'RuntimeError: CUDA out of memory. Tried to allocate 2 GiB'; exit 1; fi; "
     .. "echo checkpoint: \"file://$PWD/ckpt/{size} v1\"",
}

suite "evaluate" {
  needs = { "train/train_small" },
  env = { CKPT = "{needs.train.train_small.fields.checkpoint_uri}" },
  run = "echo \"env=$CKPT\"; echo arg={needs.train.train_small.fields.checkpoint_uri}; "
     .. "printf '%s\\n' {needs.train.train_small.fields.checkpoint_uri} > seen_arg",
}

suite "publish" {
  needs = { "train" },
  run = "echo publishing {needs.train.train_big.fields.checkpoint_uri}",
}
]]

tap.test("three suites: a passing need, a failing need (SKIPPED), outputs, rerun of the failed and its dependents",
function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", PIPELINE)
  h.write(dir .. "/fail_big", "")
  local code, out, err = h.sh(dir, "jobrun run p.lua --run-id r1")
  tap.is(code, 1, "a failed job fails the run")
  tap.like(err, "4 jobs of suites train, evaluate, publish on local", "one run of all three suites: " .. err)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.train_small.status, "SUCCEEDED", "the needed training ran")
  tap.is(jobs.train_big.termination_reason, "cuda_oom", "the big training failed (cuda_oom)")
  tap.is(jobs.evaluate.status, "SUCCEEDED", "the evaluation ran after the job it needs")
  local ckpt = "file://" .. dir .. "/ckpt/small v1"
  tap.is(h.sh(dir, "cat seen_arg") and require("jobrun.c.fs").read(dir .. "/seen_arg"), ckpt .. "\n",
    "the field reached the command as one word, spaces and all")
  local log = require("jobrun.c.fs").read(dir .. "/" .. jobs.evaluate.log_path)
  tap.like(log, "env=" .. ckpt:gsub("%p", "%%%0"), "and the environment")
  tap.is(jobs.publish.status, "SKIPPED", "the job needing the failed training is SKIPPED")
  tap.is(jobs.publish.verdict, "fail", "SKIPPED fails unless expected")
  tap.is(jobs.publish.mismatches, { "needs train/train_big, which failed (cuda_oom)" }, "the reason in words")
  tap.is(jobs.publish.native_id, nil, "it never started")
  tap.like(out, "publish%s+SKIPPED", "the table shows SKIPPED")
  tap.like(out, "needs train/train_big, which failed %(cuda_oom%)", "the failures say why")
  local _, lout, lerr = h.sh(dir, "jobrun logs r1 publish")
  tap.like(lout .. lerr, "never launched %(SKIPPED%): needs train/train_big", "logs says why there is no log")

  -- The fix; rerun runs the failed job and what needs it, nothing else.
  os.remove(dir .. "/fail_big")
  local before_small = jobs.train_small.ended_at
  local rc, rout = h.sh(dir, "jobrun rerun r1")
  tap.is(rc, 0, "after the fix, the rerun passes: " .. rout)
  local after = h.jobs_by_name(h.state(dir))
  tap.is(after.train_big.attempt, 2, "the failed training ran again")
  tap.is(after.publish.attempt, 2, "and its dependent")
  tap.is(after.publish.status, "SUCCEEDED", "which passed")
  tap.like(require("jobrun.c.fs").read(dir .. "/" .. after.publish.log_path), "publishing file://.*/ckpt/big v1",
    "with the new attempt's output")
  tap.is(after.train_small.ended_at, before_small, "the passed training was not run again")
  tap.is(after.train_small.attempts, nil, "(no second attempt)")
  tap.is(after.evaluate.attempts, nil, "nor the evaluation that needs only it")
end)

tap.test("independent suites run at once, each within its own max_parallel and fail_fast", function()
  local dir = h.scratch()
  -- Each job notes when it starts and ends (ms); "serial" allows one at a time.
  h.write(dir .. "/p.lua", [[
local note = "echo {name} $(date +%s%3N) >> starts; sleep 0.6; echo {name} $(date +%s%3N) >> ends"
suite "serial" { matrix = { n = { 1, 2, 3 } }, max_parallel = 1, run = note }
suite "wide" { matrix = { n = { 1, 2, 3 } }, run = note }
suite "ff" { matrix = { n = { 1, 2, 3 } }, max_parallel = 1, fail_fast = true, run = "exit 1" }
]])
  local code = h.sh(dir, "jobrun run p.lua --run-id mp")
  tap.is(code, 1, "exit 1 (ff fails)")
  local fs = require "jobrun.c.fs"
  local function times(file)
    local t = {}
    for name, ms in (fs.read(dir .. "/" .. file) or ""):gmatch("(%S+) (%d+)") do t[name] = tonumber(ms) end
    return t
  end
  local starts, ends = times("starts"), times("ends")
  local overlap = false
  for a = 1, 3 do
    for b = 1, 3 do
      local x, y = "serial_" .. a, "serial_" .. b
      if a ~= b and starts[x] and starts[y] and starts[x] < starts[y] and starts[y] < ends[x] then overlap = true end
    end
  end
  tap.ok(starts.serial_3 and not overlap, "serial ran one job at a time")
  tap.ok(starts.wide_3 and starts.wide_3 < ends.wide_1 and starts.wide_1 < ends.serial_1,
    "wide ran its jobs together, alongside serial")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.ff_1.status, jobs.ff_2.status, jobs.ff_3.status }, { "FAILED", "CANCELLED", "CANCELLED" },
    "ff's fail_fast stopped ff only")
  tap.is(jobs.ff_2.termination_reason, "fail_fast", "saying why")
end)

tap.test("launch, wait and diff on a run of several suites", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", PIPELINE)
  h.write(dir .. "/fail_big", "")
  local lc, lout = h.sh(dir, "jobrun launch p.lua --run-id w1")
  tap.is(lc, 0, "launch returns")
  tap.like(lout, "waiting for the jobs they need", "launch says some jobs wait for their needs")
  local wc, wout = h.sh(dir, "jobrun wait w1")
  tap.is(wc, 1, "wait: exit 1")
  tap.like(wout, "publish +SKIPPED", "the detached driver skipped the dependent of the failure")
  os.remove(dir .. "/fail_big")
  tap.is(select(1, h.sh(dir, "jobrun run p.lua --run-id w2")), 0, "after the fix, a new run passes")
  local dc, dout = h.sh(dir, "jobrun diff w1 w2")
  tap.is(dc, 0, "diff: no regression")
  tap.like(dout, "publish +fixed +SKIPPED · skipped · fail +SUCCEEDED", "diff shows the skipped job fixed")
end)

tap.test("--suite picks a suite with what it needs; an expected SKIPPED passes", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", PIPELINE .. [[
suite "announce" {
  needs = { "publish" },
  expect = { status = "SKIPPED" },
  run = "echo never",
}
]])
  h.write(dir .. "/fail_big", "")
  local _, out = h.sh(dir, "jobrun plan p.lua --suite publish")
  tap.like(out, "train_small", "the needed suite comes along")
  tap.ok(not out:find("evaluate", 1, true), "what it does not need stays out")
  local code = h.sh(dir, "jobrun run p.lua --suite announce --run-id r2")
  tap.is(code, 1, "exit 1 (the training failed)")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.announce.status, "SKIPPED", "skipped in turn")
  tap.is(jobs.announce.verdict, "pass", "expect = { status = \"SKIPPED\" } passes")
  tap.is(jobs.announce.fields.skipped, "needs publish/publish, which was skipped", "the reason names the skipped need")
  tap.is(jobs.evaluate, nil, "evaluate was not chosen")
  local c2, _, e2 = h.sh(dir, "jobrun plan p.lua --suite pubish")
  tap.is(c2, 2, "an unknown --suite: exit 2")
  tap.like(e2, "%-%-suite pubish: p%.lua declares no suite 'pubish' %(did you mean 'publish'%?%)", "with a hint")
end)

tap.test("outputs in a condition's args, in an argv command", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", [[
parser "uri" { contains = "uri=", pattern = "uri=(%S+)", field = "uri" }
condition "with_uri" { args = { "--policy={needs.a.fields.uri}", "--plain" } }
suite "a" { run = "echo uri=s3://bucket/it" }
suite "b" {
  needs = { "a" },
  matrix = { condition = { "with_uri" } },
  run = { "printf", "[%s]\\n", "{args}", "{needs.a.fields.uri}" },
}
suite "c" { needs = { "a" }, matrix = { condition = { "with_uri" } }, run = "printf '[%s]\\n' {args}" }
]])
  local code, out = h.sh(dir, "jobrun run p.lua --run-id o1")
  tap.is(code, 0, "passes: " .. out)
  local jobs = h.jobs_by_name(h.state(dir))
  local fs = require "jobrun.c.fs"
  tap.is(fs.read(dir .. "/" .. jobs.b_with_uri.log_path), "[--policy=s3://bucket/it]\n[--plain]\n[s3://bucket/it]\n",
    "argv: each element filled, as one word")
  tap.is(fs.read(dir .. "/" .. jobs.c_with_uri.log_path), "[--policy=s3://bucket/it]\n[--plain]\n",
    "a shell string: the args filled")
end)

tap.test("an output passed to a variable named like a secret is redacted in state.json", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", [[
parser "tok" { contains = "token=", pattern = "token=(%S+)", field = "token" }
suite "a" { run = "echo token=s3cr3t-value" }
suite "b" { needs = { "a" }, env = { API_TOKEN = "{needs.a.fields.token}" }, run = "echo got ${#API_TOKEN} chars" }
]])
  tap.is(select(1, h.sh(dir, "jobrun run p.lua --run-id s1")), 0, "passes")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(require("jobrun.c.fs").read(dir .. "/" .. jobs.b.log_path), "got 12 chars\n", "the job got the value")
  tap.is(jobs.b.spec.env.API_TOKEN, "<redacted>", "state.json does not keep it")
end)

tap.test("a missing output fails the dependent before launch, naming the field and the job", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", [[
suite "a" { run = "echo nothing to say" }
suite "b" { needs = { "a" }, run = "touch ran; echo {needs.a.fields.checkpoint_uri}" }
]])
  local code = h.sh(dir, "jobrun run p.lua --run-id r3")
  tap.is(code, 1, "exit 1")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.b.status, "LAUNCH_FAILED", "the dependent did not launch")
  tap.is(jobs.b.mismatches, { "{needs.a.fields.checkpoint_uri}: job a/a set no field 'checkpoint_uri'" },
    "the reason names the field and the job")
  tap.ok(not require("jobrun.c.fs").stat(dir .. "/ran"), "no command ran with an empty value")
end)

tap.test("cycles, needs that name nothing and needs on another file are refused at file:line", function()
  local dir = h.scratch()
  local function refused(text, pattern, what)
    h.write(dir .. "/bad.lua", text)
    local code, _, err = h.sh(dir, "jobrun plan bad.lua")
    tap.is(code, 2, what .. ": exit 2")
    tap.like(err, pattern, what .. ": " .. err)
  end
  refused('suite "a" { needs = { "c" }, run = "x" }\nsuite "b" { needs = { "a" }, run = "x" }\n'
    .. 'suite "c" { needs = { "b" }, run = "x" }\n',
    "^jobrun: bad%.lua:%d: suite \"%a\": needs make a cycle: (%a) → %a → %a → %1", "a cycle")
  refused('suite "a" { needs = { "a" }, run = "x" }\n', "bad%.lua:1: suite \"a\": needs make a cycle: a → a", "self")
  refused('suite "a" { run = "x" }\n\nsuite "b" { needs = { "a/nope*" }, run = "x" }\n',
    "bad%.lua:3: suite \"b\": needs 'a/nope%*', which names no job of suite \"a\"", "a glob that matches nothing")
  refused('suite "a" { run = "x" }\nsuite "b" { needs = { "trian" }, run = "x" }\n',
    "bad%.lua:2: suite \"b\": needs 'trian', but this file declares no suite 'trian'", "an unknown suite")
  refused('suite "a" { run = "x" }\nsuite "b" { needs = { "other.lua/a" }, run = "x" }\n',
    "bad%.lua:2: suite \"b\": needs 'other.lua/a', but this file declares no suite 'other.lua'", "another file")
  refused('suite "a" { name = "same", run = "x" }\nsuite "b" { name = "same", run = "x" }\n',
    "bad%.lua:2: suite \"b\": job name 'same' is also a job of suite \"a\"", "a job name in two suites")
  refused('suite "a" { run = "x" }\nsuite "b" { needs = { "a" }, run = "echo {needs.a.fields.x}" }\n'
    .. 'suite "c" { run = "echo {needs.a.fields.x}" }\n',
    "bad%.lua:3: placeholder {needs.a.fields.x} in job 'c': job 'a' is not among what suite \"c\" needs",
    "an output of a job not needed")
end)

tap.test("killing the run while dependents wait cancels them (CANCELLED, not SKIPPED)", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", [[
suite "slow" { run = "touch started; sleep 30" }
suite "after" { needs = { "slow" }, run = "echo never" }
]])
  local p = h.spawn(dir, { "run", "p.lua", "--run-id", "k1" })
  h.eventually(function() return require("jobrun.c.fs").stat(dir .. "/started") end, 10)
  local code = h.sh(dir, "jobrun kill k1")
  tap.is(code, 0, "kill exits 0")
  p:wait(true)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.slow.status, "CANCELLED", "the running job was cancelled")
  tap.is(jobs.after.status, "CANCELLED", "the waiting dependent is CANCELLED, not SKIPPED")
end)

tap.test("help suite documents per-cell settings and needs", function()
  local _, out = h.sh(h.scratch(), "jobrun help suite")
  tap.like(out, "in an include entry, the keys that are job fields %(expect, timeout, env, nodes,", "per-cell settings")
  tap.like(out, "needs =", "needs")
end)

tap.test("reports of a run of several suites: a table per suite, --grid per suite, the needs graph", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", PIPELINE)
  h.write(dir .. "/fail_big", "")
  h.sh(dir, "jobrun run p.lua --run-id g1")
  local _, out = h.sh(dir, "jobrun check g1 --grid --html report.html --summary summary.md")
  tap.like(out, "Suite train · backend local · 1 of 2 passed\nJob +Status.-size\ntrain_small.-\ntrain_big",
    "the train suite's table, its axis as a column")
  tap.like(out, "Suite publish · backend local · needs train · 0 of 1 passed\nJob +Status[^\n]*\npublish +SKIPPED",
    "the publish suite's table, saying what it needs")
  tap.like(out, "Suite train\nGrid: size", "a grid for the suite with a matrix")
  tap.like(out, "✗ publish\n +%- needs train/train_big, which failed %(cuda_oom%)",
    "the failures say why it was skipped")
  local page = require("jobrun.c.fs").read(dir .. "/report.html") or ""
  local boxes = {}
  for name in page:gmatch('<g class="suite" data%-suite="([^"]+)"') do boxes[#boxes + 1] = name end
  tap.is(boxes, { "train", "evaluate", "publish" }, "the HTML page draws a box per suite")
  tap.like(page, "local · 0/1 passed · 1 skipped", "with its counts")
  tap.like(page, "<h3>Suite train</h3>\n<p class=\"meta\">[^<]*size", "the HTML grid is the train suite's")
  local arrows = {}
  for t in page:gmatch('<path class="edge"[^>]*><title>([^<]+)</title>') do arrows[#arrows + 1] = t end
  tap.is(arrows, { "evaluate needs train/train_small", "publish needs train" }, "and an arrow per need")
  tap.like(require("jobrun.c.fs").read(dir .. "/summary.md") or "", "needs train/train_big, which failed",
    "the Markdown summary says why too")
end)

tap.test("examples/pipeline.lua: needs, outputs, a skipped dependent, a rerun", function()
  local dir = h.scratch()
  local example = os.getenv("JOBRUN_TOP") .. "/examples/pipeline.lua"
  local env = "export TMPDIR=" .. h.q(dir) .. " && "
  local code, out = h.sh(dir, env .. "jobrun run " .. h.q(example) .. " --run-id ex")
  tap.is(code, 1, "the first run fails")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.train_flaky.termination_reason, jobs.report.status, jobs.evaluate.status },
    { "cuda_oom", "SKIPPED", "SUCCEEDED" }, "flaky runs out of memory; report is skipped; evaluate runs")
  tap.like(out, "needs train/train_flaky, which failed %(cuda_oom%)", "the report says why")
  local log = require("jobrun.c.fs").read(dir .. "/" .. jobs.evaluate.log_path) or ""
  tap.like(log, "evaluating file://.-/train_arena%.ex/model%.pt\npolicy_uri=file://.-/model%.pt",
    "the arena checkpoint reached the evaluation")
  local rc, _, rerr = h.sh(dir, env .. "jobrun rerun ex")
  tap.is(rc, 0, "the rerun passes")
  tap.like(rerr, "rerun of 2 jobs", "two jobs ran again")
  local after = h.jobs_by_name(h.state(dir))
  tap.is({ after.train_flaky.attempt, after.report.attempt, after.train_arena.attempts, after.ci_lint.attempts },
    { 2, 2, nil, nil }, "the failed training and its dependent, nothing else")
end)

return tap.done()
