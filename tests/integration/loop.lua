-- The failure loop (README "The failure loop"): run in a real git repository, read what failed, fix it,
-- rerun the failures, compare the runs; the state directory found from anywhere in the tree.
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"

local function scratch(name, fn) h.test_in(tap, name, fn) end

local function git(dir, args)
  local code, out, err = h.sh(dir, "git " .. args)
  assert(code == 0, "git " .. args .. ": " .. err)
  return out
end

-- repo(dir): a repository with a bare remote, everything committed and pushed.
local function repo(dir)
  git(dir, "init -q --bare remote.git")
  fs.mkdir_p(dir .. "/work")
  local work = dir .. "/work"
  git(work, "init -q -b main . && git config user.email t@example.com && git config user.name t")
  git(work, "remote add origin ../remote.git")
  return work
end

local function commit_push(work, msg)
  git(work, "add -A && git commit -qm " .. h.q(msg) .. " && git push -q -u origin main 2>/dev/null")
end

local function latest_state(work)
  local latest = (fs.read(work .. "/.jobrun/latest") or ""):gsub("%s+$", "")
  return json.decode(fs.read(work .. "/.jobrun/runs/" .. latest .. "/state.json") or "") or { jobs = {} }, latest
end

scratch("a pushed repository runs the same require_clean suite three times", function(dir)
  local work = repo(dir)
  h.write(work .. "/s.lua", [[
suite "g" { run = "true", git = { require_clean = true, require_pushed = true } }
]])
  commit_push(work, "suite")
  for i = 1, 3 do
    local code, _, err = h.sh(work, "jobrun run s.lua --run-id R" .. i)
    tap.is(code, 0, "run " .. i .. " passes: the state directory is not a change")
    tap.ok(not err:find("uncommitted"), "no dirty-tree refusal on run " .. i, err)
  end
  tap.is(fs.read(work .. "/.jobrun/.gitignore"), "*\n", "the state directory ignores itself")
  tap.is(git(work, "status --porcelain"), "", "git sees nothing new")
  -- A state directory made before jobrun wrote .gitignore files still does not count.
  os.remove(work .. "/.jobrun/.gitignore")
  local code = h.sh(work, "jobrun run s.lua --run-id R4")
  tap.is(code, 0, "an old state directory without .gitignore is not a change either")
end)

