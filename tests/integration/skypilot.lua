-- The SkyPilot backend against the fake API server (tests/skypilot/fake_server.py), which
-- follows ../shared/reference/skypilot-api.md field by field. Each test starts the fake it needs.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")

local function fake(dir, args, port) return h.fake_skypilot(dir, args, port) end
local stop = h.stop_fake

local function stats(f)
  local http = require("jobrun.c.http").client()
  local r = http:perform({ { method = "GET", url = f.url .. "/fake/stats" } })[1]
  return json.decode(r.body or "") or {}
end

-- fake_jobs(f): the fake's own view of every managed job, all users: {job_id, job_name, status}.
local function fake_jobs(f)
  local http = require("jobrun.c.http").client()
  local r = http:perform({ { method = "GET", url = f.url .. "/fake/jobs" } })[1]
  return json.decode(r.body or "") or {}
end

-- driver_gone(dir, run_id): true once no process drives the run (launch leaves a detached
-- `jobrun __drive` behind while jobs are pending); its driver.lock is free then.
local function driver_gone(dir, run_id)
  return h.eventually(function()
    local lock = fs.lock(dir .. "/.jobrun/runs/" .. run_id .. "/driver.lock", false, true)
    if lock then lock:release() end
    return lock ~= nil
  end, 20)
end

-- remove(dir): a test's scratch directory, once it is done with it.
local function remove(dir)
  os.execute("rm -rf " .. h.q(dir))
end

local function with_endpoint(f, command)
  return "export SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(f.url) .. " && " .. command
end

local SUITE = [[
suite "sk" {
  backend = "skypilot",
  matrix = { outcome = { "succeed", "fail", "recover" } },
  run = "python train.py",
  env = { FAKE_OUTCOME = "{outcome}" },
  expect = { status = "SUCCEEDED" },
  max_restarts = 2,
  skypilot = { resources = { accelerators = "L4:4" }, job_recovery = { strategy = "EAGER_NEXT_REGION" } },
}
]]

-- fake_tasks(f): every launch the fake received, in order: {job_id, body_name, task, env_vars, …}.
local function fake_tasks(f)
  local http = require("jobrun.c.http").client()
  local r = http:perform({ { method = "GET", url = f.url .. "/fake/tasks" } })[1]
  return json.decode(r.body or "") or {}
end

-- fake_set(f, settings): the fake's controller and log faults (POST /fake/set).
local function fake_set(f, settings)
  local http = require("jobrun.c.http").client()
  http:perform({ { method = "POST", url = f.url .. "/fake/set", body = json.encode(settings),
                   headers = { "Content-Type: application/json" } } })
end

-- metta_repo(dir) -> path, commit: a git repository holding Metta's task YAML (the fixture), as
-- jobrun finds it when run from Metta's checkout.
local function metta_repo(dir)
  local repo = dir .. "/metta"
  local code, out = h.sh(dir, "cp -r " .. h.q(top .. "/tests/skypilot/metta") .. " metta && cd metta && "
    .. "git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && git rev-parse HEAD")
  assert(code == 0, out)
  return repo, out:match("%x+")
end

