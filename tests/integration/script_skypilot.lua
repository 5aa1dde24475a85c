-- jobrun script (README "Scripts: jobs driven from Lua") on the SkyPilot backend, against the
-- fake API server (tests/skypilot/fake_server.py, one per test on a free port): jobs submitted,
-- polled, streamed (their logs fetched from the server while they run), cancelled and waited for
-- from a Lua program, a suite as one step, the run seen by list, check and logs, and a resume.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local function fake(dir) return h.fake_skypilot(dir) end
local stop = h.stop_fake

local function get(f, path)
  local http = require("jobrun.c.http").client()
  local r = http:perform({ { method = "GET", url = f.url .. path } })[1]
  return json.decode(r.body or "") or {}
end

-- with_fake(name, fn(dir, f, sh)): a test with its own fake server; sh runs a command with
-- jobrun pointed at it.
local function with_fake(name, fn)
  h.test_in(tap, name, function(dir)
    local f = fake(dir)
    local ok, err = pcall(fn, dir, f, function(command)
      return h.sh(dir, "export SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(f.url) .. " && " .. command)
    end)
    stop(f)
    if not ok then error(err, 0) end
  end)
end

local function pat(s) return (tostring(s):gsub("%p", "%%%0")) end

with_fake("submit, done, result and logs; wait streams the log fetched while the job runs", function(dir, f, sh)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local a = jobrun.job { name = "a", backend = "skypilot", nodes = 2, run = "python train.py",
                       env = { FAKE_OUTCOME = "succeed" } }
assert(a:submit() == a)
print("submitted", a:result().status, a:result().native_id ~= nil)
while not a:done() do jobrun.sleep(0.1) end
local r = a:result()
print("result", r.name, r.status, r.verdict, r.backend)
print("logs", (a:logs():gsub("\n", "|")))
-- A long job (1000 ticks) that only a cancel ends: one coroutine waits on it, streaming; the
-- other reads its log until step 3 is there, then cancels it.
local long = jobrun.job { name = "long", backend = "skypilot", run = "python long.py",
                          env = { FAKE_OUTCOME = "long" } }
local out = jobrun.all {
  function() return long:wait({ stream = true }).status end,
  function()
    while not long:logs():find("step 3\27", 1, true) do jobrun.sleep(0.1) end
    print("seen step 3")
    return long:cancel()
  end,
}
print("long", out[1], out[2], long:done())
]])
  local code, out, err = sh("jobrun script s.lua")
  tap.is(code, 1, "the cancelled job fails the run", err)
  tap.like(out, "submitted\tPENDING\ttrue", "submit returned at once, the managed job's id known")
  tap.like(out, "result\ta\tSUCCEEDED\tpass\tskypilot", "the §4 result")
  local logs = out:match("logs\t([^\n]*)") or ""
  tap.like(logs, "%(head, rank=0, pid=%d+%) hello from a%-", "rank 0's line, fetched from the server")
  tap.like(logs, "%(worker1, rank=1, pid=%d+%) hello from a%-", "rank 1's")
  tap.ok(not logs:find("sky-payload", 1, true), "no payload lines")
  local streamed = out:find("%(task, pid=%d+%) \27%[36mstep 1\27%[0m\n")
  local seen = out:find("seen step 3\n", 1, true)
  tap.ok(streamed and seen and streamed < seen, "step 1 was streamed before the job's log showed step 3", out)
  tap.like(out, "long\tCANCELLED\tkilled\ttrue", "wait returned once the cancel ended the job")
  tap.like(out, "Job finished %(status: CANCELLED%)", "the end of the log streamed too")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is((jobs.long or {}).status, "CANCELLED", "recorded")
  local st = get(f, "/fake/stats").requests or {}
  tap.is(st["POST /jobs/launch"], 2, "one launch per job")
  tap.is(st["POST /jobs/cancel"], 1, "one cancel")
end)

