-- The run lifecycle on the local backend, with real processes: what a user does, checked by
-- what they would see (exit codes, tables, state.json, logs, processes left behind).
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"

tap.test("success and failure, exit codes and results", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "basic" {
  matrix = { outcome = { "ok", "bad" } },
  run = "echo hello from {outcome}; test {outcome} = ok || exit 7",
}
]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id r1")
  tap.is(code, 1, "run exits 1 when a job failed")
  tap.like(out, "basic_ok%s+SUCCEEDED%s+0%s+%-%s+0%s+%S+%s+pass", "table row of the passing job")
  tap.like(out, "basic_bad%s+FAILED%s+0%s+%-%s+7%s+%S+%s+fail", "table row of the failing job")
  local data = h.state(dir)
  local jobs = h.jobs_by_name(data)
  tap.is(jobs.basic_bad.exit_code, 7, "exit code recorded")
  tap.is(jobs.basic_bad.mismatches, { "status is FAILED, expected SUCCEEDED", "exit code is 7, expected 0" },
    "mismatches in words")
  tap.is(fs.read(dir .. "/" .. jobs.basic_ok.log_path), "hello from ok\n", "log written")
  local _, js = h.sh(dir, "jobrun check r1 --json")
  local doc = json.decode(js)
  tap.is(doc and doc.summary, { total = 2, passed = 1, failed = 1, pending = 0 }, "check --json summary")
  tap.is(doc and doc.jobs[1].verdict, "pass", "check --json job verdict")
  tap.is(select(1, h.sh(dir, "jobrun run s.lua --only basic_ok --run-id r2")), 0, "all passed: exit 0")
  local c2, o2 = h.sh(dir, "jobrun logs r1 basic_bad")
  tap.is({ c2, o2 }, { 0, "hello from bad\n" }, "logs prints the log")
  local c3, o3 = h.sh(dir, "jobrun list")
  tap.is(c3, 0, "list exits 0")
  tap.like(o3, "r1%s+basic%s+local%s+%S+%s+2%s+1%s+1%s+0", "list shows counts per verdict")
  tap.like(select(2, h.sh(dir, "jobrun list")), "r2%s+basic%s+local%s+%S+%s+1%s+1%s+0%s+0", "and the second run")
end)

tap.test("timeout of a job that ignores TERM and forked a grandchild", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "t" {
  run = "trap '' TERM; sleep 300 & echo $! > grandchild.pid; echo started; while :; do sleep 0.1; done",
  timeout = "1s",
  ["local"] = { grace = 1 },
  expect = { status = "TIMEOUT", termination = "timeout" },
}
]])
  local t0 = process.now()
  local code, out = h.sh(dir, "jobrun run s.lua")
  local took = process.now() - t0
  tap.is(code, 0, "the job timed out as expected: pass")
  tap.like(out, "TIMEOUT", "status TIMEOUT")
  tap.ok(took >= 2 and took < 15, string.format("ended after timeout + grace (%.1fs)", took))
  local pid = fs.read(dir .. "/grandchild.pid")
  tap.ok(pid and h.gone(pid), "the grandchild is gone too")
  local data = h.state(dir)
  tap.is(data.jobs[1].exit_code, 137, "KILLed: 128 + 9")
  tap.like(fs.read(dir .. "/" .. data.jobs[1].log_path), "timeout after 1s.*grace period over: sending KILL",
    "the log says what happened")
end)

tap.test("restarts after a non-zero exit", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "r" {
  matrix = { need = { 2, 9 } },
  run = "echo attempt {attempt} restart $JOBRUN_RESTART_COUNT; test $JOBRUN_RESTART_COUNT -ge {need} || exit 3",
  max_restarts = 2,
  expect = { restarts = 2, status = "SUCCEEDED" },
}
]])
  local code = h.sh(dir, "jobrun run s.lua")
  tap.is(code, 1, "one job never recovers")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.r_2.status, jobs.r_2.restart_count, jobs.r_2.exit_code }, { "SUCCEEDED", 2, 0 },
    "succeeds on the third attempt")
  tap.is({ jobs.r_9.status, jobs.r_9.restart_count, jobs.r_9.exit_code }, { "FAILED", 2, 3 },
    "gives up after max_restarts")
  tap.like(fs.read(dir .. "/" .. jobs.r_2.log_path),
    "^attempt 1 restart 0\n%[jobrun%] attempt 1 exited with code 3; restarting %(restart 1 of 2%)\n"
      .. "attempt 2 restart 1\n",
    "each attempt in the log, {attempt} expanded per attempt")
