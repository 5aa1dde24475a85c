-- The short failure summary after every report (as pytest's "short test summary info"): each
-- failed job with each mismatch in words, its termination or launch error, a parsed exception,
-- and its last log lines — so that why a job failed is on screen without --logs or --json.
local sanitize = require "jobrun.report.sanitize"
local facts = require "jobrun.report.facts"

local failures = {}

-- How many failed jobs are shown in full, and how many of their log lines.
failures.MAX_JOBS = 20
failures.LOG_LINES = 5

-- text(data, run_dir, paint) -> the summary, or "" when no job failed.
function failures.text(data, run_dir, paint)
  local failed = {}
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then failed[#failed + 1] = job end
  end
  if #failed == 0 then return "" end
  local out = { "", paint(string.format("=== Failures: %d of %s ===", #failed,
    require("jobrun.report.table").count(#data.jobs, "job")), "bold") }
  local flaky = require("jobrun.run.history").flaky_notes(run_dir, data)
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  for i, job in ipairs(failed) do
    if i > failures.MAX_JOBS then
      add("… and %d more: jobrun check %s --failed", #failed - failures.MAX_JOBS, data.run_id)
      break
    end
    local r = facts.of(job, run_dir, failures.LOG_LINES)
    add("%s %s%s", paint("✗", "red"), paint(sanitize.text(r.name), "bold"),
      flaky[job.name] and paint(" — failed; " .. flaky[job.name], "yellow") or "")
    for _, m in ipairs(r.mismatches) do add("    - %s", sanitize.text(m)) end
    local shown = {}
    for k, f in ipairs(r.facts) do shown[k] = f.label .. " " .. sanitize.text(f.value) end
    add("    %s", table.concat(shown, " · "))
    for _, c in ipairs(r.causes) do
      add("    %s%s", c.label and c.label .. ": " or "", sanitize.text(c.text))
    end
    for _, e in ipairs(r.errors) do add("    %s: %s", e.label, sanitize.text(e.text)) end
    for _, line in ipairs(r.plain) do add("    %s %s", paint("│", "dim"), sanitize.text(line, true)) end
  end
  return table.concat(out, "\n") .. "\n"
end

return failures
