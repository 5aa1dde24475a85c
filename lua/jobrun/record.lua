-- How a job's record moves: forward only (README "How a job's record moves"). Within an attempt a job goes PENDING →
-- RUNNING → one terminal status, and a terminal status is final. A backend's restart (Slurm's
-- requeue, SkyPilot's recovery) may take a RUNNING job back to PENDING only with a higher
-- restart count. Two copies of one job (this process's and state.json's, written by a `check`,
-- a `kill` or another driver) merge to the one further along, so that no writer ever puts back
-- a status that another has moved on.
local verdict = require "jobrun.verdict"

local record = {}

local TERMINAL = verdict.TERMINAL

-- The fields that say where a job is; restored together when a change is refused.
local POSITION = { "status", "native_status", "native_id", "restart_count", "attempt", "backend_termination",
                   "backend_exit_code", "started_at", "ended_at", "duration_s", "signal" }

local function rank(job)
  if TERMINAL[job.status] then return (job.verdict ~= nil and job.verdict ~= "pending") and 4 or 3 end
  if job.status == "RUNNING" then return 2 end
  return job.native_id and 1 or 0
end
record.rank = rank

-- try(job): the job's attempt across reruns (1 before any rerun).
local function try(job) return job.try or 1 end

-- ahead(a, b) -> true when copy a is further along than copy b (ties: false).
function record.ahead(a, b)
  if try(a) ~= try(b) then return try(a) > try(b) end
  local ra, rb = rank(a), rank(b)
  if ra >= 3 or rb >= 3 then return ra > rb end
  local na, nb = a.restart_count or 0, b.restart_count or 0
  if na ~= nb then return na > nb end
  return ra > rb
end

-- position(job) -> a copy of the fields that say where the job is.
function record.position(job)
  local pos = { try = try(job), verdict = job.verdict }
  for _, k in ipairs(POSITION) do pos[k] = job[k] end
  return pos
end

-- check(job, before) -> true when the job's move from `before` (a position) is allowed; else
-- the job is put back where it was and false is returned.
function record.check(job, before)
  if try(job) ~= before.try then return try(job) > before.try end
  local allowed
  if TERMINAL[before.status] then
    allowed = job.status == before.status
  elseif job.status == "PENDING" and before.status == "RUNNING" then
    allowed = (job.restart_count or 0) > (before.restart_count or 0)
  else
    allowed = true
  end
  if not allowed then
    for _, k in ipairs(POSITION) do job[k] = before[k] end
  end
  return allowed
end

-- replace(into, from): `into` becomes a copy of `from`, keeping its identity (the driver's
-- lists and the backends' handles refer to the table).
function record.replace(into, from)
  for k in pairs(into) do into[k] = nil end
  for k, v in pairs(from) do into[k] = v end
end

return record
