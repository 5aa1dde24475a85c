-- Runs on disk (README "State on disk"): <state-dir>/runs/<run-id>/state.json, logs/, jobs/;
-- <state-dir>/latest.
-- Writes are atomic (temp file, fsync, rename) and serialised by a lock file; a damaged
-- state.json is reported and never overwritten.
local fs = require "jobrun.c.fs"
local json = require "jobrun.base.json"
local errors = require "jobrun.base.errors"

local state = {}

state.VERSION = 1

-- safe_name(name): a job name as one file name: no "/", no "..", no control characters.
function state.safe_name(name)
  local s = tostring(name):gsub("[%c/\\]", "_"):gsub("^%.+", function(dots) return ("_"):rep(#dots) end)
  s = s:gsub("%.%.", "__")
  if s == "" then s = "_" end
  if #s > 200 then s = s:sub(1, 200) end
  return s
end

-- job_key(job) -> the job's file name stem within its run (jobs/<key>.*, logs/<key>.log):
-- unique per run whatever the names (runner.create assigns it); runs recorded before keys
-- existed fall back to the sanitised name.
function state.job_key(job)
  return job.key or state.safe_name(job.name)
end

-- assign_keys(names) -> keys: a sanitised, distinct file stem per name (README "State on disk":
-- no two jobs of a run share a file). The sanitised name when it is free, else it with "~N".
function state.assign_keys(names)
  local keys, taken = {}, {}
  for i, name in ipairs(names) do
    local safe = state.safe_name(name)
    if not taken[safe] then
      keys[i] = safe
    else
      local stem, n = safe:sub(1, 190), i
      repeat
        keys[i] = stem .. "~" .. n
        n = n + #names
      until not taken[keys[i]]
    end
    taken[keys[i]] = true
  end
  return keys
end

function state.run_dir(state_dir, run_id)
  return state_dir .. "/runs/" .. run_id
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return assert(fs.getcwd()) .. "/" .. path
end
state.absolute = absolute

-- is_dir(path): a directory, or a symlink to one (a `.jobrun` linked elsewhere is followed).
local function is_dir(path)
  local st = fs.stat(path)
  if st and st.type == "link" then
    local real = fs.realpath(path)
    st = real and fs.stat(real)
  end
  return st ~= nil and st.type == "directory"
end

-- discover() -> the state directory: the `.jobrun` of the nearest ancestor directory that has
-- one, else `.jobrun` at the root of the git work tree as libgit2 finds it (jobrun.base.git.root, the
-- root the git guard uses), else `./.jobrun` (README "State on disk"). Relative when it is the
-- current directory's, absolute otherwise.
function state.discover()
  local cwd = fs.getcwd()
  if not cwd then return ".jobrun" end
  local d = cwd
  while d do
    if is_dir(d .. "/.jobrun") then return d == cwd and ".jobrun" or (d .. "/.jobrun") end
    if d == "" then break end
    d = d:match("^(.*)/[^/]*$")
  end
  -- Without libgit2 there is no work tree to find: the current directory's.
  local ok, root = pcall(require("jobrun.base.git").root)
  if ok and root and root ~= cwd then return (root == "/" and "" or root) .. "/.jobrun" end
  return ".jobrun"
end

-- check_dir(state_dir): refuse (exit 2) a state directory that is the file system's root ("/",
-- or a chroot's: runs/ and latest would land among the system's top directories) or that
-- another user owns (whoever owns it decides what its files and links point to). A volume
-- mounted for jobrun's state is fine. One that does not exist yet passes: jobrun makes it.
function state.check_dir(state_dir)
  local real = fs.realpath(state_dir)
  local st = real and fs.stat(real)
  if not st or st.uid == nil then return end
  local up = fs.stat(real == "/" and "/" or real .. "/..")
  if real == "/" or (up and up.dev == st.dev and up.ino == st.ino) then
    errors.raise("the state directory %s is the root of the file system (%s); give jobrun a directory of its own "
      .. "(--state-dir, JOBRUN_STATE_DIR)", state_dir, real)
  end
  if st.uid ~= fs.geteuid() then
    errors.raise("the state directory %s belongs to another user (uid %d, not %d); use one of your own "
      .. "(--state-dir, JOBRUN_STATE_DIR)", state_dir, st.uid, fs.geteuid())
  end
end

-- create(state_dir, run_id) -> run_dir; refuses an existing run. A state directory made here
-- gets a .gitignore holding `*`, so that git never sees jobrun's records.
function state.create(state_dir, run_id)
  local dir = state.run_dir(state_dir, run_id)
  if not fs.stat(state_dir) then
    local ok, err = fs.mkdir_p(state_dir)
    if not ok then errors.infra("cannot create the state directory: %s", err) end
    fs.write_atomic(state_dir .. "/.gitignore", "*\n")
  end
  if fs.stat(dir) then
    errors.raise("run '%s' already exists in %s (choose another --run-id)", run_id, state_dir)
  end
  for _, sub in ipairs({ "", "/logs", "/jobs" }) do
    local ok, err = fs.mkdir_p(dir .. sub)
    if not ok then errors.infra("cannot create the run directory: %s", err) end
  end
  return absolute(dir)
end

-- lock(run_dir) -> handle: held while a state.json is read, changed and written.
function state.lock(run_dir)
  local h, err = fs.lock(run_dir .. "/state.lock")
  if not h then errors.infra("cannot lock the run: %s", err) end
  return h
end

local STATUSES = require("jobrun.suite.schema").STATUS_SET
local VERDICTS = { pass = true, fail = true, pending = true }

local NUMERIC = { "exit_code", "backend_exit_code", "restart_count", "attempt", "duration_s" }
local STRINGS = { "native_id", "native_status", "termination_reason", "started_at", "ended_at", "submitted_at" }
local OBJECTS = { "params", "fields", "spec" }

-- field_problem(job) -> the first of those fields (in that order) present with another type, or
-- nil: one function of straight-line tests, made from the lists (a loop over them per job was
-- most of reading a 10,000-job state.json after decoding it).
local NUMERIC_SET, STRINGS_SET = {}, {}
local field_problem
do
  local lines = { "local type = type\nreturn function(job)\n" }
  local function add(list, set, kind)
    for _, k in ipairs(list) do
      if set then set[k] = true end
      lines[#lines + 1] = string.format(
        "  do local v = job[%q]; if v ~= nil and type(v) ~= %q then return %q end end\n", k, kind, k)
    end
  end
  add(NUMERIC, NUMERIC_SET, "number")
  add(STRINGS, STRINGS_SET, "string")
  add(OBJECTS, nil, "table")
  lines[#lines + 1] = "  return nil\nend\n"
  field_problem = assert(load(table.concat(lines), "=state.field_problem"))()
end

-- safe_key(key): is key what state.safe_name makes of it (the common case told without gsub)?
local function safe_key(key)
  if #key > 0 and #key <= 200 and key:byte(1) ~= 46 and not key:find("[%c/\\]")
      and not key:find("..", 1, true) then
    return true
  end
  return key == state.safe_name(key)
end

local function bad_rel(rel)
  return rel ~= nil and (type(rel) ~= "string" or rel:find("..", 1, true) or rel:byte(1) == 47)
end

-- attempts_problem(attempts) -> what is wrong with a job's earlier attempts (a list of objects
-- shaped as results.new_attempt makes them), or nil: check, html, logs and rerun read them.
local function attempts_problem(attempts)
  if type(attempts) ~= "table" then return ' has a bad "attempts" (not a list)' end
  local n = #attempts
  for k in pairs(attempts) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return ' has a bad "attempts" (not a list)' end
  end
  for i, a in ipairs(attempts) do
    local at = string.format('"attempts[%d]', i)
    if type(a) ~= "table" then return " has a bad " .. at .. '" (not an object)' end
    local k = field_problem(a)
    if k then
      local what = NUMERIC_SET[k] and "non-numeric" or STRINGS_SET[k] and "non-string" or "non-object"
      return string.format(" has a %s %s.%s\"", what, at, k)
    end
    if a.attempt_base ~= nil and type(a.attempt_base) ~= "number" then
      return " has a non-numeric " .. at .. '.attempt_base"'
    end
    if a.status ~= nil and not STATUSES[a.status] then return " has an unknown " .. at .. '.status"' end
    if a.verdict ~= nil and not VERDICTS[a.verdict] then return " has an unknown " .. at .. '.verdict"' end
    if bad_rel(a.log_path_rel) then return " has a bad " .. at .. '.log_path_rel"' end
    if a.mismatches ~= nil and type(a.mismatches) ~= "table" then return " has a bad " .. at .. '.mismatches"' end
  end
end

-- job_problem(job, seen) -> what is wrong with one job (after its "job NAME"), or nil.
local function job_problem(job, seen)
  if not STATUSES[job.status] then return " has an unknown status " .. tostring(job.status) end
  if job.verdict ~= nil and not VERDICTS[job.verdict] then return " has an unknown verdict" end
  if job.key ~= nil and (type(job.key) ~= "string" or not safe_key(job.key)) then
    return ' has a bad "key"'
  end
  local id = job.key or job.name
  if seen[id] then return " appears twice" end
  seen[id] = true
  if bad_rel(job.log_path_rel) then return ' has a bad "log_path_rel"' end
  local k = field_problem(job)
  if k then
    local what = NUMERIC_SET[k] and "non-numeric" or STRINGS_SET[k] and "non-string" or "non-object"
    return string.format(' has a %s "%s"', what, k)
  end
  if job.mismatches ~= nil and type(job.mismatches) ~= "table" then return ' has a bad "mismatches"' end
  if job.attempts ~= nil then
    local why = attempts_problem(job.attempts)
    if why then return why end
  end
  if type(job.spec) == "table" then
    local spec = job.spec
    if spec.commands ~= nil and type(spec.commands) ~= "table" then return ' has bad "spec.commands"' end
    if spec.nodes ~= nil and math.type(spec.nodes) ~= "integer" then return ' has a bad "spec.nodes"' end
  end
  return nil
end

-- The shape a state.json must have for jobrun to act on it: (path, message) of the first
-- thing wrong, or nil. Valid JSON of the wrong shape is as damaged as a cut file.
local function problem(data)
  if type(data) ~= "table" then return "it is not a JSON object" end
  if type(data.jobs) ~= "table" then return '"jobs" is missing or not a list' end
  for _, key in ipairs({ "run_id", "backend" }) do
    if type(data[key]) ~= "string" then return string.format('"%s" is missing or not a string', key) end
  end
  local n = #data.jobs
  for k in pairs(data.jobs) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return '"jobs" is not a list' end
  end
  local seen = {}
  for i, job in ipairs(data.jobs) do
    if type(job) ~= "table" then return string.format("jobs[%d]", i) .. " is not an object" end
    if type(job.name) ~= "string" or job.name == "" then return string.format("jobs[%d]", i) .. ' has no "name"' end
    -- (the message's "job NAME" is made only when something is wrong: a big run has many jobs)
    local problem_of = job_problem(job, seen)
    if problem_of then return string.format("job %q", job.name) .. problem_of end
  end
  return nil
end

-- read(run_dir) -> data. A file that cannot be read, is not JSON or has the wrong shape stops
-- the command (exit 3), saying what is wrong; it is never rewritten.
-- The file is read as a record (src/fs.c): a link, a device, a FIFO or another user's file is
-- refused, and at most STATE_MAX bytes are read (far more than a 100,000-job run's).
local STATE_MAX = 512 * 1024 * 1024

function state.read(run_dir)
  local path = run_dir .. "/state.json"
  local text, err = fs.read_record(path, 0, STATE_MAX)
  if not text then errors.infra("cannot read the run's state: %s", err) end
  if err then errors.infra("cannot read the run's state: %s: larger than %d bytes", path, STATE_MAX) end
  local data, why = json.decode(text)
  why = data == nil and why or problem(data)
  if why then
    errors.infra("%s is damaged (%s); it is left as it is. "
      .. "The jobs' own files are in %s/jobs/", path, why, run_dir)
  end
  return data
end

-- stamp(run_dir) -> a string that changes whenever state.json is replaced (size and mtime).
function state.stamp(run_dir)
  local st = fs.stat(run_dir .. "/state.json")
  return st and string.format("%d:%.9f", st.size, st.mtime) or nil
end

local RUN_ORDER = { "version", "run_id", "suite", "suite_path", "backend", "git", "started_at",
                    "max_parallel", "fail_fast", "jobs" }

-- write(run_dir, data, job_texts): the run's fields pretty-printed, then one line per job
-- (job_texts: each job already encoded, so a save costs what changed, and grep finds a job).
function state.write(run_dir, data, job_texts)
  local head = {}
  for k, v in pairs(data) do if k ~= "jobs" then head[k] = v end end
  head.version = state.VERSION
  head.jobs = json.array()
  local text = json.encode(json.object(head, RUN_ORDER), true)
  -- (written in pieces, the jobs' texts as they are: a 10,000-job state is never joined into
  -- one string, which cost more than the write itself)
  local before, after = text:match('^(.-"jobs": )%[%](.*)$')
  local parts = { before }
  if #job_texts == 0 then
    parts[2] = "[]"
  else
    parts[2] = "[\n    "
    for i, t in ipairs(job_texts) do
      parts[#parts + 1] = t
      if i < #job_texts then parts[#parts + 1] = ",\n    " end
    end
    parts[#parts + 1] = "\n  ]"
  end
  parts[#parts + 1] = after .. "\n"
  local ok, err = fs.write_atomic(run_dir .. "/state.json", parts)
  if not ok then errors.infra("cannot write the run's state: %s", err) end
end

-- Cancel intent: the run's cancel markers, written, read and removed here only (through the
-- run: Run:request_cancel, Run:cancel_reason, Run:cancel_requested, and ctx.store for its
-- backends). `jobs/<job>.cancel` says that the job must not start (its text says why:
-- "cancelled", fail_fast's reason…, or "withdrawn": taken back from a pool, free to be handed to
-- another); `cancel` in the run directory, that no job of the run may (`jobrun kill` of the
-- whole run). A local pool's slots read them too, by the paths the store gives (marker_path).

-- cancel_marker(run_dir [, job]) -> the path of the job's cancel marker (without a job: the run's).
function state.cancel_marker(run_dir, job)
  if job == nil then return run_dir .. "/cancel" end
  return run_dir .. "/jobs/" .. state.job_key(job) .. ".cancel"
end

-- (Read bounded, never through a link: a marker that is there but cannot be read is one.)
local function marker(path)
  local text, err, errno = fs.read_record(path, 0, 4096)
  if text then return text end
  if errno ~= 2 then return "cancelled (" .. tostring(err) .. ")\n" end
  return nil
end

-- mark_cancel(run_dir, job, text [, durable]): the job's marker (without a job: the run's) says
-- `text` (durable: synced to disk before this returns, as a `kill`'s).
function state.mark_cancel(run_dir, job, text, durable)
  return fs.write_atomic(state.cancel_marker(run_dir, job), text or "", durable or false)
end

-- clear_cancel(run_dir, job [, withdrawn_only]): the marker removed (with withdrawn_only, only
-- a "withdrawn" one: a job handed back, free to be handed over again).
function state.clear_cancel(run_dir, job, withdrawn_only)
  local path = state.cancel_marker(run_dir, job)
  if withdrawn_only and not (marker(path) or ""):find("^withdrawn") then return end
  fs.remove(path)
end

-- run_cancelled(run_dir) -> true when the whole run is being cancelled.
function state.run_cancelled(run_dir)
  return fs.stat(state.cancel_marker(run_dir)) ~= nil
end

-- cancel_reason(run_dir, job) -> why the job must not start: its own cancel marker's text, else
-- the run's, else nil. A "withdrawn" marker is no reason.
function state.cancel_reason(run_dir, job)
  local text = marker(state.cancel_marker(run_dir, job))
  if text and not text:find("^withdrawn") then return text end
  return marker(state.cancel_marker(run_dir))
end

-- store(run_dir) -> what a backend may know of the run's cancel intent: reason(job),
-- run_cancelled(), and the markers' paths for processes of its own that obey them
-- (marker_path(job), marker_path() for the run's).
function state.store(run_dir)
  return {
    cancel_reason = function(job) return state.cancel_reason(run_dir, job) end,
    run_cancelled = function() return state.run_cancelled(run_dir) end,
    marker_path = function(job) return state.cancel_marker(run_dir, job) end,
  }
end

function state.set_latest(state_dir, run_id)
  fs.write_atomic(state_dir .. "/latest", run_id .. "\n")
end

-- resolve(state_dir, RUN) -> run_dir: a run id, a path to a state.json (or its directory), or
-- nil for the latest run.
function state.resolve(state_dir, run)
  if run == nil then
    local latest = fs.read(state_dir .. "/latest")
    if not latest then
      errors.raise("no runs in %s yet (start one with jobrun run or jobrun launch)", state_dir)
    end
    run = latest:gsub("%s+$", "")
  end
  local st = fs.stat(run)
  if st and st.type == "file" and run:match("state%.json$") then
    return absolute(run:match("^(.*)/[^/]*$") or ".")
  end
  if st and st.type == "directory" and fs.stat(run .. "/state.json") then return absolute(run) end
  if run:match("^[%w][%w._-]*$") then
    local dir = state.run_dir(state_dir, run)
    if fs.stat(dir .. "/state.json") then return absolute(dir) end
  end
  errors.raise("no run '%s' in %s (see jobrun list)", run, state_dir)
end

-- list(state_dir) -> run ids, oldest first (ids end with their start time).
function state.list(state_dir)
  local ids = fs.list(state_dir .. "/runs") or {}
  local runs = {}
  for _, id in ipairs(ids) do
    local st = fs.stat(state_dir .. "/runs/" .. id .. "/state.json")
    if st then runs[#runs + 1] = { id = id, mtime = st.mtime } end
  end
  table.sort(runs, function(a, b) return a.mtime < b.mtime end)
  return runs
end

-- Secrets never reach the state file: values of variables named like credentials are hidden,
-- and so are user:password parts of URLs (the rule is jobrun.base.secrets').
function state.redact_env(env)
  return json.object(require("jobrun.base.secrets").redact_env(env))
end

-- epoch(iso) -> seconds since 1970 of a "YYYY-MM-DDTHH:MM:SSZ" time, or nil.
function state.epoch(iso)
  local y, mo, d, h, mi, sec = tostring(iso):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return nil end
  -- Days from the civil date (Howard Hinnant's algorithm), in UTC whatever the local zone.
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  y = mo <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

function state.iso(t)
  if not t then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

return state
