-- jobrun.run.scheduler driven without real processes: a user backend module (jobrun/backends/fakesched.lua
-- on package.path, as a suite's own backend would be) whose jobs end after a few polls, and which
-- records what it was asked: max_parallel is never exceeded, fail_fast stops launching, a job that
-- needs another starts only after it ended (and is SKIPPED when it failed), one backend query per
-- step, and step(timeout) returns within its timeout when nothing happens.
local tap = require "tap"
local h = require "helpers"
local process = require "jobrun.c.process"

local root = h.scratch()
package.path = root .. "/?.lua;" .. package.path
h.write(root .. "/jobrun/backends/fakesched.lua", [[
-- A backend for tests: a job whose name has "bad" fails, one whose name has "forever" never ends,
-- the others succeed; each ends at the poll after `polls` polls have seen it running.
local fs = require "jobrun.c.fs"
local B = { name = "fakesched", poll_interval = 0.01, poll_interval_max = 0.02, polls = 2 }
function B.reset() B.events, B.live, B.most, B.queries, B.left, B.seq = {}, 0, 0, 0, {}, 0 end
B.reset()
function B.submit(ctx, job)
  B.seq = B.seq + 1
  job.native_id, job.status, job.native_status = "f" .. B.seq, "RUNNING", "RUNNING"
  fs.mkdir_p(ctx.run_dir .. "/logs")
  fs.write_atomic(ctx.run_dir .. "/" .. job.log_path_rel, "hello\n")
  B.events[#B.events + 1] = "start " .. job.name
  B.live = B.live + 1
  if B.live > B.most then B.most = B.live end
  B.left[job.name] = job.name:find("forever", 1, true) and math.huge or B.polls
  return true
end
function B.poll(_, jobs)
  B.queries = B.queries + 1
  -- B.burn: seconds of CPU each poll spends (a big run's poll)
  local t0 = os.clock()
  while os.clock() - t0 < (B.burn or 0) do end
  for _, job in ipairs(jobs) do
    if job.status == "RUNNING" then
      B.left[job.name] = B.left[job.name] - 1
      if B.left[job.name] <= 0 then
        local bad = job.name:find("bad", 1, true) ~= nil
        job.status, job.native_status = bad and "FAILED" or "SUCCEEDED", "DONE"
        job.backend_exit_code = bad and 1 or 0
        B.events[#B.events + 1] = "end " .. job.name
        B.live = B.live - 1
      end
    end
  end
end
-- B.silent: a watch that covers every job and never fires (an end that a wait on events missed)
function B.waitables(ctx, jobs)
  if not B.silent or #jobs == 0 then return {} end
  B.watch = B.watch or fs.watch(ctx.run_dir)
  return { { handle = B.watch:fd(), covers = #jobs, changed = function() return {} end } }
end
function B.cancel(_, jobs)
  local out = {}
  for _, job in ipairs(jobs) do
    if job.status == "RUNNING" then B.live = B.live - 1 end
    job.status, job.native_status = "CANCELLED", "CANCELLED"
    out[job.name] = "killed"
  end
  return out
end
return B
]])
local fake = require "jobrun.backends.fakesched"
local plan = require "jobrun.plan"
local Run = require "jobrun.run"
local scheduler = require "jobrun.run.scheduler"

local n = 0
-- run_of(suite_text) -> a new run of that suite file on the fake backend.
local function run_of(text)
  n = n + 1
  local path = h.write(string.format("%s/s%d.lua", root, n), text)
  fake.reset()
  local p = plan.from_options(path, { ["run-id"] = "R" .. n, ["state-dir"] = root .. "/.jobrun" })
  return Run.create(p, { ["state-dir"] = root .. "/.jobrun" })
end

local function by_name(run)
  local out = {}
  for _, job in ipairs(run.data.jobs) do out[job.name] = job end
  return out
end

local function index_of(list, item)
  for i, v in ipairs(list) do if v == item then return i end end
  return nil
end

tap.test("max_parallel is never exceeded; every job runs; one backend query per step", function()
  local run = run_of([[suite "mp" { backend = "fakesched", matrix = { x = { 1, 2, 3, 4, 5, 6, 7 } },
    run = "true", max_parallel = 3 }]])
  local sched = scheduler.for_run(run)
  local steps = 0
  sched:launch()
  tap.is(#sched.running, 3, "the first launch starts max_parallel jobs")
  while not sched:done() do
    local before = fake.queries
    sched:step(1)
    steps = steps + 1
    tap.ok(fake.queries - before <= 1, "at most one backend query in a step")
    if steps > 200 then break end
  end
  tap.is(fake.most, 3, "never more than 3 running at once")
  local started, passed = 0, 0
  for _, ev in ipairs(fake.events) do if ev:match("^start") then started = started + 1 end end
  for _, job in ipairs(run.data.jobs) do if job.verdict == "pass" then passed = passed + 1 end end
  tap.is({ started, passed }, { 7, 7 }, "all 7 started once, and passed")
  tap.is(fake.events[1] .. "," .. fake.events[2], "start mp_1,start mp_2", "launched in plan order")
end)

tap.test("max_parallel of a group given by hand, and await", function()
  local run = run_of([[suite "g" { backend = "fakesched", matrix = { x = { 1, 2, 3, 4 } }, run = "true" }]])
  local sched = scheduler.new(run, { groups = { { jobs = run.data.jobs, max_parallel = 1 } } })
  tap.ok(sched:await(function() return run:all_terminal() end, process.now() + 20), "await returns once all ended")
  tap.is(fake.most, 1, "one at a time")
  tap.is(fake.events,
    { "start g_1", "end g_1", "start g_2", "end g_2", "start g_3", "end g_3", "start g_4", "end g_4" },
    "each starts after the one before it ended")
end)

tap.test("fail_fast: after a failure nothing more starts; the rest are CANCELLED (fail_fast)", function()
  local run = run_of([[suite "ff" { backend = "fakesched", matrix = { x = { "a", "bad", "c", "d" } },
    run = "true", max_parallel = 1, fail_fast = true }]])
  local sched = scheduler.for_run(run)
  tap.ok(sched:await(function() return sched:done() end, process.now() + 20), "the scheduler is done")
  local jobs = by_name(run)
  tap.is({ jobs.ff_a.status, jobs.ff_bad.status, jobs.ff_c.status, jobs.ff_d.status },
    { "SUCCEEDED", "FAILED", "CANCELLED", "CANCELLED" }, "the jobs after the failure never ran")
  tap.is(jobs.ff_c.termination_reason, "fail_fast", "they say why")
  tap.ok(not index_of(fake.events, "start ff_c") and not index_of(fake.events, "start ff_d"),
    "the backend was never asked to start them")
end)

tap.test("a group's fail_fast cancels its own jobs only", function()
  local run = run_of([[suite "gf" { backend = "fakesched", matrix = { x = { "bad", "b", "c", "d" } }, run = "true" }]])
  local jobs = run.data.jobs
  local sched = scheduler.new(run, { groups = {
    { jobs = { jobs[1], jobs[2] }, max_parallel = 1, fail_fast = true },
    { jobs = { jobs[3], jobs[4] }, max_parallel = 1 } } })
  tap.ok(sched:await(function() return run:all_terminal() end, process.now() + 20), "all ended")
  tap.is({ jobs[1].status, jobs[2].status, jobs[3].status, jobs[4].status },
    { "FAILED", "CANCELLED", "SUCCEEDED", "SUCCEEDED" }, "the failing group stopped; the other ran on")
end)

tap.test("needs: a job starts only after the job it needs has ended, and is SKIPPED when that failed", function()
  local run = run_of([[
suite "build" { backend = "fakesched", matrix = { x = { "ok", "bad" } }, run = "true" }
suite "test" { backend = "fakesched", needs = { "build/build_ok" }, run = "true" }
suite "deploy" { backend = "fakesched", needs = { "build/build_bad" }, run = "true" }
]])
  local sched = scheduler.for_run(run)
  sched:launch()
  tap.is(#sched.running, 2, "the first launch starts the two builds only")
  tap.ok(sched:await(function() return sched:done() end, process.now() + 20), "the scheduler is done")
  local ended, started = index_of(fake.events, "end build_ok"), index_of(fake.events, "start test")
  tap.ok(ended and started and ended < started,
    "test started after build_ok ended: " .. table.concat(fake.events, ", "))
  local jobs = by_name(run)
  tap.is({ jobs.test.status, jobs.deploy.status }, { "SUCCEEDED", "SKIPPED" }, "deploy skipped: its need failed")
  tap.like(jobs.deploy.fields.skipped or "", "needs build/build_bad, which failed", "it says why")
  tap.ok(not index_of(fake.events, "start deploy"), "the backend was never asked to start deploy")
end)

tap.test("a retry policy starts a failed job again, within max_parallel; a script's scheduler does not", function()
  local suite = [[suite "rt" { backend = "fakesched", matrix = { x = { "bad", "b", "c" } }, run = "true",
    max_parallel = 1, retry = { on = { "program" }, max = 1 } }]]
  local run = run_of(suite)
  local sched = scheduler.for_run(run)
  tap.ok(sched:await(function() return sched:done() end, process.now() + 20), "the scheduler is done")
  local starts = 0
  for _, ev in ipairs(fake.events) do if ev == "start rt_bad" then starts = starts + 1 end end
  local bad = by_name(run).rt_bad
  tap.is({ starts, bad.retries, bad.status }, { 2, 1, "FAILED" }, "rt_bad ran twice (one retry), and failed again")
  tap.is(fake.most, 1, "the retry kept max_parallel")
  run = run_of(suite)
  sched = scheduler.new(run, { groups = { { jobs = run.data.jobs } }, retry = false })
  tap.ok(sched:await(function() return run:all_terminal() end, process.now() + 20), "all ended")
  tap.is(by_name(run).rt_bad.retries, nil, "retry = false: no retry")
end)

tap.test("step(timeout) returns within its timeout when nothing happens", function()
  local run = run_of([[suite "st" { backend = "fakesched", run = "true", name = "forever" }]])
  -- (a backend polled every 5 s: nothing is due within the step)
  fake.poll_interval = 5
  local sched = scheduler.for_run(run)
  fake.poll_interval = 0.01
  sched:launch()
  tap.is(#sched.running, 1, "one job that never ends")
  local t0 = process.now()
  local ready, moved = sched:step(0.2)
  local took = process.now() - t0
  tap.ok(took >= 0.15 and took < 3, string.format("returned after %.3f s (not at the poll, 5 s)", took))
  tap.is({ #ready, moved }, { 0, 0 }, "nothing ready, nothing started")
  -- With nothing launched at all (an observing scheduler of a run with no active job).
  local observer = scheduler.new(run, { observe = true })
  run:cancel(run.data.jobs)
  t0 = process.now()
  observer:step(0.1)
  took = process.now() - t0
  tap.ok(took >= 0.05 and took < 3, string.format("an observer's step returned after %.3f s", took))
  tap.ok(not sched:await(function() return false end, process.now() + 0.1), "await gives up at its deadline")
end)

tap.test("a poll's interval is at least 100 times the CPU the last poll took", function()
  local function polls_in(seconds, burn)
    local run = run_of([[suite "pace" { backend = "fakesched", run = "true", name = "forever_p" }]])
    fake.poll_interval_max = 1
    local sched = scheduler.for_run(run)
    fake.poll_interval_max = 0.02
    sched:launch()
    fake.burn = burn
    local before = fake.queries
    sched:await(function() return false end, process.now() + seconds)
    fake.burn = nil
    run:cancel(run.data.jobs)
    return fake.queries - before
  end
  -- 5 ms of CPU a poll: one each 0.5 s at the most. The backend's own interval is 0.01 s, backing
  -- off by half again each poll while nothing moves: about 11 polls in 1.6 s.
  local costly = polls_in(1.6, 0.005)
  tap.ok(costly >= 2 and costly <= 6, string.format("polls costing 5 ms each: %d in 1.6 s (at most 6)", costly))
  local cheap = polls_in(1.6, 0)
  tap.ok(cheap >= 8, string.format("polls costing next to nothing: %d in 1.6 s (the backend's pace)", cheap))
end)

tap.test("paced: an interval made at least 100 times the CPU spent, up to its longest", function()
  local function burn(seconds)
    local cpu = os.clock()
    while os.clock() - cpu < seconds do end
    return cpu
  end
  tap.is(scheduler.paced(1, os.clock(), 10), 1, "next to no CPU: the interval as it was")
  local got = scheduler.paced(1, burn(0.02), 10)
  tap.ok(got >= 2 and got < 10, string.format("20 ms of CPU: %.2f s (at least 2 s)", got))
  tap.is(scheduler.paced(1, burn(0.02), 1.5), 1.5, "no longer than the longest")
  tap.is(scheduler.paced(5, burn(0.01), 10), 5, "an interval already longer stays")
end)

tap.test("a ready handle ends a step early", function()
  local run = run_of([[suite "hd" { backend = "fakesched", run = "true", name = "forever_h" }]])
  -- A process is a pollable handle: ready once it has ended.
  local quick = assert(process.spawn({ argv = { "true" } }))
  local sched = scheduler.for_run(run, { handles = { quick } })
  sched:launch()
  local t0 = process.now()
  local ready = sched:step(5)
  tap.ok(process.now() - t0 < 2, "returned before its timeout")
  tap.is(ready, { 1 }, "the handle is said ready")
  local ok, got = sched:await(function() return false end)
  tap.is({ ok, got }, { false, { 1 } }, "await returns on it too")
  quick:wait()
  run:cancel(run.data.jobs)
end)

tap.test("jobs waited on through handles alone are still looked at every RECONCILE seconds", function()
  local run = run_of([[suite "quiet" { backend = "fakesched", matrix = { x = { 1, 2 } }, run = "true" }]])
  fake.silent = true
  local saved = scheduler.RECONCILE
  scheduler.RECONCILE = 0.2
  local sched = scheduler.for_run(run)
  -- The fake's jobs end only when polled, and its watch never fires: without the reconciling
  -- look the scheduler would wait on it for good (await's deadline ends the test then).
  local ok = sched:await(function() return sched:done() end, process.now() + 10)
  scheduler.RECONCILE = saved
  fake.silent = nil
  if fake.watch then fake.watch:close(); fake.watch = nil end
  tap.ok(ok, "every job's end is seen")
  tap.ok(fake.queries >= 2 and fake.queries <= 40,
    string.format("by looks every RECONCILE seconds, not a poll each step (%d queries)", fake.queries))
end)

return tap.done()
