-- The history index (README "History: attempts, flaky jobs, suspect nodes"):
-- <state-dir>/history.sqlite (SQLite, WAL), one row per finished
-- attempt of every run. It is derived from the runs' state.json, which stay the truth: a run is
-- (re)indexed whole when it ends, runs missing from the index (it was locked, or read-only, when
-- they ended) are indexed when the history is read, pruned runs' rows go, and a damaged or older
-- index is rebuilt from the runs. Writers take turns (busy timeout, one immediate transaction
-- per run). A problem with the index never fails a run: it is said once on stderr.
local sqlite = require "jobrun.c.sqlite"
local cjson = require "cjson"
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local provenance = require "jobrun.run.provenance"

local history = {}

history.FILE = "history.sqlite"
-- The index's layout (PRAGMA user_version). An index of a higher version was made by a newer
-- jobrun: refused, never misread. A lower one is rebuilt.
history.VERSION = 1
-- How long a writer waits for another's transaction before giving up (seconds; the environment's
-- JOBRUN_HISTORY_TIMEOUT, for tests of a locked index).
history.TIMEOUT = tonumber(os.getenv("JOBRUN_HISTORY_TIMEOUT") or "") or 10

local SCHEMA = [[
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY, suite TEXT, backend TEXT, started_at TEXT, commit_id TEXT);
CREATE INDEX runs_started ON runs (started_at);
CREATE TABLE attempts (
  run_id TEXT NOT NULL, job TEXT NOT NULL, try INTEGER NOT NULL, attempt INTEGER,
  suite TEXT, run_started TEXT, params TEXT, commit_id TEXT, branch TEXT, dirty INTEGER,
  status TEXT, exit_code INTEGER, termination TEXT, cause_class TEXT, restarts INTEGER,
  duration_s REAL, started_at TEXT, ended_at TEXT, nodes TEXT, gpu_hours REAL, verdict TEXT,
  metrics TEXT,
  PRIMARY KEY (run_id, job, try));
CREATE INDEX attempts_job ON attempts (job, commit_id);
]]

-- The columns of an attempt row, in the order rows are made and read.
history.COLUMNS = { "run_id", "job", "try", "attempt", "suite", "run_started", "params", "commit_id", "branch",
  "dirty", "status", "exit_code", "termination", "cause_class", "restarts", "duration_s", "started_at",
  "ended_at", "nodes", "gpu_hours", "verdict", "metrics" }

