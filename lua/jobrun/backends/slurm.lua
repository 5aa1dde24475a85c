-- The Slurm backend: one generated batch script per job (kept in the run directory), sbatch to
-- submit, one `scontrol -o show job` per poll cycle for all of a run's jobs (accounting may be
-- off, so no sacct), one scancel for all cancels. Ranks run under srun with the same variables
-- as the local backend's; max_restarts is Slurm's requeue. The run directory must be on a file
-- system that the nodes share, since the nodes write the logs there.
local exec = require "jobrun.exec"
local state = require "jobrun.state"
local template = require "jobrun.template"
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"

local backend = { name = "slurm", poll_interval = 1, poll_interval_max = 15 }

-- Slurm's job states, as SPEC §4 statuses and (for the ends that say why) a termination.
local STATES = {
  PENDING = { "PENDING" }, CONFIGURING = { "PENDING" }, REQUEUED = { "PENDING" },
  REQUEUE_HOLD = { "PENDING" }, REQUEUE_FED = { "PENDING" }, RESV_DEL_HOLD = { "PENDING" },
  SUSPENDED = { "RUNNING" }, RUNNING = { "RUNNING" }, COMPLETING = { "RUNNING" },
  STAGE_OUT = { "RUNNING" }, SIGNALING = { "RUNNING" }, RESIZING = { "RUNNING" },
  COMPLETED = { "SUCCEEDED" },
  FAILED = { "FAILED" },
  TIMEOUT = { "TIMEOUT", "timeout" }, DEADLINE = { "TIMEOUT", "deadline" },
  CANCELLED = { "CANCELLED", "cancelled" },
  OUT_OF_MEMORY = { "FAILED", "oom" }, NODE_FAIL = { "FAILED", "node_fail" },
  BOOT_FAIL = { "FAILED", "boot_fail" }, PREEMPTED = { "FAILED", "preempted" },
  SPECIAL_EXIT = { "FAILED", "special_exit" },
}
backend.STATES = STATES

