-- jobrun script (README "Scripts: jobs driven from Lua"): a Lua program that drives jobs itself
-- through require "jobrun", in one run that list, check, logs and kill know; resume reuses the
-- jobs that passed.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"

local function scratch(name, fn) h.test_in(tap, name, fn) end

local top = os.getenv("JOBRUN_TOP")

scratch("submit, done, result and logs", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local a = jobrun.job { name = "a", run = "echo hello; sleep 0.2; echo world", timeout = "10s" }
assert(a:submit() == a)
while not a:done() do jobrun.sleep(0.05) end
local r = a:result()
print("result", r.name, r.status, r.verdict, r.exit_code)
print("logs", (a:logs():gsub("\n", "|")))
print("args", arg[1], arg[2], #arg)
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua one --two")
  tap.is(code, 0, "the script passes", err)
  tap.like(out, "result\ta\tSUCCEEDED\tpass\t0", "the §4 result")
  tap.like(out, "logs\thello|world|", "the job's log")
  tap.like(out, "args\tone\t%-%-two\t2", "arg holds what follows the file, options included")
end)

scratch("wait streams the log; several at once carry their names", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local one = jobrun.job { name = "one", run = "echo solo-line" }
local r = one:wait { stream = true }
print("verdict", r.verdict)
local b = jobrun.job { name = "b", run = "for i in 1 2; do echo b$i; sleep 0.1; done" }
local c = jobrun.job { name = "c", run = "for i in 1 2; do echo c$i; sleep 0.1; done; exit 3",
                       expect = { exit_code = 3 } }
local rs = jobrun.all({ b, c }, { stream = true })
print("all", rs[1].verdict, rs[2].verdict, rs[2].exit_code)
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 0, "passes (c's exit 3 was expected)", err)
  tap.ok(out:find("^solo%-line\nverdict") ~= nil, "one job streams without a prefix, before its result", out)
  for _, line in ipairs({ "[b] b1", "[b] b2", "[c] c1", "[c] c2" }) do
    tap.ok(out:find("\n" .. line .. "\n", 1, true) ~= nil, "prefixed: " .. line, out)
  end
  tap.like(out, "all\tpass\tpass\t3", "both results")
end)

scratch("jobrun.all runs functions as coroutines beside the jobs", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local t0 = os.time()
local out = jobrun.all {
  function() local j = jobrun.job { name = "x", run = "sleep 1" }; return j:wait().verdict end,
  function() local j = jobrun.job { name = "y", run = "sleep 1" }; return j:wait().verdict end,
  function() jobrun.sleep(0.5); return "slept" end,
}
print("out", out[1], out[2], out[3], os.time() - t0 < 3)
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 0, "passes", err)
  tap.like(out, "out\tpass\tpass\tslept\ttrue", "all three, at once")
end)

scratch("a suite as one step joins the script's run; list, check, logs", function(dir)
  h.write(dir .. "/suite.lua", [[
suite "mini" { matrix = { n = { 1, 2 } }, run = "echo mini-{n}" }
]])
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local pre = jobrun.job { name = "pre", run = "true" }
if pre:wait().verdict == "pass" then
  local s = jobrun.suite("suite.lua", { set = { n = "1,2,3" } })
  s:launch()
  local rs = s:wait()
  print("suite", #rs, rs[1].name, rs[3].verdict, #s:results())
end
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 0, "passes", err)
  tap.like(out, "suite\t3\tmini_1\tpass\t3", "the suite's results")
  local data, id = h.state(dir)
  tap.is(#data.jobs, 4, "one run: the script's job and the suite's three")
  tap.like(id, "^s%-", "named after the script")
  local _, list = h.sh(dir, "jobrun list")
  tap.ok(list:find(id, 1, true) ~= nil, "jobrun list shows it", list)
  local c2, check = h.sh(dir, "jobrun check " .. id)
  tap.is(c2, 0, "jobrun check: all passed")
  tap.like(check, "mini_3", "check lists the suite's jobs")
  local _, logs = h.sh(dir, "jobrun logs " .. id .. " mini_2")
  tap.like(logs, "mini%-2", "jobrun logs reads a suite job's log")
end)

scratch("jobs outlive the script; jobrun kill stops them", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local j = jobrun.job { name = "long", run = "echo started; sleep 60" }
j:submit()
while not j:logs():find("started") do jobrun.sleep(0.05) end
print("submitted", j:done())
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 1, "the run has a job still pending: exit 1", err)
  tap.like(out, "submitted\tfalse", "submit returned at once")
  tap.like(err, "keep running %(jobrun wait s%-.- follows them, jobrun kill s%-.- stops them%)", "the script says so")
  local c2, killed = h.sh(dir, "jobrun kill")
  tap.is(c2, 0, "jobrun kill", killed)
  tap.like(killed, "long", "the job is named")
  tap.ok(h.eventually(function()
    local data = h.state(dir)
    return data.jobs[1].status == "CANCELLED"
  end, 10), "the job is cancelled")
end)

