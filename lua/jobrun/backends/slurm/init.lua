-- The Slurm backend: generated batch scripts (kept in the run directory) — one sbatch --array
-- for the jobs of each resource shape, a plain sbatch for a job of a shape of its own — one
-- compact `squeue` per poll cycle for all of a run's jobs, one scancel for all cancels.
-- Ranks run under srun with the same variables as the local backend's; max_restarts is Slurm's
-- requeue. The run directory must be on a file system that the nodes share, since the
-- nodes write the logs there, and the batch script its attempts' results: the controller forgets
-- a finished job MinJobAge seconds after its end (300 by default), and nobody may have asked by
-- then. A job the controller no longer knows is read from slurm/<key>.exitcode (the script's
-- record of each attempt), else from one sacct call per cycle for all such jobs where
-- accounting is on; it is LOST only when none of the three knows it (and sacct is not behind).
-- What it learns of a job is an observation (jobrun.run.status), which the run applies; where the
-- answer came from, and what it noted for its next poll, are the observation's notes.
local exec = require "jobrun.backends.slurm.exec"
local common = require "jobrun.backends.common"
local state = require "jobrun.run.store"
local template = require "jobrun.suite.template"
local json = require "jobrun.base.json"
local duration = require "jobrun.suite.duration"
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local status = require "jobrun.run.status"

local NONE = status.NONE

local give_up
local backend = { name = "slurm", poll_interval = 1, poll_interval_max = 15, UNKNOWN_GRACE = 10, observes = true }
-- Jobs run in the launching directory on the shared file system, not from the commit.
backend.work_tree = true

-- Slurm's job states, as jobrun's statuses (README "Jobs, statuses and results") and (for the
-- ends that say why) a termination.
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

local function slurm_time(seconds)
  local s = math.ceil(seconds)
  return string.format("%d-%02d:%02d:%02d", s // 86400, (s % 86400) // 3600, (s % 3600) // 60, s % 60)
end

-- exitcode_path(ctx, job) -> where the batch script records each attempt's result.
function backend.exitcode_path(ctx, job)
  return ctx.run_dir .. "/slurm/" .. state.job_key(job) .. ".exitcode"
end

-- output_pattern(path) -> path as sbatch's --output reads it: "%" starts a pattern there ("%%"
-- is one), unless the path holds a backslash, which turns patterns off.
function backend.output_pattern(path)
  if path:find("\\", 1, true) then return path end
  return (path:gsub("%%", "%%%%"))
end

