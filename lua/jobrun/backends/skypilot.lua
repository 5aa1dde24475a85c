-- The SkyPilot backend: managed jobs through the API server (jobrun.skypilot.api). Launches go
-- out concurrently and are resolved together; one queue call per poll cycle covers every job of
-- the run; logs are fetched once, when a job has ended (or when `jobrun logs` asks); one cancel
-- call covers every job. An API error never fails a job: it keeps its last known status.
local api = require "jobrun.skypilot.api"
local json = require "jobrun.json"
local template = require "jobrun.template"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local errors = require "jobrun.errors"
local secrets = require "jobrun.secrets"

local backend = { name = "skypilot", poll_interval = 2, poll_interval_max = 30 }

-- Managed-job statuses (reference §4) as SPEC §4 statuses.
local STATUS = {
  PENDING = "PENDING", SUBMITTED = "PENDING", STARTING = "PENDING",
  RUNNING = "RUNNING", RECOVERING = "RUNNING", CANCELLING = "RUNNING",
  SUCCEEDED = "SUCCEEDED", CANCELLED = "CANCELLED",
  FAILED = "FAILED", FAILED_SETUP = "FAILED", FAILED_PRECHECKS = "FAILED",
  FAILED_NO_RESOURCE = "FAILED", FAILED_CONTROLLER = "FAILED",
}
backend.STATUS = STATUS

local QUEUE_FIELDS = { "job_id", "task_id", "job_name", "status", "failure_reason", "recovery_count",
                       "job_duration", "submitted_at", "start_at", "end_at", "details" }

-- client(ctx, options): one API client per run (its connections are reused), health-checked once.
local function client(ctx, options)
  if ctx.skypilot then return ctx.skypilot end
  -- user:password in the suite's endpoint is kept only in the plan, in memory (never stored):
  -- a process that did not plan the run gets it by re-reading the suite (runner.context).
  if options.endpoint and secrets.reveal(options.endpoint) == options.endpoint then local _ = ctx.secret_env end
  local c = api.new(api.settings(options))
  local ok, why = c:health()
  if not ok then return nil, why end
  ctx.skypilot = c
  return c
end

-- check(options): before a run is created, the server must answer and be new enough.
function backend.check(options)
  local ctx = {}
  local c, why = client(ctx, options)
  if not c then errors.infra("%s", why) end
  return { endpoint = c.base, api_version = c.server_api_version }
end

-- task(job, env) -> the task, as JSON text (JSON is YAML, and the server reads YAML).
function backend.task(job, env)
  local spec = job.spec
  local o = spec.options or {}
  local resources = {}
  for k, v in pairs(o.resources or {}) do resources[k] = v end
  local recovery = {}
  for k, v in pairs(resources.job_recovery or {}) do recovery[k] = v end
  for k, v in pairs(o.job_recovery or {}) do recovery[k] = v end
  if (spec.max_restarts or 0) > 0 then recovery.max_restarts_on_errors = spec.max_restarts end
  if next(recovery) then resources.job_recovery = recovery end
  local envs = {}
  for k, v in pairs(env or {}) do envs[k] = tostring(v) end
  envs.JOBRUN_JOB_NAME = job.name
  local task = { name = job.name, num_nodes = spec.nodes, run = template.shell_command(spec.commands[1]),
                 setup = spec.setup and template.shell_command(spec.setup) or nil, envs = envs }
  if next(resources) then task.resources = resources end
  for _, key in ipairs({ "workdir", "file_mounts", "secrets", "config" }) do
    if o[key] ~= nil then task[key] = o[key] end
  end
  return json.encode(task)
end

local function options_of(jobs)
  return jobs[1] and jobs[1].spec and jobs[1].spec.options or {}
end

