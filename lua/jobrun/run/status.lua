-- How a job's record moves (README "How a job's record moves"): the one place that says which
-- move is allowed, and the one function that makes it. Backends observe; the run applies what
-- they saw through status.apply, which checks the move before it writes anything. The run's
-- own moves (submit, cancel, withdraw, finish, a rerun's new attempt, adopt) are observations
-- too, made by the named transitions below, and go through the same function.
--
-- An observation is what a backend saw of one job: what its poll, cancel, submit, submit_many,
-- adopt, withdraw and fetch_logs return for that job (README "Writing a backend"). Every field
-- is optional: one left out leaves the job's as it is, and status.NONE clears it.
--   status          one of jobrun.suite.schema.STATUSES
--   native_status   the backend's own word ("RUNNING", "COMPLETING", "QUEUED", "EXITED", …)
--   native_id       the backend's id of the job: given by a submit or an adopt, taken away only
--                   by a withdraw (a job handed back before it started)
--   exit_code       the backend's exit code (the job's backend_exit_code; 128 + N for signal N)
--   signal          the signal that ended it ("KILL")
--   submitted_at, started_at, ended_at   ISO 8601 in UTC ("2024-05-01T12:00:00Z")
--   duration_s      seconds it ran
--   restart_count   the backend's restarts of it within this launch; attempt, the attempt it is on
--   nodes           where it runs or ran (host names, or Slurm's NodeList)
--   termination     the backend's word on why it ended ("timeout", "oom", "node_fail", …; the
--                   job's backend_termination)
--   pending_reason  why it waits (Slurm's Reason)
--   tres            what it holds per node ("gres/gpu:2")
--   record_error, result_error, log_error, launch_error   what is wrong with its files or its
--                   launch, in words
--   notes           the backend's own bookkeeping, { name = value } (its slot, its pool, where
--                   Slurm's answer came from, …): kept on the job, for the backend's next call;
--                   never a field above nor one of the run's (RUN_OWNED)
-- The run's own transitions add `new_attempt` (a rerun: { dir = the run directory as the run's
-- paths show it, commands = the commands of each attempt }), which no backend may send.
--
-- The rule (status.allowed): within an attempt (job.try, 1 before any rerun) a job goes PENDING
-- → RUNNING → one terminal status (schema.TERMINAL), and a terminal status is final: only the
-- same status again, with more of the backend's word on that end (times, exit code, nodes).
-- A backend's restart (Slurm's requeue, SkyPilot's recovery) may take a RUNNING job back to
-- PENDING only with a higher restart count. A launched job keeps a native id; it loses it only
-- by a withdraw: PENDING, never started, handed back (a pool that ended before starting it, or
-- Ctrl-C taking queued jobs back). A job without a native id is PENDING or ended. A new
-- attempt starts only from a terminal status.
local schema = require "jobrun.suite.schema"

local status = {}

local TERMINAL, KNOWN = schema.TERMINAL, schema.STATUS_SET

-- NONE: an observation's value that clears the job's field.
status.NONE = setmetatable({}, { __tostring = function() return "NONE" end, __name = "status.NONE" })
local NONE = status.NONE

-- The observation's fields, as the job's fields they set.
status.FIELDS = {
  status = "status", native_status = "native_status", native_id = "native_id", exit_code = "backend_exit_code",
  signal = "signal", submitted_at = "submitted_at", started_at = "started_at", ended_at = "ended_at",
  duration_s = "duration_s", restart_count = "restart_count", attempt = "attempt", nodes = "nodes",
  termination = "backend_termination", pending_reason = "pending_reason", tres = "tres",
  record_error = "record_error", result_error = "result_error", log_error = "log_error",
  launch_error = "launch_error",
}
local FIELDS = status.FIELDS
-- The job's fields, as the observation's that set them.
local OBSERVED = {}
for k, f in pairs(FIELDS) do OBSERVED[f] = k end