end)

tap.test("three ranks", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "ranks" {
  matrix = { mode = { "all_ok", "one_fails" } },
  nodes = 3,
  run = [=[
    echo "rank $JOBRUN_NODE_RANK/$JOBRUN_NUM_NODES" \
      "sky $SKYPILOT_NODE_RANK/$SKYPILOT_NUM_NODES ips $(printf '%s\n' "$SKYPILOT_NODE_IPS" | grep -c '^127.0.0.1$')" \
      "slurm ${SLURM_PROCID-none}/${SLURM_NNODES-none}/${SLURM_NTASKS-none}/${SLURM_NODEID-none}"
    if [ {mode} = one_fails ]; then
      if [ $JOBRUN_NODE_RANK = 1 ]; then exit 5; fi
      sleep 300
    fi
  ]=],
  ["local"] = { grace = 1 },
}
]])
  local t0 = process.now()
  local code = h.sh(dir, "jobrun run s.lua")
  tap.is(code, 1, "the failing rank fails the run")
  tap.ok(process.now() - t0 < 20, "the other ranks were ended, not waited for")
  local jobs = h.jobs_by_name(h.state(dir))
  local log = fs.read(dir .. "/" .. jobs.ranks_all_ok.log_path) or ""
  for rank = 0, 2 do
    -- SkyPilot's variables (a SkyPilot run script works unchanged), never Slurm's (issue 24).
    tap.like(log, string.format("%%(rank=%d%%) rank %d/3 sky %d/3 ips 3 slurm none/none/none/none\n", rank, rank, rank),
      "rank " .. rank .. " line, prefixed, with every rank variable and no SLURM_*")
  end
  tap.is({ jobs.ranks_all_ok.status, jobs.ranks_one_fails.status, jobs.ranks_one_fails.exit_code },
    { "SUCCEEDED", "FAILED", 5 }, "the job's exit code is the failed rank's")
end)

tap.test("launch, then check and wait from other processes", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "l" { matrix = { i = { 1, 2, 3 } }, run = "while [ ! -e go ]; do sleep 0.1; done; echo done {i}",
            max_parallel = 2 }
]])
  -- The jobs run until the test says go: a launch that waited for them would never return
  -- (timeout's 124 after a minute).
  local code, out = h.sh(dir, "timeout 60 " .. h.q(h.bin) .. " launch s.lua --run-id L")
  tap.is(code, 0, "launch exits 0: it returns while the jobs run")
  tap.like(out, "2 jobs started, 1 waiting for a slot", "says what it started")
  local c1, js = h.sh(dir, "jobrun check L --json")
  local doc = json.decode(js) or { jobs = {} }
  tap.is(c1, 4, "check exits 4 while jobs are pending and none failed")
  tap.is(doc.summary and doc.summary.pending, 3, "all three still pending a verdict")
  tap.is(doc.jobs[1] and doc.jobs[1].status, "RUNNING", "the first is running")
  h.write(dir .. "/go", "")
  local c2, o2 = h.sh(dir, "jobrun wait")
  tap.is(c2, 0, "wait (latest run) exits 0 once all passed")
  tap.like(o2, "Verdict: 3 passed, 0 failed, 0 pending, of 3", "and reports")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(fs.read(dir .. "/" .. jobs.l_3.log_path), "done 3\n", "the third started after a slot freed")
end)

tap.test("the runner SIGKILLed mid-run: wait recovers every result", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "k" { matrix = { i = { 1, 2, 3, 4 } }, run = "sleep 0.4; echo once >> ../once.{i}", max_parallel = 2 }
]])
  assert(fs.mkdir_p(dir .. "/work"))
  h.write(dir .. "/work/s.lua", fs.read(dir .. "/s.lua"))
  local runner = h.spawn(dir .. "/work", { "run", "s.lua", "--run-id", "K" })
  tap.ok(h.eventually(function() return fs.stat(dir .. "/once.1") end, 10), "first jobs ran")
  runner:kill("KILL")
  runner:wait(true)
  local code, out = h.sh(dir .. "/work", "jobrun wait K")
  tap.is(code, 0, "wait takes over and every job passes")
  tap.like(out, "Verdict: 4 passed", "all four reported")
  for i = 1, 4 do
    tap.is(fs.read(dir .. "/once." .. i), "once\n", "job " .. i .. " ran exactly once")
  end