-- submit_many(ctx, jobs): every launch request at once, resolved together.
function backend.submit_many(ctx, jobs)
  local c, why = client(ctx, options_of(jobs))
  if not c then
    for _, job in ipairs(jobs) do job.status, job.launch_error = "LAUNCH_FAILED", why end
    return
  end
  local pending = {}
  for _, job in ipairs(jobs) do pending[#pending + 1] = job end
  -- Transient failures of the launch itself are retried, three tries in all, as the old tool did.
  for attempt = 1, 3 do
    local calls = {}
    for i, job in ipairs(pending) do
      calls[i] = { path = "/jobs/launch",
                   fields = { task = backend.task(job, ctx.secret_env[job.name] or job.spec.env), name = job.name } }
    end
    local subs = c:submit_many(calls)
    local ids, owners, again = {}, {}, {}
    for i, sub in ipairs(subs) do
      local job = pending[i]
      if sub.id then
        ids[#ids + 1] = sub.id
        owners[#ids] = job
        job.launch_request_id = sub.id
      else
        job.launch_error = sub.error
        if sub.status == 503 or not sub.status then again[#again + 1] = job else job.status = "LAUNCH_FAILED" end
      end
    end
    for k, got in ipairs(c:wait_many(ids)) do
      local job = owners[k]
      local id = type(got.value) == "table" and got.value.job_id
      if type(id) == "table" then id = id[1] end -- a pool launch returns a list
      if math.tointeger(id) then
        job.native_id = tostring(math.tointeger(id))
        job.native_status = "PENDING"
        job.status = "PENDING"
      else
        job.launch_error = got.error or "the launch returned no job id"
        if got.transport then again[#again + 1] = job else job.status = "LAUNCH_FAILED" end
      end
    end
    pending = again
    if #pending == 0 then break end
    if attempt < 3 then process.sleep(math.min(2 ^ attempt, 10) * math.random()) end
  end
  for _, job in ipairs(pending) do job.status = "LAUNCH_FAILED" end
end

function backend.submit(ctx, job)
  backend.submit_many(ctx, { job })
  if job.native_id then return true end
  return nil, job.launch_error
end

-- queue(ctx, c, ids) -> rows | nil, why: /jobs/queue/v2, or /jobs/queue (list or dict) on
-- servers without it.
local function queue(ctx, c, ids)
  local fields = { job_ids = ids, all_users = false, skip_finished = false }
  if not ctx.skypilot_queue_v1 and (c.server_api_version or 0) >= 18 then
    fields.fields = QUEUE_FIELDS
    local value, why, status = c:call("/jobs/queue/v2", fields)
    if value then return type(value) == "table" and value.jobs or {} end
    if status ~= 404 then return nil, why end
    ctx.skypilot_queue_v1 = true -- an older server: remember, and fall back
    fields.fields = nil
  end
  local value, why = c:call("/jobs/queue", fields)
  if not value then return nil, why end
  if type(value) == "table" and value.jobs then return value.jobs end
  return type(value) == "table" and value or {}
end

local function apply(job, row)
  local native = tostring(row.status)
  job.native_status = native
  job.status = STATUS[native] or "RUNNING"
  job.restart_count = math.tointeger(row.recovery_count) or job.restart_count or 0
  job.attempt = job.restart_count + 1
  if type(row.start_at) == "number" then job.started_at = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row.start_at)) end
  if STATUS[native] == "SUCCEEDED" or STATUS[native] == "FAILED" or STATUS[native] == "CANCELLED" then
    if type(row.end_at) == "number" then job.ended_at = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row.end_at)) end
    if type(row.job_duration) == "number" then job.duration_s = math.floor(row.job_duration * 10 + 0.5) / 10 end
    local reason = row.failure_reason ~= json.null and row.failure_reason or nil
    if native == "CANCELLED" then job.backend_termination = "cancelled"
    elseif reason then job.backend_termination = reason
    elseif native ~= "SUCCEEDED" then job.backend_termination = native:lower() end
  end
end

-- poll(ctx, jobs): one queue call for every job given.
function backend.poll(ctx, jobs)
  local c, why = client(ctx, options_of(jobs))
  if not c then ctx.backend_error = why; return end
  local ids, by_id = {}, {}
  for _, job in ipairs(jobs) do
    local id = math.tointeger(tonumber(job.native_id))
    if id then ids[#ids + 1] = id; by_id[tostring(id)] = job end
  end
  if #ids == 0 then return end
  ctx.skypilot_polls = (ctx.skypilot_polls or 0) + 1
  local rows, err = queue(ctx, c, ids)
  if not rows then ctx.backend_error = err; return end
  ctx.backend_error = nil
  local seen = {}
  for _, row in ipairs(rows) do
    local id = tostring(math.tointeger(row.job_id) or row.job_id)
    local job = by_id[id]
    if job and (row.task_id == nil or row.task_id == json.null or row.task_id == 0 or not seen[id]) then
      seen[id] = true
      apply(job, row)
    end
  end
  for id, job in pairs(by_id) do
    if not seen[id] then job.status, job.native_status = "LOST", "NOT_IN_QUEUE" end
  end
end

-- fetch_logs(ctx, jobs): each job's log, once it has ended, into its log file (ANSI kept).
function backend.fetch_logs(ctx, jobs, opts)
  local c = client(ctx, options_of(jobs))
  if not c then return end
  local ids, want = {}, {}
  for _, job in ipairs(jobs) do
    if job.native_id and (opts and opts.force or not job.log_fetched) then
      ids[#ids + 1] = job.native_id
      want[#ids] = job
    end
  end
  if #ids == 0 then return end
  for k, got in ipairs(c:job_logs(ids)) do
    local job = want[k]
    if got.text then
      fs.write_atomic(ctx.run_dir .. "/" .. job.log_path_rel, got.text, false)
      local terminal = job.status == "SUCCEEDED" or job.status == "FAILED" or job.status == "CANCELLED"
      job.log_fetched = terminal or nil
      if got.exit_code then job.backend_exit_code = got.exit_code end
    end
  end
end

-- cancel(ctx, jobs): one /jobs/cancel for all, then followed through CANCELLING to CANCELLED.
function backend.cancel(ctx, jobs)
  local results = {}
  local c, why = client(ctx, options_of(jobs))
  local ids, targets = {}, {}
  for _, job in ipairs(jobs) do
    local id = math.tointeger(tonumber(job.native_id))
    if not id then results[job.name] = "not found"
    elseif not c then results[job.name] = "failed: " .. tostring(why)
    else ids[#ids + 1] = id; targets[#targets + 1] = job end
  end
  if #ids == 0 then return results end
  backend.poll(ctx, targets)
  local live = {}
  for _, job in ipairs(targets) do
    if job.status == "LOST" then results[job.name] = "not found"
    elseif job.status == "SUCCEEDED" or job.status == "FAILED" or job.status == "CANCELLED" then
      results[job.name] = "already completed"
    else live[#live + 1] = job end
  end
  if #live == 0 then return results end
  local live_ids = {}
  for i, job in ipairs(live) do live_ids[i] = math.tointeger(tonumber(job.native_id)) end
  local ok, err = c:call("/jobs/cancel", { job_ids = live_ids })
  if not ok then
    for _, job in ipairs(live) do results[job.name] = "failed: " .. tostring(err) end
    return results
  end
  local deadline = process.now() + 60
  local waiting = live
  while #waiting > 0 and process.now() < deadline do
    backend.poll(ctx, waiting)
    local still = {}
    for _, job in ipairs(waiting) do
      if job.status == "CANCELLED" then results[job.name] = "killed"
      elseif job.status == "SUCCEEDED" or job.status == "FAILED" then results[job.name] = "already completed"
      else still[#still + 1] = job end
    end
    waiting = still
    if #waiting > 0 then process.sleep(0.3) end
  end
  for _, job in ipairs(waiting) do results[job.name] = "failed: still " .. tostring(job.native_status) end
  return results
end

return backend
