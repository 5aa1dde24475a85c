-- The SkyPilot backend: managed jobs through the API server (jobrun.backends.skypilot.api). Launches go
-- out concurrently and are resolved together; one queue call per poll cycle covers every job of
-- the run; logs are fetched once, when a job has ended (or when `jobrun logs` asks); one cancel
-- call covers every job. An API error never fails a job: it keeps its last known status.
-- Launches are idempotent: each job is launched under a name unique to its run and attempt
-- (launch_name), recorded as job.sky_name. A launch whose answer was lost (timeout, dropped
-- connection), and a pending job of a runner that died mid-launch (adopt), is looked up by that
-- name, in the queue and among the requests still running, and launched again only when it is
-- certainly not on the server. Of several managed jobs with one name the oldest is the job's;
-- the others are kept in job.sky_duplicates, and `kill` cancels them with every other live
-- managed job whose name carries the run's tag. What it learns of a job is an observation
-- (jobrun.run.status), which the run applies; its own bookkeeping (the launch name, its attempts,
-- duplicates, a launch it is unsure of) is in the observation's notes.
local common = require "jobrun.backends.common"
local api = require "jobrun.backends.skypilot.api"
local tasks = require "jobrun.backends.skypilot.task"
local json = require "jobrun.base.json"
local state = require "jobrun.run.store"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local errors = require "jobrun.base.errors"
local secrets = require "jobrun.base.secrets"
local status = require "jobrun.run.status"

local NONE = status.NONE

-- exit_codes = false: /jobs/logs' JobExitCode is not the program's exit code (README "Jobs, statuses and results").
local backend = { name = "skypilot", poll_interval = 2, poll_interval_max = 30, exit_codes = false, observes = true }

-- Managed-job statuses (reference §4) as jobrun's statuses (README "Jobs, statuses and results").
local STATUS = {
  PENDING = "PENDING", SUBMITTED = "PENDING", STARTING = "PENDING",
  RUNNING = "RUNNING", RECOVERING = "RUNNING", CANCELLING = "RUNNING",
  SUCCEEDED = "SUCCEEDED", CANCELLED = "CANCELLED",
  FAILED = "FAILED", FAILED_SETUP = "FAILED", FAILED_PRECHECKS = "FAILED",
  FAILED_NO_RESOURCE = "FAILED", FAILED_CONTROLLER = "FAILED",
}

local QUEUE_FIELDS = { "job_id", "task_id", "job_name", "status", "failure_reason", "recovery_count",
                       "job_duration", "submitted_at", "start_at", "end_at", "details",
                       "current_cluster_name" }

-- client(ctx, options): one API client per run (its connections are reused), health-checked once.
local function client(ctx, options)
  if ctx.skypilot then return ctx.skypilot end
  -- user:password in the suite's endpoint is kept only in the plan, in memory (never stored):
  -- a process that did not plan the run gets it by re-reading the suite (ctx.read_suite,
  -- jobrun.run.context).
  if options.endpoint and secrets.reveal(options.endpoint) == options.endpoint then ctx.read_suite() end
  local c = api.new(api.settings(options))
  local ok, why = c:health()
  if not ok then return nil, why end
  ctx.skypilot = c
  return c
end

-- check(options): before a run is created, the server must answer and be new enough.
function backend.check(options)
  -- The task first: a task YAML that cannot be read, or local paths a remote server cannot
  -- see, are the suite's mistakes (exit 2), whatever the server says.
  local settings = api.settings(options)
  local _, bad = tasks.build({ options = options, name = "check", nodes = 1, run = "true", env = {},
                                endpoint = settings.endpoint })
  if bad then errors.raise("%s", bad) end
  local ctx = {}
  local c, why = client(ctx, options)
  if not c then errors.infra("%s", why) end
  return { endpoint = c.base, api_version = c.server_api_version }
end

