-- Runs on disk (SPEC §5): <state-dir>/runs/<run-id>/state.json, logs/, jobs/; <state-dir>/latest.
-- Writes are atomic (temp file, fsync, rename) and serialised by a lock file; a damaged
-- state.json is reported and never overwritten.
local fs = require "jobrun.c.fs"
local json = require "jobrun.json"
local errors = require "jobrun.errors"

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

-- assign_keys(names) -> keys: a sanitised, distinct file stem per name (SPEC §5: no two jobs of
-- a run share a file). A name that sanitises to itself and is free keeps it; others get "~N".
function state.assign_keys(names)
  local keys, taken = {}, {}
  for i, name in ipairs(names) do
    local safe = state.safe_name(name)
    if safe == name and not taken[safe] then
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

-- create(state_dir, run_id) -> run_dir; refuses an existing run.
function state.create(state_dir, run_id)
  local dir = state.run_dir(state_dir, run_id)
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

function state.read(run_dir)
  local path = run_dir .. "/state.json"
  local text, err = fs.read(path)
  if not text then errors.infra("cannot read the run's state: %s", err) end
  local data, why = json.decode(text)
  if type(data) ~= "table" or type(data.jobs) ~= "table" then
    errors.infra("%s is damaged (%s); it is left as it is. "
      .. "The jobs' own files are in %s/jobs/", path, why or "not a jobrun state", run_dir)
  end
  return data
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
  local jobs = #job_texts == 0 and "[]" or ("[\n    " .. table.concat(job_texts, ",\n    ") .. "\n  ]")
  text = text:gsub('"jobs": %[%]', function() return '"jobs": ' .. jobs end, 1)
  local ok, err = fs.write_atomic(run_dir .. "/state.json", text .. "\n")
  if not ok then errors.infra("cannot write the run's state: %s", err) end
end

-- cancel_marker(run_dir, job): left by `jobrun kill --only` so that no driver starts the job.
function state.cancel_marker(run_dir, job)
  return run_dir .. "/jobs/" .. state.job_key(job) .. ".cancel"
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
-- and so are user:password parts of URLs (the rule is jobrun.secrets').
function state.redact_env(env)
  return json.object(require("jobrun.secrets").redact_env(env))
end

function state.iso(t)
  if not t then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

return state
