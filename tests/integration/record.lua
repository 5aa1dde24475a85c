-- A run's record is the truth (README "How a job's record moves"): every job of a valid suite runs under its own files,
-- a stale writer never moves a job backwards, signals are answered, user code cannot hang the
-- runner, and damaged files are reported instead of hanging or raising tracebacks.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"
local json = require "jobrun.base.json"

-- scratch(name, fn): fn(dir) in a fresh directory, removed afterwards.
local function scratch(name, fn) h.test_in(tap, name, fn) end

local function read_state(dir, run)
  return json.decode(fs.read(dir .. "/.jobrun/runs/" .. run .. "/state.json") or "")
end

-- wait_gone(pid, seconds) -> true once the process has ended.
local function wait_gone(pid, seconds)
  return h.eventually(function() return h.gone(pid) end, seconds)
end

-- The detached driver of a run, as `ps` shows it to a user: the process running `jobrun __drive RUN_DIR`
-- (launch does not print its pid).
local function driver_pid(run_dir)
  local ps = io.popen("ps -eo pid=,args=")
  local listing = ps and ps:read("a") or ""
  if ps then ps:close() end
  for line in listing:gmatch("[^\n]+") do
    local pid, args = line:match("^%s*(%d+)%s+(.*)$")
    if args and args:find("__drive", 1, true) and args:find(run_dir, 1, true) then return tonumber(pid) end
  end
  return nil
end

