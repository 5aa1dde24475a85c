-- The records a local job's supervisor writes (its claim, jobs/<job>.status.json — a link to
-- its slot's record, or a file of its own —, the lines of the slot's journal, and the job's
-- result, jobs/<job>.result.json), read back: decoded, and refused unless every field has the
-- type the supervisor writes. A damaged or foreign file makes its job say so (LOST, with the file
-- and what is wrong) instead of staying RUNNING or breaking the command that reads it
-- (tests/fuzz/json_fuzz.c feeds arbitrary bytes through this).
local json = require "jobrun.json"

local jobfile = {}

local INTEGER = { attempt = true, restart_count = true, exit_code = true, failed_rank = true,
                  supervisor_pid = true }
local NUMBER = { started_at = true, ended_at = true, supervisor_start = true }
local STRING = { state = true, signal = true, log_error = true, result_error = true, result_cause = true,
                 key = true, journal = true }
local BOOLEAN = { timed_out = true, cancelled = true, setup_failed = true }
local REQUIRED = { "state", "supervisor_pid", "supervisor_start" }

-- check(value) -> value when it is a record of the right shape, else nil, what is wrong.
function jobfile.check(value)
  if type(value) ~= "table" then return nil, "not a JSON object" end
  for _, k in ipairs(REQUIRED) do
    if value[k] == nil then return nil, "no " .. k end
  end
  for k, v in pairs(value) do
    if type(k) ~= "string" then return nil, "not a JSON object" end
    if INTEGER[k] and math.type(v) ~= "integer" then return nil, k .. " is not a whole number" end
    if NUMBER[k] and (type(v) ~= "number" or v ~= v or math.abs(v) > 1e15) then return nil, k .. " is not a number" end
    if STRING[k] and type(v) ~= "string" then return nil, k .. " is not a string" end
    if BOOLEAN[k] and type(v) ~= "boolean" then return nil, k .. " is not true or false" end
  end
  local pid = value.supervisor_pid
  if pid < 1 or pid > 0x7fffffff then return nil, "supervisor_pid is out of range" end
  if value.state ~= "RUNNING" and value.state ~= "EXITED" then
    return nil, string.format("unknown state %q", value.state)
  end
  if value.state == "EXITED" and value.exit_code == nil then return nil, "an exit without exit_code" end
  return value
end

-- decode(text) -> the record | nil (no text) | false, what is wrong.
function jobfile.decode(text)
  if text == nil then return nil end
  local value, err = json.decode(text)
  if value == nil then return false, "not JSON (" .. tostring(err) .. ")" end
  local rec, why = jobfile.check(value)
  if not rec then return false, why end
  return rec
end

return jobfile
