-- A run holding jobs of two backends (local and SkyPilot, the fake API server): each job polled,
-- launched and cancelled through its own backend; a need across them; a backend that cannot be
-- reached fails its own suite's launches only. (The Slurm part of the mixed run is not here.)
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local function with_endpoint(url, command)
  return "export SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(url) .. " && " .. command
end

local MIXED = [[
parser "greeting" { contains = "hello from", pattern = "hello from (%S+)", field = "greeting" }
suite "remote" {
  backend = "skypilot",
  matrix = { outcome = { "succeed", "fail" } },
  run = "python train.py",
  env = { FAKE_OUTCOME = "{outcome}" },
}
suite "evaluate" {
  needs = { "remote/remote_succeed" },
  run = "echo evaluating {needs.remote.remote_succeed.fields.greeting}",
}
suite "report" {
  needs = { "remote/remote_fail" },
  run = "echo never",
}
suite "lint" { run = "echo lint ok" }
]]

tap.test("local and SkyPilot jobs in one run; a need across backends", function()
  local dir = h.scratch()
  local f = h.fake_skypilot(dir)
  h.write(dir .. "/p.lua", MIXED)
  local trace = dir .. "/trace"
  local code, out, err = h.sh(dir, "export JOBRUN_TRACE=" .. h.q(trace) .. " && "
    .. with_endpoint(f.url, "jobrun run p.lua --run-id m1"))
  tap.is(code, 1, "exit 1: one remote job failed")
  tap.like(err, "5 jobs of suites remote, evaluate, report, lint on skypilot, local",
    "the run says both backends: " .. err)
  local data = h.state(dir)
  local jobs = h.jobs_by_name(data)
  tap.is({ jobs.remote_succeed.backend, jobs.evaluate.backend }, { "skypilot", "local" },
    "each job on its backend")
  tap.is(jobs.remote_succeed.status, "SUCCEEDED", "the remote job ran on the fake SkyPilot")
  tap.is(jobs.remote_fail.status, "FAILED", "and the failing one failed")
  tap.like(fs.read(dir .. "/" .. jobs.evaluate.log_path) or "", "evaluating remote%-succeed%-r%x+",
    "the remote job's field reached the local job")
  tap.is(jobs.report.status, "SKIPPED", "the dependent of the failed remote job is SKIPPED")
  tap.is(jobs.lint.status, "SUCCEEDED", "the independent local suite ran")
  tap.like(out, "Run m1 · suite p · backend skypilot,local", "the report names both backends")
  -- Every poll asked one backend about its own jobs only.
  local polls = fs.read(trace) or ""
  local mixed = false
  for backend, n in polls:gmatch("poll (%S+) (%d+)") do
    if backend == "skypilot" and tonumber(n) > 2 then mixed = true end
  end
  tap.ok(polls:find("poll skypilot", 1, true) ~= nil, "the SkyPilot jobs were polled through SkyPilot")
  tap.ok(not mixed, "never with other backends' jobs")
  local ccode, cout = h.sh(dir, with_endpoint(f.url, "jobrun check m1 --json"))
  local doc = json.decode(cout) or {}
  tap.is(ccode, 1, "check of the finished run: exit 1")
  tap.is(doc.summary, { total = 5, passed = 3, failed = 2, pending = 0 }, "check counts all five")
  local _, rout = h.sh(dir, with_endpoint(f.url, "jobrun logs m1 remote_succeed"))
  tap.like(rout, "hello from remote%-succeed", "logs of the remote job")
  h.stop_fake(f)
end)

tap.test("check and kill act on jobs of both backends", function()
  local dir = h.scratch()
  local f = h.fake_skypilot(dir)
  h.write(dir .. "/p.lua", [[
suite "remote" { backend = "skypilot", run = "python train.py", env = { FAKE_OUTCOME = "long" } }
suite "here" { run = "touch started; sleep 60" }
suite "later" { needs = { "remote", "here" }, run = "echo never" }
]])
  local code = h.sh(dir, with_endpoint(f.url, "jobrun launch p.lua --run-id k1"))
  tap.is(code, 0, "launched")
  h.eventually(function() return fs.stat(dir .. "/started") end, 10)
  local running = h.eventually(function()
    local _, out = h.sh(dir, with_endpoint(f.url, "jobrun check k1 --json"))
    local doc = json.decode(out) or { jobs = {} }
    local n = 0
    for _, j in ipairs(doc.jobs) do if j.status == "RUNNING" then n = n + 1 end end
    return n == 2
  end, 20)
  tap.ok(running, "check sees the local and the remote job RUNNING")
  local kcode, kout = h.sh(dir, with_endpoint(f.url, "jobrun kill k1"))
  tap.is(kcode, 0, "kill exits 0: " .. kout)
  h.eventually(function()
    local jobs = h.jobs_by_name(h.state(dir))
    return jobs.remote.status == "CANCELLED" and jobs.here.status == "CANCELLED"
  end, 20)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.remote.status, jobs.here.status, jobs.later.status }, { "CANCELLED", "CANCELLED", "CANCELLED" },
    "both backends' jobs cancelled; the waiting dependent CANCELLED, not SKIPPED")
  -- The detached driver ends once nothing is left to start.
  h.eventually(function()
    local lock = fs.lock(dir .. "/.jobrun/runs/k1/driver.lock", false, true)
    if lock then lock:release() end
    return lock ~= nil
  end, 20)
  h.stop_fake(f)
end)

tap.test("a backend that cannot be reached fails its suite's launches; the other suites run", function()
  local dir = h.scratch()
  h.write(dir .. "/p.lua", MIXED)
  -- A port nothing listens on.
  local code, out = h.sh(dir, with_endpoint("http://127.0.0.1:9", "jobrun run p.lua --run-id u1"))
  tap.is(code, 1, "exit 1: " .. out)
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.remote_succeed.status, jobs.remote_fail.status }, { "LAUNCH_FAILED", "LAUNCH_FAILED" },
    "the SkyPilot suite's jobs failed to launch")
  tap.is({ jobs.evaluate.status, jobs.report.status }, { "SKIPPED", "SKIPPED" }, "their dependents are SKIPPED")
  tap.like(jobs.evaluate.fields.skipped or "", "^needs remote/remote_succeed, which could not be launched",
    "saying why")
  tap.is(jobs.lint.status, "SUCCEEDED", "the local suite ran")
end)

return tap.done()
