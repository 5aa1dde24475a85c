-- The quickstart end to end, and the report in all its forms: table, colours, --logs, --json,
-- --junit (checked against a JUnit schema), and `jobrun analyze`.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local top = os.getenv("JOBRUN_TOP")

tap.test("the quickstart: every condition ends as expected", function()
  local dir = h.scratch()
  local code, out, err = h.sh(dir, "jobrun run " .. h.q(top .. "/examples/quickstart.lua")
    .. " --run-id Q --json --junit junit.xml")
  tap.is(code, 0, "every job passed")
  local doc = json.decode(out) or { jobs = {} }
  local jobs = {}
  for _, j in ipairs(doc.jobs) do jobs[j.name] = j end
  for _, n in ipairs({ 1, 2 }) do
    local function row(c) return jobs[string.format("quickstart_%dn_%s", n, c)] or {} end
    tap.is({ row("normal_completion").termination_reason, row("normal_completion").exit_code,
             row("normal_completion").restart_count }, { "job_completed", 0, 0 }, n .. " node(s): normal completion")
    tap.is({ row("heartbeat_timeout").termination_reason, row("heartbeat_timeout").restart_count },
      { "heartbeat_timeout", 0 }, n .. " node(s): heartbeat timeout")
    tap.is({ row("runtime_timeout").termination_reason, row("runtime_timeout").restart_count },
      { "max_runtime_reached", 1 }, n .. " node(s): runtime limit after one forced restart")
    tap.is({ row("cmd_fails").termination_reason, row("cmd_fails").exit_code, row("cmd_fails").backend_exit_code },
      { "job_completed", 2, 0 }, n .. " node(s): the command's real exit code, from the summary")
    tap.like(row("normal_completion").fields and row("normal_completion").fields.metta_run_id or "",
      "^quickstart_" .. n .. "n_normal_completion%.Q$", n .. " node(s): Metta run id in fields")
  end
  tap.is(doc.summary, { total = 8, passed = 8, failed = 0, pending = 0 }, "summary")
  tap.ok(not err:find("Verdict:", 1, true) and not err:find("SUCCEEDED", 1, true),
    "with --json no human table anywhere (not on stderr either)", err)
  local _, _, xml_err = h.sh(dir, "xmllint --noout --schema " .. h.q(top .. "/tests/fixtures/junit.xsd")
    .. " junit.xml")
  tap.like(xml_err, "junit.xml validates", "the JUnit report is valid")
  local full_code, _, full_err = h.sh(dir, "jobrun check Q --json > /dev/full")
  tap.is(full_code, 3, "check --json to a full disk: exit 3")
  tap.like(full_err, "jobrun: cannot write the %-%-json answer: json: write: No space left on device",
    "and it says so")
end)

tap.test("failures in the report, JUnit and colour", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "r" {
  matrix = { x = { "good", "bad" } },
  run = "echo line one; echo 'a <tag> & \"quote\"'; test {x} = good",
}
]])
  local code, out = h.sh(dir, "jobrun run s.lua --junit out.xml --color always")
  tap.is(code, 1, "a failure: exit 1")
  tap.like(out, "\27%[32mSUCCEEDED\27%[0m", "SUCCEEDED in green")
  tap.like(out, "\27%[31mFAILED\27%[0m", "FAILED in red")
  tap.like(out, "\27%[31mfail\27%[0m", "fail verdict in red")
  local _, plain = h.sh(dir, "jobrun check")
  tap.ok(not plain:find("\27", 1, true), "no colour off a TTY (and with NO_COLOR)")
  tap.ok(not plain:find("More:", 1, true), "no hints off a TTY")
  local _, tty = h.sh(dir, "script -qec " .. h.q(h.bin .. " check --color never") .. " /dev/null")
  tap.like(tty, "More: jobrun check %S+ %-%-logs", "on a TTY, where to look next after a failure")
  local _, _, xml_err = h.sh(dir, "xmllint --noout --schema " .. h.q(top .. "/tests/fixtures/junit.xsd")
    .. " out.xml")
  tap.like(xml_err, "out.xml validates", "valid JUnit with a failure")
  local xml = fs.read(dir .. "/out.xml") or ""
  tap.like(xml, '<testcase name="r_bad" classname="r" time="[%d.]+">\n      <properties>.-</properties>\n'
    .. '      <failure message="status is FAILED, expected SUCCEEDED; exit code is 1, expected 0"',
    "failure message = mismatches")
  tap.like(xml, '<testcase name="r_good" classname="r" time="[%d.]+">\n      <properties>\n'
    .. '        <property name="param.x" value="good"/>', "a passing testcase, its params as properties")
  tap.like(xml, '<property name="native_id" value="%d+"/>', "the native id")
  tap.like(xml, '<property name="restart_count" value="0"/>', "the restarts")
  tap.like(xml, "<system%-out>line one\na &lt;tag&gt; &amp; &quot;quote&quot;</system%-out>",
    "<system-out>: the log's tail, escaped")
  local _, logs = h.sh(dir, "jobrun check --logs --tail 1")
  tap.like(logs, "Job: r_bad %(FAILED%)\nExit Code: 1\nRestart Count: 0\nMismatch: status is FAILED",
    "--logs: the job's facts")
  tap.like(logs, "=\na <tag> & \"quote\"\n%-%-%-", "--tail 1: only the last line")
  tap.is(select(1, h.sh(dir, "jobrun check --tail x")), 2, "--tail must be a number")