end)

tap.test("kill leaves no process behind", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "kk" {
  matrix = { i = { 1, 2 } },
  nodes = 2,
  run = "sleep 300 & echo $! >> pids; echo $$ >> pids; wait",
  ["local"] = { grace = 1 },
}
]])
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua")), 0, "launched")
  tap.ok(h.eventually(function()
    local p = fs.read(dir .. "/pids") or ""
    local n = 0
    for _ in p:gmatch("%d+") do n = n + 1 end
    return n == 8
  end), "every rank and grandchild started")
  local code, out = h.sh(dir, "jobrun kill")
  tap.is(code, 0, "kill exits 0")
  tap.like(out, "kk_1: ✓ Killed", "per job: Killed")
  tap.like(out, "Killed: 2 · Already completed: 0 · Not found: 0 · Failed: 0", "summary")
  local all_gone = true
  for pid in (fs.read(dir .. "/pids") or ""):gmatch("%d+") do
    if not h.gone(pid) then all_gone = false end
  end
  tap.ok(all_gone, "no rank and no grandchild survives")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.kk_1.status, jobs.kk_2.status }, { "CANCELLED", "CANCELLED" }, "jobs CANCELLED")
  local _, again = h.sh(dir, "jobrun kill")
  tap.like(again, "kk_1: ✓ Already completed", "a second kill finds them completed")
end)

tap.test("a reused PID is never taken for a live job's supervisor", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[suite "r" { run = "sleep 31.5" }]])
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id R")), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/R/jobs"
  local line
  tap.ok(h.eventually(function()
    for _, f in ipairs(fs.list(jobs_dir) or {}) do
      if f:find("%.journal$") then
        line = json.decode((fs.read(jobs_dir .. "/" .. f) or ""):match("^([^\n]*)\n") or "")
        if line then line.file = jobs_dir .. "/" .. f; return true end
      end
    end
  end, 10), "a slot claimed the job")
  line = line or {}
  -- The slot's pid now names another live process (as after the slot died and the pid was
  -- reused): the job's latest record says so, with the start time of the slot that ran it.
  -- (Start times count clock ticks: the other process starts a few ticks later, as a reuse would.)
  process.sleep(0.05)
  local other = assert(process.spawn({ argv = { "sleep", "30" } }))
  tap.ok(process.start_time(other:pid()) ~= line.supervisor_start, "the other process started at another time")
  fs.append(line.file, json.encode({ key = "r", state = "RUNNING", attempt = 1, restart_count = 0,
    supervisor_pid = other:pid(), supervisor_start = line.supervisor_start }) .. "\n")
  local _, out = h.sh(dir, "jobrun check R --json")
  local job = (json.decode(out) or { jobs = {} }).jobs[1] or {}
  tap.is({ job.native_id, job.status, job.native_status }, { tostring(other:pid()), "LOST", "SUPERVISOR_GONE" },
    "a live process with that pid but another start time is not the job's supervisor")
  -- The real slot, told to stop (a cancel marker, then TERM, as kill does), ends its job.
  fs.write_atomic(jobs_dir .. "/r.cancel", "cancelled\n", false)
  os.execute("kill -TERM " .. tostring(line.supervisor_pid))
  tap.ok(h.eventually(function() return h.gone(line.supervisor_pid) end, 15), "the real slot stopped")
  other:kill("KILL")
  other:wait(true)
  other:close()
end)

