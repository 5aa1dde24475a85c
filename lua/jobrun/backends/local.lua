-- The local backend: each job under a detached supervisor (jobrun.supervisor) that claims the
-- job in jobs/<job>.status.json and records its end in jobs/<job>.result.json. Polling reads
-- those files (one pass for the whole run); waiting is done on the supervisors' pidfds; a
-- supervisor's identity is its pid plus its start time, so a reused pid is never taken for a
-- live job.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"
local state = require "jobrun.state"
local supervisor = require "jobrun.supervisor"
local jobfile = require "jobrun.jobfile"

local backend = { name = "local" }

local DEFAULT_GRACE = 10

local function paths(ctx, job)
  return supervisor.paths(ctx.run_dir .. "/jobs", state.job_key(job))
end

-- read_json(path) -> record | nil (no file) | false, why (a file that is not a valid record).
local function read_json(path)
  local rec, why = jobfile.decode(fs.read(path))
  if rec == false then return false, path .. ": " .. why end
  return rec
end

-- damaged(job, why): the job's own file cannot be read: it ends LOST, saying which and why.
local function damaged(job, why)
  job.status, job.native_status = "LOST", "DAMAGED_RECORD"
  job.backend_termination = "damaged_record"
  job.record_error = why
end

-- alive(job): the supervisor recorded for the job is still that same process.
local function supervisor_alive(job)
  local pid = tonumber(job.native_id)
  if not pid or not job.local_start_time then return false end
  return process.start_time(pid) == job.local_start_time
end

-- submit(ctx, job) -> true | nil, why. Sets native_id and the supervisor's identity.
function backend.submit(ctx, job)
  local spec = job.spec
  local opts = spec.options or {}
  local p = paths(ctx, job)
  local supervised = json.encode({
    name = job.name, run_id = ctx.run_id, commands = spec.commands, setup = spec.setup,
    env = ctx.secret_env[job.name] or spec.env,
    nodes = spec.nodes, timeout = spec.timeout, max_restarts = spec.max_restarts,
    grace = opts.grace and tonumber(opts.grace) or DEFAULT_GRACE, cwd = ctx.cwd,
    log = ctx.run_dir .. "/" .. job.log_path_rel,
  })
  -- A new jobrun process (vfork + exec of /proc/self/exe) that goes straight to
  -- jobrun.supervisor; libcurl and libgit2 are loaded only when used, so it starts fast.
  -- Its own messages go to the job's log. The spec, secrets included, reaches it through a
  -- pipe on its stdin: a command line is readable by every local user (ps, /proc/PID/cmdline).
  local proc, err = process.spawn({
    argv = { "/proc/self/exe", "__supervise", p.status, p.result }, input = supervised,
    stdout = ctx.run_dir .. "/" .. job.log_path_rel, stderr = "stdout", setsid = true,
  })
  if not proc then return nil, err end
  job.native_id = tostring(proc:pid())
  job.local_start_time = process.start_time(proc:pid())
  job.status, job.native_status = "RUNNING", "STARTED"
  ctx.handles[job.name] = proc
  return true
end

local function apply(job, st)
  job.restart_count = st.restart_count
  job.attempt = st.attempt
  job.started_at = job.started_at or state.iso(st.started_at)
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
  elseif st.setup_failed then
    job.status, job.native_status, job.backend_termination = "FAILED", "SETUP_FAILED", "setup_failed"
  elseif st.exit_code == 0 then
    job.status, job.native_status = "SUCCEEDED", "EXITED"
  else
    job.status, job.native_status = "FAILED", st.signal and ("SIG" .. st.signal) or "EXITED"
  end
  -- The disk let the record out only over the claim: the outcome is real, and so is the fault.
  job.log_error, job.result_error = st.log_error, st.result_error
  if st.result_error then job.backend_termination = "result_unwritable: " .. (st.result_cause or st.result_error) end
end

