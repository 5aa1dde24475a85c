-- JUnit XML (README "Reports"): one <testcase> per job; a failed verdict is a <failure> whose message is
-- the mismatches in words, a pending one is <skipped/>; <properties> carry the job's params,
-- native id, restarts and termination (Jenkins' JUnit plugin reads a testcase's properties), and
-- <system-out> the log's last lines. Read by CI systems (Jenkins, GitLab, GitHub).
local fs = require "jobrun.c.fs"
local sanitize = require "jobrun.report.sanitize"
local json = require "jobrun.base.json"
local template = require "jobrun.suite.template"
local record = require "jobrun.report.facts"

local junit = {}

-- escape(s): valid XML 1.0 text whatever the bytes: stray bytes become U+FFFD, and characters
-- XML 1.0 forbids (C0 controls but tab, LF and CR; U+FFFE, U+FFFF) are dropped.
local function escape(s)
  s = sanitize.utf8(tostring(s)):gsub("[%z\1-\8\11\12\14-\31]", ""):gsub("\239\191[\190\191]", "")
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
end
junit.escape = escape

-- facts(r) -> "status FAILED, exit code 1, restarts 0, termination oom": the record's facts.
local function facts(r)
  local parts = {}
  for k, f in ipairs(r.facts) do parts[k] = f.label .. " " .. tostring(f.value) end
  return table.concat(parts, ", ")
end

-- How many of a log's last lines <system-out> holds (their width: jobrun.report.facts).
junit.LOG_LINES = 50

local function known(v) return v ~= nil and v ~= json.null end

-- properties(job) -> { {name, value}… }: params (as param.<axis>), then what the backend said.
local function properties(job)
  local out = {}
  for _, k in ipairs(job.spec and job.spec.param_order or {}) do
    local v = job.params and job.params[k]
    if v ~= nil then out[#out + 1] = { "param." .. k, template.text(v) } end
  end
  local function add(name, v) if known(v) then out[#out + 1] = { name, tostring(v) } end end
  add("status", job.status)
  add("native_status", job.native_status)
  add("native_id", job.native_id)
  add("backend", job.backend)
  add("attempt", job.attempt)
  add("restart_count", job.restart_count)
  add("termination_reason", job.termination_reason)
  add("exit_code", job.exit_code)
  add("backend_exit_code", job.backend_exit_code)
  add("log_path", job.log_path)
  -- Metrics: metric.NAME = the value, metric.NAME.agg / .n how it was taken.
  if type(job.metrics) == "table" then
    local names = {}
    for name in pairs(job.metrics) do names[#names + 1] = name end
    table.sort(names)
    local metrics = require "jobrun.judge.metrics"
    for _, name in ipairs(names) do
      local rec = job.metrics[name]
      if type(rec) == "table" and known(rec.value) then
        out[#out + 1] = { "metric." .. name, metrics.format(rec.value) }
        add("metric." .. name .. ".agg", rec.agg)
        add("metric." .. name .. ".n", rec.n)
      end
    end
  end
  -- Why it died and what it cost (issue #28).
  add("cause_class", job.cause_class)
  for _, f in ipairs(require("jobrun.judge.forensics").facts(job)) do
    if f[1] == "culprit" then add("culprit", f[2]) end
  end
  add("retries", require("jobrun.run.retry").text(job))
  add("gpu_hours", job.gpu_hours)
  return out
end

-- message(job): why it failed, in words; never empty.
local function message(job)
  local ms = job.mismatches or {}
  if #ms > 0 then return table.concat(ms, "; ") end
  return "failed: " .. facts(record.of(job, nil, 0))
end
junit.message = message

-- document(data [, run_dir]) -> the XML; with run_dir, each job's log tail goes in <system-out>.
function junit.document(data, run_dir)
  local out = {}
  local tests, failures, skipped, total = #data.jobs, 0, 0, 0
  for _, job in ipairs(data.jobs) do
    if job.verdict == "fail" then failures = failures + 1 end
    if job.verdict ~= "pass" and job.verdict ~= "fail" then skipped = skipped + 1 end
    total = total + (job.duration_s or 0)
  end
  local suite = escape(data.suite or "jobrun")
  out[#out + 1] = '<?xml version="1.0" encoding="UTF-8"?>'
  out[#out + 1] = string.format('<testsuites name="%s" tests="%d" failures="%d" errors="0" skipped="%d" time="%.3f">',
    suite, tests, failures, skipped, total)
  out[#out + 1] = string.format('  <testsuite name="%s" tests="%d" failures="%d" errors="0" skipped="%d" time="%.3f"'
    .. ' timestamp="%s">', suite, tests, failures, skipped, total, escape(data.started_at or ""))
  out[#out + 1] = '    <properties>'
  out[#out + 1] = string.format('      <property name="run_id" value="%s"/>', escape(data.run_id))
  out[#out + 1] = string.format('      <property name="backend" value="%s"/>', escape(data.backend or ""))
  out[#out + 1] = '    </properties>'
  for _, job in ipairs(data.jobs) do
    out[#out + 1] = string.format('    <testcase name="%s" classname="%s" time="%.3f">', escape(job.name), suite,
      job.duration_s or 0)
    local props = properties(job)
    if #props > 0 then
      out[#out + 1] = "      <properties>"
      for _, p in ipairs(props) do
        out[#out + 1] = string.format('        <property name="%s" value="%s"/>', escape(p[1]), escape(p[2]))
      end
      out[#out + 1] = "      </properties>"
    end
    -- A failure's whole record; of the other jobs, only the log's tail is shown.
    local r = job.verdict == "fail" and record.of(job, run_dir, junit.LOG_LINES)
      or { plain = record.plain((record.tail(job, run_dir, junit.LOG_LINES))) }
    if job.verdict == "fail" then
      local body = { facts(r) }
      for _, e in ipairs(r.errors) do body[#body + 1] = e.label .. ": " .. e.text end
      for _, m in ipairs(r.mismatches) do body[#body + 1] = m end
      out[#out + 1] = string.format('      <failure message="%s" type="%s">%s</failure>', escape(message(job)),
        escape(job.status), escape(table.concat(body, "\n")))
    elseif job.verdict ~= "pass" then
      out[#out + 1] = string.format('      <skipped message="%s"/>', escape("not finished: " .. tostring(job.status)))
    end
    if #r.plain > 0 then
      out[#out + 1] = "      <system-out>" .. escape(table.concat(r.plain, "\n")) .. "</system-out>"
    end
    out[#out + 1] = "    </testcase>"
  end
  out[#out + 1] = "  </testsuite>"
  out[#out + 1] = "</testsuites>"
  return table.concat(out, "\n") .. "\n"
end

function junit.write(path, data, run_dir)
  local ok, err = fs.write_atomic(path, junit.document(data, run_dir))
  if not ok then require("jobrun.base.errors").infra("cannot write the JUnit report: %s", err) end
end

return junit