-- task(job, env [, ctx, name]) -> the task, as JSON text (JSON is YAML, and the server reads
-- YAML) | nil, why: the suite's `skypilot.task` YAML overlaid with the job (jobrun.backends.skypilot.task),
-- named `name` (the launch's name) or the job's.
function backend.task(job, env, ctx, name)
  local envs = {}
  for k, v in pairs(env or {}) do envs[k] = v end
  envs.JOBRUN_JOB_NAME = job.name
  local o = job.spec.options or {}
  local endpoint = ctx and ctx.skypilot and ctx.skypilot.endpoint or api.settings(o).endpoint
  -- The server names the managed job from the task, never from the launch body.
  local t, why = tasks.for_job(job, envs, endpoint, ctx and ctx.cwd, name)
  if not t then return nil, why end
  return json.encode(t)
end

local function options_of(jobs)
  return jobs[1] and jobs[1].spec and jobs[1].spec.options or {}
end

-- queue(ctx, c, ids [, skip_finished]) -> rows | nil, why: /jobs/queue/v2, or /jobs/queue
-- (list or dict) on servers without it. ids: json.null for all the user's jobs. A jobs
-- controller that has stopped (ClusterNotUpError; it auto-stops when idle) is asked again
-- with refresh, which starts it.
local function queue(ctx, c, ids, skip_finished, refresh)
  local fields = { job_ids = ids, all_users = false, skip_finished = skip_finished or false,
                   refresh = refresh or false }
  if not ctx.skypilot_queue_v1 and (c.server_api_version or 0) >= 18 then
    fields.fields = QUEUE_FIELDS
    local value, why, code, kind = c:call("/jobs/queue/v2", fields)
    if value then return type(value) == "table" and value.jobs or {} end
    if kind == "ClusterNotUpError" and not refresh then return queue(ctx, c, ids, skip_finished, true) end
    if code ~= 404 then return nil, why end
    ctx.skypilot_queue_v1 = true -- an older server: remember, and fall back
    fields.fields = nil
  end
  local value, why, _, kind = c:call("/jobs/queue", fields)
  if not value and kind == "ClusterNotUpError" and not refresh then
    return queue(ctx, c, ids, skip_finished, true)
  end
  if not value then return nil, why end
  if type(value) == "table" and value.jobs then return value.jobs end
  return type(value) == "table" and value or {}
end

-- observe(job, row) -> what a queue row says of the job.
local function observe(job, row)
  local native = tostring(row.status)
  local o = { native_status = native, status = STATUS[native] or "RUNNING" }
  o.restart_count = math.tointeger(row.recovery_count) or job.restart_count or 0
  o.attempt = o.restart_count + 1
  -- Where it runs, as far as the API says: the cluster the controller launched for it (gone,
  -- and null, once the job has ended: the last name seen stays).
  local cluster = row.current_cluster_name
  if type(cluster) == "string" and cluster ~= "" then o.nodes = { cluster } end
  if type(row.start_at) == "number" then o.started_at = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row.start_at)) end
  if STATUS[native] == "SUCCEEDED" or STATUS[native] == "FAILED" or STATUS[native] == "CANCELLED" then
    if type(row.end_at) == "number" then o.ended_at = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row.end_at)) end
    if type(row.job_duration) == "number" then o.duration_s = math.floor(row.job_duration * 10 + 0.5) / 10 end
    local reason = row.failure_reason ~= json.null and row.failure_reason or nil
    if native == "CANCELLED" then o.termination = "cancelled"
    elseif reason then o.termination = reason
    elseif native ~= "SUCCEEDED" then o.termination = native:lower() end
  end
  return o
end

-- ---------------------------------------------------------------- idempotent launches

local REQUEST_TERMINAL = { SUCCEEDED = true, FAILED = true, CANCELLED = true }

-- hash8(text): 32-bit FNV-1a as 8 hex digits, for short names that are stable across processes.
local function hash8(text)
  local h = 2166136261
  for i = 1, #text do h = ((h ~ text:byte(i)) * 16777619) & 0xffffffff end
  return string.format("%08x", h)
end

