-- The Slurm backend against a real cluster on loopback (tests/slurm/cluster.sh: slurmctld and
-- four slurmd). `make test` and .ci/run start it; without it these tests fail, they do not skip.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local process = require "jobrun.c.process"

-- The shared cluster's daemons outlive this file: the controller the outage test restarts gets
-- neither this file's tag nor its scratch directory (tests/exec) as TMPDIR (slurm.daemon).
local slurm = h.slurm_cluster(tap)
if not slurm then return tap.done() end
local cluster, daemon, conf, env = slurm.cluster, slurm.daemon, slurm.conf, slurm.env

-- shims(dir) -> a PATH prefix whose squeue, scontrol, sacct, sdiag, sbatch and scancel log their
-- calls to dir/calls.log.
local function shims(dir)
  assert(fs.mkdir_p(dir .. "/shims"))
  for _, cmd in ipairs({ "squeue", "scontrol", "sacct", "sdiag", "sbatch", "scancel" }) do
    local p = io.popen("command -v " .. cmd)
    local real = p:read("l")
    p:close()
    h.write(dir .. "/shims/" .. cmd, string.format('#!/bin/sh\necho %s >> %s\nexec %s "$@"\n', cmd,
      h.q(dir .. "/calls.log"), h.q(real)))
    os.execute("chmod +x " .. h.q(dir .. "/shims/" .. cmd))
  end
  return "export PATH=" .. h.q(dir .. "/shims") .. ":\"$PATH\" && "
end

local function calls(dir)
  local n = { squeue = 0, scontrol = 0, sacct = 0, sdiag = 0 }
  for cmd in (fs.read(dir .. "/calls.log") or ""):gmatch("%S+") do n[cmd] = (n[cmd] or 0) + 1 end
  os.remove(dir .. "/calls.log")
  return n
end

local JOB = [[
case "$1" in
  ranks) echo "rank $JOBRUN_NODE_RANK/$JOBRUN_NUM_NODES sky $SKYPILOT_NODE_RANK/$SKYPILOT_NUM_NODES" \
              "slurm $SLURM_PROCID on $SLURMD_NODENAME restarts $JOBRUN_RESTART_COUNT" ;;
  timeout) echo started; exec sleep 600 ;;
  requeue) if [ "$JOBRUN_RESTART_COUNT" = 0 ]; then echo first attempt; exit 3; fi; echo second attempt ;;
  fails) echo failing; exit 7 ;;
  ok) echo fine ;;
  sleep) sleep "$2"; echo slept ;;
esac
]]

tap.test("a matrix on the cluster: ranks, timeout, requeue, failure", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/s.lua", [[
condition "ranks" { args = { "ranks" }, expect = { status = "SUCCEEDED", restarts = 0 } }
condition "timeout" { args = { "timeout" }, timeout = "1m", expect = { status = "TIMEOUT", termination = "timeout" } }
condition "requeue" { args = { "requeue" }, expect = { status = "SUCCEEDED", restarts = 1 } }
condition "fails" { args = { "fails" }, expect = { status = "FAILED", exit_code = 7, restarts = 1 } }
suite "sl" {
  backend = "slurm",
  matrix = { nodes = { 1, 2, 4 }, condition = { "ranks" } },
  include = { { nodes = 1, condition = "timeout" }, { nodes = 1, condition = "requeue" },
              { nodes = 1, condition = "fails" } },
  name = "{suite}_{nodes}n_{condition}",
  run = "sh {suite_dir}/job.sh {args}",
  setup = "echo setup on $SLURMD_NODENAME",
  max_restarts = 1,
  timeout = "5m",
  slurm = { partition = "debug", extra_args = { "--comment=jobrun-test" } },
}
]])
  local code, out, err = h.sh(dir, env .. "jobrun run s.lua --run-id S --json")
  tap.is(code, 0, "every job ended as expected")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local doc = json.decode(out) or { jobs = {} }
  local jobs = {}
  for _, j in ipairs(doc.jobs) do jobs[j.name] = j end
  for _, n in ipairs({ 1, 2, 4 }) do
    local log = fs.read(dir .. "/" .. ((jobs["sl_" .. n .. "n_ranks"] or {}).log_path or "none")) or ""
    local seen = 0
    for r = 0, n - 1 do
      if log:find(string.format("%d: rank %d/%d sky %d/%d slurm %d on node%%d restarts 0", r, r, n, r, n, r)) then
        seen = seen + 1
      end
    end
    tap.is(seen, n, n .. " node(s): every rank's line, labelled, with the local backend's variables")
    local setups = 0
    for _ in log:gmatch("%d+: setup on node%d") do setups = setups + 1 end
    tap.is(setups, n, n .. " node(s): setup ran once on every node")
  end
  local t = jobs.sl_1n_timeout or {}
  tap.is({ t.status, t.native_status, t.termination_reason }, { "TIMEOUT", "TIMEOUT", "timeout" }, "timeout")
  local r = jobs.sl_1n_requeue or {}
  tap.is({ r.status, r.restart_count }, { "SUCCEEDED", 1 }, "a requeue counts as a restart")
  tap.like(fs.read(dir .. "/" .. (r.log_path or "none")) or "", "first attempt\n.*requeueing.*second attempt\n",
    "both attempts in the log")
  local f = jobs.sl_1n_fails or {}
  tap.is({ f.status, f.exit_code, f.native_status }, { "FAILED", 7, "FAILED" }, "a failing job, its exit code")
  local script = fs.read(dir .. "/.jobrun/runs/S/slurm/sl_2n_ranks.sbatch") or ""
  tap.like(script, "#SBATCH %-%-nodes=2\n", "the batch script is kept, with --nodes")
  tap.like(script, "#SBATCH %-%-time=0%-00:06:00\n", "--time: the timeout, grace and margin, in whole minutes")
  tap.like(script, "#SBATCH %-%-partition=debug\n.*#SBATCH %-%-comment=jobrun%-test\n", "slurm options")
  os.execute("rm -rf " .. h.q(dir))
