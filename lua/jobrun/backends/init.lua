-- Backends by name: the built-in ones, or a Lua module `jobrun.backends.<name>` found on
-- package.path (which includes the suite's directory). A backend observes; it never writes a
-- job's record. What it saw of each job is an observation (jobrun.run.status: status,
-- native_status, native_id, exit_code, times, nodes, termination, … and notes of its own), and
-- the run applies each through status.apply, which refuses a move backwards (README "Writing a
-- backend"). Its functions, given the run's jobs (read them, never write them):
--   submit(ctx, job) -> observation | nil, why  (the launch: its native_id; default: submit_many of one)
--   submit_many(ctx, jobs) -> { [job] = observation }  (optional: launch a batch in one go; a job
--                                              given no native_id failed to launch: launch_error says why)
--   poll(ctx, jobs) -> { [job] = observation } (one query for all of them)
--   cancel(ctx, jobs) -> { [name] = "killed" | "already completed" | "not found" | "failed: …" },
--                        { [job] = observation }  (what it saw of them while cancelling)
--   log_path(ctx, job) -> path of the job's log on this machine (default: logs/<job>.log of the run)
--   waitables(ctx, jobs) -> { {job, handle} }  (optional: pollable handles, ready at a job's end)
--   fetch_logs(ctx, jobs [, {force}]) -> { [job] = observation } | nil  (optional: bring logs kept
--                                              elsewhere into log_path)
--   adopt(ctx, jobs) -> { [job] = observation } (optional: recover launches a dead runner missed)
--   withdraw(ctx, jobs, why) -> { [job] = observation }  (optional: queued jobs taken back from a pool)
--   check(options)                             (optional: before a run is created; raise if unusable)
--   observes = true                            (says that it is of this kind)
--   poll_interval                              (optional: seconds between polls without waitables)
--   work_tree                                  (optional: true when jobs run in the launching work tree)
-- Observations are keyed by the job (the table given) or by its name. ctx.store tells a backend
-- of the run's cancel intent (jobrun.run.store.store); the run records it.
--
-- A backend of the kind before (no `observes`: poll sets job.status …, submit sets job.native_id
-- and returns true, cancel returns its outcomes alone) keeps working: its functions are given
-- copies of the jobs (the same copy of a job at every call, brought up to date first), and what
-- it changed on them becomes the observations (status.diff).
local errors = require "jobrun.base.errors"
local status = require "jobrun.run.status"

local backends = {}

-- adapt(backend) -> a backend of the observing kind around one of the kind before.
local adapted = setmetatable({}, { __mode = "k" })
local function adapt(backend)
  if adapted[backend] then return adapted[backend] end
  local copies = setmetatable({}, { __mode = "k" })
  -- copy(job): the job's copy, the same table at every call, made equal to the job.
  local function copy(job)
    local c = copies[job]
    if not c then c = {}; copies[job] = c end
    for k in pairs(c) do c[k] = nil end
    for k, v in pairs(job) do c[k] = v end
    return c
  end
  -- around(fn, at, ctx, jobs, ...) -> the observations { [job] = … }, and fn's results: fn
  -- called on the jobs' copies; what it changed on a copy is that job's observation. One that
  -- returned an observation of a job itself (in its result number `at`, keyed by the copy or the
  -- name) is taken at its word for that job.
  local function around(fn, at, ctx, jobs, ...)
    local list, of, by_name = {}, {}, {}
    for i, job in ipairs(jobs) do
      list[i] = copy(job)
      of[list[i]], by_name[job.name] = job, job
    end
    local r = table.pack(fn(ctx, list, ...))
    local out = {}
    for c, job in pairs(of) do
      local obs = status.diff(job, c)
      if obs then out[job] = obs end
    end
    local given = at and r[at]
    if type(given) == "table" then
      for k, obs in pairs(given) do
        local job = of[k] or (type(k) == "string" and by_name[k])
        if job and type(obs) == "table" then out[job] = obs end
      end
    end
    return out, r
  end
  local a = setmetatable({ observes = true, adapted = true }, { __index = backend })
  a.poll = function(ctx, jobs) return (around(backend.poll, 1, ctx, jobs)) end
  a.cancel = function(ctx, jobs)
    local out, r = around(backend.cancel, 2, ctx, jobs)
    return r[1], out
  end
  for _, name in ipairs({ "submit_many", "adopt", "withdraw", "fetch_logs" }) do
    if type(backend[name]) == "function" then
      local fn = backend[name]
      a[name] = function(ctx, jobs, ...) return (around(fn, 1, ctx, jobs, ...)) end
    end
  end
  if type(backend.submit) == "function" then
    a.submit = function(ctx, job)
      local c = copy(job)
      local ok, why = backend.submit(ctx, c)
      if type(ok) == "table" then return ok end
      if not ok then return nil, why end
      return status.diff(job, c) or {}
    end
  end
  adapted[backend] = a
  return a
end

function backends.get(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    errors.raise("backend name '%s' must be letters, digits or _", tostring(name))
  end
  local ok, backend = pcall(require, "jobrun.backends." .. name)
  if not ok then
    if tostring(backend):find("module 'jobrun.backends." .. name .. "' not found", 1, true) then
      errors.raise("unknown backend '%s' (built in: local, slurm, skypilot; or put a Lua module jobrun/backends/%s.lua "
        .. "on package.path)", name, name)
    end
    error(backend, 0)
  end
  if type(backend) ~= "table" then errors.raise("backend '%s' is not a table of functions", name) end
  for _, fn in ipairs({ "submit", "poll", "cancel" }) do
    if type(backend[fn]) ~= "function" and not (fn == "submit" and type(backend.submit_many) == "function") then
      errors.raise("backend '%s' has no %s function", name, fn)
    end
  end
  backend.log_path = backend.log_path or function(ctx, job) return ctx.run_dir .. "/" .. job.log_path_rel end
  if not backend.observes then backend = adapt(backend) end
  -- A backend that launches in batches launches one job as a batch of one.
  if not backend.submit then
    local many = backend.submit_many
    backend.submit = function(ctx, job)
      local obs = many(ctx, { job })
      local o = obs and (obs[job] or obs[job.name])
      if o and o.native_id ~= nil and o.native_id ~= status.NONE then return o end
      return nil, o and o.launch_error or "the backend gave no native id"
    end
  end
  return backend
end

return backends