-- run_tag(ctx): "r" + a hash of the run id and the run's creation time, both in state.json
-- before anything is launched: every process of the run derives the same tag, and a run id
-- reused once its state was deleted gets another (its old jobs are never adopted or killed).
local function run_tag(ctx)
  if not ctx.sky_run_tag then
    local ok, data = pcall(state.read, ctx.run_dir)
    local started = ok and data.started_at or ""
    ctx.sky_run_tag = "r" .. hash8(tostring(ctx.run_id) .. "\n" .. tostring(started))
  end
  return ctx.sky_run_tag
end

-- base_name(ctx, job): the job's launch name without its attempt. The job name made a task name
-- every server version accepts (a letter first, then lower-case letters and digits joined by
-- single '-'; at most 30 characters), the run's tag, and a hash of the job's key, which is unique
-- in the run: jobs whose names sanitise alike still get names of their own (two would need the
-- same stem and the same 32-bit hash).
local function base_name(ctx, job)
  local stem = job.name:lower():gsub("[^%w]+", "-"):gsub("^[^%a]+", ""):sub(1, 30):gsub("%-+$", "")
  if stem == "" then stem = "job" end
  return stem .. "-" .. run_tag(ctx) .. "-" .. hash8(state.job_key(job))
end

-- launch_name(ctx, job, attempt) -> e.g. "train-lr-0-1-r1a2b3c4d-5e6f7a8b-a1" (at most 53 characters).
local function launch_name(ctx, job, attempt)
  return base_name(ctx, job) .. "-a" .. attempt
end

-- base_of(ctx, name) -> the base of a launch name of this run, else nil.
local function base_of(ctx, name)
  if type(name) ~= "string" then return nil end
  return name:match("^(.-%-" .. run_tag(ctx) .. "%-%x+)%-a%d+$")
end

-- launched(ctx, c, jobs) -> { [job] = { rows = {…}, requests = {…} } } | nil, why: what the
-- server holds under each job's name (any attempt): its managed jobs, oldest first, and its
-- launch requests still running. The requests are read first: one that ends in between has put
-- its job in the queue before the queue is read. One /api/status and one queue call for all.
local function launched(ctx, c, jobs)
  local by_base, out = {}, {}
  for _, job in ipairs(jobs) do
    by_base[base_name(ctx, job)] = job
    out[job] = { rows = {}, requests = {} }
  end
  local active, why = c:active()
  if not active then return nil, why end
  for _, rec in ipairs(active) do
    if rec.name == "sky.jobs.launch" and not REQUEST_TERMINAL[rec.status] then
      -- Our tasks are JSON (JSON is YAML), so their name is read without a YAML parser.
      local body = type(rec.request_body) == "string" and json.decode(rec.request_body)
      local task = type(body) == "table" and type(body.task) == "string" and json.decode(body.task)
      local job = type(task) == "table" and by_base[base_of(ctx, task.name) or ""]
      if job then table.insert(out[job].requests, rec.request_id) end
    end
  end
  local rows, err = queue(ctx, c, json.null, false)
  if not rows then return nil, err end
  for _, row in ipairs(rows) do
    local job = by_base[base_of(ctx, row.job_name) or ""]
    if job and math.tointeger(row.job_id) and (row.task_id == nil or row.task_id == json.null or row.task_id == 0) then
      table.insert(out[job].rows, row)
    end
  end
  for _, found in pairs(out) do
    table.sort(found.rows, function(a, b) return math.tointeger(a.job_id) < math.tointeger(b.job_id) end)
  end
  return out
end

-- observation(out, job) -> the job's observation in `out`, made at the first word of it.
local function observation(out, job)
  local o = out[job]
  if not o then o = { notes = {} }; out[job] = o end
  return o
end

-- noted(job, o, k) -> the backend's note k of the job, as this call has observed it so far.
local noted = status.noted