local function slurm_time(seconds)
  local s = math.ceil(seconds)
  return string.format("%d-%02d:%02d:%02d", s // 86400, (s % 86400) // 3600, (s % 3600) // 60, s % 60)
end

-- script(ctx, job) -> the batch script's text. Its own lines never hold secrets: the job's
-- environment reaches the job through sbatch's (--export=ALL).
function backend.script(ctx, job)
  local spec = job.spec
  local o = spec.options or {}
  local log = ctx.run_dir .. "/" .. job.log_path_rel
  local lines = {
    "#!/bin/sh",
    string.format("# jobrun: job %s of run %s. Generated; kept for inspection.", job.name, ctx.run_id),
    "#SBATCH --job-name=" .. template.quote(job.name),
    "#SBATCH --nodes=" .. spec.nodes,
    "#SBATCH --ntasks-per-node=1",
    "#SBATCH --output=" .. log,
    "#SBATCH --open-mode=append",
    "#SBATCH --export=ALL",
  }
  if spec.timeout then lines[#lines + 1] = "#SBATCH --time=" .. slurm_time(spec.timeout) end
  if spec.max_restarts > 0 then lines[#lines + 1] = "#SBATCH --requeue" end
  for _, key in ipairs({ "partition", "account", "qos", "gres" }) do
    if o[key] then lines[#lines + 1] = string.format("#SBATCH --%s=%s", key, o[key]) end
  end
  for _, arg in ipairs(o.extra_args or {}) do lines[#lines + 1] = "#SBATCH " .. arg end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "restarts=${SLURM_RESTART_COUNT:-0}"
  lines[#lines + 1] = "export JOBRUN_RESTART_COUNT=$restarts JOBRUN_ATTEMPT=$((restarts + 1))"
  lines[#lines + 1] = "export JOBRUN_JOB_NAME=" .. template.quote(job.name) .. " JOBRUN_RUN_ID=" .. ctx.run_id
  -- Every rank gets the local backend's variables, from srun's.
  local rank = "export JOBRUN_NODE_RANK=$SLURM_PROCID JOBRUN_NUM_NODES=$SLURM_NNODES "
    .. "SKYPILOT_NODE_RANK=$SLURM_PROCID SKYPILOT_NUM_NODES=$SLURM_NNODES; exec sh -c \"$1\""
  local srun = "srun --label --kill-on-bad-exit=1 sh -c " .. template.quote(rank) .. " jobrun-rank "
  -- setup: once per node, before the first attempt only.
  if spec.setup then
    lines[#lines + 1] = 'if [ "$restarts" = 0 ]; then'
    lines[#lines + 1] = "  srun --label --ntasks-per-node=1 sh -c "
      .. template.quote(template.shell_command(spec.setup))
      .. ' || { rc=$?; echo "[jobrun] setup failed with exit code $rc"; exit "$rc"; }'
    lines[#lines + 1] = "fi"
  end
  local commands = spec.commands or {}
  if #commands <= 1 then
    lines[#lines + 1] = srun .. template.quote(template.shell_command(commands[1] or "true"))
  else
    lines[#lines + 1] = 'case "$restarts" in'
    for i, c in ipairs(commands) do
      local label = i < #commands and tostring(i - 1) or "*"
      lines[#lines + 1] = string.format("  %s) %s ;;", label, srun .. template.quote(template.shell_command(c)))
    end
    lines[#lines + 1] = "esac"
  end
  lines[#lines + 1] = "rc=$?"
  if spec.max_restarts > 0 then
    lines[#lines + 1] = string.format('if [ "$rc" -ne 0 ] && [ "$restarts" -lt %d ]; then', spec.max_restarts)
    lines[#lines + 1] = string.format('  echo "[jobrun] attempt $((restarts + 1)) exited with code $rc; '
      .. 'requeueing (restart $((restarts + 1)) of %d)"', spec.max_restarts)
    lines[#lines + 1] = '  scontrol requeue "$SLURM_JOB_ID" && sleep 600'
    lines[#lines + 1] = "fi"
  end
  lines[#lines + 1] = 'exit "$rc"'
  return table.concat(lines, "\n") .. "\n"
end

local function retry(tries, fn)
  local result, err
  for attempt = 1, tries do
    result, err = fn()
    if result then return result end
    if attempt < tries then process.sleep(math.min(2 ^ (attempt - 1), 10) * math.random()) end
  end
  return nil, err
end

-- submit(ctx, job): sbatch, retried three times with backoff as the old tool retried launches.
function backend.submit(ctx, job)
  local dir = ctx.run_dir .. "/slurm"
  fs.mkdir_p(dir)
  local path = dir .. "/" .. state.job_key(job) .. ".sbatch"
  local ok, err = fs.write_atomic(path, backend.script(ctx, job), false)
  if not ok then return nil, err end
  local env = exec.environ(ctx.secret_env[job.name] or job.spec.env)
  local id
  id, err = retry(3, function()
    local r, why = exec.run({ "sbatch", "--parsable", path }, { env = env, cwd = ctx.cwd, timeout = 60 })
    if not r then return nil, why end
    if r.code ~= 0 then return nil, (r.stderr:gsub("%s+$", "")) end
    local jid = r.stdout:match("^%s*(%d+)")
    if not jid then return nil, "sbatch printed no job id: " .. r.stdout end
    return jid
  end)
  if not id then return nil, "sbatch: " .. tostring(err) end
  job.native_id = id
  job.status, job.native_status = "PENDING", "PENDING"
  return true
end

-- parse(text) -> { [id] = { field = value } } from `scontrol -o show job` (one job a line).
function backend.parse(text)
  local jobs = {}
  for line in text:gmatch("[^\n]+") do
    local rec = {}
    for key, value in line:gmatch("(%w+)=(%S*)") do
      if rec[key] == nil then rec[key] = value end
    end
    if rec.JobId then jobs[rec.JobId] = rec end
  end
  return jobs
end

local function iso(t)
  if not t or t == "Unknown" or t == "None" or t == "" then return nil end
  return t .. "Z"
end

local function apply(job, rec)
  local native = (rec.JobState or "UNKNOWN"):gsub("%+$", "")
  local mapped = STATES[native] or { "RUNNING" }
  job.native_status = native
  job.status = mapped[1]
  job.backend_termination = mapped[2]
  job.restart_count = tonumber(rec.Restarts) or job.restart_count or 0
  job.attempt = job.restart_count + 1
  local code, sig = (rec.ExitCode or ""):match("^(%d+):(%d+)$")
  code, sig = tonumber(code), tonumber(sig)
  if code then job.backend_exit_code = (sig and sig > 0) and (128 + sig) or code end
  job.started_at = iso(rec.StartTime) or job.started_at
  if job.status ~= "PENDING" and job.status ~= "RUNNING" then
    job.ended_at = iso(rec.EndTime)
    local h, m, s = (rec.RunTime or ""):match("(%d+):(%d+):(%d+)$")
    local days = tonumber((rec.RunTime or ""):match("^(%d+)%-")) or 0
    if h then job.duration_s = days * 86400 + tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s) end
  end
end

-- poll(ctx, jobs): one scontrol call for all of them. When the controller cannot be asked,
-- every job keeps its last known status (an API error is never a job failure).
function backend.poll(ctx, jobs)
  local r, err = exec.run({ "scontrol", "-o", "show", "job" }, { timeout = 30 })
  if not r or r.code ~= 0 then
    ctx.backend_error = "scontrol: " .. tostring(r and (r.stderr:gsub("%s+$", "")) or err)
    return
  end
  ctx.backend_error = nil
  local known = backend.parse(r.stdout)
  for _, job in ipairs(jobs) do
    local rec = job.native_id and known[job.native_id]
    if rec then
      apply(job, rec)
    elseif job.native_id then
      -- The controller forgot it (MinJobAge passed, or it was never there).
      job.status, job.native_status = "LOST", "NOT_IN_CONTROLLER"
    end
  end
end

-- cancel(ctx, jobs): one scancel for all, then follow them to CANCELLED.
function backend.cancel(ctx, jobs)
  local results, ids = {}, {}
  for _, job in ipairs(jobs) do
    if job.native_id then ids[#ids + 1] = job.native_id else results[job.name] = "not found" end
  end
  if #ids == 0 then return results end
  local argv = { "scancel" }
  for _, id in ipairs(ids) do argv[#argv + 1] = id end
  local r, err = exec.run(argv, { timeout = 60 })
  if not r then
    for _, job in ipairs(jobs) do results[job.name] = results[job.name] or ("failed: " .. tostring(err)) end
    return results
  end
  for _, job in ipairs(jobs) do
    if job.native_id and not results[job.name] then
      local why = r.stderr:match("job id " .. job.native_id .. ": ([^\n]*)")
      if not why then
        results[job.name] = "killed"
      elseif why:find("already completing or completed") then
        results[job.name] = "already completed"
      elseif why:find("Invalid job id") then
        results[job.name] = "not found"
      else
        results[job.name] = "failed: " .. why
      end
    end
  end
  -- CANCELLED once the controller says so (COMPLETING first).
  local deadline = process.now() + 30
  local waiting = {}
  for _, job in ipairs(jobs) do if results[job.name] == "killed" then waiting[#waiting + 1] = job end end
  while #waiting > 0 and process.now() < deadline do
    backend.poll(ctx, waiting)
    local still = {}
    for _, job in ipairs(waiting) do
      if job.status == "PENDING" or job.status == "RUNNING" then still[#still + 1] = job end
    end
    waiting = still
    if #waiting > 0 then process.sleep(0.5) end
  end
  return results
end

return backend
