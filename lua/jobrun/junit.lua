-- JUnit XML (SPEC §7): one <testcase> per job; a failed verdict is a <failure> whose message is
-- the mismatches in words, a pending one is <skipped/>; <properties> carry the job's params,
-- native id, restarts and termination (Jenkins' JUnit plugin reads a testcase's properties), and
-- <system-out> the log's last lines. Read by CI systems (Jenkins, GitLab, GitHub).
local fs = require "jobrun.c.fs"
local sanitize = require "jobrun.sanitize"
local json = require "jobrun.json"
local template = require "jobrun.template"
local logtail = require "jobrun.logtail"

local junit = {}

-- escape(s): valid XML 1.0 text whatever the bytes: stray bytes become U+FFFD, and characters
-- XML 1.0 forbids (C0 controls but tab, LF and CR; U+FFFE, U+FFFF) are dropped.
local function escape(s)
  s = sanitize.utf8(tostring(s)):gsub("[%z\1-\8\11\12\14-\31]", ""):gsub("\239\191[\190\191]", "")
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
end
junit.escape = escape

-- facts(job) -> "status FAILED, exit code 1, termination oom, restarts 0": what is known only.
local function facts(job)
  local parts = { "status " .. tostring(job.status) }
  local function add(label, v)
    if v ~= nil and v ~= json.null then parts[#parts + 1] = label .. " " .. tostring(v) end
  end
  add("exit code", job.exit_code)
  add("termination", job.termination_reason)
  add("restarts", job.restart_count)
  return table.concat(parts, ", ")
end

-- How many of a log's last lines <system-out> holds, and how wide each may be.
junit.LOG_LINES = 50
junit.LINE_WIDTH = 2000

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
  -- Why it died and what it cost (issue #28).
  add("cause_class", job.cause_class)
  for _, f in ipairs(require("jobrun.forensics").facts(job)) do
    if f[1] == "culprit" then add("culprit", f[2]) end
  end
  add("retries", require("jobrun.retry").text(job))
  add("gpu_hours", job.gpu_hours)
  return out
end

-- message(job): why it failed, in words; never empty.
local function message(job)
  local ms = job.mismatches or {}
  if #ms > 0 then return table.concat(ms, "; ") end
  return "failed: " .. facts(job)
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
    if job.verdict == "fail" then
      out[#out + 1] = string.format('      <failure message="%s" type="%s">%s</failure>', escape(message(job)),
        escape(job.status), escape(facts(job) .. "\n" .. table.concat(job.mismatches or {}, "\n")))
    elseif job.verdict ~= "pass" then
      out[#out + 1] = string.format('      <skipped message="%s"/>', escape("not finished: " .. tostring(job.status)))
    end
    local lines = run_dir and job.log_path_rel
      and logtail.lines(run_dir .. "/" .. job.log_path_rel, junit.LOG_LINES, { blank = true, width = junit.LINE_WIDTH })
      or {}
    if #lines > 0 then
      for i, l in ipairs(lines) do lines[i] = logtail.strip(l) end
      out[#out + 1] = "      <system-out>" .. escape(table.concat(lines, "\n")) .. "</system-out>"
    end
    out[#out + 1] = "    </testcase>"
  end
  out[#out + 1] = "  </testsuite>"
  out[#out + 1] = "</testsuites>"
  return table.concat(out, "\n") .. "\n"
end

function junit.write(path, data, run_dir)
  local ok, err = fs.write_atomic(path, junit.document(data, run_dir))
  if not ok then require("jobrun.errors").infra("cannot write the JUnit report: %s", err) end
end

return junit