scratch("names that sanitise alike: every job runs, under its own files", function(dir)
  h.write(dir .. "/s.lua", [[
suite "c" {
  matrix = { x = { "a/b", "a\\b", "a_b", "a\1b" } },
  name = "{x}",
  run = { "sh", "-c", "printf 'I am %s\\n' \"$0\"", "{x}" },
}
]])
  local code, out = h.sh(dir, "jobrun run s.lua --run-id N")
  tap.is(code, 0, "every job passed")
  tap.like(out, "SUCCEEDED: 4", "four jobs succeeded")
  -- What another shell sees of the run: four jobs, each ended by its own run, under its own log.
  local ccode, cout = h.sh(dir, "jobrun check N --json")
  tap.is(ccode, 0, "check from another shell: every job passed")
  local doc = json.decode(cout) or { jobs = {} }
  local logs, statuses = {}, {}
  for _, job in ipairs(doc.jobs or {}) do
    statuses[#statuses + 1] = job.status .. "/" .. tostring(job.exit_code)
    logs[job.log_path] = true
    local text = fs.read(dir .. "/" .. job.log_path) or ""
    tap.is(text, "I am " .. job.name .. "\n", "the log of " .. job.name:gsub("%c", "?") .. " is its own")
  end
  local nlogs = 0
  for _ in pairs(logs) do nlogs = nlogs + 1 end
  tap.is(nlogs, 4, "four distinct logs")
  tap.is(statuses, { "SUCCEEDED/0", "SUCCEEDED/0", "SUCCEEDED/0", "SUCCEEDED/0" },
    "four ends, none taken for another job's")
  -- The README promises it ("The local backend"): a job costs no file but its log, its end a line
  -- of its slot's journal; jobs/<job>.result.json exists only where hard links cannot be made.
  local own = 0
  for _, f in ipairs(fs.list(dir .. "/.jobrun/runs/N/jobs") or {}) do
    if f:match("%.result%.json$") then own = own + 1 end
  end
  tap.is(own, 0, "no result file of their own: a job costs no file but its log")
end)

scratch("a stale copy never puts back a status another writer moved on", function(dir)
  -- Two copies of one run in memory, as a detached driver and another shell's command hold.
  h.write(dir .. "/s.lua", [[suite "st" { matrix = { x = { 1, 2 } }, run = "sleep 30", max_parallel = 1 }]])
  local code = h.sh(dir, "jobrun launch s.lua --run-id ST")
  tap.is(code, 0, "launched")
  local run_dir = dir .. "/.jobrun/runs/ST"
  local Run = require "jobrun.run"
  local stale = Run.open(run_dir)
  tap.is(stale.data.jobs[2].status, "PENDING", "the stale copy sees the second job pending")
  local kcode, kout = h.sh(dir, "jobrun kill ST")
  tap.is(kcode, 0, "kill exits 0")
  tap.like(kout, "Killed: 1 · Withdrawn %(never started%): 1",
    "both jobs ended (one running, one withdrawn before it started)")
  -- The stale copy changes something and saves: the kill's CANCELLED must survive.
  stale:changed(stale.data.jobs[1])
  stale:save()
  local data = read_state(dir, "ST")
  tap.is({ data.jobs[1].status, data.jobs[2].status }, { "CANCELLED", "CANCELLED" },
    "after the stale save, state.json still says CANCELLED")
  tap.is({ stale.data.jobs[1].status, stale.data.jobs[2].status }, { "CANCELLED", "CANCELLED" },
    "and the stale copy has taken the newer record in")
  -- A terminal job is final: a later poll that says otherwise is refused, before anything is written.
  local status = require "jobrun.run.status"
  local job = stale.data.jobs[1]
  local ok, why = status.apply(job, { status = "RUNNING", native_status = "RUNNING" })
  tap.is({ ok, job.status, job.native_status }, { false, "CANCELLED", "CANCELLED" }, "CANCELLED → RUNNING is refused")
  tap.like(why, "RUNNING after CANCELLED", "saying why")
end)

scratch("a detached driver ends once its jobs are terminal, whoever made them so", function(dir)
  -- fail_fast hands jobs over one slot at a time, so launch leaves a driver for the rest.
  h.write(dir .. "/s.lua", [[
suite "dr" { matrix = { x = { 1, 2, 3 } }, run = "sleep 30", max_parallel = 1, fail_fast = true }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id DR"), 0, "launched, one job running and a driver for the rest")
  local run_dir = dir .. "/.jobrun/runs/DR"
  local pid
  tap.ok(h.eventually(function() pid = driver_pid(run_dir); return pid end, 5), "a detached driver is running")
  tap.is(h.sh(dir, "jobrun kill DR"), 0, "kill from another shell")
  tap.ok(pid and wait_gone(pid, 10), "the driver has ended by itself")
  local data = read_state(dir, "DR")
  local statuses = {}
  for i, j in ipairs(data.jobs) do statuses[i] = j.status end
  tap.is(statuses, { "CANCELLED", "CANCELLED", "CANCELLED" }, "no job went back to PENDING")

  h.write(dir .. "/t.lua", [[
suite "dt" { matrix = { x = { 1, 2 } }, run = "sleep 0.3", max_parallel = 1, fail_fast = true }]])
  tap.is(h.sh(dir, "jobrun launch t.lua --run-id DT"), 0, "launched again")
  local pid2 = driver_pid(dir .. "/.jobrun/runs/DT")
  local wcode = h.sh(dir, "jobrun wait DT")
  tap.is(wcode, 0, "wait from another shell sees both pass")
  tap.ok(not pid2 or wait_gone(pid2, 5), "the driver has ended")
  local after = read_state(dir, "DT")
  tap.is({ after.jobs[1].verdict, after.jobs[2].verdict }, { "pass", "pass" }, "both still pass in state.json")
end)

scratch("SIGTERM and SIGHUP: run stops at once (143); the jobs keep running; wait takes over", function(dir)
  -- (the job runs until the test says go: "at once" is measured against a job that never ends)
  h.write(dir .. "/s.lua", [[suite "sig" { run = "while [ ! -e go ]; do sleep 0.1; done; echo done" }]])
  for _, sig in ipairs({ "TERM", "HUP" }) do
    os.remove(dir .. "/go")
    local runner = h.spawn(dir, { "run", "s.lua", "--run-id", sig })
    local run_dir = dir .. "/.jobrun/runs/" .. sig
    tap.ok(h.eventually(function()
      local d = json.decode(fs.read(run_dir .. "/state.json") or "")
      return d and d.jobs[1] and d.jobs[1].native_id
    end, 5), "the job started (its native id in state.json)")
    local t0 = process.now()
    runner:kill(sig)
    local r = runner:wait(true)
    local took = process.now() - t0
    tap.is(r.exit_code, 143, "SIG" .. sig .. ": exit 143")
    tap.ok(took < 10, string.format("at once (%.2fs), not after the job", took))
    h.write(dir .. "/go", "")
    local code, out = h.sh(dir, "jobrun wait " .. sig)
    tap.is(code, 0, "jobrun wait takes the run over and the job passes")
    tap.like(out, "sig%s+SUCCEEDED", "the job ran to its end")
  end
end)

scratch("a parser fn that never returns: the job fails, naming the parser", function(dir)
  h.write(dir .. "/s.lua", [[
parser "spin" { budget = 0.3, fn = function(log, result) while true do end end }
parser "boom" { fn = function() error("parser exploded") end }
suite "p" { run = "echo hi" }
]])
  local t0 = process.now()
  local code, out, err = h.sh(dir, "jobrun run s.lua --run-id P --json")
  tap.ok(process.now() - t0 < 10, "run ends")
  tap.is(code, 1, "exit 1: the job fails")
  local doc = json.decode(out) or { jobs = { {} } }
  local job = doc.jobs[1]
  tap.is(job.verdict, "fail", "verdict fail")
  local text = table.concat(job.mismatches or {}, "\n")
  tap.like(text, "parser 'spin' failed: .*CPU budget of 0.3s exceeded", "the endless parser is named")
  tap.like(text, "parser 'boom' failed: .*parser exploded", "the raising parser is named")
  tap.like(err, "parser 'spin' failed on job p", "and said on screen")
end)

scratch("damaged job files: the job says so, never RUNNING forever, never a traceback", function(dir)
  h.write(dir .. "/s.lua", [[suite "d" { matrix = { x = { "a", "b", "c" } }, run = "true" }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id D"), 0, "launched")
  local jobs_dir = dir .. "/.jobrun/runs/D/jobs/"
  tap.ok(h.eventually(function()
    return h.ended_record(jobs_dir, "d_a") and h.ended_record(jobs_dir, "d_b") and h.ended_record(jobs_dir, "d_c")
  end, 5), "all three ended")
  -- Result files of their own (what a slot writes when its journal cannot take the end), damaged.
  fs.write_atomic(jobs_dir .. "d_a.result.json", "[]")
  fs.write_atomic(jobs_dir .. "d_b.result.json",
    '{"state":"EXITED","ended_at":[1],"exit_code":0,"supervisor_pid":1,"supervisor_start":1}')
  local code, out, err = h.sh(dir, "jobrun check D --json")
  tap.is(code, 1, "check exits 1 (two jobs failed)")
  tap.ok(not err:find("internal error"), "no traceback", err)
  local doc = json.decode(out) or { jobs = {} }
  local by = {}
  for _, j in ipairs(doc.jobs or {}) do by[j.name] = j end
  tap.is({ by.d_a and by.d_a.status, by.d_b and by.d_b.status, by.d_c and by.d_c.status },
    { "LOST", "LOST", "SUCCEEDED" }, "the damaged ones are LOST, the other passes")
  tap.like(by.d_a and by.d_a.fields.record_error, "d_a%.result%.json: no state", "[] named as damaged")
  tap.like(by.d_b and by.d_b.fields.record_error, "d_b%.result%.json: ended_at is not a number",
    "a wrongly typed field named")
  local k, kout, kerr = h.sh(dir, "jobrun logs D d_b")
  tap.is(k, 0, "logs works on the run")
  tap.ok(not (kerr .. kout):find("internal error"), "logs: no traceback", kerr)
end)

-- A slot's journal with a damaged line: the job whose line it is says so (LOST, the journal
-- named with what is wrong); a line that names no job makes the job of a slot that is gone
-- LOST with it too, never RUNNING forever; the others keep their ends.
scratch("a damaged journal line: its job says so, the slot's other jobs keep their ends", function(dir)
  h.write(dir .. "/s.lua", [[suite "j" { matrix = { x = { "a", "b", "c" } }, run = "true", max_parallel = 1 }]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id J"), 0, "launched on one slot")
  local jobs_dir = dir .. "/.jobrun/runs/J/jobs/"
  tap.ok(h.eventually(function()
    return h.ended_record(jobs_dir, "j_a") and h.ended_record(jobs_dir, "j_b") and h.ended_record(jobs_dir, "j_c")
  end, 5), "all three ended")
  local journal
  for _, f in ipairs(fs.list(jobs_dir) or {}) do if f:match("%.journal$") then journal = jobs_dir .. f end end
  local text = journal and fs.read(journal) or ""
  -- j_a's end with a wrongly typed field; j_b's end cut to garbage that names no job.
  text = text:gsub('(\n?)({[^\n]*"key":"j_a"[^\n]*"state":"EXITED"[^\n]*)', function(nl, line)
    return nl .. line:gsub('"ended_at":[%d%.]+', '"ended_at":"late"')
  end)
  text = text:gsub('\n{[^\n]*"key":"j_b"[^\n]*"state":"EXITED"[^\n]*', "\n{\"cut")
  fs.write_atomic(journal, text)
  local code, out, err = h.sh(dir, "jobrun check J --json")
  tap.is(code, 1, "check exits 1")
  tap.ok(not err:find("internal error"), "no traceback", err)
  local by = {}
  for _, j in ipairs((json.decode(out) or {}).jobs or {}) do by[j.name] = j end
  tap.is({ by.j_a and by.j_a.status, by.j_b and by.j_b.status, by.j_c and by.j_c.status },
    { "LOST", "LOST", "SUCCEEDED" }, "the two damaged ends are LOST, the third passes")
  tap.like(by.j_a and by.j_a.fields.record_error, "%.journal: ended_at is not a number", "the bad field named")
  tap.like(by.j_b and by.j_b.fields.record_error, "%.journal: a line that is not a job's record",
    "the line that names no job: the job the gone slot left without an end")
end)

scratch("a wrongly shaped state.json: exit 3, what is wrong, left as it is", function(dir)
  h.write(dir .. "/s.lua", [[suite "w" { run = "true" }]])
  tap.is(h.sh(dir, "jobrun run s.lua --run-id W"), 0, "a run")
  local path = dir .. "/.jobrun/runs/W/state.json"
  local good = fs.read(path)
  local cases = {
    { '"jobs": [1, "x", null]', "jobs%[1%] is not an object" },
    { '"name":"w"', 'has no "name"' },
    { '"ended_at":"[^"]*"', 'has a non%-string "ended_at"', '"ended_at":[1]' },
  }
  for _, case in ipairs(cases) do
    local bad
    if case[1]:find("jobs") then
      bad = good:gsub('"jobs": %b[]', '"jobs": [1, "x", null]')
    elseif case[3] then
      bad = good:gsub(case[1], case[3])
    else
      bad = good:gsub(case[1], '"nom": "w"')
    end
    fs.write_atomic(path, bad)
    for _, cmd in ipairs({ "check W", "kill W", "logs W w", "wait W" }) do
      local code, _, err = h.sh(dir, "jobrun " .. cmd)
      tap.is(code, 3, cmd .. ": exit 3 (" .. case[2] .. ")")
      tap.like(err, case[2], cmd .. ": says what is wrong")
      tap.like(err, "left as it is", cmd .. ": and that the file is left alone")
    end
    tap.is(fs.read(path), bad, "state.json untouched")
  end
end)

-- Issue 21 (9): earlier attempts of the wrong shape were read as if they were right: a Lua
-- traceback ("internal error") from check --json, check --html, logs --attempt and rerun.
scratch("wrongly shaped attempts: exit 3, naming the file and the field, left as it is", function(dir)
  h.write(dir .. "/s.lua", [[suite "a" { run = "false" }]])
  tap.is(h.sh(dir, "jobrun run s.lua --run-id A"), 1, "a run that fails")
  tap.is(h.sh(dir, "jobrun rerun A"), 1, "and its rerun: one earlier attempt")
  local path = dir .. "/.jobrun/runs/A/state.json"
  local good = fs.read(path)
  tap.like(good, '"attempts":%[{', "state.json has the attempt")
  local cases = {
    { "[1, 2]", '"attempts%[1%]" %(not an object%)' },
    { '{"x": 1}', '"attempts" %(not a list%)' },
    { '"x"', '"attempts" %(not a list%)' },
    { '[{"attempt": "one"}]', 'non%-numeric "attempts%[1%]%.attempt"' },
    { '[{"log_path_rel": "../../../etc/passwd"}]', '"attempts%[1%]%.log_path_rel"' },
    { '[{"mismatches": 3}]', '"attempts%[1%]%.mismatches"' },
    { '[{"fields": "x"}]', 'non%-object "attempts%[1%]%.fields"' },
  }
  for _, case in ipairs(cases) do
    local bad, n = good:gsub('"attempts":%b[]', function() return '"attempts":' .. case[1] end)
    assert(n == 1)
    fs.write_atomic(path, bad)
    for _, cmd in ipairs({ "check A --json", "check A --html r.html", "logs A a --attempt 1", "rerun A --all" }) do
      local code, _, err = h.sh(dir, "jobrun " .. cmd)
      tap.is(code, 3, case[1] .. ": " .. cmd .. ": exit 3")
      tap.like(err, "state%.json is damaged %(job \"a\" has a [%w -]*" .. case[2],
        cmd .. ": names the file and the field")
      tap.ok(not err:find("traceback", 1, true) and not err:find("internal error", 1, true),
        cmd .. ": no traceback", err)
    end
    tap.is(fs.read(path), bad, "state.json left as it is")
  end
end)

scratch("kill judges jobs by the suite's expectation functions", function(dir)
  h.write(dir .. "/s.lua", [[
suite "kf" {
  run = "sleep 30",
  expect = function(r) return r.status == "CANCELLED", "expected to be cancelled, got " .. r.status end,
}
]])
  tap.is(h.sh(dir, "jobrun launch s.lua --run-id KF"), 0, "launched")
  local code, out = h.sh(dir, "jobrun kill KF --json")
  tap.is(code, 0, "kill exits 0")
  tap.like(out, '"result": "killed"', "killed")
  local data = read_state(dir, "KF")
  tap.is({ data.jobs[1].status, data.jobs[1].verdict }, { "CANCELLED", "pass" },
    "the function expectation accepted the cancel")
end)

return tap.done()