-- The README's "The failure loop" block, run as written: a real repository whose suite requires a
-- clean tree, report.html written inside it, the fix committed, and a second run accepted.
scratch("the README's failure loop, as written", function(dir)
  local readme = assert(fs.read(os.getenv("JOBRUN_TOP") .. "/README.md"))
  local block = readme:match("### The failure loop\n\n```sh\n(.-)```")
  assert(block, "README.md has no failure-loop block")
  local work = repo(dir)
  h.write(work .. "/suites/mine.lua", [[
suite "mine" { matrix = { x = { "a", "b" } }, run = "sh check.sh {x}", git = { require_clean = true } }
]])
  h.write(work .. "/check.sh", "echo checking $1; test $1 = a\n")
  commit_push(work, "a bug")
  local runs, steps = {}, 0
  -- Each step's expected exit code, in the block's order (the fix between them).
  local expect = { ["run"] = { 1, 0 }, ["check"] = { 1 }, ["logs"] = { 0, 0 }, ["rerun"] = { 0 }, ["diff"] = { 0, 0 } }
  for line in block:gmatch("[^\n]+") do
    if line:match("^# … fix the code") then
      h.write(work .. "/check.sh", "echo checking $1; true\n")
      git(work, "commit -qam fix")
    elseif line:match("^%./jobrun ") then
      local cmd = line:gsub("%s+#.*$", ""):gsub("^%./jobrun", "jobrun"):gsub("%f[%w]JOB%f[%W]", "mine_b")
        :gsub("RUN_BEFORE", runs[1] or "?"):gsub("RUN_AFTER", runs[2] or "?"):gsub("%f[%w_]RUN%f[^%w_]", runs[1] or "?")
      local verb = cmd:match("^jobrun (%S+)")
      local want = table.remove(expect[verb] or {}, 1)
      local code, out, err = h.sh(work, cmd)
      steps = steps + 1
      tap.is(code, want, cmd .. ": exit " .. tostring(want), err)
      tap.ok(not err:find("uncommitted", 1, true), cmd .. ": no git refusal", err)
      if verb == "run" then runs[#runs + 1] = (fs.read(work .. "/.jobrun/latest") or ""):gsub("%s+$", "") end
      if verb == "check" then tap.like(out, "mine_b.*checking b", "check --failed --logs shows the failure's log") end
      if verb == "rerun" then tap.like(out, "mine_b%s+SUCCEEDED", "the fix passes in the rerun") end
    end
  end
  tap.is(steps, 8, "every step of the block ran")
  tap.is(#runs, 2, "two runs")
  tap.ok(fs.stat(work .. "/report.html"), "report.html is in the work tree")
  tap.is(git(work, "status --porcelain"), "?? report.html\n", "untracked, and the second run was accepted all the same")
end)

scratch("check, logs and list from a subdirectory find the tree's state directory", function(dir)
  local work = repo(dir)
  h.write(work .. "/examples/s.lua", [[suite "sub" { run = "echo from sub" }]])
  fs.mkdir_p(work .. "/deep/er")
  local code = h.sh(work .. "/examples", "jobrun run s.lua --run-id S")
  tap.is(code, 0, "a run started in a subdirectory of the work tree")
  tap.ok(fs.stat(work .. "/.jobrun/runs/S/state.json"), "its state lives at the git root")
  tap.ok(not fs.stat(work .. "/examples/.jobrun"), "not in the subdirectory")
  local c2, out = h.sh(work .. "/deep/er", "jobrun check")
  tap.is(c2, 0, "check from another subdirectory finds it")
  tap.like(out, "Run S", "the same run")
  local c3, log = h.sh(work .. "/deep", "jobrun logs sub")
  tap.is({ c3, log }, { 0, "from sub\n" }, "logs too")
  -- Outside any repository, the nearest ancestor's .jobrun wins.
  local plain = dir .. "/plain"
  fs.mkdir_p(plain .. "/a/b")
  h.write(plain .. "/s.lua", [[suite "p" { run = "true" }]])
  tap.is(h.sh(plain, "jobrun run s.lua --run-id P"), 0, "a run outside git")
  local c4, o4 = h.sh(plain .. "/a/b", "jobrun list")
  tap.is(c4, 0, "list from below")
  tap.like(o4, "P%s+p%s+local", "finds the ancestor's runs")
end)

scratch("rerun: only the failed job runs again; earlier attempts kept; diff finds the change", function(dir)
  h.write(dir .. "/s.lua", [[
suite "rr" {
  matrix = { x = { "good", "flaky" } },
  run = "echo attempt {attempt} of {x}; test {x} = good || test -e fixed",
}
]])
  local code = h.sh(dir, "jobrun run s.lua --run-id A")
  tap.is(code, 1, "first run: the flaky job fails")
  local first = latest_state(dir)
  local good_id = first.jobs[1].native_id
  -- A second run of the same suite, for diff: still failing.
  tap.is(h.sh(dir, "jobrun run s.lua --run-id B"), 1, "second run fails too")
  h.write(dir .. "/fixed", "")
  local rc, _, rerr = h.sh(dir, "jobrun rerun A")
  tap.is(rc, 0, "rerun of the failures passes now", rerr)
  tap.like(rerr, "rerun of 1 job of run A", "says what it reruns")
  local data = json.decode(fs.read(dir .. "/.jobrun/runs/A/state.json"))
  local good, flaky = data.jobs[1], data.jobs[2]
  tap.is(good.native_id, good_id, "the passing job did not run again")
  tap.is({ flaky.verdict, flaky.attempt, #(flaky.attempts or {}) }, { "pass", 2, 1 },
    "the flaky job passed on attempt 2, with attempt 1 kept")
  tap.is({ flaky.attempts[1].verdict, flaky.attempts[1].status, flaky.attempts[1].exit_code }, { "fail", "FAILED", 1 },
    "attempt 1's result")
  local _, log2 = h.sh(dir, "jobrun logs A rr_flaky")
  tap.is(log2, "attempt 2 of flaky\n", "the latest attempt's log; {attempt} counts across reruns")
  local c1, log1 = h.sh(dir, "jobrun logs A rr_flaky --attempt 1")
  tap.is({ c1, log1 }, { 0, "attempt 1 of flaky\n" }, "logs --attempt 1: the earlier log")
  local _, js = h.sh(dir, "jobrun check A --json")
  local doc = json.decode(js) or { jobs = {}, summary = {} }
  tap.is(doc.summary and doc.summary.passed, 2, "the run's verdict comes from the latest attempts")
  tap.is(doc.jobs[2] and doc.jobs[2].attempts and #doc.jobs[2].attempts, 1, "--json lists the earlier attempt")
  -- Nothing left to rerun.
  local c5, o5 = h.sh(dir, "jobrun rerun A")
  tap.is(c5, 0, "rerun with nothing failed exits 0")
  tap.like(o5, "Nothing to rerun", "and says so")
  -- --only reruns a passing job.
  tap.is(h.sh(dir, "jobrun rerun A --only '*good'"), 0, "rerun --only")
  local after = json.decode(fs.read(dir .. "/.jobrun/runs/A/state.json"))
  tap.ok(after.jobs[1].native_id ~= good_id and #(after.jobs[1].attempts or {}) == 1, "the chosen job ran again")

  -- diff: B (failing) against A (now passing) is a fix; A against B a regression.
  local d1, dout = h.sh(dir, "jobrun diff A B")
  tap.is(d1, 1, "diff A B: exit 1, a job that passed in A fails in B")
  tap.like(dout, "rr_flaky%s+regressed%s+SUCCEEDED.*pass%s+FAILED.*fail", "side by side")
  tap.ok(not dout:find("rr_good", 1, true), "an unchanged job is not shown")
  local d2, djs = h.sh(dir, "jobrun diff B A --json")
  local ddoc = json.decode(djs) or { jobs = {} }
  tap.is({ d2, ddoc.regressions, ddoc.jobs[1] and ddoc.jobs[1].change }, { 0, 0, "fixed" }, "diff B A --json: fixed")
  h.write(dir .. "/t.lua", [[suite "rr" { matrix = { x = { "good", "new" } }, run = "true" }]])
  h.sh(dir, "jobrun run t.lua --run-id C")
  local _, d3 = h.sh(dir, "jobrun diff A C")
  tap.like(d3, "rr_flaky%s+only in A", "a job only in A")
  tap.like(d3, "rr_new%s+only in B", "a job only in B")
end)

scratch("rerun of a cancelled job, and its git guard", function(dir)
  local work = repo(dir)
  h.write(work .. "/s.lua", [[suite "k" { run = "sleep ${NAP:-30}", git = { require_clean = true } }]])
  commit_push(work, "suite")
  tap.is(h.sh(work, "jobrun launch s.lua --run-id K"), 0, "launched")
  tap.is(h.sh(work, "jobrun kill K"), 0, "killed")
  h.write(work .. "/dirty.txt", "x")
  local c1, _, e1 = h.sh(work, "jobrun rerun K")
  tap.is(c1, 2, "rerun refuses a dirty tree, as run does")
  tap.like(e1, "uncommitted changes", "and says why")
  os.remove(work .. "/dirty.txt")
  local c2 = h.sh(work, "NAP=0 jobrun rerun K")
  tap.is(c2, 0, "the cancelled job is a failure to rerun, and passes now")
end)

scratch("check filters, exit 4, list --limit and prune", function(dir)
  h.write(dir .. "/s.lua", [[
suite "f" { matrix = { x = { "ok1", "ok2", "bad" } }, run = "test {x} != bad" }
]])
  h.sh(dir, "jobrun run s.lua --run-id F1")
  local c1, o1 = h.sh(dir, "jobrun check F1 --failed")
  tap.is(c1, 1, "--failed: exit code is the whole run's")
  tap.like(o1, "f_bad", "the failed job shown")
  tap.ok(not o1:find("f_ok1", 1, true), "passing jobs hidden")
  local _, o2 = h.sh(dir, "jobrun check F1 --only 'f_ok*' --status SUCCEEDED")
  tap.ok(o2:find("f_ok1", 1, true) and o2:find("f_ok2", 1, true) and not o2:find("f_bad", 1, true),
    "--only and --status choose rows")
  local c3, _, e3 = h.sh(dir, "jobrun check F1 --status BOGUS")
  tap.is(c3, 2, "an unknown status is a usage error")
  tap.like(e3, "unknown status 'BOGUS'", "named")
  h.write(dir .. "/slow.lua", [[suite "slow" { run = "sleep 30" }]])
  h.sh(dir, "jobrun launch slow.lua --run-id F2")
  tap.is(h.sh(dir, "jobrun check F2"), 4, "exit 4: nothing failed, a job still running")
  h.write(dir .. "/quick.lua", [[suite "q" { run = "sleep 0.3" }]])
  h.sh(dir, "jobrun launch quick.lua --run-id F3")
  h.eventually(function() return h.ended_record(dir .. "/.jobrun/runs/F3/jobs", "q") end, 5)
  local _, lo = h.sh(dir, "jobrun list")
  tap.like(lo, "F3%s+q%s+local%s+%S+%s+1%s+1%s+0%s+0", "list counts a finished local job without a check")
  local first = lo:match("\n(%S+)")
  tap.is(first, "F3", "newest first")
  local _, l2 = h.sh(dir, "jobrun list --limit 1 --json")
  local runs = json.decode(l2) or {}
  tap.is(#runs, 1, "--limit 1")
  local pc, po = h.sh(dir, "jobrun prune --keep 0")
  tap.is(pc, 0, "prune exits 0")
  tap.like(po, "Deleted 2 runs; kept 1 with live jobs", "finished runs deleted, the live one kept")
  tap.ok(fs.stat(dir .. "/.jobrun/runs/F2") and not fs.stat(dir .. "/.jobrun/runs/F1"), "F2 stays, F1 is gone")
  tap.is(h.sh(dir, "jobrun kill F2"), 0, "clean up the live run")
  local c9, _, e9 = h.sh(dir, "jobrun prune")
  tap.is(c9, 2, "prune without a rule is refused")
  tap.like(e9, "%-%-keep N", "and says how")
end)

return tap.done()