-- read_end(p) -> the record of the job's end, or nil and the claim. The record is the result
-- file, or the claim rewritten in place when the result file could not be written.
local function read_end(p)
  local result, why = read_json(p.result)
  if result then return result end
  if result == false then return false, why end
  local claim, cwhy = read_json(p.status)
  if claim and claim.state == "EXITED" then return claim end
  return nil, claim, cwhy
end

-- unwritable(handle, job) -> the cause, when the job's supervisor (our child) exited saying
-- that it could write neither its result nor its claim.
local function unwritable(handle, job)
  local ended = handle and tostring(handle:pid()) == job.native_id and handle:wait(false)
  local errno = ended and ended.exit_code and ended.exit_code - supervisor.UNWRITABLE_BASE
  return errno and errno > 0 and fs.strerror(errno) or nil
end

-- The supervisor that claimed the job is the job's, whoever launched it.
local function take_claim(job, claim)
  job.native_id, job.local_start_time = tostring(claim.supervisor_pid), claim.supervisor_start
  job.submitted_at = job.submitted_at or state.iso(claim.started_at)
end

-- adopt(ctx, jobs): pending jobs that a runner launched but died before saving: their
-- supervisor's claim says who runs them, so they are never launched twice.
function backend.adopt(ctx, jobs)
  for _, job in ipairs(jobs) do
    if not job.native_id then
      local claim = read_json(paths(ctx, job).status)
      if claim then -- a damaged claim leaves the job pending: its launch is tried (and refused) again
        take_claim(job, claim)
        job.status = "RUNNING"
      end
    end
  end
end

-- poll(ctx, jobs): refresh every given job from its files — one pass, no process spawned.
function backend.poll(ctx, jobs)
  for _, job in ipairs(jobs) do
    local p = paths(ctx, job)
    local handle = ctx.handles[job.name]
    if handle then handle:wait(false) end -- reap our own child, if it has ended
    local result, claim = read_end(p)
    if result then
      apply(job, result)
    elseif result == false then
      damaged(job, claim)
    else
      if claim and tostring(claim.supervisor_pid) ~= job.native_id then take_claim(job, claim) end
      if claim then apply(job, claim) end
      if not supervisor_alive(job) then
        -- The supervisor writes its result before it ends; gone without one, the job is lost
        -- (unless it lost a launch race and the winner's claim is not readable yet).
        local again, claim_why
        result, again, claim_why = read_end(p)
        claim = claim or again
        local cause = not result and unwritable(handle, job)
        if result then
          apply(job, result)
        elseif result == false then
          damaged(job, again)
        elseif claim_why then
          damaged(job, claim_why)
        elseif cause then
          job.status, job.native_status = "LOST", "RESULT_UNWRITABLE"
          job.backend_termination = "result_unwritable: " .. cause
          job.result_error = "the supervisor could write neither the result nor the claim: " .. cause
        elseif not claim or tostring(claim.supervisor_pid) == job.native_id then
          job.status, job.native_status = "LOST", "SUPERVISOR_GONE"
        end
      end
    end
    if handle and job.status ~= "RUNNING" then
      handle:wait(false) -- again: it may have ended since the result was read
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
      local handle, err = process.open(tonumber(job.native_id))
      if handle and supervisor_alive(job) then
        local sent, why = handle:kill("TERM")
        if sent then
          waiting[#waiting + 1] = { job = job, handle = handle }
          results[job.name] = "killed"
        else
          results[job.name] = why:find("not running") and "already completed" or ("failed: " .. why)
          handle:close()
        end
      else
        if handle then handle:close() end
        results[job.name] = handle and "already completed" or ("failed: " .. tostring(err))
      end
    end
  end
  -- Supervisors end their ranks (TERM, grace, KILL) and record CANCELLED; wait for that.
  local deadline = process.now() + DEFAULT_GRACE + 5
  while #waiting > 0 and process.now() < deadline do
    local handles = {}
    for i, w in ipairs(waiting) do handles[i] = w.handle end
    local ready = process.poll(handles, deadline - process.now())
    local done, keep = {}, {}
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

return backend
