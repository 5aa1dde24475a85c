-- Expectations (README "Suite files") and verdicts (README "Jobs, statuses and results"): pass,
-- fail or pending, with every unmet expectation in words.

local verdict = {}

local TERMINAL = require("jobrun.schema").TERMINAL
verdict.TERMINAL = TERMINAL

-- Outcomes that no expectation accepts unless it names them as its status.
local ABNORMAL = { CANCELLED = "the job was cancelled", LAUNCH_FAILED = "the job could not be launched",
                   LOST = "the backend lost the job", SKIPPED = "a job it needs did not pass" }

local function show(v)
  if v == nil then return "none" end
  return tostring(v)
end

-- judge(job, expect, read_log) -> "pass" | "fail" | "pending", mismatches
-- read_log() returns the job's log text, read only when an expectation needs it.
function verdict.judge(job, expect, read_log)
  local status = job.status
  if not TERMINAL[status] then return "pending", {} end
  local mismatches = {}
  local function miss(fmt, ...) mismatches[#mismatches + 1] = string.format(fmt, ...) end

  if expect == nil then
    if status ~= "SUCCEEDED" then miss("status is %s, expected SUCCEEDED", status) end
    -- (an exit code the backend cannot know is judged by the status alone)
    if job.exit_code ~= 0 and not job.exit_code_unknown then
      miss("exit code is %s, expected 0", show(job.exit_code))
    end
    return #mismatches == 0 and "pass" or "fail", mismatches
  end

  if type(expect) == "function" then
    -- User code: in a child of its own, bounded and interruptible like a parser fn.
    local ok, good, why = require("jobrun.isolate").call(1, expect, job)
    if not ok and type(good) == "table" and good.signal then error(good, 0) end
    if not ok then
      miss("the expectation function failed: %s", tostring(good))
    elseif not good then
      miss("%s", why or "the expectation function returned false")
    end
    return #mismatches == 0 and "pass" or "fail", mismatches
  end

  if expect.status then
    if status ~= expect.status then miss("status is %s, expected %s", status, expect.status) end
  elseif ABNORMAL[status] then
    miss("%s", ABNORMAL[status])
  end

  local code = expect.exit_code
  if code == "nonzero" then
    if job.exit_code == nil or job.exit_code == 0 then
      miss("exit code is %s, expected non-zero", show(job.exit_code))
    end
  elseif code ~= nil and job.exit_code ~= code then
    miss("exit code is %s, expected %d", show(job.exit_code), code)
  end

  local term = expect.termination
  if term ~= nil then
    local accepted = type(term) == "table" and term or { term }
    local ok = false
    for _, t in ipairs(accepted) do if job.termination_reason == t then ok = true end end
    if not ok then
      miss("termination is %s, expected %s", show(job.termination_reason), table.concat(accepted, " or "))
    end
  end

  local restarts = expect.restarts
  if restarts ~= nil then
    local n = job.restart_count or 0
    if type(restarts) == "table" then
      if (restarts.min and n < restarts.min) or (restarts.max and n > restarts.max) then
        miss("restarts are %d, expected %s%s", n, restarts.min and ("at least " .. restarts.min) or "",
          restarts.max and ((restarts.min and " and " or "") .. "at most " .. restarts.max) or "")
      end
    elseif n ~= restarts then
      miss("restarts are %d, expected %d", n, restarts)
    end
  end

  if expect.log then
    local text = read_log and read_log() or ""
    if not text:find(expect.log) then miss("the log has no match for %q", expect.log) end
  end

  if expect.metrics then
    for _, m in ipairs(require("jobrun.metrics").judge(job.metrics, expect.metrics, job)) do miss("%s", m) end
  end

  return #mismatches == 0 and "pass" or "fail", mismatches
end

return verdict