scratch("expectations: tables and functions; cancel; the git policy", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local f = jobrun.job { name = "f", run = "echo 'loss: nan'",
  expect = function(r) return r.exit_code == 0 and false, "the loss went NaN" end }
local t = jobrun.job { name = "t", run = "exit 4", expect = { exit_code = "nonzero" } }
local rs = jobrun.all { f, t }
print("f", rs[1].verdict, rs[1].mismatches[1])
print("t", rs[2].verdict)
local long = jobrun.job { name = "long", run = "sleep 60" }
long:submit()
print("cancel", long:cancel(), long:done(), long:result().status)
return 0
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 0, "the script's own exit code", err)
  tap.like(out, "f\tfail\tthe loss went NaN", "an expect function decides, with its words")
  tap.like(out, "t\tpass", "an expect table")
  tap.like(out, "cancel\tkilled\ttrue\tCANCELLED", "cancel ends a running job")
  h.write(dir .. "/g.lua", "local jobrun = require 'jobrun'\n"
    .. "jobrun.job { name = 'g', run = 'true', git = { require_clean = true } }:wait()\n")
  code, out, err = h.sh(dir, "jobrun script g.lua")
  tap.is(out, "", "nothing on stdout")
  tap.is(code, 2, "git policy outside a repository: exit 2")
  tap.like(err, "g%.lua:2: .*git", "at the job's line")
  code = h.sh(dir, "jobrun script --skip-git-check g.lua")
  tap.is(code, 0, "--skip-git-check")
end)

scratch("a job's name is unique in the run", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
jobrun.job { name = "same", run = "true" }
jobrun.job { name = "same", run = "false" }
]])
  local code, _, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 2, "exit 2")
  tap.like(err, "s%.lua:3: .*job name 'same' is already used", "names the line and the name")
end)

scratch("script errors name file:line and exit 2; os.exit is out of reach", function(dir)
  h.write(dir .. "/e.lua", "local x = 1\nerror('boom')\n")
  local code, _, err = h.sh(dir, "jobrun script e.lua")
  tap.is(code, 2, "error(): exit 2")
  tap.like(err, "e%.lua:2: boom", "at file:line")
  h.write(dir .. "/t.lua", "local x = 1\nerror({})\n")
  code, _, err = h.sh(dir, "jobrun script t.lua")
  tap.is(code, 2, "error({}): exit 2")
  tap.like(err, "t%.lua:2:", "at file:line too")
  h.write(dir .. "/o.lua", "\nos.exit(0)\n")
  code, _, err = h.sh(dir, "jobrun script o.lua")
  tap.is(code, 2, "os.exit: exit 2")
  tap.like(err, "o%.lua:2: os%.exit is not available", "refused at its line")
  h.write(dir .. "/k.lua", "local jobrun = require 'jobrun'\n\njobrun.job { name = 'k', run = 'true', bogus = 1 }\n")
  code, _, err = h.sh(dir, "jobrun script k.lua")
  tap.is(code, 2, "an unknown job field: exit 2")
  tap.like(err, "k%.lua:3:", "at the job's line")
  code, _, err = h.sh(dir, "jobrun script nosuch.lua")
  tap.is(code, 2, "a missing script: exit 2")
  tap.like(err, "cannot read script", "said")
end)