tap.test("two concurrent checks, a damaged state, a hostile job name", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "c" { matrix = { who = { "../../x", "a/b" } }, name = "{who}", run = "echo hi" }
]])
  tap.is(select(1, h.sh(dir, "jobrun run s.lua --run-id C")), 0, "run with hostile names")
  tap.ok(not fs.stat(dir .. "/x") and not fs.stat(dir .. "/.jobrun/x") and not fs.stat(dir .. "/.jobrun/runs/x"),
    "nothing written outside the run directory")
  -- Where an unsanitised "../../x" would have led the files a run makes from a job name:
  -- logs/../../x.log and jobs/../../x.status.json are runs/x.*.
  tap.is(fs.list(dir .. "/.jobrun/runs"), { "C" }, "the runs directory holds the run alone")
  local around = {}
  for _, d in ipairs({ dir, dir .. "/.jobrun" }) do
    for _, f in ipairs(fs.list(d) or {}) do if f:find("x", 1, true) then around[#around + 1] = d .. "/" .. f end end
  end
  tap.is(around, {}, "no file named after the job beside the run or the state directory")
  local logs = fs.list(dir .. "/.jobrun/runs/C/logs")
  table.sort(logs)
  tap.is(logs, { "______x.log", "a_b.log" }, "log names sanitised")
  local a = h.spawn(dir, { "check", "C", "--json" })
  local b = h.spawn(dir, { "check", "C", "--json" })
  local ra, rb = a:wait(true), b:wait(true)
  tap.is({ ra.exit_code, rb.exit_code }, { 0, 0 }, "both checks succeed")
  tap.ok(json.decode(fs.read(dir .. "/.jobrun/runs/C/state.json")), "state.json still valid")
  -- Two checks at once on a run whose jobs are still running, so that both rewrite state.json.
  -- (they run until the test says go: however slow the checks, the jobs are still running)
  h.write(dir .. "/busy.lua", 'suite "busy" { matrix = { i = { 1, 2, 3 } }, '
    .. 'run = "while [ ! -e go ]; do sleep 0.1; done" }\n')
  tap.is(select(1, h.sh(dir, "jobrun launch busy.lua --run-id B")), 0, "a run still going")
  local checks = {}
  for i = 1, 4 do checks[i] = h.spawn(dir, { "check", "B", "--json" }) end
  local codes = {}
  for i = 1, 4 do codes[i] = checks[i]:wait(true).exit_code end
  tap.is(codes, { 4, 4, 4, 4 }, "concurrent checks all answer (exit 4: jobs pending)")
  local busy = json.decode(fs.read(dir .. "/.jobrun/runs/B/state.json") or "")
  tap.is(busy and #busy.jobs, 3, "state.json whole after concurrent writes")
  h.write(dir .. "/go", "")
  tap.is(select(1, h.sh(dir, "jobrun wait B")), 0, "and the run still finishes and passes")

  local path = dir .. "/.jobrun/runs/C/state.json"
  local whole = fs.read(path)
  fs.write_atomic(path, whole:sub(1, #whole // 2))
  local damaged = fs.read(path)
  local code, _, err = h.sh(dir, "jobrun check C")
  tap.is(code, 3, "a damaged state.json: exit 3")
  tap.like(err, "state.json is damaged .*left as it is", "reported")
  tap.is(fs.read(path), damaged, "and never overwritten")
  tap.is(select(1, h.sh(dir, "jobrun kill C")), 3, "kill refuses too")
end)

tap.test("fail_fast and an unknown backend", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "ff" { matrix = { i = { 1, 2, 3 } }, run = "exit {i}", max_parallel = 1, fail_fast = true }
]])
  local code = h.sh(dir, "jobrun run s.lua")
  tap.is(code, 1, "fails")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.ff_1.status, jobs.ff_2.status, jobs.ff_2.termination_reason }, { "FAILED", "CANCELLED", "fail_fast" },
    "later jobs never start")
  local c2, _, e2 = h.sh(dir, "jobrun run s.lua --backend nosuch")
  tap.is(c2, 2, "unknown backend: usage error")
  tap.like(e2, "unknown backend 'nosuch'", "named")
end)

tap.test("Ctrl-C: stop launching, resume with wait", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "i" { matrix = { n = { 1, 2, 3 } }, run = "sleep 1; echo ran", max_parallel = 1 }
]])
  local runner = h.spawn(dir, { "run", "s.lua", "--run-id", "I" })
  tap.ok(h.eventually(function() return fs.stat(dir .. "/.jobrun/runs/I/jobs/i_1.status.json") end),
    "first job started")
  runner:kill("INT")
  local r = runner:wait(true)
  tap.is(r.exit_code, 130, "exit 130 after the running job ends")
  tap.like(fs.read(dir .. "/.bg.log"), "jobrun wait I", "says how to resume")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.i_1.status, jobs.i_2.status, jobs.i_3.status }, { "SUCCEEDED", "PENDING", "PENDING" },
    "the rest stay pending")
  tap.is(select(1, h.sh(dir, "jobrun wait I")), 0, "wait starts and finishes them")

  h.write(dir .. "/long.lua", [[
suite "ll" { matrix = { n = { 1, 2 } }, run = "echo $$ >> pids.txt; sleep 300", ["local"] = { grace = 1 } }
]])
  local second = h.spawn(dir, { "run", "long.lua", "--run-id", "J" })
  tap.ok(h.eventually(function()
    local _, n = (fs.read(dir .. "/pids.txt") or ""):gsub("%d+", "")
    return n == 2
  end), "both long jobs started")
  second:kill("INT")
  process.sleep(0.3)
  second:kill("INT")
  local r2 = second:wait(true)
  tap.is(r2.exit_code, 130, "a second Ctrl-C: exit 130")
  local jobs2 = h.jobs_by_name(h.state(dir))
  tap.is({ jobs2.ll_1.status, jobs2.ll_2.status }, { "CANCELLED", "CANCELLED" }, "the run's jobs are cancelled")
  local alive = false
  for pid in (fs.read(dir .. "/pids.txt") or ""):gmatch("%d+") do if not h.gone(pid) then alive = true end end
  tap.ok(not alive, "and their processes gone")
