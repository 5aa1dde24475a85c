-- Memory across runs (issue 25): attempts that keep their commit and nodes, diff of attempts and
-- of runs, the history index (lua/jobrun/run/history.lua) with flaky jobs, concurrent writers, a
-- damaged, locked or newer index, prune, and show. Real git repositories, real local runs; the
-- index is looked at directly through the SQLite primitive where a test must see what the run
-- itself wrote (jobrun history would fill in missing runs from their state.json).
local tap = require "tap"
local h = require "helpers"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local sqlite = require "jobrun.c.sqlite"
local process = require "jobrun.c.process"

local GIT = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main"

-- repo(files) -> dir: a git work tree with one commit holding the files.
local function repo(files)
  local dir = h.scratch()
  for name, text in pairs(files) do h.write(dir .. "/" .. name, text) end
  h.write(dir .. "/.gitignore", ".jobrun/\n.stdout\n.stderr\n.bg.log\n*.html\n*.md\n")
  local code = h.sh(dir, GIT .. " init -q . && " .. GIT .. " add -A && " .. GIT .. " commit -qm first")
  assert(code == 0, "git setup failed")
  return dir
end

local function head(dir)
  local _, out = h.sh(dir, "git rev-parse HEAD")
  return (out:gsub("%s+$", ""))
end

-- rows(dir, sql, values) -> rows of the index, read directly.
local function rows(dir, sql, values)
  local db = assert(sqlite.open(dir .. "/.jobrun/history.sqlite"))
  local r = assert(db:query(sql, values))
  db:close()
  return r
end

local function count(dir, sql, values) return rows(dir, sql, values)[1][1] end

local function hostname() return ((fs.read("/proc/sys/kernel/hostname") or ""):gsub("%s+$", "")) end

-- A job that fails while the tree holds the file "bug".
local FIXABLE = [[
suite "fx" {
  matrix = { n = { 1, 2 } },
  run = "if [ -e bug ] && [ {n} = 2 ]; then echo broken; exit 1; fi; echo fine",
}
]]

tap.test("a rerun after a fix: each attempt keeps its commit; diff RUN reads fixed with both commits", function()
  local dir = repo({ ["s.lua"] = FIXABLE, bug = "x\n" })
  local a = head(dir)
  local code = h.sh(dir, "jobrun run s.lua --run-id R1")
  tap.is(code, 1, "at commit A, fx_2 fails")
  h.sh(dir, "git rm -q bug && " .. GIT .. " commit -qm fix")
  local b = head(dir)
  local out
  code, out = h.sh(dir, "jobrun rerun R1")
  tap.is(code, 0, "the rerun at commit B passes")
  tap.like(out, "commits " .. a:sub(1, 8) .. ", " .. b:sub(1, 8), "the header names both commits")
  tap.like(out, "fx_2%s.-" .. a:sub(1, 8) .. "→" .. b:sub(1, 8), "fx_2's row shows its attempts' commits")
  local _, js = h.sh(dir, "jobrun check R1 --json --html page.html --summary summary.md")
  tap.like(fs.read(dir .. "/page.html") or "", "commit <b>" .. a:sub(1, 8) .. ", " .. b:sub(1, 8),
    "the HTML page names both commits")
  tap.like(fs.read(dir .. "/summary.md") or "", "attempts at commits " .. a:sub(1, 8) .. ", " .. b:sub(1, 8),
    "so does the Markdown summary")
  local doc = json.decode(js) or { jobs = {} }
  local jobs = {}
  for _, j in ipairs(doc.jobs) do jobs[j.name] = j end
  local fx2 = jobs.fx_2 or {}
  tap.is(doc.git and doc.git.commit, a, "the run's own git is where it started")
  tap.is(fx2.git and fx2.git.commit, b, "the latest attempt records commit B")
  tap.is(fx2.attempts and fx2.attempts[1].git and fx2.attempts[1].git.commit, a, "attempt 1 records commit A")
  tap.is(fx2.attempts and fx2.attempts[1].command_line, { "jobrun", "run", "s.lua", "--run-id", "R1" },
    "attempt 1 records the command line that started it")
  tap.is(fx2.command_line, { "jobrun", "rerun", "R1" }, "attempt 2 records the rerun's")
  tap.is(fx2.nodes, { hostname() }, "a local attempt ran on this host")
  tap.is(jobs.fx_1 and jobs.fx_1.git and jobs.fx_1.git.commit, a, "a job not rerun keeps commit A")

  code, out = h.sh(dir, "jobrun diff R1")
  tap.is(code, 0, "diff RUN: no regression")
  tap.like(out, "fx_2%s+fixed%s+@1 FAILED · exit 1 · fail · " .. a:sub(1, 8) .. "%s+@2 SUCCEEDED · exit 0 · pass · "
    .. b:sub(1, 8), "fx_2 fixed, failed at A and passed at B")
  tap.ok(not out:find("fx_1", 1, true), "a job never rerun is not compared")
  local _, dj = h.sh(dir, "jobrun diff R1@1 R1@2 --json")
  local d = json.decode(dj) or {}
  local row = d.jobs and d.jobs[1] or {}
  tap.is({ row.name, row.change, row.a and row.a.commit, row.b and row.b.commit }, { "fx_2", "fixed", a, b },
    "RUN@1 against RUN@2, in JSON")

  -- A third commit breaks fx_1; the next run regresses against the previous run of the suite.
  h.write(dir .. "/s.lua", FIXABLE:gsub("%[ {n} = 2 %]", "true"))
  h.write(dir .. "/bug", "again\n")
  h.sh(dir, GIT .. " add -A && " .. GIT .. " commit -qm break")
  local c = head(dir)
  h.sh(dir, "jobrun run s.lua --run-id R2")
  code, out = h.sh(dir, "jobrun diff")
  tap.is(code, 1, "diff with no argument: a regression, exit 1")
  tap.like(out, "Diff R1 → R2", "the latest run against the previous run of its suite")
  tap.like(out, "fx_1%s+regressed%s+SUCCEEDED · exit 0 · pass · " .. a:sub(1, 8) .. "%s+FAILED · exit 1 · fail · "
    .. c:sub(1, 8), "fx_1 regressed, with both commits")
  tap.like(out, "fx_2%s+regressed%s+SUCCEEDED .-" .. b:sub(1, 8), "fx_2 against its latest attempt, at B")

  local n = count(dir, "SELECT count(*) FROM attempts")
  tap.is(n, 5, "the index holds every finished attempt (R1: 2 + 1 rerun, R2: 2)")
  local c1 = rows(dir, "SELECT try, commit_id, verdict, nodes FROM attempts WHERE run_id = 'R1' AND job = 'fx_2' "
    .. "ORDER BY try")
  tap.is(c1, { { 1, a, "fail", hostname() }, { 2, b, "pass", hostname() } },
    "each attempt's row: commit, verdict, node")
  tap.is(count(dir, "PRAGMA journal_mode"), "wal", "the index is in WAL mode")
end)

