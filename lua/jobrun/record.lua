-- The records a local job's supervisor writes (its claim, jobs/<job>.status.json, and its
-- result, jobs/<job>.result.json), read back: decoded, and refused unless every field the local
-- backend uses has the type the supervisor writes. A damaged or foreign file then reads as
-- absent (the job is LOST once its supervisor is gone) instead of breaking the command that
-- reads it (tests/fuzz/json_fuzz.c feeds arbitrary bytes through this).
local json = require "jobrun.json"

local record = {}

local INTEGER = { attempt = true, restart_count = true, exit_code = true, failed_rank = true,
                  supervisor_pid = true }
local NUMBER = { started_at = true, ended_at = true, supervisor_start = true }
local STRING = { state = true, signal = true, log_error = true, result_error = true, result_cause = true }

-- check(value) -> value when it is a record of the right shape, else nil.
function record.check(value)
  if type(value) ~= "table" or type(value.state) ~= "string" then return nil end
  for k, v in pairs(value) do
    if INTEGER[k] and math.type(v) ~= "integer" then return nil end
    if NUMBER[k] and (type(v) ~= "number" or v ~= v or math.abs(v) > 1e15) then return nil end
    if STRING[k] and type(v) ~= "string" then return nil end
  end
  local pid = value.supervisor_pid
  if pid and (pid < 1 or pid > 0x7fffffff) then return nil end
  return value
end

-- decode(text) -> the record, or nil.
function record.decode(text)
  return text and record.check(json.decode(text)) or nil
end

return record