end)

-- stopped(out) -> how many jobs kill stopped: killed (running) and withdrawn (never started).
local function stopped(out)
  return tonumber(out:match("Killed: (%d+)") or 0) + tonumber(out:match("Withdrawn %(never started%): (%d+)") or 0)
end

tap.test("kill cancels with one scancel", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/s.lua", [[
suite "k" { backend = "slurm", matrix = { i = { 1, 2, 3 } }, run = "sh {suite_dir}/job.sh sleep 300" }
]])
  local path = shims(dir)
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id K")), 0, "launched")
  local code, out = h.sh(dir, env .. path .. "jobrun kill K")
  tap.is(code, 0, "kill exits 0")
  tap.is(stopped(out), 3, "all three killed or withdrawn")
  tap.is(calls(dir).scancel, 1, "with one scancel")
  local jobs = h.jobs_by_name(h.state(dir))
  local a1, a2, a3 = tostring(jobs.k_1.native_id):match("^(%d+)_"), tostring(jobs.k_2.native_id):match("^(%d+)_"),
    tostring(jobs.k_3.native_id):match("^(%d+)_")
  tap.ok(a1 and a1 == a2 and a2 == a3, "the three were tasks of one array")
  tap.is({ jobs.k_1.status, jobs.k_2.status, jobs.k_3.status }, { "CANCELLED", "CANCELLED", "CANCELLED" },
    "followed to CANCELLED")
  local _, again = h.sh(dir, env .. "jobrun kill K")
  tap.like(again, "Already completed: 3", "a second kill finds them ended")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("kill reaches array tasks that never started (kill --only one, then the rest)", function()
  local dir = h.scratch()
  -- --begin keeps the tasks pending: the controller drops a pending task that scancel takes
  -- from its list at once, without a record of it.
  h.write(dir .. "/s.lua", [[
suite "p" { backend = "slurm", matrix = { i = { 1, 2, 3 } }, run = "true",
            slurm = { extra_args = { "--begin=now+600" } } }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id P")), 0, "launched")
  local code, out = h.sh(dir, env .. "jobrun kill P --only p_2")
  tap.is(code, 0, "kill --only exits 0")
  tap.like(out, "Killed: 0 · Withdrawn %(never started%): 1 ", "one withdrawn (it never started)")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.p_1.status, jobs.p_2.status, jobs.p_3.status }, { "PENDING", "CANCELLED", "PENDING" },
    "that one CANCELLED, the others still pending")
  local c2 = h.sh(dir, env .. "jobrun check P")
  jobs = h.jobs_by_name(h.state(dir))
  tap.is({ c2, jobs.p_2.status, jobs.p_2.termination_reason }, { 1, "CANCELLED", "cancelled" },
    "a later check keeps it CANCELLED (it is in no list of the controller's)")
  local _, out2 = h.sh(dir, env .. "jobrun kill P")
  tap.like(out2, "Killed: 0 · Withdrawn %(never started%): 2 · Already completed: 1", "kill: the other two")
  jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.p_1.status, jobs.p_2.status, jobs.p_3.status }, { "CANCELLED", "CANCELLED", "CANCELLED" },
    "all CANCELLED")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a controller restart mid-run fails no job", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/s.lua", [[
suite "c" { backend = "slurm", matrix = { i = { 1, 2 } }, run = "sh {suite_dir}/job.sh sleep 12" }
]])
  local penv = process.environ()
  penv.SLURM_CONF = conf
  penv.NO_COLOR = "1"
  local runner = assert(process.spawn({ argv = { h.bin, "run", "s.lua", "--run-id", "C" }, cwd = dir, env = penv,
                                        stdout = dir .. "/run.log", stderr = "stdout" }))
  tap.ok(h.eventually(function()
    local text = fs.read(dir .. "/.jobrun/runs/C/state.json") or ""
    local _, n = text:gsub('"native_status":"RUNNING"', "")
    return n == 2
  end, 20), "both jobs running")
  local running = h.jobs_by_name(h.state(dir))
  local a1, a2 = tostring(running.c_1.native_id):match("^(%d+)_0$"), tostring(running.c_2.native_id):match("^(%d+)_1$")
  tap.ok(a1 and a1 == a2, "as tasks 0 and 1 of one array")
  os.execute(daemon .. " stop-controller")
  local check_code, _, err = h.sh(dir, env .. "jobrun check C")
  tap.is(check_code, 3, "check during the outage: exit 3")
  tap.like(err, "the slurm backend could not be asked", "and says the controller is unreachable")
  process.sleep(4)
  os.execute(daemon .. " start-controller")
  local result = runner:wait(true)
  tap.is(result.exit_code, 0, "the run still passes")
  tap.like(fs.read(dir .. "/run.log") or "", "Verdict: 2 passed", "both jobs")
  runner:close()
  os.execute("rm -rf " .. h.q(dir))