-- What the run keeps of a job (its plan, its verdict, its attempts, …): never a backend's note.
local RUN_OWNED = {}
for _, k in ipairs({ "name", "key", "params", "backend", "spec", "fields", "mismatches", "verdict", "log_path",
                     "log_path_rel", "try", "attempts", "attempt_base", "exit_code", "exit_code_unknown",
                     "termination_reason", "metrics", "git", "command_line", "cause_class", "culprit", "cause_chain",
                     "gpu_hours", "retries", "retried_for", "retried", "retry_at", "excluded_nodes", "new_attempt",
                     "notes" }) do
  RUN_OWNED[k] = true
end
status.RUN_OWNED = RUN_OWNED

local function try(job) return job.try or 1 end

-- value(job, obs, k) -> the observation's k if it says one (nil for NONE), else the job's.
local function value(job, obs, k)
  local v = obs[k]
  if v == nil then return job[FIELDS[k]] end
  if v == NONE then return nil end
  return v
end

-- For a backend building observations: seen(job, o, k) -> the observation field k as this call
-- has observed it so far, else the job's (nil for NONE); noted(job, o, k) -> the same for the
-- note k; or_none(v) -> v, or NONE for nil (a field to clear).
function status.seen(job, o, k)
  local v = o[k]
  if v == nil then return job[FIELDS[k]] end
  if v == NONE then return nil end
  return v
end
function status.noted(job, o, k)
  local v = o.notes and o.notes[k]
  if v == nil then return job[k] end
  if v == NONE then return nil end
  return v
end
function status.or_none(v) if v == nil then return NONE end return v end

