-- The local backend: each job under a detached supervisor (jobrun.supervisor) that writes
-- jobs/<job>/status.json. Polling reads those files (one pass for the whole run); waiting is
-- done on the supervisors' pidfds; a supervisor's identity is its pid plus its start time, so a
-- reused pid is never taken for a live job.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"
local state = require "jobrun.state"

local backend = { name = "local" }

local DEFAULT_GRACE = 10

local function job_dir(ctx, job)
  return ctx.run_dir .. "/jobs/" .. state.safe_name(job.name)
end

local function read_status(ctx, job)
  local text = fs.read(job_dir(ctx, job) .. "/status.json")
  return text and json.decode(text) or nil
end

-- alive(job): the supervisor recorded for the job is still that same process.
local function supervisor_alive(job)
  local pid = tonumber(job.native_id)
  if not pid or not job.local_start_time then return false end
  return process.start_time(pid) == job.local_start_time
end

-- submit(ctx, job) -> true | nil, why. Sets native_id and the supervisor's identity.
function backend.submit(ctx, job)
  local dir = job_dir(ctx, job)
  local ok, err = fs.mkdir_p(dir)
  if not ok then return nil, err end
  local spec = job.spec
  local opts = spec.options or {}
  local log = ctx.run_dir .. "/" .. job.log_path_rel
  local supervised = {
    name = job.name, run_id = ctx.run_id, commands = spec.commands, env = ctx.secret_env[job.name] or spec.env,
    nodes = spec.nodes, timeout = spec.timeout, max_restarts = spec.max_restarts,
    grace = opts.grace and tonumber(opts.grace) or DEFAULT_GRACE, log = log, cwd = ctx.cwd,
  }
  ok, err = fs.write_atomic(dir .. "/spec.json", json.encode(supervised))
  if not ok then return nil, err end
  local proc
  proc, err = process.spawn({
    argv = { "/proc/self/exe", "__supervise", dir },
    stdout = dir .. "/supervisor.log", stderr = "stdout", setsid = true,
  })
  if not proc then return nil, err end
  job.native_id = tostring(proc:pid())
  job.local_start_time = process.start_time(proc:pid())
  ctx.handles[job.name] = proc
  -- Recorded at once, beside the job: state.json is saved less often than jobs start.
  fs.write_atomic(dir .. "/supervisor.json", json.encode({ pid = proc:pid(),
    start_time = job.local_start_time, submitted_at = job.submitted_at }))
  return true
end

local function apply_status(job, st)
  job.restart_count = st.restart_count
  job.attempt = st.attempt
  job.started_at = job.started_at or state.iso(st.started_at)
  job.started_epoch = st.started_at
  if st.state ~= "EXITED" then
    job.status, job.native_status = "RUNNING", "RUNNING"
    return
  end
  job.ended_at = state.iso(st.ended_at)
  job.duration_s = st.started_at and st.ended_at and
    math.floor((st.ended_at - st.started_at) * 10 + 0.5) / 10
  job.backend_exit_code = st.exit_code
  job.signal = st.signal
  if st.cancelled then
    job.status, job.native_status = "CANCELLED", "CANCELLED"
  elseif st.timed_out then
    job.status, job.native_status = "TIMEOUT", "TIMEOUT"
  elseif st.exit_code == 0 then
    job.status, job.native_status = "SUCCEEDED", "EXITED"
  else
    job.status, job.native_status = "FAILED", st.signal and ("SIG" .. st.signal) or "EXITED"
  end
end

-- adopt(ctx, job): a job launched by a runner that died before it saved the state: its
-- supervisor.json, written right after the launch, says which supervisor runs it.
local function adopt_one(ctx, job)
  local text = fs.read(job_dir(ctx, job) .. "/supervisor.json")
  local rec = text and json.decode(text)
  if rec then
    job.native_id, job.local_start_time = tostring(rec.pid), rec.start_time
    job.submitted_at = job.submitted_at or rec.submitted_at
    if job.status == "PENDING" then job.status = "RUNNING" end
  end
end

-- adopt(ctx, jobs): recover the launches of the given pending jobs that state.json missed.
function backend.adopt(ctx, jobs)
  for _, job in ipairs(jobs) do
    if not job.native_id then adopt_one(ctx, job) end
  end
end

-- poll(ctx, jobs): refresh every given job from its status file — one pass, no process spawned.
function backend.poll(ctx, jobs)
  for _, job in ipairs(jobs) do
    local st = read_status(ctx, job)
    if st then apply_status(job, st) end
    if job.status == "RUNNING" or job.status == "PENDING" and job.native_id then
      -- The supervisor records EXITED before it ends; gone without that, the job is lost.
      local handle = ctx.handles[job.name]
      if handle then handle:wait(false) end
      if not supervisor_alive(job) then
        st = read_status(ctx, job)
        if st and st.state == "EXITED" then
          apply_status(job, st)
        else
          job.status, job.native_status = "LOST", "SUPERVISOR_GONE"
        end
      end
    end
    local handle = ctx.handles[job.name]
    if handle and job.status ~= "RUNNING" then
      handle:wait(false)
      handle:close()
      ctx.handles[job.name] = nil
    end
  end
end

-- waitables(ctx, jobs) -> list of { job, handle }: pollable handles that become ready when a
-- job's supervisor ends (pidfds: our own children, or opened by pid for another jobrun's).
function backend.waitables(ctx, jobs)
  local out = {}
  for _, job in ipairs(jobs) do
    local handle = ctx.handles[job.name]
    if not handle and supervisor_alive(job) then
      handle = process.open(tonumber(job.native_id))
      -- Opened after the start-time check: make sure it is still the same process.
      if handle and not supervisor_alive(job) then handle:close(); handle = nil end
      ctx.handles[job.name] = handle
    end
    if handle then out[#out + 1] = { job = job, handle = handle } end
  end
  return out
end

-- cancel(ctx, jobs) -> { [name] = "killed" | "already completed" | "not found" | "failed: …" }
function backend.cancel(_ctx, jobs)
  local results, waiting = {}, {}
  for _, job in ipairs(jobs) do
    if not job.native_id then
      results[job.name] = "not found"
    elseif not supervisor_alive(job) then
      results[job.name] = "already completed"
    else
      local ok, err = process.open(tonumber(job.native_id))
      if ok and supervisor_alive(job) then
        local sent, why = ok:kill("TERM")
        if sent then
          waiting[#waiting + 1] = { job = job, handle = ok }
          results[job.name] = "killed"
        else
          results[job.name] = why:find("not running") and "already completed" or ("failed: " .. why)
          ok:close()
        end
      else
        results[job.name] = ok and "already completed" or ("failed: " .. tostring(err))
      end
    end
  end
  -- Supervisors end their ranks (TERM, grace, KILL) and record CANCELLED; wait for that.
  local deadline = process.now() + DEFAULT_GRACE + 5
  while #waiting > 0 and process.now() < deadline do
    local handles = {}
    for i, w in ipairs(waiting) do handles[i] = w.handle end
    local ready = process.poll(handles, deadline - process.now())
    local keep = {}
    local done = {}
    for _, i in ipairs(ready) do done[i] = true end
    for i, w in ipairs(waiting) do
      if done[i] then w.handle:close() else keep[#keep + 1] = w end
    end
    waiting = keep
  end
  for _, w in ipairs(waiting) do
    results[w.job.name] = "failed: the supervisor did not stop in time"
    w.handle:close()
  end
  return results
end

function backend.log_path(ctx, job)
  return ctx.run_dir .. "/" .. job.log_path_rel
end

return backend