end)

tap.test("a backend written in Lua beside the suite", function()
  local dir = h.scratch()
  h.write(dir .. "/jobrun/backends/instant.lua", [[
-- A toy backend: every job "runs" at once and succeeds, its log written on submit.
local fs = require "jobrun.c.fs"
local b = {}
function b.submit(ctx, job)
  fs.write_atomic(ctx.run_dir .. "/" .. job.log_path_rel, "instant " .. job.name .. "\n")
  job.native_id = "i-" .. job.name
  return true
end
function b.poll(_, jobs)
  for _, job in ipairs(jobs) do job.status, job.native_status, job.backend_exit_code = "SUCCEEDED", "DONE", 0 end
end
function b.cancel() return {} end
function b.log_path(ctx, job) return ctx.run_dir .. "/" .. job.log_path_rel end
b.poll_interval = 0.01
return b
]])
  h.write(dir .. "/s.lua", 'suite "u" { backend = "instant", matrix = { i = { 1, 2 } }, run = "x" }\n')
  local code, out = h.sh(dir, "jobrun run s.lua")
  tap.is(code, 0, "runs on the user's backend")
  tap.like(out, "u_1%s+SUCCEEDED", "its statuses reported")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is(jobs.u_2.native_id, "i-u_2", "its native ids kept")
end)

tap.test("user backends of both kinds: one that sets its jobs' fields, one that observes", function()
  local dir = h.scratch()
  -- The kind before: poll sets the jobs' fields, cancel follows them through that poll
  -- (common.follow_cancel), and its jobs run until a kill (a file, seen by every process).
  h.write(dir .. "/jobrun/backends/setter.lua", [[
local fs = require "jobrun.c.fs"
local common = require "jobrun.backends.common"
local b = { poll_interval = 0.05 }
local function killed(ctx, job) return ctx.run_dir .. "/jobs/" .. job.key .. ".killed" end
function b.submit(ctx, job)
  fs.write_atomic(ctx.run_dir .. "/" .. job.log_path_rel, "setter " .. job.name .. "\n")
  job.native_id, job.my_note = "s-" .. job.name, "mine"
  return true
end
function b.poll(ctx, jobs)
  for _, job in ipairs(jobs) do
    if fs.stat(killed(ctx, job)) then job.status, job.native_status, job.backend_exit_code = "CANCELLED", "KILLED", 143
    else job.status, job.native_status, job.started_at = "RUNNING", "UP", "2024-05-01T00:00:00Z" end
  end
end
function b.cancel(ctx, jobs)
  for _, job in ipairs(jobs) do fs.write_atomic(killed(ctx, job), "") end
  return common.follow_cancel(function(list) b.poll(ctx, list) end, jobs, {}, 5, 0.05)
end
return b
]])
  -- The observing kind: observations keyed by the job's name, and a note of its own.
  h.write(dir .. "/jobrun/backends/seer.lua", [[
local fs = require "jobrun.c.fs"
local b = { observes = true, poll_interval = 0.01 }
function b.submit(ctx, job)
  fs.write_atomic(ctx.run_dir .. "/" .. job.log_path_rel, "seer " .. job.name .. "\n")
  return { native_id = "o-" .. job.name, native_status = "SUBMITTED", notes = { seer_seen = 1 } }
end
function b.poll(_, jobs)
  local out = {}
  for _, job in ipairs(jobs) do
    out[job.name] = { status = "SUCCEEDED", native_status = "DONE", exit_code = 0, nodes = { "seer1" },
                      notes = { seer_seen = (job.seer_seen or 0) + 1 } }
  end
  return out
end
function b.cancel(_, jobs)
  local out = {}
  for _, job in ipairs(jobs) do out[job.name] = "already completed" end
  return out, {}
end
return b
]])
  h.write(dir .. "/s.lua", 'suite "s" { backend = "setter", matrix = { i = { 1, 2 } }, run = "x" }\n')
  h.write(dir .. "/o.lua", 'suite "o" { backend = "seer", matrix = { i = { 1, 2 } }, run = "x" }\n')
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id S")), 0, "launched on the setting backend")
  tap.is(select(1, h.sh(dir, "jobrun check S")), 4, "check: still running (exit 4)")
  local data = h.state(dir)
  tap.is({ data.jobs[1].status, data.jobs[2].status, data.jobs[1].native_status }, { "RUNNING", "RUNNING", "UP" },
    "its jobs run, as its poll set them")
  local code, out = h.sh(dir, "jobrun kill S")
  tap.is(code, 0, "kill exits 0")
  tap.like(out, "Killed: 2", "both killed, followed through its own poll")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.s_1.status, jobs.s_1.native_status, jobs.s_1.backend_exit_code, jobs.s_1.native_id, jobs.s_1.my_note },
    { "CANCELLED", "KILLED", 143, "s-s_1", "mine" }, "what it set became the record (its own field kept as a note)")
  tap.is((h.sh(dir, "jobrun wait S")), 1, "wait: the run has ended (cancelled jobs fail)")
  local ocode, oout = h.sh(dir, "jobrun run o.lua --run-id O")
  tap.is(ocode, 0, "runs on the observing backend")
  tap.like(oout, "o_1%s+SUCCEEDED", "its observations applied")
  local seen = h.jobs_by_name(h.state(dir))
  tap.is({ seen.o_2.native_id, seen.o_2.native_status, seen.o_2.backend_exit_code, seen.o_2.nodes, seen.o_2.seer_seen },
    { "o-o_2", "DONE", 0, { "seer1" }, 2 }, "keyed by name: native id, status, exit code, nodes, its notes")