-- allowed(job, obs) -> true | false, why: may the job take this observation (README "How a
-- job's record moves")? Nothing is written.
function status.allowed(job, obs)
  if type(obs) ~= "table" then return false, "an observation must be a table" end
  local to = value(job, obs, "status")
  if not KNOWN[to] then
    return false, string.format("%s is not a status (%s)", tostring(to), table.concat(schema.STATUSES, ", "))
  end
  if type(obs.notes) == "table" then
    for k in pairs(obs.notes) do
      if FIELDS[k] or OBSERVED[k] or RUN_OWNED[k] then
        return false, string.format("a note may not set the job's %s", tostring(k))
      end
    end
  elseif obs.notes ~= nil then
    return false, "notes must be a table"
  end
  local from = job.status
  if obs.new_attempt ~= nil then
    if not TERMINAL[from] then return false, string.format("a new attempt after %s (only after an end)", from) end
    if obs.status ~= nil and obs.status ~= "PENDING" then return false, "a new attempt starts PENDING" end
    return true
  end
  local had_id, id = job.native_id ~= nil, value(job, obs, "native_id")
  if TERMINAL[from] then
    if to ~= from then return false, string.format("%s after %s (an end is final)", to, from) end
    if id ~= job.native_id then return false, string.format("a new native id after %s (an end is final)", from) end
    return true
  end
  if TERMINAL[to] then return true end
  if id == nil then
    if to ~= "PENDING" then return false, string.format("%s without a native id (not launched)", to) end
    if had_id then
      -- A withdraw: handed back before it started.
      if from ~= "PENDING" then return false, string.format("withdrawn at %s (only before it starts)", from) end
      if value(job, obs, "started_at") ~= nil then return false, "withdrawn after it started" end
    end
    return true
  end
  if from == "RUNNING" and to == "PENDING" then
    local before, after = job.restart_count or 0, value(job, obs, "restart_count") or 0
    if type(after) ~= "number" or after <= before then
      return false, string.format("PENDING after RUNNING without a restart (restart count %s, was %s)",
        tostring(after), tostring(before))
    end
  end
  return true
end

-- same(a, b): equal values, lists of plain values by their items (a node list seen again).
local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b or #a == 0 then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  for k in pairs(a) do if math.type(k) ~= "integer" then return false end end
  for k in pairs(b) do if math.type(k) ~= "integer" then return false end end
  return true
end

-- write(job, obs) -> true when a field changed. No rule is checked here.
local function set(job, field, v)
  if v == NONE then v = nil end
  if same(job[field], v) then return false end
  job[field] = v
  return true
end
local function write(job, obs)
  local changed = false
  if obs.new_attempt ~= nil then
    local a = obs.new_attempt
    -- The record keeping (the latest attempt into job.attempts, fresh files) is jobrun.judge.results'.
    require("jobrun.judge.results").new_attempt(job, a.dir, a.commands)
    job.status = "PENDING"
    changed = true
  end
  -- (the observation's few fields, not every field an observation may have: a poll of 1,000 jobs
  -- applies 1,000 of them)
  for k, v in pairs(obs) do
    local field = FIELDS[k]
    if field and set(job, field, v) then changed = true end
  end
  if type(obs.notes) == "table" then
    for k, v in pairs(obs.notes) do if set(job, k, v) then changed = true end end
  end
  -- Backends count attempts within one launch; {attempt} counts across reruns too.
  if job.attempt_base and set(job, "attempt", job.attempt_base + (job.restart_count or 0) + 1) then changed = true end
  return changed
end

-- apply(job, obs) -> true, changed | false, why: the job takes the observation if the move is
-- allowed (status.allowed); else nothing of it is written.
function status.apply(job, obs)
  local ok, why = status.allowed(job, obs)
  if not ok then return false, why end
  return true, write(job, obs)
end

-- ---------------------------------------------------------------- the run's own moves
-- Each makes an observation and applies it: true, changed | false, why.

-- submit(job, obs): a launch's answer: the job has a native id now (obs.native_id), PENDING
-- unless the backend says more. submitted_at: when the request went out.
function status.submit(job, obs, submitted_at)
  if job.native_id ~= nil then return false, "already launched (" .. tostring(job.native_id) .. ")" end
  local o = {}
  for k, v in pairs(obs or {}) do o[k] = v end
  if o.native_id == nil or o.native_id == NONE then return false, "a launch without a native id" end
  o.status = o.status or "PENDING"
  o.submitted_at = o.submitted_at or submitted_at
  return status.apply(job, o)
end

-- launch_failed(job, why [, obs]): a launch that gave no native id: LAUNCH_FAILED, saying why
-- (with what else the backend noted of it).
function status.launch_failed(job, why, obs, submitted_at)
  if job.native_id ~= nil then return false, "already launched (" .. tostring(job.native_id) .. ")" end
  local o = {}
  for k, v in pairs(obs or {}) do o[k] = v end
  o.status, o.native_status, o.native_id = "LAUNCH_FAILED", NONE, nil
  o.launch_error = why or o.launch_error
  o.submitted_at = o.submitted_at or submitted_at
  return status.apply(job, o)
end

-- adopt(job, obs): after a runner died between launching a job and saving it, the backend found
-- the launch (obs.native_id): the job takes it, never launched twice.
function status.adopt(job, obs)
  if job.native_id ~= nil then return false, "already launched (" .. tostring(job.native_id) .. ")" end
  return status.apply(job, obs)
end

-- finish(job, to, native): a job closed without the backend: cancelled before it started,
-- abandoned (fail_fast, Ctrl-C), skipped, or its launch refused before it went out.
function status.finish(job, to, native)
  if not TERMINAL[to] then return false, tostring(to) .. " is not an end" end
  if TERMINAL[job.status] then return false, string.format("%s after %s (an end is final)", to, job.status) end
  return status.apply(job, { status = to, native_status = native or NONE })
end

-- cancel(job): cancelled before it was launched (a launched job is its backend's to cancel).
function status.cancel(job)
  if job.native_id ~= nil then return false, "launched: its backend cancels it" end
  return status.finish(job, "CANCELLED", "NOT_STARTED")
end

-- withdraw(job [, obs]): a queued job taken back before it started: PENDING, not launched.
function status.withdraw(job, obs)
  local o = {}
  for k, v in pairs(obs or {}) do o[k] = v end
  o.status, o.native_id, o.native_status = "PENDING", NONE, NONE
  if job.native_id == nil then return false, "not launched" end
  return status.apply(job, o)
end

-- new_attempt(job, dir, commands): a rerun (or a retry) of a job that has ended: its latest
-- attempt kept in job.attempts, the job PENDING again under fresh files (jobrun.judge.results).
function status.new_attempt(job, dir, commands)
  return status.apply(job, { status = "PENDING", new_attempt = { dir = dir, commands = commands } })
end

-- ---------------------------------------------------------------- two copies of a job

-- rank(job): how far along one copy is within its attempt: 0 not launched, 1 launched, 2
-- running, 3 ended, 4 ended and judged.
function status.rank(job)
  if TERMINAL[job.status] then return (job.verdict ~= nil and job.verdict ~= "pending") and 4 or 3 end
  if job.status == "RUNNING" then return 2 end
  return job.native_id and 1 or 0
end
local rank = status.rank

-- ahead(a, b) -> true when copy a of a job is further along than copy b (ties: false): when this
-- process's copy and state.json's (written by a `check`, a `kill`, another driver) merge, the one
-- further along is kept, so that no writer puts back a status another has moved on.
function status.ahead(a, b)
  if try(a) ~= try(b) then return try(a) > try(b) end
  local ra, rb = rank(a), rank(b)
  if ra >= 3 or rb >= 3 then return ra > rb end
  local na, nb = a.restart_count or 0, b.restart_count or 0
  if na ~= nb then return na > nb end
  return ra > rb
end

-- ---------------------------------------------------------------- a backend's working copies

-- copy(job) -> a shallow copy (its tables shared).
function status.copy(job)
  local c = {}
  for k, v in pairs(job) do c[k] = v end
  return c
end

-- diff(job, copy) -> the observation that takes the job to the copy (the backend's fields, and
-- its notes), or nil when they do not differ. What the run owns is not looked at.
function status.diff(job, copy)
  local obs, notes
  for k, v in pairs(copy) do
    if not RUN_OWNED[k] and not same(job[k], v) then
      obs = obs or {}
      if OBSERVED[k] then obs[OBSERVED[k]] = v else notes = notes or {}; notes[k] = v end
    end
  end
  for k in pairs(job) do
    if copy[k] == nil and not RUN_OWNED[k] then
      obs = obs or {}
      if OBSERVED[k] then obs[OBSERVED[k]] = NONE else notes = notes or {}; notes[k] = NONE end
    end
  end
  if obs then obs.notes = notes end
  return obs
end

-- fold(copy, obs): a backend's own working copy takes an observation, unchecked (what it saw
-- one poll is what its next poll starts from).
function status.fold(copy, obs)
  if type(obs) ~= "table" then return end
  for k, field in pairs(FIELDS) do
    local v = obs[k]
    if v == NONE then copy[field] = nil elseif v ~= nil then copy[field] = v end
  end
  for k, v in pairs(type(obs.notes) == "table" and obs.notes or {}) do
    if v == NONE then copy[k] = nil else copy[k] = v end
  end
end

-- scratch(jobs) -> copies, observed: a backend's working copies of the jobs, which it may write
-- as it likes (a cancel follows its jobs through several polls), and observed() -> { [job] =
-- observation } of what changed on them.
function status.scratch(jobs)
  local copies, of = {}, {}
  for i, job in ipairs(jobs) do
    local c = status.copy(job)
    copies[i], of[c] = c, job
  end
  local function observed()
    local out = {}
    for c, job in pairs(of) do
      local obs = status.diff(job, c)
      if obs then out[job] = obs end
    end
    return out
  end
  return copies, observed, of
end

return status
