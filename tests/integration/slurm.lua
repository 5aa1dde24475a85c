-- The Slurm backend against a real cluster on loopback (tests/slurm/cluster.sh: slurmctld and
-- four slurmd). `make test` and .ci/run start it; without it these tests fail, they do not skip.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"
local process = require "jobrun.c.process"

local top = os.getenv("JOBRUN_TOP")
local cluster = "sh " .. h.q(top .. "/tests/slurm/cluster.sh")
-- The shared cluster's daemons outlive this file: the controller the outage test restarts gets
-- neither this file's tag nor its scratch directory (tests/exec) as TMPDIR.
local daemon = "env -u JOBRUN_TEST_TAG -u JOBRUN_TEST_SCRATCH -u TMPDIR " .. cluster
local up = os.execute(cluster .. " status")
tap.ok(up, "the Slurm test cluster is up (tests/slurm/cluster.sh start)")
if not up then return tap.done() end
local conf = (io.popen(cluster .. " env"):read("a")):match("SLURM_CONF=(%S+)")
local env = "export SLURM_CONF=" .. h.q(conf) .. " && "

local JOB = [[
case "$1" in
  ranks) echo "rank $JOBRUN_NODE_RANK/$JOBRUN_NUM_NODES sky $SKYPILOT_NODE_RANK/$SKYPILOT_NUM_NODES" \
              "slurm $SLURM_PROCID on $SLURMD_NODENAME restarts $JOBRUN_RESTART_COUNT" ;;
  timeout) echo started; exec sleep 600 ;;
  requeue) if [ "$JOBRUN_RESTART_COUNT" = 0 ]; then echo first attempt; exit 3; fi; echo second attempt ;;
  fails) echo failing; exit 7 ;;
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
  tap.like(script, "#SBATCH %-%-time=0%-00:05:00\n", "--time from timeout")
  tap.like(script, "#SBATCH %-%-partition=debug\n.*#SBATCH %-%-comment=jobrun%-test\n", "slurm options")
end)

tap.test("kill cancels with one scancel", function()
  local dir = h.scratch()
  h.write(dir .. "/job.sh", JOB)
  h.write(dir .. "/s.lua", [[
suite "k" { backend = "slurm", matrix = { i = { 1, 2, 3 } }, run = "sh {suite_dir}/job.sh sleep 300" }
]])
  tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id K")), 0, "launched")
  local code, out = h.sh(dir, env .. "jobrun kill K")
  tap.is(code, 0, "kill exits 0")
  tap.like(out, "Killed: 3 ", "all three killed")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.k_1.status, jobs.k_2.status, jobs.k_3.status }, { "CANCELLED", "CANCELLED", "CANCELLED" },
    "followed to CANCELLED")
  local _, again = h.sh(dir, env .. "jobrun kill K")
  tap.like(again, "Already completed: 3", "a second kill finds them ended")
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
  os.execute(daemon .. " stop-controller")
  local check_code, _, err = h.sh(dir, env .. "jobrun check C")
  tap.is(check_code, 3, "check during the outage: exit 3")
  tap.like(err, "the slurm backend could not be asked", "and says the controller is unreachable")
  process.sleep(4)
  os.execute(daemon .. " start-controller")
  local result = runner:wait(true)
  tap.is(result.exit_code, 0, "the run still passes")
  tap.like(fs.read(dir .. "/run.log") or "", "Verdict: 2 passed", "both jobs")
end)

return tap.done()