-- take(o, rows): the oldest managed job under the job's name is the job's (it was launched
-- first, so it is the furthest along); the others are duplicates of lost launches, for kill.
-- The status is left unfinished for the next poll to settle.
local function take(o, rows)
  local row = rows[1]
  o.native_id = tostring(math.tointeger(row.job_id))
  o.native_status = tostring(row.status)
  o.status = STATUS[o.native_status] == "RUNNING" and "RUNNING" or "PENDING"
  o.launch_error = NONE
  o.notes.sky_name, o.notes.sky_unsure = row.job_name, NONE
  local dups = {}
  for i = 2, #rows do dups[#dups + 1] = math.tointeger(rows[i].job_id) end
  o.notes.sky_duplicates = #dups > 0 and dups or NONE
end

-- resolve(ctx, c, jobs, out) -> the jobs certainly not on the server. The others take the
-- managed job found under their name, once the launch requests still running for them have
-- ended. A server that cannot be asked leaves a job LAUNCH_FAILED rather than launched twice.
local function resolve(ctx, c, jobs, out)
  local open, absent, why = jobs, {}, nil
  for round = 1, 5 do
    local found
    found, why = launched(ctx, c, open)
    if found then
      local waiting, requests = {}, {}
      for _, job in ipairs(open) do
        local f = found[job]
        if #f.rows > 0 then take(observation(out, job), f.rows)
        elseif #f.requests > 0 then
          waiting[#waiting + 1] = job
          for _, id in ipairs(f.requests) do requests[#requests + 1] = id end
        else absent[#absent + 1] = job end
      end
      if #waiting == 0 then return absent end
      c:wait_many(requests) -- then look again: their jobs are in the queue (or they failed)
      open = waiting
    elseif round < 5 then
      process.sleep(common.backoff(round + 1, 1, 10))
    end
  end
  for _, job in ipairs(open) do
    local o = observation(out, job)
    o.status = "LAUNCH_FAILED"
    o.launch_error = string.format("the launch may have reached the server, which could not be asked (%s); "
      .. "not launched again", tostring(why or "its launch requests did not end"))
  end
  return absent
end

-- send(ctx, c, jobs, out) -> unsure, again: one launch request per job, over new connections
-- (see api.submit_many), resolved together. unsure: the server may have taken the launch;
-- again: it certainly did not (a 503, no connection).
local function send(ctx, c, jobs, out)
  local calls, sent = {}, {}
  for _, job in ipairs(jobs) do
    local o = observation(out, job)
    local attempt = (noted(job, o, "sky_attempt") or 0) + 1
    o.notes.sky_attempt = attempt
    o.notes.sky_name = launch_name(ctx, job, attempt)
    local text, why = backend.task(job, ctx.secret_env[job.name] or job.spec.env, ctx, o.notes.sky_name)
    if text then
      sent[#sent + 1] = job
      calls[#sent] = { path = "/jobs/launch", fields = { task = text, name = o.notes.sky_name } }
    else
      o.status, o.launch_error = "LAUNCH_FAILED", why
    end
  end
  local ids, owners, unsure, again = {}, {}, {}, {}
  for i, sub in ipairs(#calls > 0 and c:submit_many(calls, { fresh = true }) or {}) do
    local job = sent[i]
    local o = observation(out, job)
    if sub.id then
      ids[#ids + 1] = sub.id
      owners[#ids] = job
      o.notes.launch_request_id = sub.id
    else
      o.launch_error = sub.error
      if sub.maybe_sent then unsure[#unsure + 1] = job
      elseif sub.status == 503 or not sub.status then again[#again + 1] = job
      else o.status = "LAUNCH_FAILED" end
    end
  end
  for k, got in ipairs(c:wait_many(ids)) do
    local job = owners[k]
    local o = observation(out, job)
    local id = type(got.value) == "table" and got.value.job_id
    if type(id) == "table" then id = id[1] end -- a pool launch returns a list
    if math.tointeger(id) then
      o.native_id = tostring(math.tointeger(id))
      o.native_status = "PENDING"
      o.status = "PENDING"
    else
      o.launch_error = got.error or "the launch returned no job id"
      -- /api/get failed as a GET (after its own retries) or asked for a resubmission: the
      -- launch may have run, so it is looked up, never sent blindly again.
      if got.transport then unsure[#unsure + 1] = job else o.status = "LAUNCH_FAILED" end
    end
  end
  return unsure, again
end

-- submit_many(ctx, jobs) -> { [job] = observation }: every launch request at once, resolved
-- together. Jobs an earlier process may have launched (adopt found their launch still running)
-- are looked up first. A launch the server certainly did not take is tried again, three tries
-- in all, as the old tool did; one it may have taken is looked up by name first.
function backend.submit_many(ctx, jobs)
  local out = {}
  local c, why = client(ctx, options_of(jobs))
  if not c then
    for _, job in ipairs(jobs) do
      local o = observation(out, job)
      o.status, o.launch_error = "LAUNCH_FAILED", why
    end
    return out
  end
  local pending, unsure = {}, {}
  for _, job in ipairs(jobs) do
    if job.sky_unsure then unsure[#unsure + 1] = job else pending[#pending + 1] = job end
  end
  if #unsure > 0 then
    for _, job in ipairs(resolve(ctx, c, unsure, out)) do pending[#pending + 1] = job end
  end
  for try = 1, 3 do
    if #pending == 0 then break end
    local again
    unsure, again = send(ctx, c, pending, out)
    if #unsure > 0 then
      for _, job in ipairs(resolve(ctx, c, unsure, out)) do again[#again + 1] = job end
    end
    pending = again
    if #pending > 0 and try < 3 then process.sleep(common.backoff(try + 1, 1, 10)) end
  end
  for _, job in ipairs(pending) do observation(out, job).status = "LAUNCH_FAILED" end
  return out
end

-- adopt(ctx, jobs) -> { [job] = observation }: pending jobs without a native id, in case a
-- runner died between launching them and saving it: each found under its name takes that
-- managed job; one whose launch request is still running is noted for submit_many to look up
-- again rather than launch. One /api/status and one queue call, and nothing waited for (check
-- and kill call this too).
function backend.adopt(ctx, jobs)
  local out = {}
  local c = client(ctx, options_of(jobs))
  local found = c and launched(ctx, c, jobs)
  if not found then return out end
  for _, job in ipairs(jobs) do
    local f = found[job]
    if #f.rows > 0 then take(observation(out, job), f.rows)
    elseif #f.requests > 0 then observation(out, job).notes.sky_unsure = true end
  end
  return out
end

-- poll(ctx, jobs) -> { [job] = observation }: one queue call for every job given.
function backend.poll(ctx, jobs)
  local out = {}
  local c, why = client(ctx, options_of(jobs))
  if not c then ctx.backend_error = why; return out end
  local ids, by_id = {}, {}
  for _, job in ipairs(jobs) do
    local id = math.tointeger(tonumber(job.native_id))
    if id then ids[#ids + 1] = id; by_id[tostring(id)] = job end
  end
  if #ids == 0 then return out end
  ctx.skypilot_polls = (ctx.skypilot_polls or 0) + 1
  local rows, err = queue(ctx, c, ids)
  if not rows then ctx.backend_error = err; return out end
  ctx.backend_error = nil
  local seen = {}
  for _, row in ipairs(rows) do
    local id = tostring(math.tointeger(row.job_id) or row.job_id)
    local job = by_id[id]
    if job and (row.task_id == nil or row.task_id == json.null or row.task_id == 0 or not seen[id]) then
      seen[id] = true
      out[job] = observe(job, row)
    end
  end
  for id, job in pairs(by_id) do
    if not seen[id] then out[job] = { status = "LOST", native_status = "NOT_IN_QUEUE" } end
  end
  return out
end

-- fetch_logs(ctx, jobs) -> { [job] = observation }: each job's log, once it has ended, into its
-- log file (ANSI kept).
function backend.fetch_logs(ctx, jobs, opts)
  local out = {}
  local c = client(ctx, options_of(jobs))
  if not c then return out end
  local ids, want = {}, {}
  for _, job in ipairs(jobs) do
    if job.native_id and (opts and opts.force or not job.log_fetched) then
      ids[#ids + 1] = job.native_id
      want[#ids] = job
    end
  end
  if #ids == 0 then return out end
  for k, got in ipairs(c:job_logs(ids)) do
    local job = want[k]
    local o = observation(out, job)
    local path = ctx.run_dir .. "/" .. job.log_path_rel
    -- Only a request that succeeded gives the log; and a log already fetched is never replaced
    -- by nothing, nor by the server's "not found" (JobExitCode 102).
    local have = got.text and (got.text == "" or got.exit_code == 102) and (fs.stat(path) or {}).size or 0
    if got.text and have == 0 then
      fs.write_atomic(path, got.text, false)
      local terminal = job.status == "SUCCEEDED" or job.status == "FAILED" or job.status == "CANCELLED"
      o.notes.log_fetched = terminal or NONE
    end
    -- The request's JobExitCode (0, 100–103) says how SkyPilot saw the job end, not the
    -- program's exit code: it is the backend's, and only that.
    if got.text and got.exit_code then o.exit_code = got.exit_code end
    if got.error then o.log_error = "fetching the log: " .. got.error elseif got.text then o.log_error = NONE end
  end
  return out
end

-- strays(ctx, c, jobs) -> ids: live managed jobs of this run that no job holds as its own:
-- duplicates of lost launches. When the whole run is being killed (its cancel marker), every one
-- whose name carries the run's tag; else those under the given jobs' names.
local function strays(ctx, c, jobs)
  local whole = ctx.store and ctx.store.run_cancelled() or false
  local bases, own, out, seen = {}, {}, {}, {}
  for _, job in ipairs(jobs) do
    bases[base_name(ctx, job)] = true
    if job.native_id then own[tostring(job.native_id)] = true end
  end
  local function add(id)
    if id and not own[tostring(id)] and not seen[id] then seen[id] = true; out[#out + 1] = id end
  end
  for _, job in ipairs(jobs) do
    for _, id in ipairs(job.sky_duplicates or {}) do add(math.tointeger(id)) end
  end
  for _, row in ipairs(queue(ctx, c, json.null, true) or {}) do
    local base = base_of(ctx, row.job_name)
    local native = STATUS[tostring(row.status)]
    if base and (whole or bases[base]) and native ~= "SUCCEEDED" and native ~= "FAILED" and native ~= "CANCELLED" then
      add(math.tointeger(row.job_id))
    end
  end
  return out
end

-- cancel(ctx, jobs) -> outcomes, { [job] = observation }: one /jobs/cancel for all, duplicates
-- included, then followed through CANCELLING to CANCELLED (on copies of the jobs, which take
-- what each poll sees: jobrun.run.status.scratch).
function backend.cancel(ctx, jobs)
  local results = {}
  local copies, observed = status.scratch(jobs)
  local c, why = client(ctx, options_of(jobs))
  local targets = {}
  for _, job in ipairs(copies) do
    if not math.tointeger(tonumber(job.native_id)) then results[job.name] = "not found"
    elseif not c then results[job.name] = "failed: " .. tostring(why)
    else targets[#targets + 1] = job end
  end
  if not c then return results, observed() end
  if #targets > 0 then
    for job, o in pairs(backend.poll(ctx, targets)) do status.fold(job, o) end
  end
  local live = {}
  for _, job in ipairs(targets) do
    if job.status == "LOST" then results[job.name] = "not found"
    elseif job.status == "SUCCEEDED" or job.status == "FAILED" or job.status == "CANCELLED" then
      results[job.name] = "already completed"
    else live[#live + 1] = job end
  end
  local ids = {}
  for i, job in ipairs(live) do ids[i] = math.tointeger(tonumber(job.native_id)) end
  for _, id in ipairs(strays(ctx, c, copies)) do ids[#ids + 1] = id end
  if #ids == 0 then return results, observed() end
  local ok, err = c:call("/jobs/cancel", { job_ids = ids })
  if not ok then
    for _, job in ipairs(live) do results[job.name] = "failed: " .. tostring(err) end
    return results, observed()
  end
  common.follow_cancel(function(waiting) return backend.poll(ctx, waiting) end, live, results, 60, 0.3)
  return results, observed()
end

return backend