scratch("resume: only the job that did not pass runs again", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local function counted(name, extra)
  return jobrun.job { name = name, run = "echo x >> " .. name .. ".count; " .. (extra or "true") }
end
local rs = jobrun.all { counted("ok1"), counted("ok2"),
  counted("flaky", '[ -e marker ] || { : > marker; exit 1; }') }
for _, r in ipairs(rs) do print(r.name, r.verdict, r.attempt) end
]])
  local code, out = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 1, "the first run fails")
  tap.like(out, "flaky\tfail", "flaky failed")
  local _, first = h.state(dir)
  code, out = h.sh(dir, "jobrun script --resume s.lua")
  tap.is(code, 0, "the resumed run passes")
  tap.like(out, "ok1\tpass\t1", "ok1's recorded result")
  tap.like(out, "flaky\tpass\t2", "flaky's second attempt")
  tap.is(fs.read(dir .. "/ok1.count"), "x\n", "ok1 ran once")
  tap.is(fs.read(dir .. "/ok2.count"), "x\n", "ok2 ran once")
  tap.is(fs.read(dir .. "/flaky.count"), "x\nx\n", "flaky ran twice")
  local data, id = h.state(dir)
  tap.is(id, first, "the same run")
  local jobs = h.jobs_by_name(data)
  tap.is(#jobs.flaky.attempts, 1, "flaky keeps its first attempt")
  -- A changed spec runs again even though it passed.
  h.write(dir .. "/s.lua", (fs.read(dir .. "/s.lua"):gsub('"ok2"', '"ok2", "echo changed"')))
  code = h.sh(dir, "jobrun script --resume=" .. id .. " s.lua")
  tap.is(code, 0, "resume by run id")
  tap.is(fs.read(dir .. "/ok1.count"), "x\n", "ok1 still ran once")
  tap.is(fs.read(dir .. "/ok2.count"), "x\nx\n", "ok2, changed, ran again")
end)

scratch("--resume RUN FILE.lua resumes RUN; --resume FILE.lua ARGS resumes the latest", function(dir)
  -- j fails every time: each resume runs it again, as a new attempt in the run resumed.
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local r = jobrun.job { name = "j", run = "exit 1" }:wait()
print("ran", jobrun.run_id(), r.attempt, #arg, arg[1])
]])
  local _, out = h.sh(dir, "jobrun script s.lua")
  local first = out:match("ran\t(%S+)\t1\t0")
  _, out = h.sh(dir, "jobrun script s.lua")
  local second = out:match("ran\t(%S+)\t1\t0")
  tap.ok(first and second and first ~= second, "two runs of the script", out)
  local function pat(id) return (tostring(id):gsub("%p", "%%%0")) end
  local code, err
  code, out, err = h.sh(dir, "jobrun script --resume s.lua " .. h.q(first))
  tap.is(code, 1, "j fails again", err)
  tap.like(out, "ran\t" .. pat(second) .. "\t2\t1\t" .. pat(first),
    "--resume FILE.lua WORD: the latest run; WORD is the script's argument, not a run")
  code, out, err = h.sh(dir, "jobrun script --resume " .. h.q(first) .. " s.lua extra")
  tap.is(code, 1, "j fails again", err)
  tap.like(err, "resuming run " .. pat(first), "--resume RUN FILE.lua: that run")
  tap.like(out, "ran\t" .. pat(first) .. "\t2\t1\textra", "its second attempt; arg after the file")
  code, out, err = h.sh(dir, "jobrun script --resume " .. h.q(first) .. " --skip-git-check s.lua")
  tap.is(code, 1, "j fails again", err)
  tap.like(out, "ran\t" .. pat(first) .. "\t3\t0", "--resume RUN, then another option", err)
  -- A script file not named *.lua: an existing file is never taken for the run.
  h.write(dir .. "/plain", fs.read(dir .. "/s.lua"))
  _, out = h.sh(dir, "jobrun script plain")
  local plain = out:match("ran\t(%S+)\t1\t0")
  code, out, err = h.sh(dir, "jobrun script --resume plain word")
  tap.is(code, 1, "j fails again", err)
  tap.like(out, "ran\t" .. pat(plain) .. "\t2\t1\tword", "--resume FILE WORD: FILE is the script, its latest run")
  code, _, err = h.sh(dir, "jobrun script --resume nosuch s.lua")
  tap.is(code, 2, "an unknown run: exit 2")
  tap.like(err, "nosuch", "named")
  code, _, err = h.sh(dir, "jobrun script --resume " .. h.q(first))
  tap.is(code, 2, "--resume RUN without a file: exit 2")
  tap.like(err, "cannot read script", "the lone word is the file")