end)

tap.test("jobrun analyze", function()
  local dir = h.scratch()
  h.write(dir .. "/job.log", "(head, rank=0, pid=1) [SUMMARY] Exit code: 4\n"
    .. "(head, rank=0, pid=1) [SUMMARY] Termination reason: nccl_test_failure\n")
  local code, out = h.sh(dir, "jobrun analyze job.log --use metta --json")
  tap.is(code, 0, "exit 0")
  local doc = json.decode(out) or {}
  tap.is({ doc.exit_code, doc.termination_reason, doc.restart_count == json.null, doc.fields },
    { 4, "nccl_test_failure", true, {} }, "--json: what the parsers found (restart count null)")
  tap.like(out, '"restart_count": null', "null where nothing was found")
  h.write(dir .. "/mine.lua", [[
use "metta"
parser "steps" { contains = "step", pattern = "step (%d+)", field = "steps", number = true }
suite "m" { run = "x" }
]])
  h.write(dir .. "/job2.log", "step 1\nstep 2\n[SUMMARY] Restart Count: 3\n")
  local _, out2 = h.sh(dir, "jobrun analyze job2.log --suite mine.lua")
  tap.like(out2, "restart count%s+3\n", "the suite's packs")
  tap.like(out2, "steps%s+2\n", "and its own parsers")
  local c3, _, e3 = h.sh(dir, "jobrun analyze nothing.log")
  tap.is(c3, 2, "a missing log is a usage error")
  tap.like(e3, "no log file 'nothing.log'", "named")
end)