-- How a timeout maps on Slurm: the batch script enforces it, as the local supervisor does (TERM
-- to the ranks' srun, GRACE seconds, KILL) and records it, so that a job TIMEs OUT at the
-- suite's timeout. Slurm's own limit (--time) is only a backstop: whole minutes (Slurm rounds
-- --time up to one), the timeout plus the grace plus LIMIT_MARGIN, rounded up.
backend.GRACE = 10
backend.LIMIT_MARGIN = 30

-- seconds(n) -> n as sleep(1) takes it.
local function seconds(n)
  return math.type(n) == "integer" and tostring(n) or string.format("%.3f", n)
end

local function grace(spec)
  return tonumber((spec.options or {}).grace) or backend.GRACE
end

-- time_limit(spec) -> the seconds (whole minutes) of the job's --time, or nil.
function backend.time_limit(spec)
  if not spec.timeout then return nil end
  return math.ceil((spec.timeout + grace(spec) + backend.LIMIT_MARGIN) / 60) * 60
end

-- plan_note(jobs) -> how the plan's timeouts map on Slurm (for `jobrun plan`), or nil.
function backend.plan_note(jobs)
  local job
  for _, j in ipairs(jobs) do if j.timeout then job = j; break end end
  if not job then return nil end
  local limit = backend.time_limit(job)
  return string.format("Timeouts on Slurm: the batch script ends the job's step at the timeout (TERM, then KILL "
    .. "after Slurm's KillWait; KILL to srun %g s later, slurm.grace), and the job is TIMEOUT; Slurm's own --time "
    .. "is a backstop, the timeout + grace + %d s "
    .. "rounded up to whole minutes (%s: --time=%s).", grace(job), backend.LIMIT_MARGIN,
    duration.format(job.timeout), slurm_time(limit))
end

-- header(spec) -> the #SBATCH lines of a job of this shape (the resources that an array's tasks
-- share). The job's name and output path go on sbatch's command line instead (sbatch_args):
-- its directive parser splits a line at spaces and quotes, which names and paths may hold.
-- Always --no-requeue: jobrun's max_restarts is the only restart policy (the script turns
-- requeue on for the moment of its own requeue; a node failure must not rerun the job).
local function header(spec)
  local o = spec.options or {}
  local lines = {
    "#SBATCH --nodes=" .. spec.nodes,
    "#SBATCH --ntasks-per-node=1",
    "#SBATCH --open-mode=append",
    "#SBATCH --export=ALL",
    "#SBATCH --no-requeue",
  }
  if spec.timeout then lines[#lines + 1] = "#SBATCH --time=" .. slurm_time(backend.time_limit(spec)) end
  for _, key in ipairs({ "partition", "account", "qos", "gres" }) do
    if o[key] then lines[#lines + 1] = string.format("#SBATCH --%s=%s", key, o[key]) end
  end
  for _, arg in ipairs(o.extra_args or {}) do lines[#lines + 1] = "#SBATCH " .. arg end
  return lines
end

-- slurm_name(ctx, stem) -> the Slurm job name of a submission: the run and the job's (or the
-- array's) file stem, by which an interrupted launch finds what it had submitted (adopt).
function backend.slurm_name(ctx, stem)
  return "jobrun:" .. ctx.run_id .. ":" .. stem
end

-- body(ctx, job, lines, id) appends what one job runs: its attempts, ranks, setup, timeout,
-- requeue and the record of each attempt's result. `id` is the shell word of its Slurm id
-- ("$SLURM_JOB_ID", or the array task's "<array>_<task>").
local function body(ctx, job, lines, id)
  local spec = job.spec
  lines[#lines + 1] = "restarts=${SLURM_RESTART_COUNT:-0} started=$(date +%s) timed_out=false"
  -- Each attempt's result, for when the controller has forgotten the job (as Nextflow's
  -- .exitcode files), and the job's own word on its end (exit code, timeout, times): one JSON
  -- line per attempt, the file replaced whole (temp file, sync, mv) so that a reader never sees
  -- half of it. `final` is false for an attempt that is requeued. srun exits 128+N when a rank
  -- dies of signal N.
  local f = backend.exitcode_path(ctx, job)
  lines[#lines + 1] = "jobrun_record() {"
  lines[#lines + 1] = "  f=" .. template.quote(f) .. ' t="$f.$SLURM_JOB_ID.$restarts.tmp" sig=null'
  lines[#lines + 1] = '  if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then sig=$((rc - 128)); fi'
  lines[#lines + 1] = [[  { cat "$f" 2>/dev/null; printf '{"job_id":"%s","attempt":%d,"exit_code":%d,"signal":%s,]]
    .. [["timed_out":%s,"started":%s,"ended":%s,"final":%s}\n' "]] .. id .. [[" "$((restarts + 1))" "$rc" "$sig" ]]
    .. [["$timed_out" "$started" "$(date +%s)" "$1"; } > "$t" && sync "$t" && mv -f "$t" "$f" ||]]
  lines[#lines + 1] = '    echo "[jobrun] could not record the result of attempt $((restarts + 1)) in $f" >&2'
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "export JOBRUN_RESTART_COUNT=$restarts JOBRUN_ATTEMPT=$((restarts + 1))"
  lines[#lines + 1] = "export JOBRUN_JOB_NAME=" .. template.quote(job.name) .. " JOBRUN_RUN_ID=" .. ctx.run_id
  if spec.max_restarts > 0 then
    -- jobrun's own requeue turned requeue on; off again, so that Slurm does not requeue this
    -- attempt on a node failure.
    lines[#lines + 1] = 'if [ "$restarts" -gt 0 ]; then scontrol update jobid="' .. id .. '" requeue=0; fi'
  end
  -- Every rank gets the local backend's variables, from srun's.
  local rank = "export JOBRUN_NODE_RANK=$SLURM_PROCID JOBRUN_NUM_NODES=$SLURM_NNODES "
    .. "SKYPILOT_NODE_RANK=$SLURM_PROCID SKYPILOT_NUM_NODES=$SLURM_NNODES; exec sh -c \"$1\""
  local srun = "srun --label --kill-on-bad-exit=1 sh -c " .. template.quote(rank) .. " jobrun-rank "
  -- setup: once per node, before the first attempt only.
  if spec.setup then
    lines[#lines + 1] = 'if [ "$restarts" = 0 ]; then'
    lines[#lines + 1] = "  srun --label --ntasks-per-node=1 sh -c "
      .. template.quote(template.shell_command(spec.setup))
      .. ' || { rc=$?; echo "[jobrun] setup failed with exit code $rc"; jobrun_record true; exit "$rc"; }'
    lines[#lines + 1] = "fi"
  end
  local commands = spec.commands or {}
  if #commands <= 1 then
    lines[#lines + 1] = "cmd=" .. template.quote(template.shell_command(commands[1] or "true"))
  else
    lines[#lines + 1] = 'case "$restarts" in'
    for i, c in ipairs(commands) do
      local label = i < #commands and tostring(i - 1) or "*"
      lines[#lines + 1] = string.format("  %s) cmd=%s ;;", label, template.quote(template.shell_command(c)))
    end
    lines[#lines + 1] = "esac"
  end
  if not spec.timeout then
    lines[#lines + 1] = srun .. '"$cmd"'
    lines[#lines + 1] = "rc=$?"
  else
    -- The timeout, as the local supervisor's (and in its words, which the builtin parser
    -- jobrun_timeout reads): a watchdog sends srun TERM at the deadline (srun ends the step: TERM
    -- to every rank, KILL after Slurm's KillWait), KILLs srun if it has not ended after the
    -- grace, and exits 3 once it has fired.
    local t, g = spec.timeout, grace(spec)
    lines[#lines + 1] = srun .. '"$cmd" &'
    lines[#lines + 1] = "pid=$!"
    lines[#lines + 1] = string.format("( fired=0; trap 'kill \"$s\" 2>/dev/null; exit \"$fired\"' TERM; "
      .. 'sleep %s & s=$!; wait "$s"; fired=3; '
      .. 'echo "[jobrun] timeout after %gs: sending TERM to every rank"; kill -TERM "$pid"; '
      .. 'sleep %s & s=$!; wait "$s"; '
      .. 'if kill -0 "$pid" 2>/dev/null; then echo "[jobrun] grace period over: sending KILL"; kill -KILL "$pid"; fi; '
      .. "exit 3 ) &", seconds(t), t, seconds(g))
    lines[#lines + 1] = "watchdog=$!"
    lines[#lines + 1] = 'wait "$pid"; rc=$?'
    lines[#lines + 1] = 'kill "$watchdog" 2>/dev/null; wait "$watchdog"; [ "$?" = 3 ] && timed_out=true'
  end
  if spec.max_restarts > 0 then
    lines[#lines + 1] = string.format('if [ "$rc" -ne 0 ] && [ "$timed_out" = false ] && [ "$restarts" -lt %d ]; then',
      spec.max_restarts)
    lines[#lines + 1] = string.format('  echo "[jobrun] attempt $((restarts + 1)) exited with code $rc; '
      .. 'requeueing (restart $((restarts + 1)) of %d)"', spec.max_restarts)
    -- Recorded before the requeue, which kills this script (the sleep may die first: nothing
    -- more is recorded then); if the requeue fails, the final line that follows supersedes it.
    -- An array task by its <array>_<task> id: the last task to start runs under the array's
    -- own job id, and a requeue of that would requeue every task of the array.
    lines[#lines + 1] = "  jobrun_record false"
    lines[#lines + 1] = '  if scontrol update jobid="' .. id .. '" requeue=1 && scontrol requeue "' .. id
      .. '"; then sleep 600; exit "$rc"; fi'
    lines[#lines + 1] = "fi"
  end
  lines[#lines + 1] = "jobrun_record true"
  lines[#lines + 1] = 'exit "$rc"'
end

-- script(ctx, job) -> the batch script's text. Its own lines never hold secrets: the job's
-- environment reaches the job through sbatch's (--export=ALL).
function backend.script(ctx, job)
  local lines = {
    "#!/bin/sh",
    string.format("# jobrun: job %s of run %s. Generated; kept for inspection. sbatch's command line adds "
      .. "--job-name and --output.", (job.name:gsub("%c", "?")), ctx.run_id),
  }
  for _, line in ipairs(header(job.spec)) do lines[#lines + 1] = line end
  lines[#lines + 1] = ""
  body(ctx, job, lines, "$SLURM_JOB_ID")
  return table.concat(lines, "\n") .. "\n"
end

-- An array task's own variables reach it under this prefix in the array's environment (one
-- sbatch environment for all tasks), are exported under their names by its branch of the
-- script, then unset: no task sees another's.
local STASH = "JOBRUN_ARRAY_ENV_"

-- array_script(ctx, jobs, stashed) -> the text of one array's batch script: task i runs
-- jobs[i + 1]. stashed[i] lists the variable names of task i that come from the stash.
function backend.array_script(ctx, jobs, stashed)
  local lines = {
    "#!/bin/sh",
    string.format("# jobrun: %d jobs of run %s as one Slurm array (task N runs the Nth job below, from 0). "
      .. "Generated; kept for inspection. sbatch's command line adds --job-name, --output and --array.",
      #jobs, ctx.run_id),
  }
  for _, line in ipairs(header(jobs[1].spec)) do lines[#lines + 1] = line end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "jobrun_unstash() {"
  lines[#lines + 1] = "  for v in $(env | sed -n 's/^\\(" .. STASH .. "[0-9]*_[A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p'); do"
  lines[#lines + 1] = '    unset "$v"'
  lines[#lines + 1] = "  done"
  lines[#lines + 1] = "}"
  lines[#lines + 1] = 'case "$SLURM_ARRAY_TASK_ID" in'
  for i, job in ipairs(jobs) do
    local task = i - 1
    lines[#lines + 1] = string.format("%d) # %s", task, (job.name:gsub("%c", "?")))
    local names = stashed[task] or {}
    if #names > 0 then
      local words = {}
      for k, name in ipairs(names) do words[k] = string.format('%s="$%s%d_%s"', name, STASH, task, name) end
      lines[#lines + 1] = "export " .. table.concat(words, " ")
    end
    lines[#lines + 1] = "jobrun_unstash"
    body(ctx, job, lines, "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}")
    lines[#lines + 1] = ";;"
  end
  lines[#lines + 1] = '*) echo "[jobrun] array task $SLURM_ARRAY_TASK_ID has no job" >&2; exit 1 ;;'
  lines[#lines + 1] = "esac"
  return table.concat(lines, "\n") .. "\n"
end

-- How long the controller has to answer before a run is created (scontrol itself retries a
-- missing config or a silent controller for a minute).
backend.PING_TIMEOUT = 5

-- check(options): before the run is created, the controller must answer `scontrol ping`
-- within seconds; otherwise exit 3, saying which SLURM_CONF and controller were tried.
function backend.check()
  local conf = os.getenv("SLURM_CONF") or "/etc/slurm/slurm.conf"
  local r, err = exec.run({ "scontrol", "ping" }, { timeout = backend.PING_TIMEOUT })
  local said = r and ((r.stdout .. "\n" .. r.stderr):gsub("%s+$", ""):gsub("^%s+", "")) or tostring(err)
  if r and r.code == 0 and said:find("is UP") then return end
  local why = (r and r.signal) and string.format("no answer within %d s", backend.PING_TIMEOUT) or "it is not up"
  require("jobrun.base.errors").infra("the Slurm controller cannot be reached (%s); nothing was launched.\n"
    .. "  SLURM_CONF=%s\n  scontrol ping said: %s", why, conf, said ~= "" and said:sub(1, 400) or "nothing")
end

-- said(text) -> a command's complaint on one line: its "sbatch: " (…) prefixes dropped, its
-- lines joined.
local function said(text, cmd)
  local parts = {}
  for line in text:gmatch("[^\n]+") do
    line = line:gsub("^" .. cmd .. ":%s*", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then parts[#parts + 1] = line end
  end
  return table.concat(parts, "; ")
end

-- What sbatch says when the controller could not take a job now; anything else (an invalid
-- partition, gres, account, option) is final: asking again gets the same answer.
local TRANSIENT = { "Socket timed out", "Unable to contact", "temporarily unavailable", "Connection refused",
                    "Zero Bytes were transmitted", "try again", "Slurm backup controller in standby mode" }

-- sbatch(ctx, path, env, extra) -> the job id sbatch printed | nil, why: what may pass is retried
-- three times with backoff, as the old tool retried launches.
local function sbatch(ctx, path, env, extra)
  local argv = { "sbatch", "--parsable" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  for _, a in ipairs(ctx.sbatch_extra or {}) do argv[#argv + 1] = a end -- rerun --exclude-nodes
  argv[#argv + 1] = path
  local id, err = common.retry(3, function()
    local r, why = exec.run(argv, { env = env, cwd = ctx.cwd, timeout = 60 })
    if not r then return nil, why end
    if r.code ~= 0 then
      local msg = said(r.stderr, "sbatch")
      if msg == "" then msg = "exit code " .. tostring(r.code or ("signal " .. tostring(r.signal))) end
      if r.signal then return nil, msg end
      for _, t in ipairs(TRANSIENT) do
        if msg:find(t, 1, true) then return nil, msg end
      end
      return nil, msg, true
    end
    local jid = r.stdout:match("^%s*(%d+)")
    if not jid then return nil, "sbatch printed no job id: " .. said(r.stdout, "sbatch"), true end
    return jid
  end)
  if not id then return nil, "sbatch: " .. tostring(err) end
  return id
end

-- intend(ctx, stem, jobs, array): the submission's intent, written before its sbatch: its Slurm
-- job name and its jobs (an array's in task order). After an interrupted launch, adopt finds
-- what was submitted by that name.
local function intend(ctx, stem, jobs, array)
  local keys = json.array()
  for i, job in ipairs(jobs) do keys[i] = state.job_key(job) end
  local doc = json.object({ name = backend.slurm_name(ctx, stem), array = array, keys = keys },
    { "name", "array", "keys" })
  return fs.write_atomic(ctx.run_dir .. "/slurm/" .. stem .. ".intent", json.encode(doc) .. "\n")
end

-- intents(ctx) -> { [job key] = { name, task } }: the intents that earlier processes left (read
-- once per process: this one's own submissions are in its jobs' native ids).
local function intents(ctx)
  if ctx.slurm_intents then return ctx.slurm_intents end
  local by_key, dir = {}, ctx.run_dir .. "/slurm"
  for _, file in ipairs(fs.list(dir) or {}) do
    if file:match("%.intent$") then
      local doc = json.decode(fs.read(dir .. "/" .. file) or "")
      if type(doc) == "table" and type(doc.name) == "string" and type(doc.keys) == "table" then
        for i, key in ipairs(doc.keys) do
          if type(key) == "string" then by_key[key] = { name = doc.name, task = doc.array == true and i - 1 or nil } end
        end
      end
    end
  end
  ctx.slurm_intents = by_key
  return by_key
end

-- submitted(ctx, names, since) -> { [name] = Slurm job id (an array's own id) } of the run's
-- submissions by these names | nil, why: one squeue call (the jobs the controller holds), then,
-- for names it does not know, one sacct call (those it has forgotten).
local function submitted(ctx, names, since)
  local found, missing = {}, 0
  local r, err = exec.run({ "squeue", "--me", "-h", "-t", "all", "-o", "%i|%j" }, { timeout = 30 })
  if not r or r.code ~= 0 then return nil, "squeue: " .. (r and said(r.stderr, "squeue") or tostring(err)) end
  for line in r.stdout:gmatch("[^\n]+") do
    local id, name = line:match("^(%d+)[^|]*|(.*)$")
    if id and names[name] then found[name] = id end
  end
  for name in pairs(names) do if not found[name] then missing = missing + 1 end end
  if missing == 0 or ctx.slurm_accounting_off then return found end
  local from = os.date("!%Y-%m-%dT%H:%M:%S", since - 300)
  r, err = exec.run({ "sacct", "-n", "-P", "-X", "-S", from, "-o", "JobID,JobName" },
    { timeout = 30, env = exec.environ({ TZ = "UTC" }) })
  if r and r.code == 0 then
    for line in r.stdout:gmatch("[^\n]+") do
      local id, name = line:match("^(%d+)[^|]*|(.*)$")
      if id and names[name] and not found[name] then found[name] = id end
    end
  elseif not (r and r.stderr:find("accounting storage is disabled", 1, true)) then
    return nil, "sacct: " .. (r and said(r.stderr, "sacct") or tostring(err))
  end
  return found
end

-- adopt(ctx, jobs, out) -> the jobs still to submit. A job that an earlier, interrupted launch
-- had submitted (its intent is on disk, and Slurm or its exit-code file knows the name's job)
-- takes that Slurm job as its own (out[job]: the observation): submitting it again would make
-- two Slurm jobs write one log. When Slurm cannot be asked, such a job is not submitted
-- (LAUNCH_FAILED, saying why).
local function adopt(ctx, jobs, out)
  local known = intents(ctx)
  local names, mine, rest = {}, {}, {}
  local since = process.time()
  for _, job in ipairs(jobs) do
    local intent = known[state.job_key(job)]
    if intent then
      names[intent.name] = true
      mine[#mine + 1] = job
      since = math.min(since, state.epoch(job.submitted_at) or since)
    else
      rest[#rest + 1] = job
    end
  end
  if #mine == 0 then return jobs end
  local found, err = submitted(ctx, names, since)
  for _, job in ipairs(mine) do
    local intent = known[state.job_key(job)]
    local id = found and found[intent.name]
    if not id then
      -- Its exit-code file names the Slurm job that ran it, though Slurm may have forgotten it.
      for line in (fs.read(backend.exitcode_path(ctx, job)) or ""):gmatch("[^\n]+") do
        local rec = json.decode(line)
        if type(rec) == "table" and type(rec.job_id) == "string" then id = rec.job_id:match("^(%d+)") end
      end
    end
    if id then
      out[job] = { native_id = intent.task and (id .. "_" .. intent.task) or id, status = "PENDING",
                   native_status = "PENDING", notes = { slurm_cancelled = NONE, slurm_adopted = true } }
    elseif found then
      rest[#rest + 1] = job
    else
      out[job] = { launch_error = "an earlier launch may have submitted it, and Slurm could not be asked: "
        .. tostring(err) }
    end
  end
  return rest
end

-- submit(ctx, job) -> observation | nil, why: one job, one plain sbatch.
function backend.submit(ctx, job)
  local dir = ctx.run_dir .. "/slurm"
  fs.mkdir_p(dir)
  local key = state.job_key(job)
  local path = dir .. "/" .. key .. ".sbatch"
  local ok, err = fs.write_atomic(path, backend.script(ctx, job), false)
  if not ok then return nil, err end
  ok, err = intend(ctx, key, { job }, false)
  if not ok then return nil, err end
  local id
  id, err = sbatch(ctx, path, exec.environ(ctx.secret_env[job.name] or job.spec.env), {
    "--job-name=" .. backend.slurm_name(ctx, key),
    "--output=" .. backend.output_pattern(ctx.run_dir .. "/" .. job.log_path_rel),
  })
  if not id then return nil, err end
  return { native_id = id, status = "PENDING", native_status = "PENDING", notes = { slurm_cancelled = NONE } }
end

-- max_array_size(ctx) -> the controller's MaxArraySize (task ids run 0 … size - 1), asked once
-- per process; 0 (no arrays) when the controller does not say.
function backend.max_array_size(ctx)
  if ctx.slurm_max_array == nil then
    local r = exec.run({ "scontrol", "show", "config" }, { timeout = 30 })
    ctx.slurm_max_array = r and r.code == 0 and tonumber(r.stdout:match("MaxArraySize%s*=%s*(%d+)")) or 0
  end
  return ctx.slurm_max_array
end

-- shape(job) -> what an array's tasks must share (the #SBATCH lines: nodes, time, requeue,
-- partition, account, QoS, gres, extra args), or nil for a job that must go alone (a variable
-- whose name the shell cannot expand).
function backend.shape(job, env)
  for name in pairs(env or {}) do
    if not tostring(name):match("^[%a_][%w_]*$") then return nil end
  end
  local spec, o = job.spec, job.spec.options or {}
  return table.concat({ spec.nodes, spec.timeout or "", spec.max_restarts > 0 and "requeue" or "",
                        o.partition or "", o.account or "", o.qos or "", o.gres or "",
                        table.concat(o.extra_args or {}, "\0") }, "\1")
end

-- groups(jobs, envs, limit) -> lists of jobs that go out as one array each (at most `limit`
-- tasks), in the order of their first job, and the jobs that go alone.
function backend.groups(jobs, envs, limit)
  local by_shape, order, alone = {}, {}, {}
  for _, job in ipairs(jobs) do
    local key = limit > 1 and backend.shape(job, envs[job]) or nil
    if not key then
      alone[#alone + 1] = job
    else
      local list = by_shape[key]
      if not list or #list[#list] >= limit then
        list = list or {}
        by_shape[key] = list
        list[#list + 1] = {}
        order[#order + 1] = list[#list]
      end
      table.insert(list[#list], job)
    end
  end
  local arrays = {}
  for _, group in ipairs(order) do
    -- A group of one is a plain job.
    if #group == 1 then alone[#alone + 1] = group[1] else arrays[#arrays + 1] = group end
  end
  return arrays, alone
end

-- stash(jobs, envs) -> sbatch's environment for an array of these jobs, and per task the names
-- it takes from the stash: a variable with one value in every task is set as it is; the others
-- go under STASH<task>_<name>, for the task's branch to export.
local function stash(jobs, envs)
  local common_values, count = {}, {}
  for _, job in ipairs(jobs) do
    for k, v in pairs(envs[job] or {}) do
      v = tostring(v)
      if count[k] == nil then common_values[k], count[k] = v, 1
      elseif common_values[k] == v then count[k] = count[k] + 1
      else common_values[k] = false end
    end
  end
  local extra, stashed, bytes = {}, {}, 0
  for k, v in pairs(common_values) do
    if v and count[k] == #jobs then extra[k] = v end
  end
  for i, job in ipairs(jobs) do
    local names = {}
    for k, v in pairs(envs[job] or {}) do
      if extra[k] == nil then
        names[#names + 1] = k
        local name = STASH .. (i - 1) .. "_" .. k
        extra[name] = tostring(v)
        bytes = bytes + #name + #extra[name] + 2
      end
    end
    table.sort(names)
    stashed[i - 1] = names
  end
  return exec.environ(extra), stashed, bytes
end

-- What one array may take, below the limits it would otherwise meet whole: the kernel's for
-- sbatch's environment (ARG_MAX, 2 MiB with the arguments, shared with the user's own
-- environment) and Slurm's for a batch script (max_script_size, 4 MiB by default). A group
-- over either goes out as two arrays, halved again as needed.
backend.ARRAY_ENV_BUDGET = 512 * 1024
backend.ARRAY_SCRIPT_BUDGET = 1024 * 1024

-- submit_array(ctx, jobs, envs, out): one sbatch --array for jobs of one shape (two, or more,
-- when they are too many for one: see the budgets above); out[job] is what became of each (a job
-- that could not be submitted, its launch_error). Slurm names each task's output by its index
-- (%a); that name is a symlink to the job's own log, so that each log holds its task's output
-- (and Slurm's own words about it) alone.
local function submit_array(ctx, jobs, envs, out)
  local dir = ctx.run_dir .. "/slurm"
  local stem = state.job_key(jobs[1]) .. ".array"
  local env, stashed, bytes = stash(jobs, envs)
  local output = backend.output_pattern(dir .. "/" .. stem) .. ".%a.log"
  local script = backend.array_script(ctx, jobs, stashed)
  if #jobs > 1 and (bytes > backend.ARRAY_ENV_BUDGET or #script > backend.ARRAY_SCRIPT_BUDGET) then
    local half = #jobs // 2
    submit_array(ctx, table.move(jobs, 1, half, 1, {}), envs, out)
    submit_array(ctx, table.move(jobs, half + 1, #jobs, 1, {}), envs, out)
    return
  end
  local function fail(err)
    for _, job in ipairs(jobs) do out[job] = { launch_error = tostring(err) } end
  end
  for i, job in ipairs(jobs) do
    local ok, err = fs.symlink("../" .. job.log_path_rel, string.format("%s/%s.%d.log", dir, stem, i - 1))
    if not ok then return fail(err) end
  end
  local path = dir .. "/" .. stem .. ".sbatch"
  local ok, err = fs.write_atomic(path, script, false)
  if not ok then return fail(err) end
  ok, err = intend(ctx, stem, jobs, true)
  if not ok then return fail(err) end
  local id
  id, err = sbatch(ctx, path, env, { "--array=0-" .. (#jobs - 1), "--job-name=" .. backend.slurm_name(ctx, stem),
                                     "--output=" .. output })
  if not id then return fail(err) end
  for i, job in ipairs(jobs) do
    out[job] = { native_id = id .. "_" .. (i - 1), status = "PENDING", native_status = "PENDING",
                 notes = { slurm_cancelled = NONE } }
  end
end

-- submit_many(ctx, jobs) -> { [job] = observation }: jobs of one resource shape go out as one
-- sbatch --array (split at the controller's MaxArraySize); a job of a unique shape as a plain
-- sbatch.
function backend.submit_many(ctx, jobs)
  local out = {}
  fs.mkdir_p(ctx.run_dir .. "/slurm")
  local envs = {}
  for _, job in ipairs(jobs) do envs[job] = ctx.secret_env[job.name] or job.spec.env end
  -- A run directory whose path holds a backslash turns off Slurm's %a in --output.
  local limit = ctx.run_dir:find("\\", 1, true) and 0 or (#jobs > 1 and backend.max_array_size(ctx) or 0)
  jobs = adopt(ctx, jobs, out)
  local arrays, alone = backend.groups(jobs, envs, limit)
  for _, group in ipairs(arrays) do submit_array(ctx, group, envs, out) end
  for _, job in ipairs(alone) do
    local o, err = backend.submit(ctx, job)
    out[job] = o or { launch_error = tostring(err) }
  end
  return out
end

-- task_ids(text) -> the task ids of an array record's ArrayTaskId: "4", or the pending ones
-- as ranges and lists ("3-9%3", "4,6-9", "1-99:2").
local function task_ids(text, into)
  text = text:gsub("%%%d+$", "")
  for part in text:gmatch("[^,]+") do
    local a, b, step = part:match("^(%d+)%-(%d+):?(%d*)$")
    if a then
      for t = tonumber(a), tonumber(b), tonumber(step) or 1 do into[#into + 1] = t end
    elseif part:match("^%d+$") then
      into[#into + 1] = tonumber(part)
    end
  end
  return into
end

-- What each poll asks squeue for: one short line a job, an array's pending tasks on one line
-- (`123_[4-199]`); the fields as scontrol names them (an ended job's exit code comes from its
-- batch script's record, else from sacct). %b is the job's TRES per node ("gres/gpu:2"), for
-- GPU-hours.
backend.SQUEUE_FORMAT = "%i|%F|%K|%T|%r|%N|%n|%S|%e|%b"

-- parse(text [, arrays [, cache]]) -> { [id] = { field = value } } from `squeue -o SQUEUE_FORMAT`
-- (one job a line), the set of array ids it holds records of, and its expanded pending ranges
-- (the next poll's cache). An array task is under
-- "<array id>_<task id>", as sbatch's answer made its jobs' ids; a record of pending tasks
-- ("123_[4-199]") stands for each of them. With `arrays` (a set of array ids), only those
-- arrays' records are read: another of the user's pending arrays of a million tasks is no reason
-- to make a million entries each cycle.
function backend.parse(text, arrays, cache)
  local jobs, seen = {}, {}
  -- cache (optional): the third value of the last poll's parse, each array's pending range as
  -- expanded into task ids then; a range the same as at the last poll is not expanded again
  -- (most of a big run's arrays wait, unchanged, while one starts its tasks).
  local expanded = {}
  for line in text:gmatch("[^\n]+") do
    local id, array, tasks, st, reason, nodes, req, start, stop, rest =
      line:match("^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)(.*)$")
    -- (a line without the TRES field: a format of before, as the tests' fixtures have it)
    local tres = rest and rest:match("^|([^|]*)$")
    if id and (rest == "" or tres) then
      -- (seen: what the line says of a job but its ids, which a pending array's line changes as
      -- its tasks start: the poll skips a job whose record says what it said the poll before. A
      -- pending job's StartTime is the scheduler's guess, which moves whenever a job starts or
      -- ends: left out, or each poll of a big run would look at every pending job again)
      local line_said = st == "PENDING" and table.concat({ st, reason, nodes, req, rest }, "|")
        or line:match("^[^|]*|[^|]*|[^|]*|(.*)$")
      local rec = { JobId = id, JobState = st, Reason = reason, NodeList = nodes, ReqNodeList = req,
                    StartTime = start, EndTime = stop, seen = line_said,
                    TresPerNode = tres and tres ~= "" and tres ~= "N/A" and tres ~= "(null)" and tres or nil }
      if tasks ~= "N/A" and tasks ~= "" then
        if not arrays or arrays[array] then
          seen[array] = true
          local ids = cache and cache[array .. "|" .. tasks]
          if not ids then
            ids = {}
            for i, t in ipairs(task_ids((tasks:gsub("[%[%]]", "")), {})) do ids[i] = array .. "_" .. t end
          end
          expanded[array .. "|" .. tasks] = ids
          for _, id_of_task in ipairs(ids) do jobs[id_of_task] = rec end
        end
      else
        jobs[id] = rec
      end
    end
  end
  return jobs, seen, expanded
end

local function iso(t)
  if not t or t == "Unknown" or t == "None" or t == "" or t == "N/A" or t == "NONE" then return nil end
  return t .. "Z"
end

-- Ends that are not the job's own (Slurm ended it, or it never ran): no exit code, unless the
-- batch script recorded one.
local NO_EXIT = { NODE_FAIL = true, CANCELLED = true, PREEMPTED = true, BOOT_FAIL = true, DEADLINE = true,
                  OUT_OF_MEMORY = true }

-- A poll's observations: out[job] = o, made for every job at the start. cur(job, o, k) reads
-- a field as this poll has observed it so far (else the job's); noted(job, o, k) a note.
local cur = status.seen
local noted = status.noted
local none = status.or_none

-- set_state(job, o, native, exit_code_field, restarts): status, termination, exit code and
-- restarts from Slurm's words, whichever source said them.
local function set_state(job, o, native, exit_field, restarts)
  native = (native or "UNKNOWN"):gsub("%+$", "")
  local mapped = STATES[native] or { "RUNNING" }
  o.native_status = native
  o.status = mapped[1]
  o.termination = none(mapped[2])
  o.restart_count = restarts or cur(job, o, "restart_count") or 0
  o.attempt = o.restart_count + 1
  local code, sig = (exit_field or ""):match("^(%d+):(%d+)$")
  code, sig = tonumber(code), tonumber(sig)
  if NO_EXIT[native] then
    o.exit_code = NONE
  elseif code then
    o.exit_code = (sig and sig > 0) and (128 + sig) or code
  end
end

local function ended(job, o)
  local st = cur(job, o, "status")
  return st ~= "PENDING" and st ~= "RUNNING"
end

-- node_list(text) -> Slurm's NodeList of a job that got nodes, or nil.
local function node_list(text)
  if not text or text == "" or text == "(null)" or text == "None assigned" or text == "None" then return nil end
  return text
end

-- recorded(ctx, job) -> the batch script's record of the job's latest attempt, or nil. Lines of
-- another Slurm job (a file left by an earlier submission) are not this job's.
local function recorded(ctx, job)
  local text = fs.read(backend.exitcode_path(ctx, job))
  local last
  for line in (text or ""):gmatch("[^\n]+") do
    local rec = json.decode(line)
    if type(rec) == "table" and rec.job_id == job.native_id and math.type(rec.exit_code) == "integer"
        and math.type(rec.attempt) == "integer" then
      last = rec
    end
  end
  return last
end

-- own_times(job, o, rec): the attempt's start, end and duration as its batch script saw them
-- (not the controller's RunTime, which grows while the controller is away).
local function own_times(job, o, rec)
  o.started_at = none(state.iso(tonumber(rec.started)) or cur(job, o, "started_at"))
  o.ended_at = none(state.iso(tonumber(rec.ended)) or cur(job, o, "ended_at"))
  if tonumber(rec.started) and tonumber(rec.ended) then o.duration_s = rec.ended - rec.started end
end

-- own_end(ctx, job, o, ran): an ended job as Slurm said it ended, then corrected by the batch
-- script's record of this attempt, where there is one: its exit code, its timeout (the script
-- enforces the suite's timeout: Slurm says FAILED or COMPLETED then), its times. A job that
-- never got nodes did not start.
local function own_end(ctx, job, o, ran, slurm_end)
  if not ran then o.started_at, o.duration_s = NONE, NONE end
  local rec = recorded(ctx, job)
  if not (rec and rec.final ~= false and rec.attempt == cur(job, o, "attempt")) then return end
  -- Where Slurm ended the job, the script's record is the job's own end only if it came first
  -- (srun's exit code after Slurm killed the step is not the program's).
  local native = cur(job, o, "native_status")
  if NO_EXIT[native] and not (slurm_end and tonumber(rec.ended) and rec.ended < slurm_end) then
    return
  end
  o.exit_code = rec.exit_code
  if not NO_EXIT[native] and native ~= "TIMEOUT" then
    if rec.timed_out == true then
      o.status, o.native_status, o.termination = "TIMEOUT", "TIMEOUT", "timeout"
    else
      o.status = rec.exit_code == 0 and "SUCCEEDED" or "FAILED"
    end
  end
  own_times(job, o, rec)
end

-- From the controller (times in its local time, which the test cluster keeps in UTC).
local function apply(ctx, job, o, rec)
  set_state(job, o, rec.JobState, rec.ExitCode, tonumber(rec.Restarts))
  o.notes.slurm_source = "controller"
  local nodes = node_list(rec.NodeList)
  if nodes then o.nodes = nodes end
  -- What it holds per node ("gres/gpu:2"): GPU-hours (jobrun.judge.forensics).
  if rec.TresPerNode then o.tres = rec.TresPerNode end
  if o.status == "PENDING" then
    -- A pending job's StartTime is the scheduler's guess, not a start.
    if rec.Reason and rec.Reason ~= "None" then o.pending_reason = rec.Reason end
    return
  end
  o.started_at = none(iso(rec.StartTime) or cur(job, o, "started_at"))
  if ended(job, o) then
    o.ended_at = none(iso(rec.EndTime))
    local h, m, s = (rec.RunTime or ""):match("(%d+):(%d+):(%d+)$")
    local days = tonumber((rec.RunTime or ""):match("^(%d+)%-")) or 0
    local started, stopped = state.epoch(cur(job, o, "started_at")), state.epoch(cur(job, o, "ended_at"))
    if h then
      o.duration_s = days * 86400 + tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s)
    elseif started and stopped then
      o.duration_s = stopped - started
    end
    own_end(ctx, job, o, nodes ~= nil, stopped)
  end
end

-- What the batch script recorded: its exit code (or timeout), as Slurm would have judged it.
local function apply_recorded(job, o, rec)
  set_state(job, o, rec.exit_code == 0 and "COMPLETED" or "FAILED", rec.exit_code .. ":0", rec.attempt - 1)
  if rec.timed_out == true then
    o.status, o.native_status, o.termination = "TIMEOUT", "TIMEOUT", "timeout"
  end
  o.notes.slurm_source = "exitcode"
  own_times(job, o, rec)
end

local function lose(jobs, out, why)
  for _, job in ipairs(jobs) do
    local o = out[job]
    o.status, o.native_status = "LOST", why
    o.notes.slurm_source, o.notes.slurm_unknown_since = NONE, NONE
  end
end

-- JobID, not JobIDRaw: an array task is "<array>_<task>" there, as in its native id.
local SACCT_FIELDS = "JobID,State,ExitCode,Submit,Start,End,ElapsedRaw,NodeList"

-- from_accounting(ctx, jobs, out): one sacct call for every job the controller and the exit-code
-- files do not know. -D lists each attempt of a requeued job (so restarts = rows - 1); times
-- come as epoch seconds (SLURM_TIME_FORMAT), whatever the cluster's time zone.
local function from_accounting(ctx, jobs, out)
  if ctx.slurm_accounting_off then return lose(jobs, out, "NOT_IN_CONTROLLER") end
  -- An array's tasks that never started have no rows of their own: one row for the array (its
  -- bare id, or "<id>_[<tasks>]") stands for them; asked for by the array's id.
  local ids, arrays = {}, {}
  for _, job in ipairs(jobs) do
    ids[#ids + 1] = job.native_id
    local array = job.native_id:match("^(%d+)_%d+$")
    if array and not arrays[array] then arrays[array] = true; ids[#ids + 1] = array end
  end
  local r, err = exec.run({ "sacct", "-n", "-P", "-X", "-D", "-j", table.concat(ids, ","), "-o", SACCT_FIELDS },
    { timeout = 30, env = exec.environ({ SLURM_TIME_FORMAT = "%s" }) })
  if not r or r.code ~= 0 then
    local why = r and r.stderr:gsub("%s+$", "") or tostring(err)
    if why:find("accounting storage is disabled", 1, true) then
      -- Not asked again by this process: accounting does not come and go within a run.
      ctx.slurm_accounting_off = true
      return lose(jobs, out, "NOT_IN_CONTROLLER")
    end
    -- Like the controller's silence: every one of them keeps its last known status.
    ctx.backend_error = "sacct: " .. why
    return
  end
  local rows = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local id, st, code, submit, start, stop, elapsed, nodes = line:match("^([^|]*)" .. ("|([^|]*)"):rep(7) .. "$")
    if id then
      rows[id] = rows[id] or {}
      table.insert(rows[id], { state = st:match("^(%S*)"), exit = code, submit = tonumber(submit) or 0,
                               start = tonumber(start), stop = tonumber(stop), elapsed = tonumber(elapsed),
                               nodes = node_list(nodes), order = #rows[id] })
    end
  end
  -- remainder[array] -> the row of its never-started tasks, with the set of them (nil: all).
  local remainder = {}
  for id, list in pairs(rows) do
    local array, tasks = id:match("^(%d+)_%[([^%]]*)%]$")
    array = array or (arrays[id] and id)
    if array then
      remainder[array] = { row = list[#list], tasks = tasks and task_ids(tasks, {}) }
    end
  end
  local function never_started(job)
    if noted(job, out[job], "slurm_left_pending") then return nil end
    local array, task = job.native_id:match("^(%d+)_(%d+)$")
    local rest = array and remainder[array]
    if not rest then return nil end
    if not rest.tasks then return rest.row end
    for _, t in ipairs(rest.tasks) do if t == tonumber(task) then return rest.row end end
  end
  local unknown = {}
  for _, job in ipairs(jobs) do
    -- A job id the controller reused after losing its state names an older job: not ours.
    local since = (state.epoch(job.submitted_at) or 0) - 300
    local mine = {}
    for _, row in ipairs(rows[job.native_id] or never_started(job) and { never_started(job) } or {}) do
      if row.submit == 0 or row.submit >= since then mine[#mine + 1] = row end
    end
    -- The latest attempt last: by submission (a requeue resubmits), then in sacct's order.
    table.sort(mine, function(a, b)
      if a.submit ~= b.submit then return a.submit < b.submit end
      return a.order < b.order
    end)
    local row = mine[#mine]
    if not row then
      unknown[#unknown + 1] = job
    else
      local o = out[job]
      set_state(job, o, row.state, row.exit, #mine - 1)
      o.notes.slurm_source, o.notes.slurm_unknown_since = "sacct", NONE
      if row.nodes then o.nodes = row.nodes end
      if o.status ~= "PENDING" then o.started_at = none(state.iso(row.start) or cur(job, o, "started_at")) end
      if ended(job, o) then
        o.ended_at, o.duration_s = none(state.iso(row.stop)), none(row.elapsed)
        own_end(ctx, job, o, row.nodes ~= nil, row.stop)
      end
    end
  end
  if #unknown == 0 then return end
  -- LOST is final, and sacct lags: slurmctld sends job records to slurmdbd through a queue that
  -- grows while slurmdbd is away, and a record can leave the queue a moment before sacct shows
  -- it. So a job is LOST only when sacct has not known it for UNKNOWN_GRACE seconds with that
  -- queue empty (sdiag) each time; until then it keeps its status, and check says why.
  local d, why = exec.run({ "sdiag" }, { timeout = 30 })
  local queued = d and d.code == 0 and tonumber(d.stdout:match("DBD Agent queue size:%s*(%d+)"))
  local now, lost, waiting = process.time(), {}, 0
  for _, job in ipairs(unknown) do
    local since = queued == 0 and (noted(job, out[job], "slurm_unknown_since") or now) or nil
    out[job].notes.slurm_unknown_since = none(since)
    if since and now - since >= backend.UNKNOWN_GRACE then
      lost[#lost + 1] = job
    else
      waiting = waiting + 1
    end
  end
  -- A task that we last saw pending, and that left its array's pending tasks without a record of
  -- its own anywhere (a task that started has sacct rows), was cancelled before it started: the
  -- controller drops such a task at once, and accounting never hears of it.
  local gone = {}
  for i = #lost, 1, -1 do
    local job = lost[i]
    if noted(job, out[job], "slurm_left_pending") and not cur(job, out[job], "started_at") then
      table.remove(lost, i)
      gone[#gone + 1] = job
    end
  end
  for _, job in ipairs(gone) do
    local o = out[job]
    set_state(job, o, "CANCELLED")
    o.notes.slurm_source, o.notes.slurm_unknown_since, o.started_at = "sacct", NONE, NONE
  end
  lose(lost, out, "NOT_IN_ACCOUNTING")
  if waiting == 0 then return end
  if queued == 0 then
    ctx.backend_error = string.format("sacct does not know %d forgotten job(s) yet; they are LOST if it still "
      .. "does not in %d s", waiting, backend.UNKNOWN_GRACE)
  elseif queued then
    ctx.backend_error = string.format("sacct has not caught up (%d records queued for slurmdbd)", queued)
  else
    ctx.backend_error = "sdiag: " .. (d and d.stderr:gsub("%s+$", "") or tostring(why))
  end
end

-- Pending reasons that do not resolve themselves: the job will never start as it was asked for.
-- A job pending for one of them is cancelled on Slurm and LAUNCH_FAILED, with the reason in words
-- (README: "Jobs that Slurm will never start").
backend.HOPELESS = {
  PartitionNodeLimit = "it asks for more nodes than its partition allows (or fewer than its minimum)",
  PartitionTimeLimit = "its time limit is beyond its partition's MaxTime",
  PartitionConfig = "it asks for more than its partition has (CPUs, memory, nodes, or a partition that is not there)",
  BadConstraints = "its constraints (features, memory, CPUs) cannot be satisfied by any node",
  InvalidAccount = "its account is invalid",
  InvalidQOS = "its QOS is invalid",
  QOSMaxNodePerJobLimit = "it asks for more nodes than its QOS allows a job",
  QOSMaxWallDurationPerJobLimit = "its time limit is beyond its QOS's MaxWall",
  QOSMaxCpuPerJobLimit = "it asks for more CPUs than its QOS allows a job",
  QOSMaxGRESPerJob = "it asks for more GRES than its QOS allows a job",
  AssocMaxNodesPerJobLimit = "it asks for more nodes than its association allows a job",
  AssocMaxWallDurationPerJobLimit = "its time limit is beyond its association's MaxWall",
  AssocMaxCpuPerJobLimit = "it asks for more CPUs than its association allows a job",
  DependencyNeverSatisfied = "a job it depends on ended in a way that can never satisfy the dependency",
}

-- hostlist(text) -> { [node] = true } of a Slurm host list ("node[1-3,5],gpu1").
local function hostlist(text, into)
  into = into or {}
  for prefix, inner in (text or ""):gmatch("([^,%[]*)%[([^%]]*)%]") do
    for part in inner:gmatch("[^,]+") do
      local a, b = part:match("^(%d+)%-(%d+)$")
      if a then
        for n = tonumber(a), tonumber(b) do into[prefix .. string.format("%0" .. #a .. "d", n)] = true end
      else
        into[prefix .. part] = true
      end
    end
  end
  for name in ((text or ""):gsub("[^,%[]*%[[^%]]*%],?", "")):gmatch("[^,]+") do into[name] = true end
  return into
end
backend.hostlist = hostlist

-- hopeless(rec) -> the words of why Slurm will never start this pending job, or nil.
-- ReqNodeNotAvail is hopeless only when every node the job asked for by name is unavailable.
local function hopeless(rec)
  local reason = rec.Reason or ""
  if backend.HOPELESS[reason] then return reason .. ": " .. backend.HOPELESS[reason] end
  if reason:match("^ReqNodeNotAvail") and node_list(rec.ReqNodeList) then
    local down = hostlist(reason:match("UnavailableNodes:(%S+)"))
    for node in pairs(hostlist(rec.ReqNodeList)) do
      if not down[node] then return nil end
    end
    return "ReqNodeNotAvail: every node it asks for (" .. rec.ReqNodeList .. ") is unavailable"
  end
end

-- give_up(ctx, jobs, known, out): jobs still pending for a reason that will not change, or for
-- longer than their max_pending, are cancelled with one scancel and LAUNCH_FAILED, saying why.
give_up = function(ctx, jobs, known, out)
  local now, list, why_of = process.time(), {}, {}
  for _, job in ipairs(jobs) do
    local rec = job.native_id and known[job.native_id]
    local limit = rec and job.spec.options and job.spec.options.max_pending
    -- (whether a record is hopeless, once a record: an array's pending tasks share theirs)
    if rec and rec.hopeless == nil then rec.hopeless = hopeless(rec) or false end
    local o = rec and (limit or rec.hopeless) and out[job]
    if o and cur(job, o, "status") == "PENDING" and not cur(job, o, "started_at") then
      local why = rec.hopeless or nil
      local most = limit and duration.parse(limit)
      if not why and most and now - (state.epoch(job.submitted_at) or now) >= most then
        why = string.format("pending for %s: %s", type(limit) == "string" and limit or (most .. "s"),
          cur(job, o, "pending_reason") or "no reason given")
      end
      if why then list[#list + 1] = job; why_of[job] = why end
    end
  end
  if #list == 0 then return end
  local argv = { "scancel" }
  for _, job in ipairs(list) do argv[#argv + 1] = job.native_id end
  local r, err = exec.run(argv, { timeout = 60 })
  if not r or r.code ~= 0 then
    -- Not cancelled: they stay pending, and the next poll tries again.
    ctx.backend_error = "scancel: " .. (r and said(r.stderr, "scancel") or tostring(err))
    return
  end
  for _, job in ipairs(list) do
    local o = out[job]
    o.status, o.termination, o.launch_error = "LAUNCH_FAILED", "launch_failed", why_of[job]
    o.notes.slurm_cancelled = true
  end
end

-- poll(ctx, jobs) -> { [job] = observation }: one squeue call for all of them; for the jobs it
-- has forgotten, their exit-code files, then one sacct call for the rest. When the controller
-- cannot be asked, every job keeps its last known status (an API error is never a job failure).
function backend.poll(ctx, jobs)
  local out = {}
  local r, err = exec.run({ "squeue", "--me", "-h", "-t", "all", "-o", backend.SQUEUE_FORMAT }, { timeout = 30 })
  if not r or r.code ~= 0 then
    ctx.backend_error = "squeue: " .. tostring(r and (r.stderr:gsub("%s+$", "")) or err)
    return out
  end
  ctx.backend_error = nil
  -- A job's observation is made when something is said of it: a poll of 10,000 jobs of which a
  -- few moved makes a few (every table a job, each poll, was much of a big run's cost).
  setmetatable(out, { __index = function(t, job)
    local o = { notes = {} }
    rawset(t, job, o)
    return o
  end })
  -- The run's arrays (each job's, kept while its native id is the same).
  local arrays, array_of = {}, ctx.slurm_array_of or setmetatable({}, { __mode = "k" })
  ctx.slurm_array_of = array_of
  for _, job in ipairs(jobs) do
    local id = job.native_id
    local a = array_of[job]
    if not a or a.id ~= id then
      a = { id = id, array = tostring(id):match("^(%d+)_%d+$") or false }
      array_of[job] = a
    end
    if a.array then arrays[a.array] = true end
  end
  local known, seen, ranges = backend.parse(r.stdout, arrays, ctx.slurm_ranges)
  ctx.slurm_ranges = ranges
  local forgotten = {}
  -- What each job's record said at the last poll, and the status that made of it: a job whose
  -- record says the same, and that has that status still, is not looked at again (a poll of
  -- 1,000 waiting jobs makes no observation of any).
  local said_before = ctx.slurm_said or setmetatable({}, { __mode = "k" })
  ctx.slurm_said = said_before
  for _, job in ipairs(jobs) do
    local rec = job.native_id and known[job.native_id]
    local before = rec and said_before[job]
    local restarts = job.spec.max_restarts > 0 or (rec and rec.JobState == "FAILED")
    local same_again = before and not restarts and before.seen == rec.seen and before.id == job.native_id
      and before.status == job.status and before.try == job.try
    -- Said already: nothing new (no observation).
    if same_again then goto next_job end
    local o = out[job]
    local last = rec and restarts and recorded(ctx, job)
    if rec and rec.JobState == "FAILED" and not (last and last.final ~= false) then
      -- Failed without its script's record: its exit code is sacct's (squeue has none).
      forgotten[#forgotten + 1] = job
    elseif rec then
      -- Restarts: the script's records of its requeued attempts (squeue does not say).
      if last then rec.Restarts = last.final == false and last.attempt or last.attempt - 1 end
      apply(ctx, job, o, rec)
      said_before[job] = { seen = rec.seen, id = job.native_id, status = o.status, try = job.try }
    elseif job.native_id then
      -- The controller forgot it (MinJobAge passed, or its state was lost), or it was a pending
      -- array task that our scancel took: the controller drops those at once, without a trace.
      local attempt = recorded(ctx, job)
      if attempt and attempt.final then
        apply_recorded(job, o, attempt)
      elseif job.slurm_cancelled and not ended(job, o) then
        set_state(job, o, "CANCELLED")
        o.notes.slurm_source = "scancel"
      else
        -- An array task gone from a pending set that the controller still holds (sacct's row of
        -- the array's pending tasks may still count it): it started, or it was cancelled.
        local array = job.native_id:match("^(%d+)_%d+$")
        o.notes.slurm_left_pending = array and seen[array] and job.status == "PENDING" or NONE
        forgotten[#forgotten + 1] = job
      end
    end
    ::next_job::
  end
  if #forgotten > 0 then from_accounting(ctx, forgotten, out) end
  give_up(ctx, jobs, known, out)
  -- Only what was seen: a job the poll said nothing of is left out.
  setmetatable(out, nil)
  for job, o in pairs(out) do
    if next(o.notes) == nil then o.notes = nil end
    if next(o) == nil then out[job] = nil end
  end
  return out
end

-- cancel(ctx, jobs) -> outcomes, { [job] = observation }: one scancel for all, then follow them
-- to CANCELLED (on copies of the jobs, which take what each poll sees: jobrun.run.status.scratch).
function backend.cancel(ctx, jobs)
  local results, ids = {}, {}
  local copies, observed = status.scratch(jobs)
  for _, job in ipairs(copies) do
    if job.native_id then ids[#ids + 1] = job.native_id else results[job.name] = "not found" end
  end
  if #ids == 0 then return results, observed() end
  local argv = { "scancel" }
  for _, id in ipairs(ids) do argv[#argv + 1] = id end
  local r, err = exec.run(argv, { timeout = 60 })
  if not r then
    for _, job in ipairs(copies) do results[job.name] = results[job.name] or ("failed: " .. tostring(err)) end
    return results, observed()
  end
  for _, job in ipairs(copies) do
    if job.native_id and not results[job.name] then
      local why = r.stderr:match("job id " .. job.native_id .. ": ([^\n]*)")
      if not why then
        results[job.name] = "killed"
        -- A pending array task leaves the controller's list at once: poll reads this instead (a
        -- note on the copy, which the observation carries to the job).
        if job.native_id:find("_", 1, true) then job.slurm_cancelled = true end
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
  -- A job that ended otherwise meanwhile was already completed; one the controller is slow to
  -- end stays "killed" (scancel took it).
  local waiting, follow = {}, {}
  for _, job in ipairs(copies) do if results[job.name] == "killed" then waiting[#waiting + 1] = job end end
  common.follow_cancel(function(list) return backend.poll(ctx, list) end, waiting, follow, 30, 0.5)
  for name, outcome in pairs(follow) do
    if outcome == "already completed" then results[name] = outcome end
  end
  return results, observed()
end

return backend
