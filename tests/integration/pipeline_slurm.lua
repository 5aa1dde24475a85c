-- One run holding jobs of all three backends (issue 27): local, the real Slurm test cluster
-- (tests/slurm/cluster.sh) and SkyPilot (the fake API server). A field passes from the Slurm job
-- to a local one and from the SkyPilot job to a Slurm one; check and kill act on the jobs of all
-- three. (Its name holds "slurm": it takes its turn on the cluster with the other Slurm files.)
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local slurm = h.slurm_cluster(tap)
if not slurm then return tap.done() end
local conf = slurm.conf

local function env(f)
  return "export SLURM_CONF=" .. h.q(conf) .. " SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(f.url) .. " && "
end

tap.test("local, Slurm and SkyPilot jobs in one run; fields across backends", function()
  local dir = h.scratch()
  local f = h.fake_skypilot(dir)
  h.write(dir .. "/p.lua", [[
parser "greeting" { contains = "hello from", pattern = "hello from (%S+)", field = "greeting" }
parser "where" { contains = "ran on", pattern = "ran on (%S+)", field = "where" }
suite "remote" { backend = "skypilot", run = "python train.py", env = { FAKE_OUTCOME = "succeed" } }
suite "cluster" {
  backend = "slurm", needs = { "remote" },
  run = "echo got {needs.remote.fields.greeting}; echo ran on $SLURMD_NODENAME",
}
suite "here" { needs = { "cluster" }, run = "echo evaluating {needs.cluster.fields.where}" }
]])
  local code, out, err = h.sh(dir, env(f) .. "jobrun run p.lua --run-id a1")
  tap.is(code, 0, "the run passes: " .. out .. err)
  tap.like(err, "3 jobs of suites remote, cluster, here on skypilot, slurm, local", "on three backends")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.remote.backend, jobs.cluster.backend, jobs.here.backend }, { "skypilot", "slurm", "local" },
    "each job on its own backend")
  tap.like(fs.read(dir .. "/" .. jobs.cluster.log_path) or "", "got remote%-r%x+",
    "the SkyPilot job's field reached the Slurm job")
  tap.like(fs.read(dir .. "/" .. jobs.here.log_path) or "", "evaluating node%d",
    "the Slurm job's field (its node) reached the local job")
  local _, cout = h.sh(dir, env(f) .. "jobrun check a1 --json")
  tap.is((json.decode(cout) or {}).summary, { total = 3, passed = 3, failed = 0, pending = 0 },
    "check counts the jobs of all three")
  h.stop_fake(f)
end)

tap.test("check and kill act on the jobs of all three backends", function()
  local dir = h.scratch()
  local f = h.fake_skypilot(dir)
  h.write(dir .. "/p.lua", [[
suite "remote" { backend = "skypilot", run = "python train.py", env = { FAKE_OUTCOME = "long" } }
suite "cluster" { backend = "slurm", run = "echo up; sleep 120" }
suite "here" { run = "touch {suite_dir}/started; sleep 120" }
suite "later" { needs = { "remote", "cluster", "here" }, run = "echo never" }
]])
  tap.is(h.sh(dir, env(f) .. "jobrun launch p.lua --run-id k1"), 0, "launched")
  local running = h.eventually(function()
    local _, out = h.sh(dir, env(f) .. "jobrun check k1 --json")
    local doc = json.decode(out) or { jobs = {} }
    local n = 0
    for _, j in ipairs(doc.jobs) do if j.status == "RUNNING" then n = n + 1 end end
    return n == 3
  end, 60)
  tap.ok(running, "check sees the local, the Slurm and the SkyPilot job RUNNING")
  local kcode, kout = h.sh(dir, env(f) .. "jobrun kill k1")
  tap.is(kcode, 0, "kill exits 0: " .. kout)
  tap.like(kout, "Killed: 3 · Withdrawn %(never started%): 1", "three killed, the waiting dependent withdrawn")
  h.eventually(function()
    local jobs = h.jobs_by_name(h.state(dir))
    return jobs.remote.status == "CANCELLED" and jobs.cluster.status == "CANCELLED" and jobs.here.status == "CANCELLED"
  end, 30)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.remote.status, jobs.cluster.status, jobs.here.status, jobs.later.status },
    { "CANCELLED", "CANCELLED", "CANCELLED", "CANCELLED" }, "all three backends' jobs and the dependent CANCELLED")
  local _, q = h.sh(dir, "SLURM_CONF=" .. h.q(conf) .. " squeue -h -j " .. tostring(jobs.cluster.native_id))
  tap.is(q:gsub("%s+", ""), "", "the Slurm job is gone from the queue")
  h.eventually(function()
    local lock = fs.lock(dir .. "/.jobrun/runs/k1/driver.lock", false, true)
    if lock then lock:release() end
    return lock ~= nil
  end, 30)
  h.stop_fake(f)
end)

return tap.done()