tap.test("the failure summary: why each failed job failed, after the table", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "fs" {
  matrix = { x = { "ok", "boom", "expected" } },
  run = [=[
    case {x} in
      ok) echo fine ;;
      boom) printf 'step 1\nTraceback (most recent call last):\n  File "t.py", line 3\nRuntimeError: boom\n'; exit 3 ;;
      expected) echo failing on purpose; exit 2 ;;
    esac
  ]=],
}
]])
  h.write(dir .. "/e.lua", [[
suite "ex" { run = "exit 2", expect = { exit_code = "nonzero" } }
]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id F")
  tap.is(code, 1, "exit 1")
  local table_end = out:find("Verdict:", 1, true) or 0
  local summary_at = out:find("=== Failures: 2 of 3 jobs ===", 1, true)
  tap.ok(summary_at and summary_at > table_end, "a summary of the 2 failures after the table", out)
  local summary = out:sub(summary_at or 1)
  tap.like(summary, "✗ fs_boom\n    %- status is FAILED, expected SUCCEEDED\n    %- exit code is 3, expected 0",
    "each mismatch in words")
  tap.like(summary, "exception: RuntimeError: boom", "the parsed exception")
  tap.like(summary, "│ RuntimeError: boom", "the last log lines")
  tap.like(summary, "✗ fs_expected", "the other failure")
  tap.ok(not summary:find("fs_ok", 1, true), "a passing job is not in the summary")
  local _, js = h.sh(dir, "jobrun check F --json")
  tap.ok(not js:find("Failures", 1, true), "no summary in --json")
  -- A non-zero exit that the job expected is not painted as a failure.
  local _, coloured = h.sh(dir, "jobrun run e.lua --run-id E --color always")
  tap.ok(coloured:find("\27[32mpass", 1, true) ~= nil, "the expected exit passes", coloured)
  tap.ok(not coloured:find("\27[31m2\27[0m", 1, true), "exit 2 is not red when it is what was expected", coloured)
  local _, c2 = h.sh(dir, "jobrun check F --color always")
  tap.ok(c2:find("\27[31m3\27[0m", 1, true) ~= nil, "exit 3 is red when it is why the job failed")
  -- A running job shows the time so far.
  h.write(dir .. "/slow.lua", [[suite "slow" { run = "sleep 5" }]])
  h.sh(dir, "jobrun launch slow.lua --run-id S")
  require("jobrun.c.process").sleep(1.2)
  local c3, o3 = h.sh(dir, "jobrun check S")
  tap.is(c3, 4, "still running")
  tap.like(o3, "slow%s+RUNNING%s+%S+%s+%-%s+%-%s+%d+%.%ds…", "Duration shows the elapsed time")
  h.sh(dir, "jobrun kill S")
end)

-- One failure record (issue 23 #3): the terminal, the HTML page and the Markdown summary show the
-- same last lines of a job's log, whatever escapes and bytes it holds.
tap.test("the terminal, HTML and Markdown show the same tail lines for the same job", function()
  local dir = h.scratch()
  h.write(dir .. "/log.sh", table.concat({
    "printf 'line 1\\nline 2\\n'",
    "printf '\\033]0;a title\\007osc gone\\n'",
    "printf '\\033[31mred\\033[0m and \\033[2Kcsi\\n'",
    "printf 'bad \\377 byte\\n\\n'",
    "printf '50%%\\r100%%\\n'",
    "printf 'end \\033]8;;http://x\\033\\\\link\\033]8;;\\033\\\\\\n'",
    "exit 1",
  }, "\n") .. "\n")
  h.write(dir .. "/s.lua", 'suite "t" { run = "sh log.sh", name = "t_job" }\n')
  local _, out = h.sh(dir, "jobrun run s.lua --run-id T --html page.html --summary sum.md")
  local want = { "osc gone", "red and csi", "bad \\xff byte", "100%", "end link" }
  local term = {}
  for line in out:gmatch("│ ([^\n]*)") do term[#term + 1] = line end
  tap.is(term, want, "the terminal's failure summary: the last 5 lines, as a terminal shows them")
  local page = fs.read(dir .. "/page.html") or ""
  local pre = page:match('<pre class="log">(.-)</pre>') or ""
  local ent = { lt = "<", gt = ">", amp = "&", quot = '"', ["#39"] = "'" }
  pre = pre:gsub("<[^>]*>", ""):gsub("&(#?%w+);", ent)
  local page_lines = {}
  for line in (pre .. "\n"):gmatch("([^\n]*)\n") do page_lines[#page_lines + 1] = line end
  tap.is({ table.unpack(page_lines, #page_lines - 4) }, want, "the HTML page: the same lines")
  tap.is(page_lines[1], "line 1", "all of them, as it shows 40")
  tap.like(page, '<span class="ar">red</span>', "the HTML keeps the colour")
  local md = fs.read(dir .. "/sum.md") or ""
  local block = md:match("```+text\n(.-)\n```") or ""
  local md_lines = {}
  for line in (block .. "\n"):gmatch("([^\n]*)\n") do md_lines[#md_lines + 1] = line end
  tap.is({ table.unpack(md_lines, #md_lines - 4) }, want, "the Markdown summary: the same lines")
  local _, logs = h.sh(dir, "jobrun check T --logs --tail 5")
  tap.like(logs, "=\n" .. table.concat(want, "\n"):gsub("%p", "%%%0") .. "\n%-%-%-", "--logs: the same lines")
end)

tap.test("a log that is a FIFO is named, never read, in every report", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", 'suite "p" { run = "echo hi; exit 1", name = "p_job" }\n')
  h.sh(dir, "jobrun run s.lua --run-id P")
  local log = dir .. "/.jobrun/runs/P/logs/p_job.log"
  assert(os.execute("rm " .. h.q(log) .. " && mkfifo " .. h.q(log)))
  local code, out = h.sh(dir, "timeout 20 " .. h.q(h.bin) .. " check P --html p.html --summary p.md --junit p.xml")
  tap.is(code, 1, "check answers (a FIFO with no writer is not opened for a blocking read)")
  tap.like(out, "    log: [^\n]*p_job%.log: not a regular file", "the summary names the file and why")
  tap.like(fs.read(dir .. "/p.html") or "", "log: [^<]*p_job%.log: not a regular file", "so does the page")
  local _, logs = h.sh(dir, "timeout 20 " .. h.q(h.bin) .. " check P --logs")
  tap.like(logs, "Log: [^\n]*not a regular file\n=+\nNo log content available", "and --logs")
end)

tap.test("check --failed --logs shows each failure once", function()
  local dir = h.scratch()
  h.write(dir .. "/s.lua", [[
suite "o" { matrix = { x = { "a", "b", "c" } }, run = "echo marker-{x}; echo done-{x}; test {x} = c" }
]])
  h.sh(dir, "jobrun run s.lua --run-id O")
  local code, out = h.sh(dir, "jobrun check O --failed --logs")
  tap.is(code, 1, "failures: exit 1")
  for _, x in ipairs({ "a", "b" }) do
    local _, n = out:gsub("marker%-" .. x, "")
    tap.is(n, 1, "o_" .. x .. "'s log lines once")
    local _, facts = out:gsub("Exit Code: 1", "")
    tap.is(facts, 2, "the facts once per failure")
  end
  tap.ok(not out:find("=== Failures", 1, true), "no second summary of the same failures")
  tap.ok(not out:find("marker-c", 1, true), "--failed: the passing job is not shown")
  local _, plain = h.sh(dir, "jobrun check O")
  tap.like(plain, "=== Failures: 2 of 3 jobs ===", "without --logs, the summary")
  tap.like(plain, "✗ o_a\n    %- [^\n]*\n    %- [^\n]*\n    status FAILED · exit code 1 · restarts 0",
    "the summary says the exit code and restarts too")
end)

return tap.done()
