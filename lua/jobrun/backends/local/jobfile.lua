-- The records a local job's supervisor writes (its claim, jobs/<job>.status.json — a link to
-- its slot's record, or a file of its own —, the lines of the slot's journal, and the job's
-- result, jobs/<job>.result.json), read back: decoded, and refused unless every field has the
-- type the supervisor writes. A damaged or foreign file makes its job say so (LOST, with the file
-- and what is wrong) instead of staying RUNNING or breaking the command that reads it
-- (tests/fuzz/json_fuzz.c feeds arbitrary bytes through this).
local json = require "jobrun.base.json"
local fs = require "jobrun.c.fs"

local jobfile = {}

local ENOENT = 2

local INTEGER = { "attempt", "restart_count", "exit_code", "failed_rank", "supervisor_pid", "pid" }
local NUMBER = { "started_at", "ended_at", "supervisor_start" }
local STRING = { "state", "signal", "log_error", "result_error", "result_cause", "key", "journal" }
local BOOLEAN = { "timed_out", "cancelled", "setup_failed" }
local REQUIRED = { "state", "supervisor_pid", "supervisor_start" }

-- check(value) -> value when it is a record of the right shape, else nil, what is wrong. The
-- known fields are looked up by name (a runner checks two journal lines a job): other fields
-- are let be.
function jobfile.check(value)
  if type(value) ~= "table" or value[1] ~= nil then return nil, "not a JSON object" end
  for i = 1, #REQUIRED do
    if value[REQUIRED[i]] == nil then return nil, "no " .. REQUIRED[i] end
  end
  for i = 1, #INTEGER do
    local k = INTEGER[i]
    local v = value[k]
    if v ~= nil and math.type(v) ~= "integer" then return nil, k .. " is not a whole number" end
  end
  for i = 1, #NUMBER do
    local k = NUMBER[i]
    local v = value[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or math.abs(v) > 1e15) then return nil, k .. " is not a number" end
  end
  for i = 1, #STRING do
    local k = STRING[i]
    local v = value[k]
    if v ~= nil and type(v) ~= "string" then return nil, k .. " is not a string" end
  end
  for i = 1, #BOOLEAN do
    local k = BOOLEAN[i]
    local v = value[k]
    if v ~= nil and type(v) ~= "boolean" then return nil, k .. " is not true or false" end
  end
  local pid = value.supervisor_pid
  if pid < 1 or pid > 0x7fffffff then return nil, "supervisor_pid is out of range" end
  if value.pid and (value.pid < 1 or value.pid > 0x7fffffff) then return nil, "pid is out of range" end
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

-- text(path [, offset]) -> the file's text (at most fs.RECORD_MAX bytes from offset), more
-- | nil (no such file) | false, "path: what is wrong": a record of a run directory, never read
-- through a link, from a device or a FIFO, or from a file the runner does not own (src/fs.c).
function jobfile.text(path, offset)
  local text, err, errno = fs.read_record(path, offset)
  if text then return text, err end
  if errno == ENOENT then return nil end
  return false, err
end

-- read(path) -> the record | nil (no such file) | false, "path: what is wrong".
function jobfile.read(path)
  local text, more = jobfile.text(path)
  if text == false then return false, more end
  if text and more then
    return false, string.format("%s: larger than %d bytes, the most a record may be", path, fs.RECORD_MAX)
  end
  local rec, why = jobfile.decode(text)
  if rec == false then return false, path .. ": " .. why end
  return rec
end

return jobfile