end)

-- Outcomes that outlive the controller's memory. The test cluster's MinJobAge is 2 s: a job that
-- nobody asked about within it is gone from `scontrol show job`. Each test launches jobs (that
-- sleep first), SIGKILLs the detached driver so that nobody polls them, waits until the
-- controller has forgotten them, then asks `jobrun check` — through shims that count the
-- scontrol and sacct calls.

-- forgotten(ids): the controller answers, and knows none of these jobs any more.
local function forgotten(ids)
  for _, id in ipairs(ids) do
    local p = io.popen(env .. "scontrol show job " .. id .. " 2>&1")
    local out = p:read("a")
    p:close()
    if not out:find("Invalid job id specified", 1, true) then return false end
  end
  return true
end

local function wait_forgotten(ids)
  local deadline = process.now() + 120
  while process.now() < deadline do
    if forgotten(ids) then return true end
    process.sleep(1)
  end
  return false
end

-- kill_driver(dir, run_id) -> true once no detached driver of the run (`jobrun __drive`) is left:
-- it SIGKILLs one it finds, and waits until it has gone.
local function kill_driver(dir, run_id)
  for _, pid in ipairs(fs.list("/proc") or {}) do
    local f = pid:match("^%d+$") and io.open("/proc/" .. pid .. "/cmdline")
    local cmd = f and f:read("a") or ""
    if f then f:close() end
    local arg = cmd:match("%z__drive%z([^%z]+)")
    if arg and arg:match("/runs/" .. run_id .. "$") and (arg:sub(1, 1) ~= "/" or arg:find(dir, 1, true) == 1)
        and fs.realpath("/proc/" .. pid .. "/cwd") == dir then
      os.execute("kill -KILL " .. pid)
      return h.eventually(function() return h.gone(pid) end, 10)
    end
  end
  return true -- every job went to sbatch at launch: no driver was left to poll them
end