end)

scratch("examples/release.lua end to end, with a resume after a failure", function(dir)
  local cmd = "MARKER=" .. h.q(dir .. "/marker") .. " DATA_DIR=" .. h.q(dir .. "/data")
    .. " jobrun script " .. h.q(top .. "/examples/release.lua")
  local code, out, err = h.sh(dir, cmd)
  tap.is(code, 1, "the flaky recipe fails the first time", err)
  tap.like(out, "quickstart_2n_cmd_fails%s+SUCCEEDED%s+pass", "the quickstart matrix passed")
  tap.like(out, "recipe_flaky%s+FAILED", "the summary names the failure")
  local resume = cmd:gsub("jobrun script", "jobrun script --resume")
  code, out, err = h.sh(dir, "DATA_DIR=" .. h.q(dir .. "/data2") .. " " .. resume)
  tap.is(code, 0, "the resume passes", err)
  tap.like(out, "3/3 recipes passed", "summary")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.recipe_flaky.attempt, 2, "only the flaky recipe ran again")
  tap.is(jobs.recipe_arena.attempt, 1, "a passed recipe did not")
  tap.is(jobs.quickstart_1n_normal_completion.attempt, 1, "nor the matrix")
end)

scratch("resume refuses a job still running with another spec, before any job of its batch is added", function(dir)
  h.write(dir .. "/first.lua", [[
local jobrun = require "jobrun"
jobrun.job { name = "slow", run = "sleep 30" }:submit()
print("run", jobrun.run_id())
]])
  local code, out = h.sh(dir, "jobrun script first.lua")
  tap.is(code, 1, "the first script ends with slow still running (pending: exit 1)")
  local id = out:match("run\t(%S+)")
  h.write(dir .. "/second.lua", [[
local jobrun = require "jobrun"
local fresh = jobrun.job { name = "fresh", run = "true" }
local slow = jobrun.job { name = "slow", run = "sleep 31" }
jobrun.all { fresh, slow }
]])
  local resumed, _, err = h.sh(dir, "jobrun script --resume " .. h.q(id or "none") .. " second.lua")
  tap.is(resumed, 2, "the resume fails: slow has not ended, and its command changed")
  tap.like(err, "second%.lua:3: job 'slow' of run .* has not ended %(%u+%) and its spec has changed",
    "naming the job, at its line")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.fresh, nil, "fresh was not added to the run (it would have stayed pending)")
  h.sh(dir, "jobrun kill " .. h.q(id or "none"))
  tap.is((h.jobs_by_name(h.state(dir)).slow or {}).status, "CANCELLED", "killed")
end)

-- run_log(dir, key) -> the only run's log of job key so far.
local function run_log(dir, key)
  local runs = fs.list(dir .. "/.jobrun/runs") or {}
  return runs[1] and fs.read(dir .. "/.jobrun/runs/" .. runs[1] .. "/logs/" .. key .. ".log") or "", runs[1]
end

