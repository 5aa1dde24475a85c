-- Expectations (README "Suite files") and verdicts (README "Jobs, statuses and results"): pass,
-- fail or pending, with every unmet expectation in words.

local verdict = {}

local TERMINAL = require("jobrun.suite.schema").TERMINAL
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
    local ok, good, why = require("jobrun.judge.isolate").call(1, expect, job)
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
    for _, m in ipairs(require("jobrun.judge.metrics").judge(job.metrics, expect.metrics, job)) do miss("%s", m) end
  end

  return #mismatches == 0 and "pass" or "fail", mismatches
end

-- help() -> `jobrun help expect`: every form an expectation takes, each with an example.
function verdict.help()
  local plan = require "jobrun.plan"
  local schema = require "jobrun.suite.schema"
  local out = { [[
expect — how a job should end: a suite's expect is every job's, a condition's replaces it.

A table checks only what it names, and a job passes when every check holds; a function
decides alone. Without an expectation a job passes iff its status is SUCCEEDED and its exit
code 0. CANCELLED, LAUNCH_FAILED, LOST and SKIPPED never pass unless status names them.

  status       the job's normalised status, one of:
               ]] .. table.concat(schema.STATUSES, " ") .. [[

                 expect = { status = "TIMEOUT" }
  exit_code    a whole number, or "nonzero" for any code but 0
                 expect = { exit_code = 3 }
                 expect = { exit_code = "nonzero" }
  termination  the termination reason, a plain name (letters, digits, _, - and .), or a
               list of names any of which passes; names are compared as they are
                 expect = { termination = "nccl_timeout" }
                 expect = { termination = { "timeout", "preempted" } }
  restarts     how often the job was restarted: a number, or { min = N, max = N }
                 expect = { restarts = 0 }
                 expect = { restarts = { min = 1, max = 3 } }
  log          a Lua pattern that must occur in the job's log
                 expect = { log = "loss: %d+%.%d+" }
  metrics      rules on the job's metrics (jobrun help metric): a rule on the tail_mean (the
               mean of the last 25 % of points), another aggregate, or a reference per axis
               value with a tolerance; a metric not found is a mismatch
                 expect = { metrics = { ["overview/sps"] = ">= 40000" } }
                 expect = { metrics = { loss = { "<= 2.5", agg = "last" } } }
                 expect = { metrics = { tps = { ref = { nodes = { [1] = 5000, [4] = 19000 } }, tol = "-5%" } } }
  function     function(result) returning ok, why; why is the mismatch shown when ok is
               false. result is the job's result: status, exit_code, termination_reason,
               restart_count, fields (what parsers found), params, name, log_path
                 expect = function(r)
                   if r.fields.nan then return false, "the loss went NaN" end
                   return r.exit_code == 0, "exit code " .. tostring(r.exit_code)
                 end

Checks combine: expect = { status = "FAILED", exit_code = "nonzero", termination = "cuda_oom" }

Termination names jobrun knows (built-in parsers and backends; packs and suites add their
parsers' values), besides signal_<NAME> for a job killed by a signal (signal_KILL):]] }
  local known = plan.known_terminations({})
  local line = " "
  for _, name in ipairs(known) do
    if #line + #name + 1 > 92 then out[#out + 1] = line; line = " " end
    line = line .. " " .. name
  end
  out[#out + 1] = line
  out[#out + 1] = "jobrun plan warns (on stderr) about an expected termination that none of them produces."
  return table.concat(out, "\n") .. "\n"
end

return verdict