with_fake("jobrun.all and a suite on SkyPilot; one queue request per poll; list, check, logs", function(dir, f, sh)
  h.write(dir .. "/suite.lua", [[
suite "sk" { backend = "skypilot", matrix = { outcome = { "succeed", "recover" } }, run = "python train.py",
             env = { FAKE_OUTCOME = "{outcome}" }, max_restarts = 2 }
]])
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local c = jobrun.job { name = "c", backend = "skypilot", run = "python c.py", env = { FAKE_OUTCOME = "fail" },
                       expect = { status = "FAILED" } }
local d = jobrun.job { name = "d", backend = "skypilot", run = "python d.py", env = { FAKE_OUTCOME = "succeed" } }
local rs = jobrun.all({ c, d }, { stream = true })
print("all", rs[1].verdict, rs[1].status, rs[1].fields.exception, rs[2].verdict)
if rs[1].verdict == "pass" and rs[2].verdict == "pass" then
  local s = jobrun.suite "suite.lua"
  local out = s:wait()
  print("suite", #out, out[1].name, out[1].verdict, out[2].name, out[2].verdict, out[2].restart_count)
end
]])
  local code, out, err = sh("JOBRUN_TRACE=trace.log jobrun script s.lua")
  tap.is(code, 0, "passes", err)
  tap.like(out, "\n%[c%] %(task, pid=%d+%) RuntimeError: boom\n", "c's log, prefixed")
  tap.like(out, "\n%[d%] %(task, pid=%d+%) hello from d%-", "d's, prefixed")
  tap.like(out, "all\tpass\tFAILED\tRuntimeError: boom\tpass", "c failed as expected (its traceback analysed)")
  tap.like(out, "suite\t2\tsk_succeed\tpass\tsk_recover\tpass\t1", "the suite's results, recovery counted")
  local data, id = h.state(dir)
  tap.is({ #data.jobs, data.backend }, { 4, "skypilot" }, "one run: the script's two jobs and the suite's two")
  local st = get(f, "/fake/stats").requests or {}
  tap.is(st["POST /jobs/launch"], 4, "one launch per job, none twice")
  local cycles = 0
  for _ in (fs.read(dir .. "/trace.log") or ""):gmatch("poll skypilot") do cycles = cycles + 1 end
  tap.ok(cycles >= 1, "polled")
  tap.is(st["POST /jobs/queue/v2"], cycles, string.format("one /jobs/queue/v2 per poll (%d), for all the jobs", cycles))
  local _, list = sh("jobrun list")
  tap.like(list, pat(id) .. "%s+s%s+skypilot%s.-%s4%s+4%s+0%s+0", "jobrun list: 4 jobs, 4 passed")
  local c2, check, cerr = sh("jobrun check " .. id)
  tap.is(c2, 0, "jobrun check: all passed", cerr)
  tap.like(check, "sk_recover%s+SUCCEEDED%s+1", "check lists the suite's jobs")
  local c3, logs = sh("jobrun logs " .. id .. " sk_recover")
  tap.is(c3, 0, "jobrun logs")
  tap.like(logs, "is recovering: relaunching the cluster", "the recovered job's log")
end)

with_fake("--resume RUN on SkyPilot: a job that succeeded is not launched again", function(dir, f, sh)
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local ok = jobrun.job { name = "ok", backend = "skypilot", run = "python ok.py", env = { FAKE_OUTCOME = "succeed" } }
local flaky = jobrun.job { name = "flaky", backend = "skypilot", run = "python flaky.py",
                           env = { FAKE_OUTCOME = arg[1] } }
for _, r in ipairs(jobrun.all { ok, flaky }) do print(r.name, r.status, r.verdict, r.attempt, r.native_id) end
]])
  local code, out, err = sh("jobrun script s.lua fail")
  tap.is(code, 1, "the first run fails", err)
  tap.like(out, "flaky\tFAILED\tfail\t1", "flaky failed")
  local ok_id = out:match("ok\tSUCCEEDED\tpass\t1\t(%d+)")
  tap.ok(ok_id ~= nil, "ok succeeded", out)
  local _, id = h.state(dir)
  code, out, err = sh("jobrun script --resume " .. id .. " s.lua succeed")
  tap.is(code, 0, "the resumed run passes", err)
  tap.like(err, "ok passed in run " .. pat(id) .. " %(attempt 1%): not run again", "ok is reused")
  tap.like(out, "ok\tSUCCEEDED\tpass\t1\t" .. pat(ok_id), "ok's recorded result, the same managed job")
  tap.like(out, "flaky\tSUCCEEDED\tpass\t2", "flaky's second attempt")
  local names = {}
  for _, t in ipairs(get(f, "/fake/tasks")) do
    local n = ((t.task or {}).envs or {}).JOBRUN_JOB_NAME or "?"
    names[n] = (names[n] or 0) + 1
  end
  tap.is({ names.ok, names.flaky }, { 1, 2 }, "ok launched once, flaky twice")
  local data, again = h.state(dir)
  tap.is(again, id, "the same run")
  tap.is(#((h.jobs_by_name(data).flaky or {}).attempts or {}), 1, "flaky keeps its first attempt")
end)

with_fake("a suite's max_parallel: its jobs held back, submitted as slots free up", function(dir, f, sh)
  h.write(dir .. "/mp.lua", [[
suite "mp" { backend = "skypilot", matrix = { outcome = { "long", "succeed", "recover" } }, run = "python mp.py",
             env = { FAKE_OUTCOME = "{outcome}" }, max_parallel = 1, name = "mp_{outcome}" }
]])
  -- mp_long runs until cancelled: while it runs, the other two must not have been submitted.
  h.write(dir .. "/s.lua", [[
local jobrun = require "jobrun"
local s = jobrun.suite "mp.lua"
s:launch()
local long = s:job "mp_long"
while long:result().status ~= "RUNNING" do jobrun.sleep(0.1) end
print("held", long:result().native_id ~= nil, s:job("mp_succeed"):result().native_id,
      s:job("mp_recover"):result().native_id)
print("cancel", long:cancel())
if arg[1] == "wait" then
  local rs = s:wait()
  print("results", rs[1].status, rs[2].status, rs[3].status)
end
]])
  local code, out, err = sh("jobrun script s.lua wait")
  tap.is(code, 1, "the cancelled job fails the run", err)
  tap.like(out, "held\ttrue\tnil\tnil", "one job submitted, two held back")
  tap.like(out, "results\tCANCELLED\tSUCCEEDED\tSUCCEEDED", "then the other two, once it ended")
  tap.is(#get(f, "/fake/tasks"), 3, "three launches")
  -- A script that returns with jobs held back submits them before it ends.
  code, out, err = sh("jobrun script s.lua")
  tap.is(code, 1, "mp_long was cancelled, mp_recover may still run", err)
  tap.like(out, "held\ttrue\tnil\tnil", "held back again")
  tap.like(err, "2 job%(s%) not submitted yet", "the script says why it has not ended")
  tap.is(#get(f, "/fake/tasks"), 6, "all three launched before the script ended")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.ok(jobs.mp_succeed.native_id and jobs.mp_recover.native_id, "both held jobs have their managed job ids")
end)

return tap.done()