scratch("Ctrl-C says what keeps running; --resume waits for the job still running and uses its result", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local j = jobrun.job { name = "slow", run = "echo started $$; read x < gate; echo finished" }
local r = j:wait()
print("result", r.name, r.verdict, r.attempt)
]])
  -- The job holds on a FIFO until the test opens it: running for as long as the test needs.
  assert(os.execute("mkfifo " .. h.q(dir .. "/gate")))
  local script = h.spawn(dir, { "script", "s.lua" })
  tap.ok(h.eventually(function() return run_log(dir, "slow"):find("started") end), "the job started")
  local _, id = run_log(dir, "slow")
  -- (and the script has seen its pid: a Ctrl-C before that leaves state.json with the slot's pid
  -- or the pool's as its native id, which the resume then learns)
  local job_pid = run_log(dir, "slow"):match("started (%d+)")
  tap.ok(h.eventually(function()
    local ok, st = pcall(h.state, dir)
    local job = ok and h.jobs_by_name(st).slow or {}
    return job.status == "RUNNING" and job.native_id == job_pid
  end, 30), "state.json has it RUNNING, with its pid")
  script:kill("INT")
  local r = script:wait(true)
  script:close()
  tap.is(r.exit_code, 130, "Ctrl-C: exit 130")
  local said = fs.read(dir .. "/.bg.log") or ""
  local pid = (id or "?"):gsub("%p", "%%%0")
  tap.like(said, "interrupted: the script stopped; the 1 running job of run " .. pid .. " keeps running",
    "what keeps running")
  tap.like(said, "Resume waiting: jobrun wait " .. pid .. "\n  Cancel them:    jobrun kill " .. pid,
    "how to wait or kill")
  tap.like(said, "jobrun script %-%-resume " .. pid .. " s%.lua", "and how to resume the script")
  local before = h.jobs_by_name(h.state(dir)).slow or {}
  tap.is(before.status, "RUNNING", "the job was left running")
  local resume = h.spawn(dir, { "script", "--resume", "s.lua" })
  tap.ok(h.eventually(function() return (fs.read(dir .. "/.bg.log") or ""):find("waiting for it", 1, true) end),
    "the resume waits")
  h.sh(dir, "echo > gate")
  local rr = resume:wait(true)
  resume:close()
  local out = fs.read(dir .. "/.bg.log") or ""
  tap.is(rr.exit_code, 0, "the resume passes", out)
  tap.like(out, "slow is still running in run " .. pid .. " %(attempt 1%): waiting for it", "adopts it, and says so")
  tap.like(out, "result\tslow\tpass\t1", "its result is the running job's, attempt 1")
  local after = h.jobs_by_name(h.state(dir)).slow or {}
  tap.is({ after.native_id, after.attempts }, { before.native_id, nil }, "not started again")
  tap.like(run_log(dir, "slow"), "^started %d+\nfinished\n$", "one log, from one process")
end)

scratch("--resume after Ctrl-C: a job that ended meanwhile is judged, and run again if it failed", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local j = jobrun.job { name = "flaky", run = "echo started; test -e fixed || read x < gate; test -e fixed" }
local r = j:wait()
print("result", r.verdict, r.attempt)
]])
  assert(os.execute("mkfifo " .. h.q(dir .. "/gate")))
  local script = h.spawn(dir, { "script", "s.lua" })
  tap.ok(h.eventually(function() return run_log(dir, "flaky"):find("started") end), "the job started")
  script:kill("INT")
  tap.is(script:wait(true).exit_code, 130, "stopped")
  script:close()
  tap.is((h.jobs_by_name(h.state(dir)).flaky or {}).status, "RUNNING", "the record says RUNNING")
  h.sh(dir, "echo > gate")
  local _, id = run_log(dir, "flaky")
  tap.ok(h.eventually(function() return h.ended_record(dir .. "/.jobrun/runs/" .. id .. "/jobs", "flaky") end),
    "the job failed with no script watching")
  h.write(dir .. "/fixed", "")
  local code, out, err = h.sh(dir, "jobrun script --resume s.lua")
  tap.is(code, 0, "the resume passes", err)
  tap.ok(not err:find("still running", 1, true), "not taken for a running job", err)
  tap.like(out, "result\tpass\t2", "run again, as attempt 2")
  local job = h.jobs_by_name(h.state(dir)).flaky or {}
  tap.is(job.attempts and job.attempts[1].verdict, "fail", "attempt 1 kept, judged a failure")
end)