tap.test("Metta's suites run on SkyPilot with the expected verdicts", function()
  local dir = h.scratch()
  local f = fake(dir)
  local repo, commit = metta_repo(dir)
  for _, s in ipairs({ "cluster", "recipes" }) do
    local code, out = h.sh(repo, with_endpoint(f, "jobrun run " .. h.q(top .. "/suites/" .. s .. ".lua")
      .. " --skip-git-check --json"))
    local doc = json.decode(out) or { jobs = {} }
    tap.is(code, 0, s .. ".lua: every job passes")
    tap.is(doc.summary and doc.summary.total, s == "cluster" and 12 or 7, s .. ".lua: all its jobs")
    if s == "cluster" then
      local by = {}
      for _, j in ipairs(doc.jobs) do by[j.name] = j end
      local rt = by.cluster_test_4n_runtime_timeout or {}
      tap.is({ rt.termination_reason, rt.restart_count, rt.exit_code }, { "max_runtime_reached", 1, 0 },
        "runtime_timeout: recovered once, then the runtime limit")
      local hb = by.cluster_test_2n_heartbeat_timeout or {}
      tap.is({ hb.termination_reason, hb.exit_code }, { "heartbeat_timeout", 0 },
        "heartbeat_timeout: HEARTBEAT_TIMEOUT=1 stopped it (not a rejected tool argument)")
      local cf = by.cluster_test_2n_cmd_fails or {}
      tap.is({ cf.status, cf.exit_code, cf.termination_reason }, { "SUCCEEDED", 1, "job_completed" },
        "cmd_fails: SUCCEEDED by SkyPilot, exit code 1 from the summary")
      local log = fs.read(dir .. "/metta/" .. (rt.log_path or "none")) or ""
      tap.ok(not log:find("<sky-payload", 1, true), "payload lines dropped from the log")
      tap.ok(log:find("\27[", 1, true) ~= nil, "ANSI colour kept in the log file")
      tap.like(log, "%(head, rank=0, pid=%d+%) ", "Ray-style prefixes kept")
      tap.like(log, "NCCL tests passed", "TEST_NCCL=true ran the NCCL test")
    end
  end
  -- What the server received: the task launch.py would have sent.
  local tasks = fake_tasks(f)
  tap.is(#tasks, 19, "19 launches")
  local by = {}
  for _, t in ipairs(tasks) do by[(t.task.envs or {}).JOBRUN_JOB_NAME or "?"] = t end
  local t = (by.cluster_test_4n_runtime_timeout or {}).task or {}
  local r = t.resources or {}
  tap.is({ t.run, t.num_nodes }, { "set -e && /workspace/metta/devops/skypilot/config/skypilot_run.sh", 4 },
    "the run script from the task YAML, num_nodes 4")
  tap.like(t.setup or "", "checks out %$METTA_GIT_REF", "setup from the task YAML")
  tap.is(t.file_mounts and t.file_mounts["/mnt/s3/train_dir"],
    { name = "softmax-train-dir", store = "s3", mode = "MOUNT_CACHED" }, "the S3 mount from the task YAML")
  tap.is(r.job_recovery, { strategy = "EAGER_NEXT_REGION", max_restarts_on_errors = 20 },
    "job recovery from the task YAML")
  tap.is(r.any_of, { { region = "us-east-1", use_spot = false, accelerators = "L4:4" },
                     { region = "us-east-1", accelerators = "L4:4" },
                     { region = "us-west-2", use_spot = false, accelerators = { A10G = 4 } } },
    "4 GPUs per accelerator and no spot, in every alternative")
  tap.is({ r.use_spot, r.gpus, r.cloud, r.cpus }, { false, nil, "aws", "8+" }, "no spot; `gpus` is not sent")
  local e = t.envs or {}
  tap.is({ e.METTA_GIT_REF, e.DATA_DIR, e.MAX_RUNTIME_HOURS, e.TEST_JOB_RESTART, e.TEST_NCCL, e.HEARTBEAT_TIMEOUT,
           e.METTA_ARGS, e.METTA_MODULE_PATH },
    { commit, "/mnt/s3/train_dir", "0.03", "true", "true", "300", "",
      "experiments.recipes.arena_basic_easy_shaped.train" },
    "env: the commit, the YAML's defaults under the job's, launch.py's flags as env, no flag in METTA_ARGS")
  tap.like(e.METTA_RUN_ID or "", "^cluster_test_4n_runtime_timeout%.cluster_test%-", "METTA_RUN_ID")
  local rec = (by.recipe_test_arena or {}).task or {}
  tap.is({ rec.num_nodes, (rec.envs or {}).METTA_ARGS, (rec.envs or {}).METTA_MODULE_PATH },
    { 1, "trainer.total_timesteps=50000", "experiments.recipes.arena.train" }, "a recipe's task")
  tap.is(((tasks[1] or {}).task or {}).name, (tasks[1] or {}).body_name, "the task carries the job's name")
  local st = stats(f).requests or {}
  tap.is(st["POST /jobs/queue"], nil, "queue/v2 used, not the old queue")
  stop(f)
end)

tap.test("statuses, recovery, failure reasons, exactly one queue call per poll cycle", function()
  local dir = h.scratch()
  local f = fake(dir)
  h.write(dir .. "/s.lua", SUITE)
  local code, out = h.sh(dir, with_endpoint(f, "JOBRUN_TRACE=trace.log jobrun run s.lua --run-id A --json"))
  tap.is(code, 1, "one job fails")
  local doc = json.decode(out) or { jobs = {} }
  local by = {}
  for _, j in ipairs(doc.jobs) do by[j.name] = j end
  tap.is({ by.sk_recover.status, by.sk_recover.restart_count }, { "SUCCEEDED", 1 }, "RECOVERING counted as a restart")
  tap.is({ by.sk_fail.status, by.sk_fail.native_status, by.sk_fail.termination_reason },
    { "FAILED", "FAILED", "Job failed: user code exited with code 3" }, "failure_reason as the termination")
  tap.is(by.sk_fail.fields and by.sk_fail.fields.exception, "RuntimeError: boom", "the traceback, analysed")
  -- (the fake names a job's cluster <job_name>-<job_id> while it is alive, as the controller does)
  local c_logs, o_logs = h.sh(dir, with_endpoint(f, "jobrun logs A sk_fail --tail 1"))
  tap.is(c_logs, 0, "jobrun logs on a SkyPilot job")
  tap.like(o_logs, "Job finished %(status: FAILED%)", "fetches the job's log from the server")
  local st = stats(f).requests or {}
  tap.is(st["POST /jobs/launch"], 3, "one launch request per job")
  tap.ok((st["GET /api/status"] or 0) >= 1, "launches resolved through /api/status")
  local cycles = 0
  for _ in (fs.read(dir .. "/trace.log") or ""):gmatch("poll skypilot") do cycles = cycles + 1 end
  tap.ok(cycles >= 1, "polled at least once")
  tap.is(st["POST /jobs/queue/v2"], cycles, string.format("one /jobs/queue/v2 per poll cycle (%d), for 3 jobs", cycles))
  stop(f)
end)

tap.test("older servers: no /jobs/queue/v2, queue as a dict or a list; API below 11 refused", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  for _, mode in ipairs({ { "--no-queue-v2", "--api-version", "17", "--queue-form", "dict" },
                          { "--no-queue-v2", "--api-version", "24", "--queue-form", "list" } }) do
    local f = fake(dir, mode)
    local code, out = h.sh(dir, with_endpoint(f, "jobrun run s.lua --json"))
    local doc = json.decode(out) or {}
    tap.is({ code, doc.summary and doc.summary.passed }, { 1, 2 }, table.concat(mode, " ") .. ": same verdicts")
    tap.ok(((stats(f).requests or {})["POST /jobs/queue"] or 0) >= 1, table.concat(mode, " ") .. ": /jobs/queue used")
    stop(f)
  end
  local old = fake(dir, { "--api-version", "10", "--version", "0.9.9" })
  local code, _, err = h.sh(dir, with_endpoint(old, "jobrun run s.lua"))
  tap.is(code, 3, "a server below API 11: exit 3")
  tap.like(err, "speaks API 10 %(SkyPilot 0%.9%.9%); jobrun needs API 11", "with a clear message")
  stop(old)
end)

tap.test("faults: 503s and dropped connections are retried; an outage fails no job", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", SUITE)
  local f = fake(dir, { "--fail-every", "4", "--drop-every", "7" })
  local code, out = h.sh(dir, with_endpoint(f, "jobrun run s.lua --json"))
  local doc = json.decode(out) or {}
  tap.is({ code, doc.summary and doc.summary.passed, doc.summary and doc.summary.failed }, { 1, 2, 1 },
    "same verdicts through injected 503s and drops")
  stop(f)

  -- launch leaves a detached `jobrun __drive` for run L, which `jobrun wait L` below drives to
  -- the end from another process; that driver must then exit (tests/exec fails a leak).
  local state_file = dir .. "/fake-state.json"
  local f2 = fake(dir, { "--state", state_file })
  h.write(dir .. "/long.lua", [[
suite "lg" { backend = "skypilot", matrix = { i = { 1, 2 } }, run = "x", env = { FAKE_OUTCOME = "succeed" } }
]])
  tap.is(select(1, h.sh(dir, with_endpoint(f2, "jobrun launch long.lua --run-id L"))), 0, "launched")
  stop(f2)
  local c2, _, e2 = h.sh(dir, with_endpoint(f2, "jobrun check L"))
  tap.is(c2, 3, "check while the server is down: exit 3")
  tap.like(e2, "the skypilot backend could not be asked", "says the backend is unreachable")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.ok(jobs.lg_1.status ~= "FAILED" and jobs.lg_1.status ~= "LOST", "jobs keep their last known status")
  local f3 = fake(dir, { "--state", state_file }, f2.port)
  local c3, o3 = h.sh(dir, with_endpoint(f3, "jobrun wait L"))
  tap.is(c3, 0, "after the server's restart, wait sees both jobs pass")
  tap.like(o3, "Verdict: 2 passed", "both")
  tap.ok(driver_gone(dir, "L"), "launch's detached driver has ended")
  stop(f3)
end)

tap.test("kill: one cancel call, CANCELLING to CANCELLED", function()
  local dir = h.scratch()
  local f = fake(dir)
  h.write(dir .. "/s.lua", [[
suite "kl" { backend = "skypilot", matrix = { i = { 1, 2, 3 } }, run = "x", env = { FAKE_OUTCOME = "long" } }
]])
  tap.is(select(1, h.sh(dir, with_endpoint(f, "jobrun launch s.lua --run-id K"))), 0, "launched")
  -- Running, the job is on the cluster the controller launched for it (the fake names it
  -- <job_name>-<job_id>, as SkyPilot's controller does).
  local on = h.eventually(function()
    h.sh(dir, with_endpoint(f, "jobrun check K"))
    local j = h.jobs_by_name(h.state(dir)).kl_1 or {}
    return j.status == "RUNNING" and type(j.nodes) == "table"
      and j.nodes[1] == tostring(j.sky_name) .. "-" .. tostring(j.native_id)
  end, 20)
  tap.ok(on, "a running job's nodes: its cluster's name, as the API reports it")
  -- The detached `jobrun __drive` of run K must exit once kill has cancelled the run
  -- (tests/exec fails a leak).
  local code, out = h.sh(dir, with_endpoint(f, "jobrun kill K"))
  tap.is(code, 0, "kill exits 0")
  tap.like(out, "Killed: 3 ", "all killed")
  tap.is((stats(f).requests or {})["POST /jobs/cancel"], 1, "with one /jobs/cancel")
  local jobs = h.jobs_by_name(h.state(dir))
  tap.is({ jobs.kl_1.status, jobs.kl_3.native_status }, { "CANCELLED", "CANCELLED" }, "CANCELLED")
  local _, again = h.sh(dir, with_endpoint(f, "jobrun kill K"))
  tap.like(again, "Already completed: 3", "a second kill")
  tap.ok(driver_gone(dir, "K"), "launch's detached driver has ended")
  stop(f)
end)

tap.test("the suite's endpoint password reaches processes that did not plan the run", function()
  local dir = h.scratch()
  local b = fake(dir, { "--basic", "alice:pa55word" })
  local url = b.url:gsub("^http://", "http://alice:pa55word@")
  h.write(dir .. "/s.lua", string.format([[
suite "ep" { backend = "skypilot", run = "x", env = { FAKE_OUTCOME = "long" }, skypilot = { endpoint = %q } }
]], url))
  -- state.json keeps the endpoint without its password: launch's detached driver, check and
  -- kill (other processes) get it by reading the suite again (ctx.read_suite).
  tap.is(select(1, h.sh(dir, "unset SKYPILOT_API_SERVER_ENDPOINT; jobrun launch s.lua --run-id E")), 0, "launched")
  local running = h.eventually(function()
    h.sh(dir, "unset SKYPILOT_API_SERVER_ENDPOINT; jobrun check E")
    return (h.jobs_by_name(h.state(dir)).ep or {}).status == "RUNNING"
  end, 20)
  tap.ok(running, "check, in another process, sees the job running")
  local code, out = h.sh(dir, "unset SKYPILOT_API_SERVER_ENDPOINT; jobrun kill E")
  tap.is(code, 0, "kill, in another process, exits 0")
  tap.like(out, "Killed: 1 ", "and cancels the job")
  tap.ok(driver_gone(dir, "E"), "launch's detached driver has ended")
  local _, found = h.sh(dir, "grep -r -l -e pa55word .jobrun || true")
  tap.is(found, "", "the password is nowhere in the state directory")
  stop(b)
end)

tap.test("credentials: token and basic auth work and never reach state, logs or errors", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "cr" { backend = "skypilot", run = "x", env = { FAKE_OUTCOME = "succeed", API_TOKEN = "sky_alsosecret" } }
]])
  local f = fake(dir, { "--token", "sky_topsecret123" })
  local code = h.sh(dir, with_endpoint(f, "SKYPILOT_SERVICE_ACCOUNT_TOKEN=sky_topsecret123 jobrun run s.lua"))
  tap.is(code, 0, "the service-account token is sent")
  local c2, _, e2 = h.sh(dir, with_endpoint(f, "SKYPILOT_SERVICE_ACCOUNT_TOKEN=sky_wrong999 jobrun run s.lua"))
  tap.is(c2, 3, "a wrong token: exit 3")
  tap.ok(not e2:find("sky_wrong999", 1, true), "the token is not in the error")
  stop(f)
  local b = fake(dir, { "--basic", "alice:pa55word" })
  local url = b.url:gsub("^http://", "http://alice:pa55word@")
  local c3 = h.sh(dir, "SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(url) .. " jobrun run s.lua")
  tap.is(c3, 0, "basic auth from the endpoint URL")
  local bad = b.url:gsub("^http://", "http://alice:wrong@")
  local c4, o4, e4 = h.sh(dir, "SKYPILOT_API_SERVER_ENDPOINT=" .. h.q(bad) .. " jobrun run s.lua")
  tap.is(c4, 3, "wrong basic auth: exit 3")
  tap.ok(not (o4 .. e4):find("wrong@", 1, true), "the password is not shown")
  stop(b)
  local _, found = h.sh(dir, "grep -r -l -e sky_topsecret123 -e pa55word -e sky_alsosecret .jobrun || true")
  tap.is(found, "", "no secret anywhere in the state directory")
end)

tap.test("endpoint and token from ~/.sky/config.yaml, cookies from the cookie file", function()
  local dir = h.scratch()
  local f = fake(dir, { "--token", "sky_fromconfig42" })
  h.write(dir .. "/home/.sky/config.yaml", "jobs:\n  controller: {}\napi_server:\n  endpoint: " .. f.url
    .. "/\n  service_account_token: 'sky_fromconfig42'\n")
  h.write(dir .. "/home/.sky/cookies.txt", "# Netscape HTTP Cookie File\n")
  h.write(dir .. "/s.lua", 'suite "cf" { backend = "skypilot", run = "x", env = { FAKE_OUTCOME = "succeed" } }\n')
  local code, out = h.sh(dir, "unset SKYPILOT_API_SERVER_ENDPOINT SKYPILOT_SERVICE_ACCOUNT_TOKEN; "
    .. "HOME=" .. h.q(dir .. "/home") .. " jobrun run s.lua")
  tap.is(code, 0, "the config file's endpoint and token are used")
  tap.like(out, "cf%s+SUCCEEDED", "the job ran")
  stop(f)
end)

tap.test("the fake follows the protocol: 422, /api/get's 500 form, user scoping", function()
  local dir = h.scratch()
  local f = fake(dir)
  local api = require "jobrun.backends.skypilot.api"
  local c = api.new({ endpoint = f.url })
  tap.ok(c:health(), "health")
  local http = require("jobrun.c.http").client()
  local r = http:perform({ { method = "POST", url = f.url .. "/jobs/launch", body = '{"task": "{}"}',
                             headers = { "Content-Type: application/json" } } })[1]
  tap.is(r.status, 422, "a missing required-nullable field (name) is a 422")
  local value, why = c:call("/jobs/cancel", {})
  tap.is(value, nil, "a cancel without a selector fails")
  tap.like(why or "", "^ValueError: ", "the error read from the 500 {detail: record} form")
  local other = api.new({ endpoint = f.url })
  other.user = { id = "0ther111", name = "other" }
  local task = '{"name":"t","run":"x","envs":{"FAKE_OUTCOME":"long"}}'
  local launched = c:call("/jobs/launch", { task = task, name = "t" })
  tap.ok(launched and launched.job_id, "launched as the first user")
  local before = { c.requests, c.connections }
  for _ = 1, 10 do c:call("/jobs/queue/v2", { job_ids = json.null, all_users = false }) end
  tap.is(c.requests - before[1], 20, "ten calls, twenty requests")
  tap.ok(c.connections - before[2] <= 1, string.format("over %d connection(s): reused, not one per request",
    c.connections - before[2]))
  local mine = c:call("/jobs/queue/v2", { job_ids = json.null, all_users = false })
  local theirs = other:call("/jobs/queue/v2", { job_ids = json.null, all_users = false })
  tap.is({ #(mine.jobs or {}), #(theirs.jobs or {}) }, { 1, 0 }, "each user sees only their own jobs")
  stop(f)
end)

-- with_fake(args, fn): fn(dir, f) with a scratch directory and a fake server started with args;
-- afterwards, even when fn fails, the fake is stopped, any detached driver of a run under dir
-- that a failure left behind is ended, and the directory is removed.
local function with_fake(args, fn)
  local dir = h.scratch()
  local f = fake(dir, args)
  local ok, err = pcall(fn, dir, f)
  stop(f)
  os.execute("for p in $(pgrep -f -- " .. h.q("__drive " .. dir .. "/") .. "); do kill -KILL $p; done")
  remove(dir)
  if not ok then error(err, 0) end
end

tap.test("idempotent launch: a launch whose answer is lost is looked up by name, not sent again", function()
  with_fake({ "--drop-launch", "2" }, function(dir, f)
    h.write(dir .. "/s.lua", [[
suite "dl" { backend = "skypilot", matrix = { i = { "A", "a", "3" } }, run = "x", env = { FAKE_OUTCOME = "succeed" } }
]])
    local code, out = h.sh(dir, with_endpoint(f, "jobrun run s.lua --run-id D --json"))
    local doc = json.decode(out) or {}
    tap.is({ code, doc.summary and doc.summary.passed }, { 0, 3 }, "every job followed to its real end")
    tap.is((stats(f).requests or {})["POST /jobs/launch"], 3, "one launch request per job")
    local server = fake_jobs(f)
    tap.is(#server, 3, "exactly one managed job per job on the server")
    local rows, names = {}, {}
    for _, row in ipairs(server) do rows[row.job_name] = row end
    for name, job in pairs(h.jobs_by_name(h.state(dir))) do
      local sky = job.sky_name or "?"
      local row = rows[sky] or {}
      tap.is({ tostring(row.job_id), row.status, job.status }, { job.native_id, "SUCCEEDED", "SUCCEEDED" },
        name .. ": the managed job under its name is its own, followed to its end")
      tap.ok(sky:match("^[a-z][a-z0-9-]*[a-z0-9]$") and not sky:find("--", 1, true) and #sky <= 63,
        name .. ": launched as a valid task name (" .. sky .. ")")
      names[sky] = true
    end
    local distinct = 0
    for _ in pairs(names) do distinct = distinct + 1 end
    tap.is(distinct, 3, "three names, although dl_A and dl_a sanitise alike")
  end)
end)

tap.test("idempotent launch: kill cancels the run's duplicates, and nothing else", function()
  with_fake({}, function(dir, f)
    h.write(dir .. "/s.lua", [[
suite "kd" { backend = "skypilot", matrix = { i = { 1, 2 } }, run = "x", env = { FAKE_OUTCOME = "long" } }
]])
    tap.is(select(1, h.sh(dir, with_endpoint(f, "jobrun launch s.lua --run-id K"))), 0, "launched")
    local api = require "jobrun.backends.skypilot.api"
    local c = api.new({ endpoint = f.url })
    assert(c:health())
    local first = h.jobs_by_name(h.state(dir)).kd_1
    -- A duplicate from a lost launch: the same name launched again, and a job of no run of ours.
    local dup = c:call("/jobs/launch", { name = json.null,
      task = json.encode({ name = first.sky_name or first.name, run = "x", envs = { FAKE_OUTCOME = "long" } }) })
    local other = c:call("/jobs/launch", { name = json.null,
      task = json.encode({ name = "someone-else", run = "x", envs = { FAKE_OUTCOME = "long" } }) })
    tap.ok(dup and dup.job_id and other and other.job_id, "a duplicate and a foreign job on the server")
    local code, out = h.sh(dir, with_endpoint(f, "jobrun kill K"))
    tap.is(code, 0, "kill exits 0")
    tap.like(out, "Killed: 2 ", "both jobs killed")
    tap.is((stats(f).requests or {})["POST /jobs/cancel"], 1, "with one /jobs/cancel")
    local ended = h.eventually(function()
      for _, row in ipairs(fake_jobs(f)) do
        if row.job_name ~= "someone-else" and row.status ~= "CANCELLED" then return false end
      end
      return true
    end, 10)
    tap.ok(ended, "every managed job of the run, the duplicate included, ends CANCELLED")
    local still = {}
    for _, row in ipairs(fake_jobs(f)) do still[row.job_id] = row.status end
    tap.is(still[other and other.job_id or 0], "RUNNING", "a job of no run of ours keeps running")
    tap.ok(driver_gone(dir, "K"), "launch's detached driver has ended")
  end)
end)

tap.test("idempotent launch: a runner that died between launch and saving is adopted by wait", function()
  with_fake({}, function(dir, f)
    h.write(dir .. "/s.lua", [[
suite "wd" { backend = "skypilot", matrix = { i = { 1, 2 } }, run = "x", env = { FAKE_OUTCOME = "succeed" } }
]])
    tap.is(select(1, h.sh(dir, with_endpoint(f, "jobrun run s.lua --run-id W"))), 0, "ran")
    local data, id = h.state(dir)
    local path = dir .. "/.jobrun/runs/" .. id .. "/state.json"
    local launched, name1 = {}, nil
    -- What a runner killed after its launches but before saving them leaves: pending jobs.
    for _, job in ipairs(data.jobs) do
      launched[job.name] = job.native_id
      if job.name == "wd_1" then name1 = job.sky_name or job.name end
      job.native_id, job.native_status, job.status = nil, nil, "PENDING"
      job.sky_name, job.sky_attempt, job.launch_request_id = nil, nil, nil
    end
    assert(fs.write_atomic(path, json.encode(data)))
    -- And a duplicate of wd_1, launched after it (a lost launch sent again by an older jobrun).
    local api = require "jobrun.backends.skypilot.api"
    local c = api.new({ endpoint = f.url })
    assert(c:health())
    local dup = c:call("/jobs/launch", { name = json.null,
      task = json.encode({ name = name1, run = "x", envs = { FAKE_OUTCOME = "succeed" } }) })
    local code, out = h.sh(dir, with_endpoint(f, "jobrun wait W"))
    tap.is(code, 0, "wait exits 0")
    tap.like(out, "Verdict: 2 passed", "both jobs followed to their end")
    tap.is((stats(f).requests or {})["POST /jobs/launch"], 3, "nothing launched again (2 launches + the duplicate)")
    local jobs = h.jobs_by_name(h.state(dir))
    tap.is({ jobs.wd_1.native_id, jobs.wd_2.native_id }, { launched.wd_1, launched.wd_2 },
      "each job adopted its own managed job, the oldest under its name")
    tap.is(jobs.wd_1.sky_duplicates, { dup and dup.job_id }, "the later one remembered as a duplicate")
  end)
end)

tap.test("logs: a stopped controller is started with refresh; a failed fetch never replaces a good log", function()
  with_fake({}, function(dir, f)
    h.write(dir .. "/s.lua", [[
suite "lg" { backend = "skypilot", matrix = { o = { "succeed", "fail" } }, run = "x", env = { FAKE_OUTCOME = "{o}" } }
]])
    local code, out = h.sh(dir, with_endpoint(f, "jobrun run s.lua --run-id G --json"))
    local doc = json.decode(out) or { jobs = {} }
    tap.is(code, 1, "one job fails")
    local by = {}
    for _, j in ipairs(doc.jobs) do by[j.name] = j end
    tap.is({ (by.lg_succeed or {}).backend_exit_code, (by.lg_fail or {}).backend_exit_code }, { 0, 100 },
      "the logs request's JobExitCode is kept as backend_exit_code")
    tap.is({ (by.lg_succeed or {}).exit_code, (by.lg_fail or {}).exit_code }, { json.null, json.null },
      "and is not the program's exit code: with no parser's value, exit_code is null")
    tap.is({ (by.lg_succeed or {}).verdict, (by.lg_fail or {}).verdict }, { "pass", "fail" },
      "the default expectation then judges by status")
    local path = dir .. "/" .. ((by.lg_succeed or {}).log_path or "none")
    local good = fs.read(path) or ""
    tap.like(good, "hello from lg%-succeed", "the log was fetched")
    local function logs_requests() return (stats(f).requests or {})["POST /jobs/logs"] or 0 end

    -- The controller auto-stopped: refresh=false fails with ClusterNotUpError, refresh=true works.
    fake_set(f, { controller = "stopped" })
    local before = logs_requests()
    local c1, o1 = h.sh(dir, with_endpoint(f, "jobrun logs G lg_succeed"))
    tap.is(c1, 0, "logs with the controller stopped")
    tap.like(o1, "hello from lg%-succeed", "shows the job's log")
    tap.ok(not o1:find("ClusterNotUpError", 1, true), "not the error streamed by the failed request")
    tap.is(logs_requests() - before, 2, "asked once, then again with refresh")
    tap.is(fs.read(path), good, "the log file is the job's log")

    -- Every fetch fails (the stream is the error text, answered 200): the good log stays.
    fake_set(f, { logs_fail = 10 })
    before = logs_requests()
    local c2, o2 = h.sh(dir, with_endpoint(f, "jobrun logs G lg_succeed"))
    tap.is(c2, 0, "logs while fetching fails")
    tap.like(o2, "hello from lg%-succeed", "the log fetched before is shown")
    tap.ok(not o2:find("Failed to tail", 1, true), "the failed request's text is not taken for the log")
    tap.is(fs.read(path), good, "the good log is not overwritten")
    tap.is(logs_requests() - before, 1, "a failed request is not repeated (no retry asked)")
    fake_set(f, { logs_fail = 0 })

    -- A <retry> line: the request is sent again.
    fake_set(f, { logs_retry = 1 })
    before = logs_requests()
    local c3, o3 = h.sh(dir, with_endpoint(f, "jobrun logs G lg_succeed"))
    tap.is({ c3, logs_requests() - before }, { 0, 2 }, "<retry>: sent again")
    tap.like(o3, "hello from lg%-succeed", "and the log shown")
  end)
end)

tap.test("queue: a stopped controller is started with refresh while jobs run", function()
  with_fake({}, function(dir, f)
    h.write(dir .. "/s.lua", [[
suite "qr" { backend = "skypilot", matrix = { i = { 1, 2 } }, run = "x", env = { FAKE_OUTCOME = "succeed" } }
]])
    tap.is(select(1, h.sh(dir, with_endpoint(f, "jobrun launch s.lua --run-id Q"))), 0, "launched")
    fake_set(f, { controller = "stopped" })
    local code, out = h.sh(dir, with_endpoint(f, "timeout 60 " .. h.q(h.bin) .. " wait Q"))
    tap.is(code, 0, "wait sees both jobs pass")
    tap.like(out, "Verdict: 2 passed", "both")
    tap.ok(driver_gone(dir, "Q"), "launch's detached driver has ended")
  end)
end)

tap.test("identity and config: SKYPILOT_USER_ID, active_workspace, override_skypilot_config", function()
  with_fake({}, function(dir, f)
    h.write(dir .. "/home/.sky/config.yaml", "api_server:\n  endpoint: " .. f.url .. "\nadmin_policy: x.Policy\n"
      .. "active_workspace: team-a\njobs:\n  controller:\n    resources: {cpus: 4+}\n")
    h.write(dir .. "/s.lua", [[
suite "ws" { backend = "skypilot", matrix = { i = { 1, 2 } }, run = "x", env = { FAKE_OUTCOME = "long" } }
]])
    local env = "unset SKYPILOT_API_SERVER_ENDPOINT SKYPILOT_SERVICE_ACCOUNT_TOKEN; HOME=" .. h.q(dir .. "/home")
      .. " SKYPILOT_USER_ID=0123abcd "
    tap.is(select(1, h.sh(dir, env .. "jobrun launch s.lua --run-id W")), 0, "launched")
    local tasks = fake_tasks(f)
    tap.is(#tasks, 2, "two launches")
    local t = tasks[1] or {}
    tap.is((t.env_vars or {}).SKYPILOT_USER_ID, "0123abcd", "the user hash from SKYPILOT_USER_ID")
    tap.is(t.override_skypilot_config,
      { active_workspace = "team-a", jobs = { controller = { resources = { cpus = "4+" } } } },
      "the client config sent, without api_server and admin_policy")
    local rows = fake_jobs(f)
    tap.is({ (rows[1] or {}).workspace, (rows[1] or {}).user_hash }, { "team-a", "0123abcd" },
      "the jobs belong to the user, in the active workspace")
    local code, out = h.sh(dir, env .. "jobrun kill W")
    tap.is(code, 0, "kill exits 0")
    tap.like(out, "Killed: 2 ", "both killed")
    local ended = h.eventually(function()
      for _, row in ipairs(fake_jobs(f)) do if row.status ~= "CANCELLED" then return false end end
      return true
    end, 10)
    tap.ok(ended, "the cancel acted in the active workspace: both CANCELLED")
    tap.ok(driver_gone(dir, "W"), "launch's detached driver has ended")
    -- An invalid SKYPILOT_USER_ID is ignored, as the official client ignores it.
    h.write(dir .. "/who.lua", "print(require('jobrun.backends.skypilot.api').user_identity().id)\n")
    local code2, out2 = h.sh(dir, "SKYPILOT_USER_ID=not-a-hash HOME=" .. h.q(dir .. "/nohome")
      .. " LOGNAME=alice " .. h.q(top .. "/build/luarun") .. " who.lua")
    tap.is(code2, 0, "user_identity runs")
    local md5 = require "jobrun.backends.skypilot.md5"
    local host = (fs.read("/proc/sys/kernel/hostname") or ""):gsub("%s+$", "")
    tap.is(out2:match("%S+"), md5.hex("alice-" .. md5.hex(host):sub(-4)):sub(1, 8),
      "else common_utils.get_user_hash's md5 of user and host")
  end)
end)

tap.test("the task YAML: errors, job_recovery by name, GPU counts, local paths", function()
  with_fake({}, function(dir, f)
    local repo = metta_repo(dir)
    h.write(repo .. "/t.yaml", "resources:\n  accelerators: L4:1\n  job_recovery: FAILOVER\nworkdir: .\n"
      .. "file_mounts:\n  /data: ./data\n  /bucket: s3://b\nenvs:\n  A: 1\n  B: base\n")
    h.write(repo .. "/sub/s.lua", [[
suite "ty" { backend = "skypilot", run = "x", env = { FAKE_OUTCOME = "succeed", B = "suite" },
  skypilot = { task = "t.yaml", resources = { gpus = 2 }, job_recovery = { max_restarts_on_errors = 3 } } }
]])
    local code, _, err = h.sh(repo .. "/sub", with_endpoint(f, "jobrun run s.lua"))
    tap.is(code, 0, "runs from a subdirectory: the YAML is read from the repository root" .. (code ~= 0 and err or ""))
    local t = (fake_tasks(f)[1] or {}).task or {}
    tap.is(t.resources,
      { accelerators = "L4:2", job_recovery = { strategy = "FAILOVER", max_restarts_on_errors = 3 } },
      "a strategy name, merged with the suite's table; \"L4:1\" → \"L4:2\"")
    tap.is({ t.workdir, t.file_mounts }, { repo, { ["/data"] = repo .. "/data", ["/bucket"] = "s3://b" } },
      "a loopback server: local paths made absolute, buckets untouched")
    tap.is({ t.envs and t.envs.A, t.envs and t.envs.B }, { 1, "suite" }, "envs merged, the suite's over the YAML's")
    local remote = "SKYPILOT_API_SERVER_ENDPOINT=http://skypilot.example.com:46580 "
    local c2, _, e2 = h.sh(repo .. "/sub", remote .. "jobrun run s.lua")
    tap.is(c2, 2, "a remote server and local paths: refused, exit 2")
    tap.like(e2, "file_mounts%[\"/data\"%] = \"./data\" is a path on this machine", "names the field and the path")
    tap.like(e2, "setup", "suggests a checkout in setup")
    h.write(repo .. "/sub/bad.lua", [[
suite "bd" { backend = "skypilot", run = "x", skypilot = { task = "nope.yaml" } }
]])
    local c3, _, e3 = h.sh(repo .. "/sub", with_endpoint(f, "jobrun run bad.lua"))
    tap.is(c3, 2, "a missing task YAML: exit 2")
    tap.like(e3, "cannot read " .. repo:gsub("%p", "%%%0") .. "/nope%.yaml", "names the path it tried")
    h.write(repo .. "/broken.yaml", "resources: [\n")
    h.write(repo .. "/sub/broken.lua", [[
suite "bk" { backend = "skypilot", run = "x", skypilot = { task = "broken.yaml" } }
]])
    local c4, _, e4 = h.sh(repo .. "/sub", with_endpoint(f, "jobrun run broken.lua"))
    tap.is(c4, 2, "invalid YAML: exit 2")
    tap.like(e4, "broken%.yaml: line %d+, column %d+", "with where")
    h.write(repo .. "/sub/nogpu.lua", [[
suite "ng" { backend = "skypilot", run = "x", skypilot = { resources = { gpus = 4 } } }
]])
    local c5, _, e5 = h.sh(repo .. "/sub", with_endpoint(f, "jobrun run nogpu.lua"))
    tap.is(c5, 2, "gpus without accelerators: exit 2")
    tap.like(e5, "names no accelerators", "says why")
  end)
end)

return tap.done()
