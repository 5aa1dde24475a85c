-- The Slurm backend under real conditions (issue 22), on the shared test cluster
-- (tests/slurm/cluster.sh): node failures, Slurm's own requeue, short timeouts, names and paths
-- sbatch's directive parser cannot take, jobs cancelled from outside, jobs that will never
-- start, an interrupted launch, durations across a controller outage, sbatch's rejections.
-- A test that changes the cluster (a node down, a partition limit) restores it before it ends.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local process = require "jobrun.c.process"

local test_cluster = h.slurm_cluster(tap)
if not test_cluster then return tap.done() end
local cluster, daemon, conf, env = test_cluster.cluster, test_cluster.daemon, test_cluster.conf, test_cluster.env

local function slurm(cmd)
  local p = io.popen(env .. cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local function null(v) return v == nil or v == json.null end

-- run_state(dir, id) -> the run's state.json, decoded (nil while it is not there).
local function run_state(dir, id)
  return json.decode(fs.read(dir .. "/.jobrun/runs/" .. id .. "/state.json") or "")
end

local function jobs_of(dir, id)
  local out = {}
  for _, j in ipairs((run_state(dir, id) or { jobs = {} }).jobs) do out[j.name] = j end
  return out
end

-- until_status(dir, id, want, seconds): every job of the run has a native id and one of
-- these statuses, as `jobrun check` finds them (asked every half second).
local function until_status(dir, id, want, seconds)
  return h.eventually(function()
    process.sleep(0.5)
    h.sh(dir, env .. "jobrun check " .. id)
    local data = run_state(dir, id)
    if not data or #data.jobs == 0 then return false end
    for _, j in ipairs(data.jobs) do
      if not j.native_id or not want[j.status] then return false end
    end
    return true
  end, seconds)
end

-- a shim directory whose sbatch logs each call to dir/sbatch.calls (and runs `extra` after a
-- successful one), ahead of the real one on PATH.
local function sbatch_shim(dir, extra)
  assert(fs.mkdir_p(dir .. "/shims"))
  local p = io.popen("command -v sbatch")
  local real = p:read("l")
  p:close()
  h.write(dir .. "/shims/sbatch", string.format(
    '#!/bin/sh\necho call >> %s\nout=$(%s "$@")\nrc=$?\nprintf "%%s\\n" "$out"\n%s\nexit $rc\n',
    h.q(dir .. "/sbatch.calls"), h.q(real), extra or ""))
  os.execute("chmod +x " .. h.q(dir .. "/shims/sbatch"))
  return "export PATH=" .. h.q(dir .. "/shims") .. ":\"$PATH\" && "
end

local function count_lines(path)
  local n = 0
  for _ in (fs.read(path) or ""):gmatch("[^\n]+") do n = n + 1 end
  return n
end

tap.test("retry on a node failure (issue 28): a new attempt with --exclude of the failed node", function()
  local dir = h.scratch()
  h.write(dir .. "/r.lua", [[
suite "rx" { backend = "slurm", name = "{suite}", timeout = "2m",
  retry = { on = { "node_fail" }, max = 1, exclude_node = true },
  run = "if [ -e {suite_dir}/first ]; then echo second on $SLURMD_NODENAME; else touch {suite_dir}/first; "
    .. "echo first on $SLURMD_NODENAME; sleep 60; fi" }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch r.lua --run-id R")), 0, "launched")
  tap.ok(until_status(dir, "R", { RUNNING = true }, 30), "running")
  local first
  h.eventually(function()
    local j = jobs_of(dir, "R").rx
    first = j and type(j.nodes) == "string" and j.nodes or nil
    return first ~= nil
  end, 20)
  tap.like(first or "", "^node%d$", "on one node: " .. tostring(first))
  slurm("scontrol update nodename=" .. tostring(first) .. " state=down reason=jobrun-test")
  local code, out = h.sh(dir, env .. "timeout 150 " .. h.q(h.bin) .. " wait R --json")
  slurm("scontrol update nodename=" .. tostring(first) .. " state=resume")
  tap.ok(h.eventually(function() return os.execute(cluster .. " status") end, 60), tostring(first) .. " back")
  tap.is(code, 0, "wait: the job passed after its retry")
  local j = ((json.decode(out) or {}).jobs or {})[1] or {}
  local a = (j.attempts or {})[1] or {}
  tap.is({ a.status, a.termination_reason, a.cause_class, a.nodes }, { "FAILED", "node_fail", "infrastructure", first },
    "the first attempt: a node failure, of the infrastructure, on that node")
  tap.is({ j.status, j.verdict, j.retries }, { "SUCCEEDED", "pass", 1 }, "the retry passed")
  tap.ok(type(j.nodes) == "string" and j.nodes ~= first, "on another node: " .. tostring(j.nodes))
  tap.like(fs.read(dir .. "/" .. (j.log_path or "none")) or "", "second on " .. tostring(j.nodes), "its log says so")
  local scripts = select(2, h.sh(dir, "cat .jobrun/runs/R/slurm/*.sbatch"))
  tap.like(scripts, "%-%-exclude=" .. tostring(first),
    "the new attempt went to sbatch with --exclude=" .. tostring(first))
  local _, text = h.sh(dir, env .. "jobrun check R")
  tap.like(text, "pass after 1 retry %(node_fail on " .. tostring(first) .. "%)", "the table says it")
end)

tap.test("GPU-hours from what Slurm allocated (gres/gpu on the test cluster, issue 28)", function()
  local dir = h.scratch()
  h.write(dir .. "/g.lua", [[
suite "gp" { backend = "slurm", name = "{suite}", nodes = 2, gpus = 1, slurm = { gres = "gpu:2" },
  run = "sleep 3; echo done" }
]])
  local code, out = h.sh(dir, env .. "jobrun run g.lua --run-id G --json")
  tap.is(code, 0, "the job passes")
  local j = ((json.decode(out) or {}).jobs or {})[1] or {}
  local d = tonumber(j.duration_s) or 0
  tap.ok(d >= 3, "it ran for its 3 s: " .. tostring(d))
  -- 2 GPUs a node (Slurm's allocation, over the suite's gpus = 1) × 2 nodes × its hours
  tap.is(j.gpu_hours, math.floor(2 * 2 * d / 3600 * 10000 + 0.5) / 10000, "2 GPUs × 2 nodes × its duration")
  local _, text = h.sh(dir, env .. "jobrun check G")
  tap.like(text, "GPU: " .. tostring(j.gpu_hours):gsub("%.", "%%.") .. " GPU%-hours", "the total under the table")
end)

tap.test("a node failure has no exit code and does not pass; Slurm does not requeue it", function()
  local dir = h.scratch()
  h.write(dir .. "/a.lua", [[
suite "a2d" { backend = "slurm", name = "{suite}", timeout = "2m", run = "echo start; sleep 20; echo done",
  expect = { exit_code = 0 }, slurm = { extra_args = { "--nodelist=node4" } } }
]])
  h.write(dir .. "/b.lua", [[
suite "b2d" { backend = "slurm", name = "{suite}", timeout = "2m", max_restarts = 1,
  run = "echo attempt $JOBRUN_ATTEMPT; sleep 20; echo done", slurm = { extra_args = { "--nodelist=node4" } } }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch a.lua --run-id A")), 0, "launched a2d")
  tap.is(select(1, h.sh(dir, env .. "jobrun launch b.lua --run-id B")), 0, "launched b2d (max_restarts = 1)")
  local running = until_status(dir, "A", { RUNNING = true }, 30) and until_status(dir, "B", { RUNNING = true }, 30)
  tap.ok(running, "both running on node4")
  slurm("scontrol update nodename=node4 state=down reason=jobrun-test")
  -- (a bound for a hang only: a loaded machine may take the controller a while to see the node go)
  local ca, outa = h.sh(dir, env .. "timeout 300 " .. h.q(h.bin) .. " wait A --json")
  local cb, outb = h.sh(dir, env .. "timeout 300 " .. h.q(h.bin) .. " wait B --json")
  slurm("scontrol update nodename=node4 state=resume")
  tap.ok(h.eventually(function() return os.execute(cluster .. " status") end, 60), "node4 back")
  tap.is(ca, 1, "wait: the job failed (not 0, and not stopped by timeout)")
  local a = ((json.decode(outa) or {}).jobs or {})[1] or {}
  tap.is({ a.status, a.native_status, a.termination_reason, a.verdict }, { "FAILED", "NODE_FAIL", "node_fail", "fail" },
    "FAILED by a node failure, verdict fail")
  tap.ok(null(a.exit_code) and null(a.backend_exit_code), "no exit code (Slurm's 0:0 is not the job's)")
  tap.is(a.nodes, "node4", "the attempt's nodes (NodeList)")
  tap.ok(not (fs.read(dir .. "/" .. (a.log_path or "none")) or ""):find("done"), "the job never finished")
  local _, text = h.sh(dir, env .. "jobrun check A")
  tap.like(text, "slurm job " .. tostring(a.native_id), "the failure summary names the Slurm job id")
  tap.is(cb, 1, "wait B: failed")
  local b = ((json.decode(outb) or {}).jobs or {})[1] or {}
  tap.is({ b.status, b.native_status, b.restart_count }, { "FAILED", "NODE_FAIL", 0 },
    "max_restarts = 1: Slurm did not requeue it on the node failure")
  local log = fs.read(dir .. "/" .. (b.log_path or "none")) or ""
  tap.ok(log:find("attempt 1") and not log:find("attempt 2"), "one attempt ran")
  tap.like(fs.read(dir .. "/.jobrun/runs/B/slurm/b2d.sbatch") or "", "#SBATCH %-%-no%-requeue\n",
    "the script says --no-requeue")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a timeout under a minute is the suite's: TERM, grace, KILL from the batch script", function()
  local dir = h.scratch()
  -- "stubborn" ignores TERM (its sleep inherits the ignore): only the KILL that follows ends it.
  -- 15 s, not less: under load, the step may take seconds to start, and the job must have begun.
  h.write(dir .. "/t.sh", [[
echo begin
if [ "$1" = stubborn ]; then trap '' TERM; fi
sleep 60
echo ran-to-the-end
]])
  h.write(dir .. "/s.lua", [[
suite "to" { backend = "slurm", matrix = { kind = { "plain", "stubborn" } }, timeout = "15s",
  run = "sh {suite_dir}/t.sh {kind}", slurm = { grace = 3 }, name = "{suite}_{kind}",
  expect = { status = "TIMEOUT", termination = "timeout" } }
]])
  local _, plan = h.sh(dir, env .. "jobrun plan s.lua")
  tap.like(plan, "Timeouts on Slurm: the batch script ends the job's step at the timeout",
    "plan says how the timeout maps on Slurm")
  local t0 = process.now()
  local code, out, err = h.sh(dir, env .. "timeout 120 " .. h.q(h.bin) .. " run s.lua --run-id T --json")
  local took = process.now() - t0
  tap.is(code, 0, "both TIMEOUT, as expected" .. (code ~= 0 and (": " .. out .. err) or ""))
  tap.ok(took < 55, string.format("at the suite's timeout, not Slurm's minute (%.0f s)", took))
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do
    tap.is({ j.status, j.termination_reason }, { "TIMEOUT", "timeout" }, j.name .. ": TIMEOUT")
    tap.ok(j.duration_s and j.duration_s >= 15 and j.duration_s <= 25, j.name .. ": its duration is the timeout's ("
      .. tostring(j.duration_s) .. ")")
    local log = fs.read(dir .. "/" .. j.log_path) or ""
    tap.ok(log:find("begin") and not log:find("ran-to-the-end", 1, true), j.name .. ": stopped in its sleep", log)
    tap.like(log, "%[jobrun%] timeout", j.name .. ": the log says why")
  end
  tap.like(fs.read(dir .. "/.jobrun/runs/T/slurm/to_plain.array.sbatch") or "", "#SBATCH %-%-time=0%-00:01:00\n",
    "Slurm's limit: the timeout, grace and margin, rounded up to a minute")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("names with a space, quotes and %, in a state directory with a space", function()
  local dir = h.scratch() .. "/my proj"
  assert(fs.mkdir_p(dir))
  h.write(dir .. "/s.lua", [==[
suite "nm" { backend = "slurm", matrix = { n = { "a b", "sq'x", 'dq"x', "p%x" } }, name = "{n}",
  include = { { n = [[solo 'q" %]], nodes = 2 } },
  env = { N = "{n}" }, run = 'echo "out-$N"', timeout = "2m" }
]==])
  local code, out, err = h.sh(dir, env .. "timeout 120 " .. h.q(h.bin) .. " run s.lua --run-id N --json")
  tap.is(code, 0, "every job ran")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local seen = 0
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do
    seen = seen + 1
    tap.is(j.status, "SUCCEEDED", j.name)
    local log = fs.read(dir .. "/" .. j.log_path) or ""
    local _, n = log:gsub("out%-" .. j.name:gsub("%p", "%%%0"), "")
    tap.ok(n >= 1, j.name .. ": its own output in its log")
  end
  tap.is(seen, 5, "five jobs (four in an array, one alone)")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a pending array task cancelled from outside is CANCELLED, not started", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "x" { backend = "slurm", matrix = { i = { 1, 2, 3 } }, run = "true",
            slurm = { extra_args = { "--begin=now+600" } } }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id X")), 0, "launched")
  tap.ok(until_status(dir, "X", { PENDING = true }, 20), "pending")
  local id = jobs_of(dir, "X").x_2.native_id
  slurm("scancel " .. id)
  local x
  tap.ok(h.eventually(function()
    h.sh(dir, env .. "jobrun check X")
    x = jobs_of(dir, "X").x_2
    return x.status ~= "PENDING"
  end, 60), "it ends")
  tap.is({ x.status, x.termination_reason }, { "CANCELLED", "cancelled" },
    "CANCELLED (" .. tostring(x.native_status) .. ")")
  tap.ok(null(x.started_at) and null(x.exit_code), "no start, no exit code")
  local others = jobs_of(dir, "X")
  tap.is({ others.x_1.status, others.x_3.status }, { "PENDING", "PENDING" }, "the other tasks still pending")
  h.sh(dir, env .. "jobrun kill X")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("jobs that will never start: LAUNCH_FAILED with the reason, cancelled on Slurm", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
condition "wide" { }
condition "long" { timeout = "5m" }
suite "hp" { backend = "slurm", matrix = { condition = { "wide", "long" } }, name = "{suite}_{condition}",
  include = { { condition = "wide", nodes = 8 } },
  run = "true", expect = { status = "LAUNCH_FAILED" } }
]])
  -- A partition limit for the test; Slurm's default (EnforcePartLimits=NO) lets the job pend.
  slurm("scontrol update partitionname=debug maxtime=1")
  local code, out, err = h.sh(dir, env .. "timeout 60 " .. h.q(h.bin) .. " run s.lua --run-id H --json")
  slurm("scontrol update partitionname=debug maxtime=UNLIMITED")
  tap.like(slurm("scontrol show partition debug"), "MaxTime=UNLIMITED", "the partition's limit restored")
  tap.is(code, 0, "run ends, both LAUNCH_FAILED as expected")
  if code ~= 0 then tap.ok(false, "output", out .. err) end
  local jobs = {}
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do jobs[j.name] = j end
  local wide, long = jobs.hp_wide or { fields = {} }, jobs.hp_long or { fields = {} }
  tap.is({ wide.status, long.status }, { "LAUNCH_FAILED", "LAUNCH_FAILED" }, "LAUNCH_FAILED")
  tap.like(tostring(wide.fields.launch_error), "^PartitionNodeLimit: it asks for more nodes", "8 nodes on 4: why")
  tap.like(tostring(long.fields.launch_error), "^PartitionTimeLimit: its time limit is beyond", "beyond MaxTime: why")
  tap.is(wide.pending_reason, "PartitionNodeLimit", "pending_reason in --json")
  local ids = tostring(wide.native_id) .. "," .. tostring(long.native_id)
  tap.is(slurm("squeue -h -j " .. ids .. " -t PD,R"), "", "cancelled on Slurm")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("pending reason in the table; max_pending cancels a job pending too long", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "mp" { backend = "slurm", name = "{suite}", run = "true", max_pending = "8s",
  slurm = { extra_args = { "--begin=now+600" } } }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id M")), 0, "launched")
  local text
  tap.ok(h.eventually(function()
    text = select(2, h.sh(dir, env .. "jobrun check M"))
    return text:find("PENDING (BeginTime)", 1, true) ~= nil
  end, 8), "check shows PENDING (BeginTime)")
  local code = h.sh(dir, env .. "timeout 60 " .. h.q(h.bin) .. " wait M")
  tap.is(code, 1, "wait ends: the job failed")
  local j = jobs_of(dir, "M").mp or { fields = {} }
  tap.is(j.status, "LAUNCH_FAILED", "LAUNCH_FAILED")
  tap.is(j.fields.launch_error, "pending for 8s: BeginTime", "with how long and why")
  tap.is(slurm("squeue -h -j " .. tostring(j.native_id)), "", "cancelled on Slurm")
  local _, summary = h.sh(dir, env .. "jobrun check M")
  tap.like(summary, "launch error: pending for 8s: BeginTime", "the failure summary says so")
  tap.like(summary, "· pending BeginTime", "and the pending reason")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("an interrupted launch: the next one adopts what was submitted, never submits it twice", function()
  local dir = h.scratch()
  local ids = {}
  for i = 1, 300 do ids[i] = i end
  h.write(dir .. "/s.lua", string.format([[
suite "il" { backend = "slurm", matrix = { i = { %s } }, run = "echo task {i}", timeout = "5m" }
]], table.concat(ids, ", ")))
  -- SIGKILL the launching process just after Slurm accepted its first sbatch.
  local path = sbatch_shim(dir, string.format('[ $rc = 0 ] && [ ! -e %s ] && : > %s && kill -KILL $PPID',
    h.q(dir .. "/killed"), h.q(dir .. "/killed")))
  h.sh(dir, env .. path .. "jobrun launch s.lua --run-id I")
  tap.is(count_lines(dir .. "/sbatch.calls"), 1, "killed after the first sbatch")
  local data = run_state(dir, "I") or { jobs = {} }
  local with_id = 0
  for _, j in ipairs(data.jobs) do if j.native_id then with_id = with_id + 1 end end
  tap.is(with_id, 0, "state.json has no Slurm id")
  local code, out, err = h.sh(dir, env .. path .. "timeout 900 " .. h.q(h.bin) .. " wait I --json")
  tap.is(code, 0, "wait: all 300 passed")
  if code ~= 0 then tap.ok(false, "output", (out .. err):sub(-2000)) end
  tap.is(count_lines(dir .. "/sbatch.calls"), 2, "one more sbatch: the second array only")
  local once, n = 0, 0
  for _, j in ipairs((json.decode(out) or { jobs = {} }).jobs) do
    n = n + 1
    local log = fs.read(dir .. "/" .. j.log_path) or ""
    local _, k = log:gsub("task %d+", "")
    if k == 1 and log:find("task " .. j.params.i .. "\n", 1, true) then once = once + 1 end
  end
  tap.is({ n, once }, { 300, 300 }, "each log holds its own task's line once")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("a duration is the job's own, not the controller's across an outage", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "du" { backend = "slurm", name = "{suite}", run = "sleep 8", timeout = "2m" }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id D")), 0, "launched")
  tap.ok(until_status(dir, "D", { RUNNING = true }, 30), "running")
  os.execute(daemon .. " stop-controller")
  process.sleep(15)
  os.execute(daemon .. " start-controller")
  local code, out = h.sh(dir, env .. "timeout 120 " .. h.q(h.bin) .. " wait D --json")
  tap.is(code, 0, "it passed")
  local j = ((json.decode(out) or {}).jobs or {})[1] or {}
  tap.ok(j.duration_s and j.duration_s >= 7 and j.duration_s <= 10,
    "duration_s is the job's 8 s, not the outage's (" .. tostring(j.duration_s) .. ")")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("sbatch's rejections: not retried, said on one line", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "rj" { backend = "slurm", name = "{suite}", run = "true", slurm = { partition = "nosuchpartition" } }
]])
  local path = sbatch_shim(dir)
  local code, out, err = h.sh(dir, env .. path .. "timeout 60 " .. h.q(h.bin) .. " run s.lua --run-id R")
  tap.is(code, 1, "the job failed")
  tap.is(count_lines(dir .. "/sbatch.calls"), 1, "sbatch asked once: an invalid partition stays invalid")
  local text = out .. err
  tap.like(text, "launch error: sbatch: error: invalid partition specified: nosuchpartition; "
    .. "error: Batch job submission failed: Invalid partition name specified\n", "sbatch's words, on one line")
  tap.ok(not text:find("sbatch: sbatch:", 1, true), "no doubled sbatch:")
  tap.ok(not text:find("\\n", 1, true), "no literal \\n")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.test("SIGTERM: pending jobs are not counted as running", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "st" { backend = "slurm", name = "{suite}", run = "true", slurm = { extra_args = { "--begin=now+600" } } }
]])
  local penv = process.environ()
  penv.SLURM_CONF, penv.NO_COLOR = conf, "1"
  local runner = assert(process.spawn({ argv = { h.bin, "run", "s.lua", "--run-id", "S" }, cwd = dir, env = penv,
                                        stdout = dir .. "/run.log", stderr = "stdout" }))
  tap.ok(until_status(dir, "S", { PENDING = true }, 20), "submitted, pending")
  runner:kill("TERM")
  runner:wait(true)
  runner:close()
  local said = fs.read(dir .. "/run.log") or ""
  tap.like(said, "the pending job stays queued", "0 running, 1 pending")
  h.sh(dir, env .. "jobrun kill S")
  os.execute("rm -rf " .. h.q(dir))
end)

tap.done()