scratch("Ctrl-C reaches a script busy in its own Lua, whose pcall cannot swallow it; TERM too", function(dir)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local j = jobrun.job { name = "j", run = "echo started; sleep 30" }
j:submit()
while true do
  pcall(function() j:wait() end)
  pcall(function() local x = 0; for i = 1, 1e6 do x = x + i end end)
end
]])
  local cases = { { "INT", 130, "interrupted: the script stopped" }, { "TERM", 143, "SIGTERM: the script stopped" } }
  for _, case in ipairs(cases) do
    local script = h.spawn(dir, { "script", "s.lua" })
    tap.ok(h.eventually(function() return run_log(dir, "j"):find("started") end), case[1] .. ": the job started")
    script:kill(case[1])
    local r = script:wait(true)
    script:close()
    tap.is(r.exit_code, case[2], case[1] .. ": the script stops")
    tap.like(fs.read(dir .. "/.bg.log") or "", case[3], "and says so")
    local _, id = run_log(dir, "j")
    h.sh(dir, "jobrun kill " .. h.q(id or "none"))
    os.execute("rm -rf " .. h.q(dir .. "/.jobrun"))
  end
end)

scratch("a suite's fail_fast holds in a script: after the first failure the rest never start", function(dir)
  h.write(dir .. "/s.lua", [[
suite "ff" { matrix = { i = { 1, 2, 3 } }, run = "test {i} != 1", max_parallel = 1, fail_fast = true }
]])
  h.write(dir .. "/sc.lua", [[
local jobrun = require "jobrun"
local s = jobrun.suite "s.lua"
s:launch(); s:wait()
for _, r in ipairs(s:results()) do print(r.name, r.status, r.termination_reason) end
]])
  local code, out = h.sh(dir, "jobrun script sc.lua")
  tap.is(code, 1, "the run failed")
  tap.like(out, "ff_1\tFAILED\tnil\nff_2\tCANCELLED\tfail_fast\nff_3\tCANCELLED\tfail_fast\n",
    "the first failed; the two after it were never started, and say why")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.ff_1.native_id ~= nil, jobs.ff_2.native_id, jobs.ff_3.native_id }, { true, nil, nil },
    "ff_2 and ff_3 never went to the backend")
end)

scratch("each suite's parsers read its own jobs' logs, a job's the built-in ones", function(dir)
  -- All three logs hold both words; each suite declares a parser for one of them.
  h.write(dir .. "/a.lua", [[
parser "apples" { contains = "apple", pattern = "apple (%d+)", field = "apples", number = true }
suite "a" { run = "echo apple 1; echo pear 2" }
]])
  h.write(dir .. "/p.lua", [[
parser "pears" { contains = "pear", pattern = "pear (%d+)", field = "pears", number = true }
suite "p" { run = "echo apple 3; echo pear 4" }
]])
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local a, p = jobrun.suite "a.lua", jobrun.suite "p.lua"
local j = jobrun.job { name = "plain", run = "echo apple 5; echo pear 6" }
a:launch(); p:launch(); j:submit()
a:wait(); p:wait(); j:wait()
for _, r in ipairs({ a:results()[1], p:results()[1], j:result() }) do
  print(r.name, tostring(r.fields.apples), tostring(r.fields.pears))
end
]])
  local code, out, err = h.sh(dir, "jobrun script s.lua")
  tap.is(code, 0, "passes")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  tap.like(out, "^a\t1\tnil\n", "a's job: a's parser alone")
  tap.like(out, "\np\tnil\t4\n", "p's job: p's parser alone, though p was launched after a")
  tap.like(out, "\nplain\tnil\tnil\n", "a job of the script's own: the built-in parsers")
end)

scratch("--help", function(dir)
  local code, out = h.sh(dir, "jobrun script --help")
  tap.is(code, 0, "exit 0")
  tap.like(out, "Usage: jobrun script %[%-%-resume", "usage")
  tap.like(out, "jobrun%.all", "the API")
  local _, general = h.sh(dir, "jobrun help")
  tap.like(general, "\n  script ", "listed in jobrun help")
end)

return tap.done()