-- launch(dir, run_id, suite) -> the run's jobs by name (from state.json), their Slurm ids.
local function launch(dir, run_id, suite)
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/" .. run_id .. ".lua", suite)
  local code, out, err = h.sh(dir, env .. "jobrun launch " .. run_id .. ".lua --run-id " .. run_id)
  tap.is(code, 0, run_id .. ": launched")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local jobs = h.jobs_by_name(h.state(dir))
  local ids = {}
  for _, j in pairs(jobs) do ids[#ids + 1] = j.native_id end
  tap.ok(kill_driver(dir, run_id), run_id .. ": no driver (or it SIGKILLed) before the jobs end: nobody polls them")
  return jobs, ids
end

local FORGOTTEN = [[
condition "ok" { args = { "ok" } }
condition "fails" { args = { "fails" }, expect = { status = "FAILED", exit_code = 7 } }
condition "bad" { args = { "fails" } }
condition "requeue" { args = { "requeue" }, expect = { status = "SUCCEEDED", restarts = 1 } }
suite "f" {
  backend = "slurm", matrix = { condition = { "ok", "fails", "bad", "requeue" } },
  run = "sleep 3; sh {suite_dir}/job.sh {args}", max_restarts = 1,
}
]]

local function check_forgotten(jobs, source)
  local want = {
    f_ok = { "SUCCEEDED", "COMPLETED", 0, 0, "pass" },
    f_fails = { "FAILED", "FAILED", 7, 1, "pass" },
    f_bad = { "FAILED", "FAILED", 7, 1, "fail" },
    f_requeue = { "SUCCEEDED", "COMPLETED", 0, 1, "pass" },
  }
  for name, w in pairs(want) do
    local j = jobs[name] or {}
    tap.is({ j.status, j.native_status, j.exit_code, j.restart_count, j.verdict }, w,
      name .. ": " .. table.concat({ w[1], w[3], w[5] }, ", ") .. ", from " .. source)
    tap.ok(j.ended_at and j.started_at and j.duration_s, name .. ": with its times")
  end
end

tap.test("jobs the controller forgot are read from their exit-code files", function()
  local dir = h.scratch()
  local _, ids = launch(dir, "F", FORGOTTEN)
  tap.ok(wait_forgotten(ids), "the controller forgot all four jobs (MinJobAge)")
  local code, out, err = h.sh(dir, shims(dir) .. env .. "jobrun check F --json")
  tap.is(code, 1, "check exits 1 (a job failed its expectation), not 3")
  if code ~= 1 then tap.ok(false, "output", out .. err) end
  local doc = json.decode(out) or { jobs = {} }
  local jobs = {}
  for _, j in ipairs(doc.jobs) do jobs[j.name] = j end
  check_forgotten(jobs, "the exit-code file")
  tap.is(calls(dir), { squeue = 1, scontrol = 0, sacct = 0, sdiag = 0 }, "one squeue, no sacct: the files answered")
  local saved = h.jobs_by_name(h.state(dir))
  tap.is(saved.f_ok.slurm_source, "exitcode", "state.json says where the outcome came from")
  local lines = {}
  for line in (fs.read(dir .. "/.jobrun/runs/F/slurm/f_requeue.exitcode") or ""):gmatch("[^\n]+") do
    lines[#lines + 1] = json.decode(line) or {}
  end
  tap.is({ #lines, (lines[1] or {}).attempt, (lines[1] or {}).exit_code, (lines[1] or {}).final,
           (lines[2] or {}).attempt, (lines[2] or {}).exit_code, (lines[2] or {}).final },
         { 2, 1, 3, false, 2, 0, true }, "the requeued job's file: both attempts, the last one final")
  local names = fs.list(dir .. "/.jobrun/runs/F/slurm") or {}
  table.sort(names)
  tap.is(names, { "f_bad.exitcode", "f_fails.exitcode", "f_ok.array.0.log", "f_ok.array.1.log", "f_ok.array.2.log",
                  "f_ok.array.3.log", "f_ok.array.intent", "f_ok.array.sbatch", "f_ok.exitcode", "f_requeue.exitcode" },
    "one array script, its intent, its tasks' output links, four exit-code files, no temporary files left")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("without the exit-code files, one sacct call answers for all forgotten jobs", function()
  local dir = h.scratch()
  local _, ids = launch(dir, "A", FORGOTTEN)
  tap.ok(wait_forgotten(ids), "the controller forgot all four jobs (MinJobAge)")
  os.execute("rm -f " .. h.q(dir .. "/.jobrun/runs/A/slurm") .. "/*.exitcode")
  local code, out, err = h.sh(dir, shims(dir) .. env .. "jobrun check A --json")
  tap.is(code, 1, "check exits 1 (a job failed its expectation), not 3")
  if code ~= 1 then tap.ok(false, "output", out .. err) end
  local doc = json.decode(out) or { jobs = {} }
  local jobs = {}
  for _, j in ipairs(doc.jobs) do jobs[j.name] = j end
  check_forgotten(jobs, "sacct")
  tap.is(calls(dir), { squeue = 1, scontrol = 0, sacct = 1, sdiag = 0 }, "one squeue and one sacct for the four")
  tap.is(h.jobs_by_name(h.state(dir)).f_requeue.slurm_source, "sacct", "state.json says sacct answered")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a job that neither the controller, its file nor sacct knows is LOST", function()
  local dir = h.scratch()
  local suite = 'suite "l" { backend = "slurm", matrix = { i = { 1, 2 } }, run = "sleep 3; echo fine" }\n'
  local _, ids_u = launch(dir, "U", suite)
  local _, ids_v = launch(dir, "V", suite)
  local ids = {}
  for _, id in ipairs(ids_u) do ids[#ids + 1] = id end
  for _, id in ipairs(ids_v) do ids[#ids + 1] = id end
  tap.ok(wait_forgotten(ids), "the controller forgot the jobs (MinJobAge)")

  -- Run U, accounting on: l_1 has an id that Slurm never gave out, l_2 only its file.
  os.execute("rm -f " .. h.q(dir .. "/.jobrun/runs/U/slurm/l_1.exitcode"))
  local path = dir .. "/.jobrun/runs/U/state.json"
  local text = fs.read(path) or ""
  local one = h.jobs_by_name(json.decode(text) or { jobs = {} }).l_1 or {}
  fs.write_atomic(path, (text:gsub('"native_id":"' .. tostring(one.native_id) .. '"', '"native_id":"67000000"')))
  -- sacct may lag behind slurmctld: unknown to it, a job is LOST only once it has stayed
  -- unknown for 10 s (the backend's UNKNOWN_GRACE) with nothing queued for slurmdbd.
  local code, out, err = h.sh(dir, shims(dir) .. env .. "jobrun check U --json")
  tap.is(code, 3, "check U: sacct does not know l_1: not LOST yet, exit 3")
  tap.like(err, "sacct does not know 1 forgotten job%(s%) yet", "and says why")
  local jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  tap.is({ (jobs.l_1 or {}).status, (jobs.l_2 or {}).status }, { "PENDING", "SUCCEEDED" },
    "l_1 keeps its status; its neighbour is read from its file")
  tap.is(calls(dir), { squeue = 1, scontrol = 0, sacct = 1, sdiag = 1 }, "one squeue, one sacct, one sdiag")
  process.sleep(10.5)
  code, out = h.sh(dir, shims(dir) .. env .. "jobrun check U --json")
  tap.is(code, 1, "10 s later, check U exits 1: a job is lost")
  jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  tap.is({ (jobs.l_1 or {}).status, (jobs.l_1 or {}).native_status, (jobs.l_1 or {}).verdict },
    { "LOST", "NOT_IN_ACCOUNTING", "fail" }, "unknown to all three: LOST")
  tap.is(calls(dir), { squeue = 1, scontrol = 0, sacct = 1, sdiag = 1 },
    "sacct and sdiag were asked before it was called LOST")

  -- Run V, asked with a slurm.conf that says accounting is off: sacct refuses; l_1 (no file)
  -- is LOST, l_2 (its file) SUCCEEDED.
  local off = (fs.read(conf) or ""):gsub("AccountingStorageType=%S+", "AccountingStorageType=accounting_storage/none")
  h.write(dir .. "/off.conf", off)
  os.execute("rm -f " .. h.q(dir .. "/.jobrun/runs/V/slurm/l_1.exitcode"))
  code, out = h.sh(dir, shims(dir) .. "export SLURM_CONF=" .. h.q(dir .. "/off.conf") .. " && jobrun check V --json")
  tap.is(code, 1, "check V exits 1, not 3: accounting being off is no outage")
  jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  tap.is({ (jobs.l_1 or {}).status, (jobs.l_1 or {}).native_status }, { "LOST", "NOT_IN_CONTROLLER" },
    "accounting off, no file: LOST")
  tap.is({ (jobs.l_2 or {}).status, (jobs.l_2 or {}).exit_code }, { "SUCCEEDED", 0 },
    "accounting off, a file: SUCCEEDED")
  tap.is(calls(dir), { squeue = 1, scontrol = 0, sacct = 1, sdiag = 0 }, "sacct tried once")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("while slurmdbd is away, a forgotten job keeps its last known status", function()
  local dir = h.scratch()
  -- slurmdbd is down while the job runs and ends: the controller queues its records, and
  -- forgets the job all the same.
  os.execute(cluster .. " stop-slurmdbd")
  local ok, why = pcall(function()
    local suite = 'suite "d" { backend = "slurm", matrix = { i = { 1 } }, run = "sleep 3; echo fine" }\n'
    local _, ids = launch(dir, "D", suite)
    tap.ok(wait_forgotten(ids), "the controller forgot the job (MinJobAge)")
    os.execute("rm -f " .. h.q(dir .. "/.jobrun/runs/D/slurm") .. "/*.exitcode")
    local code, _, err = h.sh(dir, env .. "jobrun check D")
    tap.is(code, 3, "check during the accounting outage: exit 3")
    tap.like(err, "the slurm backend could not be asked %(sacct: ", "and says sacct could not be asked")
    tap.is(h.jobs_by_name(h.state(dir)).d_1.status, "PENDING", "the job keeps its last known status, not LOST")
  end)
  -- Back (whatever happened above), slurmdbd receives the queued records a little later; until
  -- then sacct does not know the job, which must not make it LOST.
  os.execute(cluster .. " start-slurmdbd")
  if not ok then error(why, 0) end
  local code, seen
  tap.ok(h.eventually(function()
    local _, err
    code, _, err = h.sh(dir, env .. "jobrun check D")
    local job = h.jobs_by_name(h.state(dir)).d_1
    if job.status == "LOST" then seen = seen or (tostring(job.native_status) .. ": " .. err) end
    return code ~= 3
  end, 90), "slurmdbd back: check answers")
  tap.is(seen, nil, "never LOST while slurmdbd caught up")
  local job = h.jobs_by_name(h.state(dir)).d_1
  tap.is({ code, job.status, job.slurm_source }, { 0, "SUCCEEDED", "sacct" }, "SUCCEEDED, from sacct")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a controller that does not answer is found before the run is created", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[suite "down" { backend = "slurm", run = "true" }]])
  local t0 = process.now()
  local code, _, err = h.sh(dir, "SLURM_CONF=/nonexistent/slurm.conf jobrun run s.lua")
  local took = process.now() - t0
  tap.is(code, 3, "exit 3")
  tap.ok(took < 20, string.format("within seconds (%.1fs), not sbatch's minute of retries", took))
  tap.like(err, "Slurm controller cannot be reached", "says so")
  tap.like(err, "SLURM_CONF=/nonexistent/slurm.conf", "with the configuration tried")
  tap.ok(not fs.stat(dir .. "/.jobrun/runs"), "and no run was created")
  local c2 = h.sh(dir, env .. "jobrun plan s.lua")
  tap.is(c2, 0, "plan does not need the controller")
end)

-- Job arrays: jobs of one resource shape go out as one sbatch --array; each task finds its own
-- command and variables by $SLURM_ARRAY_TASK_ID and writes its own log.

-- array_of(job) -> its array's id and its task id, when it went out in an array.
local function array_of(job)
  local a, t = tostring(job and job.native_id):match("^(%d+)_(%d+)$")
  return a, tonumber(t)
end

tap.test("200 jobs of one shape: one sbatch --array, and each log holds its own task's output", function()
  local dir = h.scratch()
  local path = shims(dir)
  h.write(dir .. "/s.lua", [[
local ids = {}
for i = 1, 200 do ids[i] = i end
suite "arr" {
  backend = "slurm", matrix = { i = ids }, timeout = "5m",
  env = { V = "v{i}", SAME = "same" },
  run = "echo task {i} is $JOBRUN_JOB_NAME with $V $SAME; env | grep -c '^JOBRUN_ARRAY_ENV_' || true",
}
]])
  local code, out, err = h.sh(dir, env .. path .. "jobrun run s.lua --run-id A200 --json")
  tap.is(code, 0, "all 200 passed")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local n = calls(dir)
  tap.is(n.sbatch, 1, "one sbatch for the 200 jobs")
  local doc = json.decode(out) or { jobs = {} }
  tap.is(#doc.jobs, 200, "200 jobs")
  local first = array_of(doc.jobs[1])
  local tasks, own, wrong = 0, 0, {}
  for k, j in ipairs(doc.jobs) do
    local a, t = array_of(j)
    if a == first and t == k - 1 then tasks = tasks + 1 end
    local i = j.name:match("^arr_(%d+)$")
    local log = fs.read(dir .. "/" .. (j.log_path or "none")) or ""
    -- Its own line, no stash variable left, nothing else.
    if log == string.format("0: task %s is arr_%s with v%s same\n0: 0\n", i, i, i) then
      own = own + 1
    elseif #wrong < 3 then
      wrong[#wrong + 1] = j.name .. ": " .. log
    end
  end
  tap.ok(first ~= nil, "the jobs' ids are array tasks: " .. tostring(doc.jobs[1] and doc.jobs[1].native_id))
  tap.is(tasks, 200, "job k is task k - 1 of that one array")
  tap.is(own, 200, "every log holds its own task's output alone, with its own variables")
  if own ~= 200 then tap.ok(false, "logs", table.concat(wrong, "\n")) end
  local script = fs.read(dir .. "/.jobrun/runs/A200/slurm/arr_1.array.sbatch") or ""
  tap.like(script, "^#!/bin/sh\n# jobrun: 200 jobs of run A200 as one Slurm array", "the array's script is kept")
  tap.ok(not script:find("v17", 1, true), "a task's values are not in the script (they come in sbatch's environment)")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a group larger than the controller's MaxArraySize is split into arrays", function()
  local dir = h.scratch()
  local path = shims(dir)
  local p = io.popen(env .. "scontrol show config")
  local max = tonumber((p:read("a") or ""):match("MaxArraySize%s*=%s*(%d+)"))
  p:close()
  tap.is(max, 201, "the test cluster's MaxArraySize (tests/slurm/cluster.sh)")
  max = max or 201
  h.write(dir .. "/s.lua", string.format([[
local ids = {}
for i = 1, %d do ids[i] = i end
suite "big" { backend = "slurm", matrix = { i = ids }, run = "echo {i}", timeout = "5m" }
]], max + 2))
  local code, out, err = h.sh(dir, env .. path .. "jobrun run s.lua --run-id BIG --json")
  tap.is(code, 0, "all passed")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local n = calls(dir)
  tap.is({ n.sbatch, n.scontrol >= 1 }, { 2, true }, "two sbatch (MaxArraySize read with scontrol)")
  local jobs = (json.decode(out) or { jobs = {} }).jobs
  local first, second = array_of(jobs[1]), array_of(jobs[max + 1])
  local in_first, in_second = 0, 0
  for k, j in ipairs(jobs) do
    local a, t = array_of(j)
    if k <= max and a == first and t == k - 1 then in_first = in_first + 1 end
    if k > max and a == second and t == k - max - 1 then in_second = in_second + 1 end
  end
  tap.ok(first and second and first ~= second, "two arrays")
  tap.is({ in_first, in_second }, { max, 2 },
    "the first holds MaxArraySize tasks (0 … MaxArraySize - 1), the second the rest")
  local last = jobs[#jobs] or {}
  tap.is(fs.read(dir .. "/" .. (last.log_path or "none")), string.format("0: %d\n", max + 2), "each log its own")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("jobs whose variables would not fit in one sbatch's environment go out as two arrays", function()
  local dir = h.scratch()
  local path = shims(dir)
  -- Six values of 90 KB each, one per task: 540 KB, over the 512 KB an array's stash may take.
  h.write(dir .. "/s.lua", [=[
suite "env" {
  backend = "slurm", matrix = { i = { 1, 2, 3, 4, 5, 6 } }, timeout = "5m",
  env = { BIG = string.rep("x", 90000) .. "{i}" },
  run = [[echo "length ${#BIG}, ends in ${BIG#"${BIG%?}"}"]],
}
]=])
  local code, out, err = h.sh(dir, env .. path .. "jobrun run s.lua --run-id ENV --json")
  tap.is(code, 0, "all passed")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  tap.is(calls(dir).sbatch, 2, "two sbatch")
  local jobs = (json.decode(out) or { jobs = {} }).jobs
  local ids = {}
  for k, j in ipairs(jobs) do ids[k] = (array_of(j)) end
  tap.ok(ids[1] and ids[1] == ids[3] and ids[4] == ids[6] and ids[1] ~= ids[4], "three tasks in each of two arrays")
  local right = 0
  for k, j in ipairs(jobs) do
    if fs.read(dir .. "/" .. (j.log_path or "none")) == string.format("0: length 90001, ends in %d\n", k) then
      right = right + 1
    end
  end
  tap.is(right, 6, "every task got its own 90 KB value")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a mixed-shape suite: one array per shape, a unique shape alone", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  local path = shims(dir)
  h.write(dir .. "/s.lua", [[
suite "mix" {
  backend = "slurm", matrix = { nodes = { 1, 2 }, i = { 1, 2, 3 } },
  include = { { nodes = 4, i = 9 } },
  run = "sh {suite_dir}/job.sh ranks", timeout = "5m",
}
]])
  local code, out, err = h.sh(dir, env .. path .. "jobrun run s.lua --run-id MIX --json")
  tap.is(code, 0, "all passed")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  tap.is(calls(dir).sbatch, 3, "three sbatch: an array for 1 node, one for 2 nodes, the 4-node job alone")
  local jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  local one, two = array_of(jobs.mix_1_1), array_of(jobs.mix_2_1)
  tap.ok(one and two and one ~= two, "1-node and 2-node jobs are in two arrays")
  tap.is({ array_of(jobs.mix_1_2), array_of(jobs.mix_1_3), array_of(jobs.mix_2_2), (array_of(jobs.mix_2_3)) },
    { one, one, two, two }, "each job in its shape's array")
  tap.like(tostring(jobs.mix_4_9 and jobs.mix_4_9.native_id), "^%d+$", "the unique shape is a plain job")
  for name, n in pairs({ mix_1_2 = 1, mix_2_3 = 2, mix_4_9 = 4 }) do
    local log = fs.read(dir .. "/" .. ((jobs[name] or {}).log_path or "none")) or ""
    local _, lines = log:gsub("rank %d/" .. n .. " ", "")
    tap.is(lines, n, name .. ": " .. n .. " rank line(s), on " .. n .. " node(s)")
  end
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a requeue of one array task", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/s.lua", [[
condition "ok" { args = { "ok" } }
condition "requeue" { args = { "requeue" }, expect = { status = "SUCCEEDED", restarts = 1 } }
suite "rq" {
  backend = "slurm", matrix = { condition = { "ok", "requeue", "ok2" } }, max_restarts = 1, timeout = "5m",
  run = "sh {suite_dir}/job.sh {args}",
}
condition "ok2" { args = { "ok" } }
]])
  local code, out, err = h.sh(dir, env .. "jobrun run s.lua --run-id RQ --json")
  tap.is(code, 0, "passed")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  local a = array_of(jobs.rq_ok)
  tap.ok(a and a == array_of(jobs.rq_requeue) and a == array_of(jobs.rq_ok2), "three tasks of one array")
  tap.is({ (jobs.rq_ok or {}).restart_count, (jobs.rq_requeue or {}).restart_count, (jobs.rq_ok2 or {}).restart_count },
    { 0, 1, 0 }, "the failing task alone was requeued")
  tap.like(fs.read(dir .. "/" .. ((jobs.rq_requeue or {}).log_path or "none")) or "",
    "first attempt\n.*requeueing.*second attempt\n", "both of its attempts in its log")
  tap.ok(not (fs.read(dir .. "/" .. ((jobs.rq_ok or {}).log_path or "none")) or "attempt"):find("attempt"),
    "the other tasks' logs hold none of it")
  local lines = {}
  for line in (fs.read(dir .. "/.jobrun/runs/RQ/slurm/rq_requeue.exitcode") or ""):gmatch("[^\n]+") do
    local rec = json.decode(line) or {}
    lines[#lines + 1] = { rec.job_id, rec.attempt, rec.final }
  end
  tap.is(lines, { { jobs.rq_requeue.native_id, 1, false }, { jobs.rq_requeue.native_id, 2, true } },
    "its exit-code file records both attempts under the task's id")
  os.execute("rm -rf " .. h.q(dir))
end)

return tap.done()
