-- JUnit XML (SPEC §7): one <testcase> per job; a failed verdict is a <failure> whose message is
-- the mismatches, a pending one is <skipped/>. Read by CI systems (Jenkins, GitLab, GitHub).
local fs = require "jobrun.c.fs"
local sanitize = require "jobrun.sanitize"
local json = require "jobrun.json"

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

function junit.document(data)
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
    local head = string.format('    <testcase name="%s" classname="%s" time="%.3f"', escape(job.name), suite,
      job.duration_s or 0)
    if job.verdict == "pass" then
      out[#out + 1] = head .. "/>"
    else
      out[#out + 1] = head .. ">"
      if job.verdict == "fail" then
        local message = table.concat(job.mismatches or {}, "; ")
        out[#out + 1] = string.format('      <failure message="%s" type="%s">%s</failure>', escape(message),
          escape(job.status), escape(facts(job) .. "\n" .. table.concat(job.mismatches or {}, "\n")))
      else
        out[#out + 1] = string.format('      <skipped message="%s"/>', escape("not finished: " .. job.status))
      end
      out[#out + 1] = "    </testcase>"
    end
  end
  out[#out + 1] = "  </testsuite>"
  out[#out + 1] = "</testsuites>"
  return table.concat(out, "\n") .. "\n"
end

function junit.write(path, data)
  local ok, err = fs.write_atomic(path, junit.document(data))
  if not ok then require("jobrun.errors").infra("cannot write the JUnit report: %s", err) end
end

return junit