-- A job whose outcome is read from a file that the test writes before each run: a seeded
-- sequence that fails about one time in two.
local FLAKY = [[
suite "fl" {
  matrix = { job = { "coin", "steady" } },
  env = { API_TOKEN = "s3cret-value", MODE = "fast" },
  run = "if [ {job} = coin ]; then test \"$(cat outcome)\" = pass; fi",
}
]]

tap.test("a seeded flaky job run 10 times: flaky, history, the reports name it, show", function()
  local dir = repo({ ["s.lua"] = FLAKY })
  local commit = head(dir)
  math.randomseed(25)
  local seq, passed, flips = {}, 0, 0
  for i = 1, 10 do
    seq[i] = math.random(2) == 1 and "pass" or "fail"
    if seq[i] == "pass" then passed = passed + 1 end
    if i > 1 and seq[i] ~= seq[i - 1] then flips = flips + 1 end
  end
  -- The seed gives a mix with the last run failing (checked, so a changed generator shows).
  tap.ok(passed > 0 and passed < 10 and seq[10] == "fail", "the seeded sequence mixes: " .. table.concat(seq, " "))
  for i = 1, 10 do
    fs.write_atomic(dir .. "/outcome", seq[i] .. "\n")
    h.sh(dir, string.format("jobrun run s.lua --run-id F%02d --summary summary.md --html page.html", i))
  end
  local code, out = h.sh(dir, "jobrun flaky --json")
  tap.is(code, 0, "flaky exits 0")
  local doc = json.decode(out) or { jobs = {} }
  tap.is(#doc.jobs, 1, "one flaky job")
  local f = doc.jobs[1] or { commits = {} }
  tap.is(f.name, "fl_coin", "the coin job, not the steady one")
  tap.is({ f.passed, f.failed, f.flips }, { passed, 10 - passed, flips }, "its passes, failures and flips")
  local c = f.commits[1] or {}
  tap.is(c.commit, commit, "at the one commit")
  local want_pass, want_fail = {}, {}
  for i = 1, 10 do
    local id = string.format("F%02d@1", i)
    if seq[i] == "pass" then want_pass[#want_pass + 1] = id else want_fail[#want_fail + 1] = id end
  end
  tap.is({ c.passed, c.failed }, { want_pass, want_fail }, "with the runs that show it")
  local _, text = h.sh(dir, "jobrun flaky")
  tap.like(text, "fl_coin: passed " .. passed .. ", failed " .. (10 - passed), "the text names it")

  local _, hist = h.sh(dir, "jobrun history 'fl_c*' --last 10")
  tap.like(hist, "fl_coin: passed " .. passed .. " of 10 %(%d+%%%), " .. flips .. " flips", "history: pass rate, flips")
  tap.ok(not hist:find("fl_steady", 1, true), "GLOB chooses the jobs")
  local _, hj = h.sh(dir, "jobrun history --last 3 --json")
  local hd = json.decode(hj) or { jobs = {} }
  tap.is(hd.runs, { "F10", "F09", "F08" }, "--last 3: the three newest runs")
  tap.is(#(hd.jobs[1] and hd.jobs[1].attempts or {}), 3, "one row per attempt of those runs")

  local note = string.format("failed; flaky: passed %d of the last 10 runs at this commit", passed)
  local _, report = h.sh(dir, "jobrun check F10")
  tap.like(report, "✗ fl_coin — " .. note:gsub("%p", "%%%0"), "the text summary names the flaky failure")
  tap.like(fs.read(dir .. "/summary.md") or "", note:gsub("%p", "%%%0"), "so does the Markdown summary")
  local page = fs.read(dir .. "/page.html") or ""
  local recent = page:match('<h2 id="recent">.-</table>') or ""
  local marks = {}
  for v in recent:match("<td>fl_coin</td><td>(.-)</td>"):gmatch('class="sw s%-(%a+)"') do marks[#marks + 1] = v end
  tap.is(marks, seq, "the HTML page: fl_coin's last outcomes as marks, oldest first")

  local _, shown = h.sh(dir, "jobrun show fl_coin")
  tap.like(shown, "Job fl_coin · run F10 · suite fl", "show: which job")
  tap.like(shown, "params   job=coin", "its params")
  tap.like(shown, "command  if %[ coin = coin %]", "its command")
  tap.like(shown, "API_TOKEN=<redacted>", "the environment, secrets redacted")
  tap.ok(not shown:find("s3cret", 1, true), "the secret's value nowhere")
  tap.like(shown, "MODE=fast", "other variables as they are")
  tap.like(shown, "@1  FAILED · exit 1", "the attempt")
  tap.like(shown, "commit   " .. commit .. " %(main%)", "with its commit")
  tap.like(shown, "nodes    " .. hostname():gsub("%p", "%%%0"), "and its nodes")
  tap.like(shown, "log      %.jobrun/runs/F10/logs/fl_coin%.log", "and its log")
  local code2, _, err2 = h.sh(dir, "jobrun show F10 nosuch")
  tap.is(code2, 2, "show of an unknown job: usage error")
  tap.like(err2, "run F10 has no job 'nosuch'", "saying so")
end)

local QUICK = [[
suite "q" { run = "true" }
]]

tap.test("20 runs ending at the same moment: no row lost", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", [[
suite "q" { run = "touch at.{run_id}; flock -s gate true" }
]])
  -- The index exists, empty: each run's end writes its own rows, nothing else.
  assert(h.sh(dir, "touch gate && mkdir .jobrun && jobrun history >/dev/null") == 0)
  local gate = assert(fs.lock(dir .. "/gate"))
  local procs = {}
  for i = 1, 20 do procs[i] = h.spawn(dir, { "run", "q.lua", "--run-id", "W" .. i }) end
  -- Every run's job waits at the gate; then all are let go at once.
  tap.ok(h.eventually(function()
    local n = 0
    for _, f in ipairs(fs.list(dir) or {}) do if f:match("^at%.W") then n = n + 1 end end
    return n == 20
  end, 60), "20 jobs at the gate")
  gate:release()
  local codes = {}
  for i, p in ipairs(procs) do codes[i] = p:wait(true).exit_code; p:close() end
  local ok = 0
  for _, c in ipairs(codes) do if c == 0 then ok = ok + 1 end end
  tap.is(ok, 20, "every run passed")
  tap.is(count(dir, "SELECT count(*) FROM attempts"), 20, "20 rows, written by the runs themselves")
  tap.is(count(dir, "SELECT count(DISTINCT run_id) FROM runs"), 20, "20 runs")
  tap.ok(not (fs.read(dir .. "/.bg.log") or ""):find("history index", 1, true), "no writer gave up")
end)

tap.test("a damaged index is rebuilt; a locked one never fails a run; a newer one is refused", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", QUICK)
  h.sh(dir, "jobrun run q.lua --run-id D1 && jobrun run q.lua --run-id D2")
  -- The file replaced by junk (its WAL, which would still hold every page, gone with it).
  fs.write_atomic(dir .. "/.jobrun/history.sqlite", ("this is not a database\n"):rep(200))
  os.remove(dir .. "/.jobrun/history.sqlite-wal")
  os.remove(dir .. "/.jobrun/history.sqlite-shm")
  local code, _, err = h.sh(dir, "jobrun run q.lua --run-id D3")
  tap.is(code, 0, "a damaged index does not fail the run")
  local _, said = err:gsub("history index", "")
  tap.is(said, 1, "said once on stderr: " .. err)
  tap.like(err, "damaged; rebuilt", "that it was rebuilt")
  tap.is(count(dir, "SELECT count(*) FROM runs"), 3, "rebuilt from every run's state.json")

  -- Locked: another process holds the write lock for longer than the run waits.
  local db = assert(sqlite.open(dir .. "/.jobrun/history.sqlite"))
  assert(db:exec("BEGIN IMMEDIATE"))
  code, _, err = h.sh(dir, "JOBRUN_HISTORY_TIMEOUT=0.3 jobrun run q.lua --run-id D4")
  tap.is(code, 0, "a locked index does not fail the run")
  tap.like(err, "history index was not updated %(database is locked%)", "said on stderr")
  local _, n = err:gsub("history index", "")
  tap.is(n, 1, "once")
  tap.ok(fs.stat(dir .. "/.jobrun/runs/D4/state.json"), "the run's own record is written")
  local out
  code, out, err = h.sh(dir, "JOBRUN_HISTORY_TIMEOUT=0.3 jobrun history --json")
  tap.is(code, 0, "history over a locked index: what it holds")
  tap.like(err, "could not be brought up to date %(database is locked%)", "saying why it may be stale")
  tap.is((json.decode(out) or {}).runs, { "D3", "D2", "D1" }, "the runs it holds")
  db:exec("ROLLBACK")
  db:close()
  tap.is(count(dir, "SELECT count(*) FROM runs WHERE run_id = 'D4'"), 0, "D4 is not in the index yet")
  local _, hist = h.sh(dir, "jobrun history --json")
  local doc = json.decode(hist) or {}
  tap.is(doc.runs and doc.runs[1], "D4", "history adds the run the index missed")

  -- A state.json that cannot be read is skipped and named.
  fs.write_atomic(dir .. "/.jobrun/runs/D1/state.json", "{ cut")
  code, _, err = h.sh(dir, "jobrun history --rebuild")
  tap.is(code, 0, "--rebuild over a damaged run")
  tap.like(err, "skipped run D1", "names the damaged run")
  tap.is(count(dir, "SELECT count(*) FROM runs"), 3, "and indexes the others")

  -- An index from a newer jobrun: refused, not misread, not replaced.
  db = assert(sqlite.open(dir .. "/.jobrun/history.sqlite"))
  assert(db:exec("PRAGMA user_version = 99"))
  db:close()
  code, _, err = h.sh(dir, "jobrun history")
  tap.is(code, 3, "history refuses it: exit 3")
  tap.like(err, "written by a newer jobrun %(layout 99; this jobrun reads 1%)", "with a clear message")
  code, _, err = h.sh(dir, "jobrun run q.lua --run-id D5")
  tap.is(code, 0, "a run still passes")
  tap.like(err, "newer jobrun", "and says why the index was left alone")
  tap.is(count(dir, "PRAGMA user_version"), 99, "the newer index is untouched")
end)

tap.test("a rerun that ends while the index is locked is indexed by the next reader", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", [[suite "q" { run = "false" }]])
  h.sh(dir, "jobrun run q.lua --run-id K")
  tap.is(count(dir, "SELECT count(*) FROM attempts WHERE run_id = 'K'"), 1, "K indexed at its end")
  local db = assert(sqlite.open(dir .. "/.jobrun/history.sqlite"))
  assert(db:exec("BEGIN IMMEDIATE"))
  local code, _, err = h.sh(dir, "JOBRUN_HISTORY_TIMEOUT=0.3 jobrun rerun K")
  tap.is(code, 1, "the rerun ran (and failed as before)")
  tap.like(err, "database is locked", "the index could not take it")
  db:exec("ROLLBACK")
  db:close()
  tap.is(count(dir, "SELECT count(*) FROM attempts WHERE run_id = 'K'"), 1, "the index still has one attempt")
  local _, out = h.sh(dir, "jobrun history --json")
  local doc = json.decode(out) or { jobs = {} }
  tap.is(#(doc.jobs[1] and doc.jobs[1].attempts or {}), 2, "the next history has both attempts")
  tap.is(count(dir, "SELECT count(*) FROM attempts WHERE run_id = 'K'"), 2, "and so has the index")
end)

tap.test("the end of a launched run is indexed by whoever sees it: check, wait", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", [[suite "q" { run = "sleep 0.3" }]])
  h.sh(dir, "jobrun launch q.lua --run-id L1 && jobrun launch q.lua --run-id L2")
  tap.ok(not fs.stat(dir .. "/.jobrun/history.sqlite"), "no index while nothing has been seen to end")
  tap.ok(h.eventually(function() return h.sh(dir, "jobrun check L1") == 0 end, 20), "check sees L1 end")
  tap.is(rows(dir, "SELECT run_id, job, verdict FROM attempts"), { { "L1", "q", "pass" } }, "check indexed L1")
  tap.is(h.sh(dir, "jobrun wait L2"), 0, "wait sees L2 end")
  tap.is(count(dir, "SELECT count(*) FROM attempts WHERE run_id = 'L2'"), 1, "wait indexed L2")
end)

tap.test("history shows GPU-hours per run, and how much of them went to retries", function()
  local dir = h.scratch()
  -- 2 GPUs a node × 2 nodes; the first attempt of each run is "preempted" and retried.
  h.write(dir .. "/s.lua", [[
suite "gh" { nodes = 2, gpus = 2, retry = { on = { "preempted" }, max = 1 },
  run = "sleep 0.3; if [ ! -e {suite_dir}/ran-$JOBRUN_RUN_ID ] && [ $JOBRUN_NODE_RANK = 0 ]; then "
    .. "touch {suite_dir}/ran-$JOBRUN_RUN_ID; echo 'slurmstepd: error: *** JOB 7 ON node3 CANCELLED AT now DUE TO "
    .. "PREEMPTION ***'; exit 1; fi" }
]])
  for _, id in ipairs({ "p1", "p2" }) do
    tap.is(h.sh(dir, "jobrun run s.lua --run-id " .. id), 0, id .. " passes after its retry")
  end
  local _, out = h.sh(dir, "jobrun history --json")
  local doc = json.decode(out) or {}
  local want = {}
  for _, id in ipairs({ "p2", "p1" }) do
    local data = json.decode(fs.read(dir .. "/.jobrun/runs/" .. id .. "/state.json")) or { jobs = { {} } }
    local j = data.jobs[1]
    local first = (j.attempts or {})[1] or {}
    local total = (j.gpu_hours or 0) + (first.gpu_hours or 0)
    want[#want + 1] = { run_id = id, gpu_hours = math.floor(total * 10000 + 0.5) / 10000,
                        on_retries = j.gpu_hours }
  end
  tap.ok(want[1].gpu_hours > 0 and want[1].on_retries > 0, "each attempt recorded GPU-hours (2 × 2 × its time)")
  tap.is(doc.gpu_hours, want, "--json: per run, newest first, the retries' share")
  local _, text = h.sh(dir, "jobrun history")
  tap.like(text, "GPU%-hours per run:\n  p2  [%d.]+ GPU%-hours, [%d.]+ of them on retries\n  p1  ", "in the text too")
end)

tap.test("prune removes the pruned runs' rows", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", QUICK)
  for i = 1, 3 do
    h.sh(dir, "jobrun run q.lua --run-id P" .. i)
    process.sleep(1.05) -- started_at has whole seconds: the runs' order is their start
  end
  tap.is(count(dir, "SELECT count(*) FROM attempts"), 3, "three runs indexed")
  local code = h.sh(dir, "jobrun prune --keep 1")
  tap.is(code, 0, "prune")
  tap.is(rows(dir, "SELECT run_id FROM attempts"), { { "P3" } }, "only the kept run's rows are left")
  tap.is(rows(dir, "SELECT run_id FROM runs"), { { "P3" } }, "and its run")
end)

tap.test("rerun --exclude-nodes: said to be Slurm's alone on another backend", function()
  local dir = h.scratch()
  h.write(dir .. "/q.lua", [[suite "q" { run = "false" }]])
  h.sh(dir, "jobrun run q.lua --run-id X")
  local code, _, err = h.sh(dir, "jobrun rerun X --exclude-nodes n1,n2")
  tap.is(code, 1, "the rerun runs (and fails as before)")
  tap.like(err, "the local backend cannot choose the nodes its jobs run on; ignored", "says so")
  _, _, err = h.sh(dir, "jobrun rerun X --exclude-nodes suspect")
  tap.like(err, "no suspect node", "suspect: from the history")
end)

return tap.done()
