-- The short failure summary after every report (as pytest's "short test summary info"): each
-- failed job with each mismatch in words, its termination or launch error, a parsed exception,
-- and its last log lines — so that why a job failed is on screen without --logs or --json.
local fs = require "jobrun.c.fs"
local sanitize = require "jobrun.sanitize"

local failures = {}

-- How many failed jobs are shown in full, and how many of their log lines.
failures.MAX_JOBS = 20
failures.LOG_LINES = 5

local function last_lines(path, n)
  local text = fs.read_tail(path, 16384)
  if not text or text == "" then return {} end
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    line = line:gsub("\r$", ""):gsub("^.*\r", "") -- a progress bar's last state
    if line:match("%S") then lines[#lines + 1] = line end
  end
  local out = {}
  for i = math.max(1, #lines - n + 1), #lines do out[#out + 1] = lines[i] end
  return out
end

-- text(data, run_dir, paint) -> the summary, or "" when no job failed.
function failures.text(data, run_dir, paint)
  local failed = {}
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then failed[#failed + 1] = job end
  end
  if #failed == 0 then return "" end
  local out = { "", paint(string.format("=== Failures: %d of %d jobs ===", #failed, #data.jobs), "bold") }
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  for i, job in ipairs(failed) do
    if i > failures.MAX_JOBS then
      add("… and %d more: jobrun check %s --failed", #failed - failures.MAX_JOBS, data.run_id)
      break
    end
    add("%s %s", paint("✗", "red"), paint(sanitize.text(job.name), "bold"))
    for _, m in ipairs(job.mismatches or {}) do add("    - %s", sanitize.text(m)) end
    local fields = job.fields or {}
    local facts = {}
    if job.termination_reason ~= nil and job.termination_reason ~= require("jobrun.json").null then
      facts[#facts + 1] = "termination: " .. sanitize.text(job.termination_reason)
    end
    if job.native_status and job.native_status ~= job.status then
      facts[#facts + 1] = "backend: " .. sanitize.text(job.native_status)
    end
    if #facts > 0 then add("    %s", table.concat(facts, " · ")) end
    for _, f in ipairs(require("jobrun.forensics").facts(job)) do add("    %s: %s", f[1], sanitize.text(f[2])) end
    local retried = require("jobrun.retry").text(job)
    if retried then add("    %s", sanitize.text(retried)) end
    for _, k in ipairs({ "launch_error", "record_error", "result_error", "log_error", "exception" }) do
      local v = fields[k] or job[k]
      if type(v) == "string" then add("    %s: %s", k:gsub("_", " "), sanitize.text(v)) end
    end
    if job.log_path_rel and run_dir then
      for _, line in ipairs(last_lines(run_dir .. "/" .. job.log_path_rel, failures.LOG_LINES)) do
        add("    %s %s", paint("│", "dim"), sanitize.text(line, true))
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return failures