end)

tap.test("logs --follow, and the progress line on a TTY", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "f" { run = "for i in 1 2 3; do echo line $i; sleep 0.3; done" }
]])
  tap.is(select(1, h.sh(dir, "jobrun launch s.lua --run-id F")), 0, "launched")
  local code, out = h.sh(dir, "jobrun logs F f --follow")
  tap.is({ code, out }, { 0, "line 1\nline 2\nline 3\n" }, "--follow prints every line and returns at the end")
  local c2, tty = h.sh(dir, "script -qec " .. h.q(h.bin .. " run s.lua --run-id T --color never") .. " /dev/null")
  tap.is(c2, 0, "run under a pseudo-terminal")
  tap.like(tty, "0:0%d  0/1 done · 1 running · 0 pending · 0 passed · 0 failed", "a live progress line")
  local _, piped = h.sh(dir, "jobrun run s.lua --run-id P 2>&1 | cat")
  tap.ok(not piped:find("done ·", 1, true), "no progress line off a TTY")
end)

tap.test("setup, and check --watch", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "su" {
  matrix = { ok = { "yes", "no" } },
  nodes = 2,
  setup = "echo setting up; test {ok} = yes",
  run = "echo running; sleep 3", -- (long enough for --watch to see it running, however loaded the machine)
}
]])
  local code = h.sh(dir, "jobrun launch s.lua --run-id W")
  tap.is(code, 0, "launched")
  local c2, out = h.sh(dir, "jobrun check --watch")
  tap.is(c2, 1, "--watch returns once every job has ended (one failed)")
  tap.like(out, "su_yes%s+RUNNING.*su_yes%s+SUCCEEDED", "the table again as jobs end")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.su_no.status, jobs.su_no.termination_reason }, { "FAILED", "setup_failed" },
    "a failed setup fails the job")
  -- (the two ranks run at once: their lines come in either order)
  local log = fs.read(dir .. "/" .. jobs.su_yes.log_path) or ""
  tap.ok(log == "setting up\n(rank=0) running\n(rank=1) running\n"
    or log == "setting up\n(rank=1) running\n(rank=0) running\n", "setup once, then every rank", log)
end)