local INSERT = "INSERT OR REPLACE INTO attempts (" .. table.concat(history.COLUMNS, ", ") .. ") VALUES ("
  .. ("?, "):rep(#history.COLUMNS - 1) .. "?)"

-- The runs whose end could not be written to the index (it was locked, read-only, damaged), one
-- id a line: the next reader indexes them again (a run already in the index would not be).
history.PENDING = "history.pending"

function history.path(state_dir) return state_dir .. "/" .. history.FILE end

-- state_dir_of(run_dir) -> the state directory a run directory is in.
function history.state_dir_of(run_dir)
  return run_dir:match("^(.*)/runs/[^/]+/?$")
end

local function value(v)
  if v == json.null then return nil end
  return v
end

local function str(v)
  v = value(v)
  if v == nil then return nil end
  if type(v) == "table" then return json.encode(v) end
  return tostring(v)
end

local function num(v)
  v = value(v)
  return type(v) == "number" and v or nil
end

-- Problems with the index are said once per process.
local said = false
local function say(fmt, ...)
  if said then return end
  said = true
  io.stderr:write("jobrun: ", string.format(fmt, ...), "\n")
end
function history.reset_said() said = false end

-- Failures with the index: an error table { message, code } raised inside history's functions
-- and caught where the index is used.
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end
local function fail(message, code) error(setmetatable({ message = message, code = code }, Failure), 0) end
local function is_failure(e) return getmetatable(e) == Failure end
history.is_failure = is_failure

local function check(ok, message, code)
  if ok == nil then fail(message, code) end
  return ok
end

local DAMAGED = { corrupt = true, notadb = true }

-- Each command opens the index for a moment: closing it must not copy the WAL into the file and
-- sync it each time (the cost of most of a run's indexing); the commits' automatic checkpoints
-- do that every thousand pages or so.
local function options() return { timeout = history.TIMEOUT, checkpoint_on_close = false } end

local function encode_params(p)
  local ok, text = pcall(cjson.encode, p)
  if ok then return text end
  return json.encode(p)
end

-- rows_of(data) -> the attempt rows of a run: every ended attempt of every job.
function history.rows_of(data)
  local rows = {}
  local git = type(data.git) == "table" and data.git or {}
  local suite, started = str(data.suite), str(data.started_at)
  for _, job in ipairs(data.jobs or {}) do
    -- lua-cjson's encoder (C; keys in no set order), as params are only read back as a whole.
    local params = type(job.params) == "table" and encode_params(job.params) or nil
    local tries = {}
    for _, a in ipairs(job.attempts or {}) do tries[#tries + 1] = a end
    if verdict.TERMINAL[job.status] and job.verdict ~= "pending" then tries[#tries + 1] = job end
    for i, a in ipairs(tries) do
      -- Runs recorded before attempts kept their own commit: the first ran the run's.
      local g = type(a.git) == "table" and a.git or (i == 1 and git) or {}
      local nodes = provenance.expand_nodes(value(a.nodes))
      local metrics = value(a.metrics)
      rows[#rows + 1] = {
        str(data.run_id), job.name, i, num(a.attempt), suite, started, params, str(g.commit), str(g.branch),
        g.dirty == true and 1 or 0, str(a.status), num(a.exit_code), str(a.termination_reason), str(a.cause_class),
        num(a.restart_count), num(a.duration_s), str(a.started_at), str(a.ended_at),
        #nodes > 0 and table.concat(nodes, ",") or nil, num(a.gpu_hours), str(a.verdict),
        type(metrics) == "table" and json.encode(metrics) or nil,
      }
    end
  end
  return rows
end

-- finished(data): every job of the run has ended and been judged (a run indexed once is not
-- looked at again until it ends anew, after a rerun).
local function finished(data)
  for _, job in ipairs(data.jobs or {}) do
    if not verdict.TERMINAL[job.status] or job.verdict == "pending" then return false end
  end
  return true
end
history.finished = finished

local function write_run(db, data)
  local id = str(data.run_id)
  check(db:query("DELETE FROM attempts WHERE run_id = ?", { id }))
  check(db:insert(INSERT, history.rows_of(data)))
  local git = type(data.git) == "table" and data.git or {}
  check(db:query("INSERT OR REPLACE INTO runs (run_id, suite, backend, started_at, commit_id) VALUES (?, ?, ?, ?, ?)",
    { id, str(data.suite), str(data.backend), str(data.started_at), str(git.commit) }))
end

-- transaction(db, fn): fn() inside BEGIN IMMEDIATE … COMMIT (the write lock taken at once, so two
-- writers queue on the busy timeout instead of one failing its upgrade), rolled back on error.
local function transaction(db, fn)
  check(db:exec("BEGIN IMMEDIATE"))
  local ok, err = pcall(fn)
  if ok then
    local done, msg, code = db:exec("COMMIT")
    if done then return end
    err = setmetatable({ message = msg, code = code }, Failure)
  end
  db:exec("ROLLBACK")
  error(err, 0)
end
history.transaction = transaction

-- run_ids(state_dir) -> { [run_id] = true } of the runs on disk.
local function run_ids(state_dir)
  local out = {}
  for _, name in ipairs(fs.list(state_dir .. "/runs") or {}) do
    if name:byte(1) ~= 46 then out[name] = true end -- not a dot file
  end
  return out
end

-- read_run(dir) -> data | nil, why: a run's state.json, or why it cannot be read.
local function read_run(dir)
  local ok, data = pcall(state.read, dir)
  if ok then return data end
  return nil, type(data) == "table" and data.message or tostring(data)
end

-- fill(db, state_dir, only_missing) -> indexed, skipped: the finished runs on disk indexed (all,
-- or those the index lacks); skipped = { {run_id, why} } for damaged state files; rows of runs no
-- longer on disk removed.
local function fill(db, state_dir, only_missing)
  local on_disk = run_ids(state_dir)
  local known = {}
  -- Runs whose end could not be indexed (history.PENDING): looked at again, indexed or not.
  local pending_file = state_dir .. "/" .. history.PENDING
  local taken = pending_file .. "." .. require("jobrun.c.process").getpid()
  local again = os.rename(pending_file, taken) and (fs.read(taken) or "") or ""
  os.remove(taken)
  if only_missing then
    for _, r in ipairs(check(db:query("SELECT run_id FROM runs"))) do known[r[1]] = true end
    for id in again:gmatch("[^\n]+") do known[id] = nil end
  end
  local todo = {}
  for id in pairs(on_disk) do
    if not known[id] then todo[#todo + 1] = { id = id, dir = state.run_dir(state_dir, id) } end
  end
  table.sort(todo, function(a, b) return a.id < b.id end)
  local gone = {}
  for id in pairs(known) do if not on_disk[id] then gone[#gone + 1] = id end end
  local datas, skipped = {}, {}
  for _, t in ipairs(todo) do
    local data, why = read_run(t.dir)
    if not data then skipped[#skipped + 1] = { run_id = t.id, why = why }
    elseif finished(data) then datas[#datas + 1] = data end
  end
  if #datas > 0 or #gone > 0 then
    local ok, err = pcall(transaction, db, function()
      for _, data in ipairs(datas) do write_run(db, data) end
      for _, id in ipairs(gone) do
        check(db:query("DELETE FROM attempts WHERE run_id = ?", { id }))
        check(db:query("DELETE FROM runs WHERE run_id = ?", { id }))
      end
    end)
    if not ok then
      if again ~= "" then fs.append(pending_file, again) end -- for the next reader
      error(err, 0)
    end
  end
  return #datas, skipped
end

local function remove_files(path)
  for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. suffix) end
end

-- create(db): the tables of a new (or older) index, in WAL mode. Returns true when it made them.
local function create(db)
  check(db:exec("PRAGMA journal_mode = WAL"))
  local made = false
  transaction(db, function()
    local v = check(db:query("PRAGMA user_version"))[1][1]
    if v == history.VERSION then return end
    if v > history.VERSION then
      fail(string.format("the history index was written by a newer jobrun (layout %d; this jobrun reads %d)", v,
        history.VERSION), "newer")
    end
    check(db:exec("DROP TABLE IF EXISTS attempts; DROP TABLE IF EXISTS runs; DROP INDEX IF EXISTS runs_started;"
      .. " DROP INDEX IF EXISTS attempts_job;"))
    check(db:exec(SCHEMA))
    check(db:exec("PRAGMA user_version = " .. history.VERSION))
    made = true
  end)
  return made
end

-- connect(state_dir, opts) -> db, made: the index opened (created when missing; opts.create
-- false: nil when there is none), its layout checked. A damaged index is removed and made again
-- (made = "damaged"); a newer one raises a Failure with code "newer".
local function connect(state_dir, opts)
  opts = opts or {}
  local path = history.path(state_dir)
  if opts.create == false and not fs.stat(path) then return nil end
  if not fs.stat(state_dir) then fail("no state directory at " .. state_dir, "cantopen") end
  local db = check(sqlite.open(path, options()))
  -- The index is derived: a commit need not reach the disk before the run goes on (in WAL mode
  -- NORMAL still never leaves the file damaged).
  db:exec("PRAGMA synchronous = NORMAL")
  local rows, msg, code = db:query("PRAGMA user_version")
  if opts.peek then -- a report only reads an index as it is: nothing made, nothing repaired
    if rows and rows[1][1] == history.VERSION then return db, false end
    db:close()
    return nil
  end
  local damaged
  if not rows and DAMAGED[code] then
    damaged = msg
  elseif not rows then
    db:close()
    fail(msg, code)
  elseif rows[1][1] > history.VERSION then
    db:close()
    fail(string.format("the history index %s was written by a newer jobrun (layout %d; this jobrun reads %d); "
      .. "it is left as it is: use that jobrun, or move the file away and run jobrun history --rebuild",
      path, rows[1][1], history.VERSION), "newer")
  end
  if damaged then
    -- Derived data: the file is made again from the runs, under a lock so that two processes
    -- that find it damaged do not remove each other's new one.
    db:close()
    local _lock <close> = fs.lock(path .. ".lock")
    db = check(sqlite.open(path, options()))
    local again, _, code2 = db:query("PRAGMA user_version")
    if not again and DAMAGED[code2] then
      db:close()
      remove_files(path)
      db = check(sqlite.open(path, options()))
    end
  elseif rows[1][1] == history.VERSION then
    return db, false -- nothing to make: an index that is only read may be read-only
  end
  local ok, made = pcall(create, db)
  if not ok then
    db:close()
    if is_failure(made) and DAMAGED[made.code] and not damaged then
      remove_files(path)
      return connect(state_dir, opts)
    end
    error(made, 0)
  end
  return db, damaged and "damaged" or made
end

-- open(state_dir, opts) -> db, note: the index ready to read, every finished run on disk in it
-- (a new, older or damaged index is filled from all of them; else only the runs it lacks), the
-- pruned ones out. note = { rebuilt = why|nil, skipped = { {run_id, why} }, stale = why|nil }:
-- an index that cannot be written (read-only, locked) is read as it is, and stale says why.
-- Raises a Failure.
function history.open(state_dir, opts)
  local db, made = connect(state_dir, opts)
  if not db then return nil end
  local ok, n, skipped = pcall(fill, db, state_dir, not made)
  if not ok then
    if not is_failure(n) then error(n, 0) end
    return db, { rebuilt = made, skipped = {}, stale = n.message }
  end
  return db, { rebuilt = made, skipped = skipped }
end

-- rebuild(state_dir) -> runs indexed, skipped: the index made anew from every run's state.json.
function history.rebuild(state_dir)
  local path = history.path(state_dir)
  local db
  local ok, err = pcall(function() db = connect(state_dir) end)
  if not ok then
    -- A newer index is the one thing --rebuild does not replace behind the user's back.
    if is_failure(err) and err.code == "newer" then error(err, 0) end
    remove_files(path)
    db = connect(state_dir)
  end
  transaction(db, function()
    check(db:exec("DELETE FROM attempts; DELETE FROM runs;"))
  end)
  local n, skipped = fill(db, state_dir, false)
  db:close()
  return n, skipped
end

-- guarded(fn) -> fn's results, or nil after saying (once) why the index could not be used.
local function guarded(what, fn)
  local ok, a, b = pcall(fn)
  if ok then return a, b end
  local why = is_failure(a) and a.message or tostring(a)
  say("the history index was not %s (%s); the runs' own records are unaffected", what, why)
  return nil
end

-- record(run_dir, data): a run that has ended, (re)indexed whole. Never raises; when it cannot,
-- the run is noted in history.PENDING for the next reader.
function history.record(run_dir, data)
  local state_dir = history.state_dir_of(run_dir)
  if not state_dir or not finished(data) then return end
  local done = guarded("updated", function()
    local db, made = connect(state_dir)
    if made == "damaged" then
      say("the history index was damaged; rebuilt from the runs' records")
      fill(db, state_dir, false)
    elseif made then
      fill(db, state_dir, false) -- a new index starts with every run, this one among them
    else
      transaction(db, function() write_run(db, data) end)
    end
    db:close()
    return true
  end)
  if not done then fs.append(state_dir .. "/" .. history.PENDING, tostring(data.run_id) .. "\n") end
end

-- forget(state_dir, run_ids): the rows of removed runs. Never raises.
function history.forget(state_dir, ids)
  if #ids == 0 then return end
  guarded("updated", function()
    local db = connect(state_dir, { create = false })
    if not db then return end
    transaction(db, function()
      for _, id in ipairs(ids) do
        check(db:query("DELETE FROM attempts WHERE run_id = ?", { id }))
        check(db:query("DELETE FROM runs WHERE run_id = ?", { id }))
      end
    end)
    db:close()
  end)
end

-- peek(state_dir, fn) -> fn(db)'s result from an index that exists and is whole, or nil (never
-- raises, says nothing, changes nothing): for reports, which only add what the index knows.
function history.peek(state_dir, fn)
  local ok, result = pcall(function()
    local db = connect(state_dir, { create = false, peek = true })
    if not db then return nil end
    local r = fn(db)
    db:close()
    return r
  end)
  return ok and result or nil
end

-- Connections kept for baselines: one per state directory for the process, made (and filled
-- with the runs the index lacks) once.
local baseline_dbs = {}

-- baseline(run_dir, suite, job, metric, n, exclude_run) -> the metric's values in the job's last
-- n passing runs other than exclude_run, newest first (one per run), or nil when there is no
-- index to ask (a baseline is then "not yet": never a failure by itself).
function history.baseline(run_dir, suite, job, metric, n, exclude_run)
  local state_dir = history.state_dir_of(run_dir)
  if not state_dir then return nil end
  local db = baseline_dbs[state_dir]
  if db == nil then
    local ok, opened = pcall(history.open, state_dir)
    db = ok and opened or false
    baseline_dbs[state_dir] = db
  end
  if not db then return nil end
  local ok, rows = pcall(function()
    return check(db:query("SELECT run_id, metrics FROM attempts WHERE job = ? AND (suite = ? OR ? IS NULL) "
      .. "AND verdict = 'pass' AND run_id != ? AND metrics IS NOT NULL "
      .. "ORDER BY run_started DESC, run_id DESC, try DESC", { job, suite, suite, exclude_run or "" }))
  end)
  if not ok then return nil end
  local out, seen = {}, {}
  for _, r in ipairs(rows) do
    if #out >= n then break end
    if not seen[r[1]] then
      local m = json.decode(r[2])
      local rec = type(m) == "table" and m[metric]
      local v = type(rec) == "table" and rec.value
      if type(v) == "number" then seen[r[1]] = true; out[#out + 1] = v end
    end
  end
  return out
end

-- recent_runs(db, n, suite) -> run ids of the last n runs (of the suite), newest first.
function history.recent_runs(db, n, suite)
  local rows
  if suite then
    rows = check(db:query("SELECT run_id FROM runs WHERE suite = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
      { suite, n }))
  else
    rows = check(db:query("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?", { n }))
  end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r[1] end
  return ids
end

-- attempts(db, opts) -> rows as tables keyed by column, oldest first: the attempts of the last
-- opts.last runs (of opts.suite), of jobs matching opts.glob (SQLite's GLOB: * ? [..]).
function history.attempts(db, opts)
  local where, values = {}, {}
  local sub = "SELECT run_id FROM runs"
  if opts.suite then sub = sub .. " WHERE suite = ?"; values[#values + 1] = opts.suite end
  sub = sub .. " ORDER BY started_at DESC, run_id DESC LIMIT ?"
  values[#values + 1] = opts.last or 20
  where[#where + 1] = "run_id IN (" .. sub .. ")"
  if opts.glob then where[#where + 1] = "job GLOB ?"; values[#values + 1] = opts.glob end
  if opts.job then where[#where + 1] = "job = ?"; values[#values + 1] = opts.job end
  if opts.commit then where[#where + 1] = "commit_id = ?"; values[#values + 1] = opts.commit end
  local sql = "SELECT " .. table.concat(history.COLUMNS, ", ") .. " FROM attempts WHERE "
    .. table.concat(where, " AND ") .. " ORDER BY run_started, run_id, job, try"
  local rows = check(db:query(sql, values))
  local cols = history.COLUMNS
  for i, r in ipairs(rows) do
    local t = {}
    for k, name in ipairs(cols) do t[name] = r[k] end
    rows[i] = t
  end
  return rows
end

-- by_job(rows) -> jobs in first-seen order: { name, rows = {…} }.
function history.by_job(rows)
  local out, at = {}, {}
  for _, r in ipairs(rows) do
    local j = at[r.job]
    if not j then j = { name = r.job, rows = {} }; at[r.job] = j; out[#out + 1] = j end
    j.rows[#j.rows + 1] = r
  end
  return out
end

-- stats(rows) -> { passed, failed, total, flips, rate }: one job's outcomes in order.
function history.stats(rows)
  local s = { passed = 0, failed = 0, total = 0, flips = 0 }
  local last
  for _, r in ipairs(rows) do
    if r.verdict == "pass" or r.verdict == "fail" then
      s.total = s.total + 1
      if r.verdict == "pass" then s.passed = s.passed + 1 else s.failed = s.failed + 1 end
      if last and last ~= r.verdict then s.flips = s.flips + 1 end
      last = r.verdict
    end
  end
  s.rate = s.total > 0 and s.passed / s.total or nil
  return s
end

-- A job is flaky when, within the window, it both passed and failed at one commit, or its
-- verdict flipped more than FLIPS times.
history.FLIPS = 3

-- flaky(rows, flips) -> { {name, commits = { {commit, passed = {run@try…}, failed = {…}} }, flips,
-- stats} }: the flaky jobs among the rows, in first-seen order.
function history.flaky(rows, flips)
  flips = flips or history.FLIPS
  local out = {}
  for _, j in ipairs(history.by_job(rows)) do
    local per, order = {}, {}
    for _, r in ipairs(j.rows) do
      if (r.verdict == "pass" or r.verdict == "fail") and r.commit_id then
        local c = per[r.commit_id]
        if not c then
          c = { commit = r.commit_id, passed = {}, failed = {} }
          per[r.commit_id] = c
          order[#order + 1] = c
        end
        local list = r.verdict == "pass" and c.passed or c.failed
        list[#list + 1] = r.run_id .. "@" .. r.try
      end
    end
    local mixed = {}
    for _, c in ipairs(order) do
      if #c.passed > 0 and #c.failed > 0 then mixed[#mixed + 1] = c end
    end
    local s = history.stats(j.rows)
    if #mixed > 0 or s.flips > flips then
      out[#out + 1] = { name = j.name, commits = mixed, flips = s.flips, stats = s, rows = j.rows }
    end
  end
  return out
end

-- at_commit(state_dir, job, commit, n) -> passed, total: the job's last n outcomes at a commit,
-- from an index that exists (nil otherwise). For the reports' "flaky: passed 7 of the last 10".
function history.at_commit(db, job, commit, n)
  local rows = check(db:query("SELECT verdict FROM attempts WHERE job = ? AND commit_id = ? AND verdict IN "
    .. "('pass', 'fail') ORDER BY run_started DESC, run_id DESC, try DESC LIMIT ?", { job, commit, n or 10 }))
  local passed = 0
  for _, r in ipairs(rows) do if r[1] == "pass" then passed = passed + 1 end end
  return passed, #rows
end

history.NOTES_MAX = 100

-- flaky_notes(run_dir, data, n) -> { [job name] = "flaky: passed 7 of the last 10 runs at this
-- commit" } for the failed jobs that also passed at their commit, from an index that exists.
function history.flaky_notes(run_dir, data, n)
  n = n or 10
  local failed = {}
  for _, job in ipairs(data.jobs or {}) do
    -- The reports show the first failures in full; a query each for more would cost a big run's.
    if #failed >= history.NOTES_MAX then break end
    if job.verdict == "fail" and provenance.commit_of(job) then failed[#failed + 1] = job end
  end
  local state_dir = run_dir and history.state_dir_of(run_dir)
  if #failed == 0 or not state_dir then return {} end
  return history.peek(state_dir, function(db)
    local notes = {}
    for _, job in ipairs(failed) do
      local passed, total = history.at_commit(db, job.name, provenance.commit_of(job), n)
      if passed > 0 and passed < total then
        notes[job.name] = string.format("flaky: passed %d of the last %d runs at this commit", passed, total)
      end
    end
    return notes
  end) or {}
end

-- A node is suspect when at least SUSPECT_MIN of its attempts (and 2 of them failed) are in the
-- window, at least half of them failed, and its failure rate is at least twice that of all the
-- other nodes' attempts together.
history.SUSPECT_MIN = 3

-- Only a failure of the infrastructure (a lost or failed node, a preemption, an NCCL network
-- error: README "Why a distributed job died") counts against a node: a bug fails on any node.
-- An attempt indexed without a cause class (by a jobrun before classes) counts as it fails.
local function against_node(r)
  return r.verdict == "fail" and (r.cause_class == nil or r.cause_class == "infrastructure")
end

-- nodes(rows) -> { {node, total, failed, rate, suspect} } most failing first; failed counts the
-- infrastructure's failures.
function history.nodes(rows)
  local per, order = {}, {}
  local all_total, all_failed = 0, 0
  for _, r in ipairs(rows) do
    if r.nodes and (r.verdict == "pass" or r.verdict == "fail") then
      local failed = against_node(r) and 1 or 0
      for node in r.nodes:gmatch("[^,]+") do
        local n = per[node]
        if not n then n = { node = node, total = 0, failed = 0 }; per[node] = n; order[#order + 1] = n end
        n.total, n.failed = n.total + 1, n.failed + failed
        all_total, all_failed = all_total + 1, all_failed + failed
      end
    end
  end
  for _, n in ipairs(order) do
    n.rate = n.failed / n.total
    local others_total, others_failed = all_total - n.total, all_failed - n.failed
    local others = others_total > 0 and others_failed / others_total or 0
    n.suspect = others_total > 0 and n.total >= history.SUSPECT_MIN and n.failed >= 2 and n.rate >= 0.5
      and n.rate >= 2 * others
  end
  table.sort(order, function(a, b)
    if a.rate ~= b.rate then return a.rate > b.rate end
    return a.node < b.node
  end)
  return order
end

-- metric_trend(db, names, n) -> { [job] = { {run_id, try, metrics = { [name] = value }}… } }
-- oldest first: each job's last n attempts that recorded metrics, across runs (the HTML page's
-- trends).
function history.metric_trend(db, names, n)
  local out = {}
  for _, name in ipairs(names) do
    local rows = check(db:query("SELECT run_id, try, metrics FROM attempts WHERE job = ? AND metrics IS NOT NULL "
      .. "ORDER BY run_started DESC, run_id DESC, try DESC LIMIT ?", { name, n }))
    local list = {}
    for i = #rows, 1, -1 do
      local m = json.decode(rows[i][3])
      local values = {}
      for k, rec in pairs(type(m) == "table" and m or {}) do
        if type(rec) == "table" and type(rec.value) == "number" then values[k] = rec.value end
      end
      list[#list + 1] = { run_id = rows[i][1], try = rows[i][2], metrics = values }
    end
    out[name] = list
  end
  return out
end

-- last_outcomes(db, names, n) -> { [job] = { verdict… } } oldest first: each job's last n
-- attempts' verdicts across runs (the HTML page's marks).
function history.last_outcomes(db, names, n)
  local out = {}
  for _, name in ipairs(names) do
    local rows = check(db:query("SELECT verdict, run_id, try FROM attempts WHERE job = ? "
      .. "ORDER BY run_started DESC, run_id DESC, try DESC LIMIT ?", { name, n }))
    local list = {}
    for i = #rows, 1, -1 do list[#list + 1] = { verdict = rows[i][1], run_id = rows[i][2], try = rows[i][3] } end
    out[name] = list
  end
  return out
end

return history