tap.test("the slot pool: jobs keep starting with no jobrun attached", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "nd" { matrix = { i = { 1, 2, 3 } }, run = "echo $$ > pid.{i}; sleep 0.3", max_parallel = 1 }]])
  local code, out = h.sh(dir, "jobrun launch s.lua --run-id ND")
  tap.is(code, 0, "launched")
  tap.like(out, "1 job started, 2 waiting for a slot", "one slot")
  local drivers = 0
  for _, pid in ipairs(fs.list("/proc") or {}) do
    local cmd = pid:match("^%d+$") and fs.read("/proc/" .. pid .. "/cmdline") or ""
    if cmd:find("__drive", 1, true) and cmd:find(dir, 1, true) then drivers = drivers + 1 end
  end
  tap.is(drivers, 0, "no driver process: the pool needs none")
  tap.ok(h.eventually(function()
    for i = 1, 3 do
      if not h.ended_record(dir .. "/.jobrun/runs/ND/jobs", "nd_" .. i) then return false end
    end
    return true
  end, 10), "all three ran to their end with nobody watching")
  local c2, o2 = h.sh(dir, "jobrun check ND")
  tap.is(c2, 0, "and check finds them passed")
  tap.like(o2, "Verdict: 3 passed", "all three")
  -- First seen when already ended: the end line names the slot and the job's own process
  -- (issue 24: the native id was the slot's pid, the same for every job of a slot).
  local pool
  for _, f in ipairs(fs.list(dir .. "/.jobrun/runs/ND/jobs") or {}) do
    if f:match("^pool%-[%d%-]+%.json$") then pool = json.decode(fs.read(dir .. "/.jobrun/runs/ND/jobs/" .. f)) end
  end
  local slot = pool and tostring(pool.slots[1].pid)
  local ids, want, slots = {}, {}, {}
  for i, job in ipairs(h.state(dir).jobs) do
    ids[i], slots[i] = job.native_id, job.slot
    want[i] = (fs.read(dir .. "/pid." .. i) or ""):gsub("%s", "")
  end
  tap.is(ids, want, "each job's native id is its own process id")
  tap.is(slots, { slot, slot, slot }, "and the slot that ran it is kept in the record")
end)

tap.test("the slot pool: a slot that dies loses only the job it was running", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "sd" { matrix = { i = { 1, 2, 3, 4 } }, run = "echo $$ > pid.{i}; sleep 1.5", max_parallel = 2 }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id SD"), 0, "launched on two slots")
  local claim
  tap.ok(h.eventually(function()
    claim = json.decode(fs.read(dir .. "/.jobrun/runs/SD/jobs/sd_1.status.json") or "")
    return claim and claim.supervisor_pid and fs.stat(dir .. "/pid.1")
  end, 10), "the first job is running")
  local slot = claim and claim.supervisor_pid
  os.execute("kill -KILL " .. tostring(slot))
  os.execute("kill -KILL " .. (fs.read(dir .. "/pid.1") or ""):gsub("%s", "") .. " 2>/dev/null")
  local code, out = h.sh(dir, "jobrun wait SD")
  tap.is(code, 1, "the run fails: one job was lost")
  tap.like(out, "sd_1%s+LOST", "the killed slot's job is LOST")
  local data = h.jobs_by_name(h.state(dir))
  tap.is({ data.sd_1.native_status, data.sd_2.status, data.sd_3.status, data.sd_4.status },
    { "SUPERVISOR_GONE", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED" }, "with a reason; the other slot ran the rest")
end)

tap.test("the slot pool takes a big run: 5,000 jobs with secrets, none refused", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
local ids = {}
for i = 1, 5000 do ids[i] = i end
suite "big" { matrix = { i = ids }, run = "sleep 30", max_parallel = 1,
              env = { API_TOKEN = "s3cret-big-run", LONG = string.rep("x", 400) } }]])
  local code, out, err = h.sh(dir, "jobrun launch s.lua --run-id B")
  tap.is(code, 0, "launched", err)
  tap.like(out, "1 job started, 4999 waiting for a slot", "every job handed to the pool")
  local data = h.state(dir)
  local failed = 0
  for _, job in ipairs(data.jobs) do if job.status == "LAUNCH_FAILED" then failed = failed + 1 end end
  tap.is(failed, 0, "no job refused (the work list is a file; only the secrets go through the pipe)")
  local _, found = h.sh(dir, "grep -rl s3cret-big-run .jobrun || true")
  tap.is(found, "", "and the secret is in no file")
  tap.is(h.sh(dir, "jobrun kill B"), 0, "killed")
end)

return tap.done()
