-- A run: the one owner of a run's record (state.json), its backend and the backend's handles.
-- Every command that reads or changes a run goes through a Run: `create` or `open`, then
-- `refresh` (one backend poll, what it observed of each job applied through jobrun.run.status),
-- `save` (under the lock, merged with what other writers put on disk, so the record only moves
-- forward), `launch`, `cancel` and `drive` (jobrun.run.scheduler: launch within max_parallel and
-- wait without polling, on pidfds and a signalfd). One process at a time drives a run: the
-- holder of driver.lock. Backends observe; every move of a job's status is made here, through
-- status.apply, and the run's cancel intent is recorded and read here (through jobrun.run.store's
-- markers) only.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local state = require "jobrun.run.store"
local results = require "jobrun.judge.results"
local verdict = require "jobrun.judge.verdict"
local record = require "jobrun.run.record"
local status = require "jobrun.run.status"
local backends = require "jobrun.backends"
local progress = require "jobrun.report.progress"
local errors = require "jobrun.base.errors"
local json = require "jobrun.base.json"
local analysis = require "jobrun.judge.analysis"
local secrets = require "jobrun.base.secrets"
local needs = require "jobrun.plan.needs"
local provenance = require "jobrun.run.provenance"
local retry = require "jobrun.run.retry"
local context = require "jobrun.run.context"

local M = {}
local Run = {}
Run.__index = Run

-- How often state.json is rewritten while jobs run (merged with other writers' changes).
local SAVE_INTERVAL = 1.0

-- require_backend(name): the backend, or a usage error (exit 2): a backend module that fails
-- to load is the user's file, not an internal error.
function M.require_backend(name)
  local ok, backend = pcall(backends.get, name)
  if not ok then errors.raise("%s", errors.is_user(backend) and backend.message or tostring(backend)) end
  return backend
end

-- replan(data): the plan rebuilt from the suite, for a process that did not make the run (expect
-- functions, unredacted environments). nil when the suite cannot be loaded any more.
local function replan(data)
  local ok, p = pcall(function()
    local plan = require "jobrun.plan"
    local dsl = require "jobrun.suite.dsl"
    local o = data.plan_options or {}
    -- The run recorded git info only inside a repository; the suite sees the same then.
    local git_global = data.git and require("jobrun.base.git").lazy(data.cwd or ".") or nil
    -- The suite is user code: a signal must still get through (jobrun.c.guard).
    local loaded, decls = require("jobrun.c.guard").call(nil, dsl.load, data.suite_path, git_global)
    if not loaded then error(decls, 0) end
    local rebuilt = plan.build_file(decls, { run_id = data.run_id, set = o.set, only = o.only, tags = o.tags,
                               backend = o.backend, timeout = o.timeout, git = data.git, suites = o.suites })
    rebuilt.decls = decls
    return rebuilt
  end)
  if ok then return p end
  return nil, errors.is_user(p) and p.message or tostring(p)
end

-- exclude(ctx, nodes): the nodes a rerun keeps its jobs off (jobrun.run.context.exclude).
M.exclude = context.exclude

local function new(run_dir, data, p)
  local run = setmetatable({ dir = run_dir, data = data, plan = p, encoded = setmetatable({}, { __mode = "k" }) }, Run)
  run.ctx = context.new(run)
  return run
end

-- create(plan, opts) -> run: the run directory and its first state.json.
function M.create(p, opts)
  local state_dir = opts["state-dir"]
  local run_dir = state.create(state_dir, p.run_id)
  local shown = state.run_dir(state_dir, p.run_id)
  local data = {
    run_id = p.run_id, suite = p.suite, suite_path = state.absolute(p.suite_path),
    backend = p.backend, git = p.git, started_at = state.iso(process.time()),
    max_parallel = p.max_parallel, fail_fast = p.fail_fast, cwd = fs.getcwd(),
    suites = p.suites, backends = p.backends,
    retry_max_total = p.retry_max_total,
    plan_options = p.plan_options, jobs = {},
    scaling = p.scaling, report_metrics = p.report_metrics,
    notify = require("jobrun.report.notify").public(p.notify, p.suite),
  }
  local names = {}
  for i, pjob in ipairs(p.jobs) do names[i] = pjob.name end
  local keys = state.assign_keys(names)
  for i, pjob in ipairs(p.jobs) do
    data.jobs[i] = results.record(pjob, shown, keys[i])
    provenance.stamp(data.jobs[i], p.git)
  end
  local run = new(run_dir, data, p)
  run:save(true)
  state.set_latest(state_dir, p.run_id)
  return run
end

-- open(run_dir) -> run: a recorded run (a damaged state.json is reported with exit 3).
function M.open(run_dir)
  local data = state.read(run_dir)
  local run = new(run_dir, data, nil)
  run.seen = state.stamp(run_dir)
  return run
end

-- current(run_dir) -> run: a recorded run as it is now where that costs no backend query (a
-- local run's finished jobs are read from their own files), in memory only: nothing is saved.
function M.current(run_dir)
  local run = M.open(run_dir)
  if run.data.backend == "local" and not run.data.backends and #run:open_jobs() > 0 then
    pcall(function() run:recover(); run:refresh() end)
  end
  return run
end

-- replan() -> the plan rebuilt from the suite as it is now (its secrets included), or nil when
-- the suite cannot be loaded any more; kept as the run's plan.
function Run:replan()
  if type(self.plan) ~= "table" or not self.plan.decls then
    local p = self.data.suite_path and replan(self.data)
    if p then self.plan = p end
    return p
  end
  return self.plan
end

-- suite_plan() -> the plan this process knows the run by, where what only the suite knows is
-- (parsers, expect functions, the real environment with its secrets): the plan the run was
-- made from, else the suite file as it is now, read once (false when it cannot be; why in
-- self.plan_error), else nil (the built-ins alone). Asked for only when one of those is needed.
-- (Run:replan, for notify, also rebuilds a plan that lacks the suite's declarations.)
function Run:suite_plan()
  if self.plan == nil and self.data.suite_path then
    local p, why = replan(self.data)
    self.plan, self.plan_error = p or false, why
  end
  return self.plan
end

-- planned_job(name) -> the planned job of that name (suite_plan's, or Run:plan_job's), or nil.
function Run:planned_job(name)
  if not self.planned_by_name then
    local by_name = {}
    local p = self:suite_plan()
    for _, pjob in ipairs(p and p.jobs or {}) do by_name[pjob.name] = pjob end
    self.planned_by_name = by_name
  end
  return self.planned_by_name[name]
end

-- launch_env(name) -> the environment to launch job `name` with (what ctx.secret_env holds): the
-- suite's, its secrets restored (jobrun.base.secrets.restore_env). A secret with no value to be
-- had stops the command (exit 2) before anything is launched with the placeholder, naming the
-- variable and where it came from.
function Run:launch_env(name)
  if not self.records_by_name then
    self.records_by_name = {}
    for _, job in ipairs(self.data.jobs) do self.records_by_name[job.name] = job end
  end
  local job = self.records_by_name[name]
  local spec = job and type(job.spec) == "table" and job.spec or {}
  local recorded = type(spec.env) == "table" and spec.env or nil
  local pjob = self:planned_job(name)
  local planned = pjob and pjob.env
  local env, missing = secrets.restore_env(recorded, planned, os.getenv, spec.env_stripped)
  if not env then
    local suite = self.data.suite_path or "the run's suite"
    errors.raise("job %s needs %s, a secret of %s (state.json keeps it as %s), and it cannot be had: %s, "
      .. "and %s is not set in jobrun's environment; restore the suite or set %s",
      name, missing, suite, recorded and recorded[missing] == secrets.REDACTED and secrets.REDACTED
        or "a URL without its user:password",
      self.plan_error and ("the suite cannot be read again (" .. self.plan_error .. ")")
        or "the suite as it is now does not give it",
      missing, missing)
  end
  if recorded == nil and planned == nil then env = nil end
  -- What was kept secret stays so (a name from a suite's `secrets` list that this process did
  -- not read): the backends hide these values too.
  local hidden = {}
  for k, v in pairs(recorded or {}) do if v == secrets.REDACTED then hidden[#hidden + 1] = k end end
  if #hidden > 0 then secrets.declare(hidden) end
  return env
end

-- ctx_of(backend_name) -> the context its backend sees (jobrun.run.context): the run's own for
-- the run's backend; in a run with jobs of several backends (several suites), one more for each
-- other backend, which reads what is shared (run_dir, secret_env, …) through the run's.
function Run:ctx_of(name)
  if name == nil or name == self.data.backend then return self.ctx end
  self.subctx = self.subctx or {}
  local c = self.subctx[name]
  if not c then
    c = context.for_backend(self.ctx, name)
    self.subctx[name] = c
  end
  return c
end

-- groups(jobs) -> { { ctx, jobs }, … }: the jobs by backend (one group when the run has one),
-- so that each backend gets one call for all of its jobs.
function Run:groups(jobs)
  if not self.data.backends then return { { self.ctx, jobs } } end
  local out, at = {}, {}
  for _, job in ipairs(jobs) do
    local name = job.backend or self.data.backend
    local g = at[name]
    if not g then g = { self:ctx_of(name), {} }; at[name] = g; out[#out + 1] = g end
    g[2][#g[2] + 1] = job
  end
  return out
end

-- contexts() -> every backend context of the run (for what is said of backends: their errors).
function Run:contexts()
  local out = { self.ctx }
  for _, name in ipairs(self.data.backends or {}) do
    if name ~= self.data.backend then out[#out + 1] = self:ctx_of(name) end
  end
  return out
end

-- changed(job): the job's record differs from what was last encoded.
function Run:changed(job) self.encoded[job] = nil; self.dirty = true end

-- Jobs are matched by name (unique in a run); their file key changes with each rerun.
local function job_id(job) return job.name end

-- merge(disk): fold the copy on disk into this one, job by job: the copy further along wins
-- (record.ahead); ours is kept on a tie. Returns how many jobs took the disk's copy.
function Run:merge(disk)
  local mine = {}
  for _, job in ipairs(self.data.jobs) do mine[job_id(job)] = job end
  local taken = 0
  for _, theirs in ipairs(disk.jobs) do
    local job = mine[job_id(theirs)]
    if job and record.ahead(theirs, job) then
      record.replace(job, theirs)
      self:changed(job)
      taken = taken + 1
    end
  end
  self:take_added(disk, mine)
  -- Notifications (jobrun.report.notify) are appended under the lock after a sync, so the longer list
  -- is the newer; the claimed end only grows.
  local data = self.data
  if type(disk.notifications) == "table" and #disk.notifications >= #(data.notifications or {}) then
    data.notifications = disk.notifications
  end
  if math.type(disk.notified_end) == "integer" and disk.notified_end > (data.notified_end or 0) then
    data.notified_end = disk.notified_end
  end
  return taken
end

-- take_added(disk, mine): jobs another process added to the run (a script declares its jobs as
-- it goes, Run:add_job) are kept, so that no writer drops them.
function Run:take_added(disk, mine)
  for _, theirs in ipairs(disk.jobs) do
    if not mine[job_id(theirs)] then
      self.data.jobs[#self.data.jobs + 1] = theirs
      mine[job_id(theirs)] = theirs
      self.dirty = true
    end
  end
end

-- add_job(planned_job, run_dir_shown) -> its record: a job the run did not have when it was
-- created (a script declares its jobs as it goes), under a file key no other job uses; the next
-- save writes it. Its planned form joins the plan, for its expectation and environment.
function Run:add_job(pjob, dir_shown)
  local keys = {}
  for _, job in ipairs(self.data.jobs) do
    if job.name == pjob.name then errors.raise("job name '%s' is already in run %s", pjob.name, self.data.run_id) end
    keys[(job.key or state.safe_name(job.name)):gsub("@%d+$", "")] = true
  end
  local base = state.safe_name(pjob.name)
  local key, n = base, 1
  while keys[key] do n = n + 1; key = base .. "-" .. n end
  local job = results.record(pjob, dir_shown or self.dir, key)
  provenance.stamp(job, self.data.git)
  self.data.jobs[#self.data.jobs + 1] = job
  self:changed(job)
  self:plan_job(pjob)
  return job
end

-- plan_job(pjob): the planned form of a job (its expect function, its real environment) known
-- to this process, as if it had been in the plan the run was made from.
function Run:plan_job(pjob)
  if type(self.plan) ~= "table" then self.plan = { jobs = {} } end
  self.plan.jobs[#self.plan.jobs + 1] = pjob
  if self.planned_by_name then self.planned_by_name[pjob.name] = pjob end
  rawset(self.ctx.secret_env, pjob.name, pjob.env)
end

local function encode_jobs(run)
  local out = {}
  for i, job in ipairs(run.data.jobs) do
    local text = run.encoded[job]
    if not text then
      text = json.encode(results.for_state(job))
      run.encoded[job] = text
    end
    out[i] = text
  end
  return out
end

-- sync_locked(): with the lock held, take in what other writers saved since we last looked.
function Run:sync_locked()
  local stamp = state.stamp(self.dir)
  if stamp and stamp ~= self.seen then
    self:merge(state.read(self.dir))
    return true
  end
  return false
end

local function write(run)
  state.write(run.dir, run.data, encode_jobs(run))
  run.seen = state.stamp(run.dir)
  run.dirty = false
end

-- save([force]) -> whether another writer had saved since (its changes are merged in): merge
-- with state.json under its lock, then write it (atomically) if this process changed anything
-- since its last write.
function Run:save(force)
  local _lock <close> = state.lock(self.dir)
  local merged = self:sync_locked()
  if self.dirty or force then write(self) end
  return merged
end

-- update(fn): under the lock, merge what is on disk, call fn(run), and write unless fn
-- returns false (nothing changed).
function Run:update(fn)
  local _lock <close> = state.lock(self.dir)
  self:sync_locked()
  if fn(self) ~= false then write(self) end
end

-- sync(): take in what other writers saved, without writing.
function Run:sync()
  local _lock <close> = state.lock(self.dir)
  self:sync_locked()
end

-- expect_of(job) -> the job's expectation: the planned job's (an expect function), else its record's.
function Run:expect_of(job)
  local pjob = self:planned_job(job.name)
  local e = pjob and pjob.expect
  if e ~= nil then return e end
  return job.spec and job.spec.expect
end

-- parsers_of(job) -> the parsers that read the job's log: its suite's where the run has jobs of
-- several suites (a script's, ctx.job_parsers), else the run's (its suite's packs', made once).
function Run:parsers_of(job)
  local by_job = self.ctx.job_parsers
  if by_job and by_job[job.name] then return by_job[job.name] end
  if not self.parsers then
    local p = self:suite_plan()
    self.parsers = analysis.parsers(p and p.decls)
  end
  return self.parsers
end

-- settle(job [, found]): a terminal job's log analysed (or found: Run:analyze's) and its verdict given.
function Run:settle(job, found)
  self:changed(job)
  results.settle(job, self:expect_of(job), self.dir, self:parsers_of(job), found)
end

-- closed(run, job, why, ok, err) -> ok, err: a job the run has just closed (ok, err: what
-- status.finish, cancel or launch_failed said) settled, with the reason in words.
local function closed(run, job, why, ok, err)
  if not ok then return false, err end
  run:changed(job)
  run:settle(job)
  if why then job.termination_reason = why end
  return true
end

-- finish(job, to, native, why) -> true | false, why not: a job that will never run (abandoned,
-- skipped): its record closed (status.finish) with the reason in words.
function Run:finish(job, to, native, why)
  return closed(self, job, why, status.finish(job, to, native))
end

-- launch_failed(job, why): a job whose launch was refused before it went out (a {needs…} field
-- that cannot be had): LAUNCH_FAILED, saying why.
function Run:launch_failed(job, why)
  if not closed(self, job, "launch_failed", status.launch_failed(job, why)) then return false end
  job.fields.launch_error = why
  if job.verdict == "fail" then job.mismatches = { why } end
  return true
end

-- Cancel intent (README "How a job's record moves"): `jobrun kill`'s, a cancel's and a
-- withdraw's markers, recorded and read through the run's store (jobrun.run.store) only.

-- request_cancel([jobs]): no driver starts these jobs (without jobs: any job of the run) from
-- now on; written (and synced) before any backend is asked.
function Run:request_cancel(jobs)
  if jobs == nil then return state.mark_cancel(self.dir, nil, "", true) end
  for _, job in ipairs(jobs) do state.mark_cancel(self.dir, job, "", true) end
end

-- cancel_reason(job) -> why the job must not start (its marker's text, or the run's), or nil.
function Run:cancel_reason(job) return state.cancel_reason(self.dir, job) end

-- cancel_requested() -> true while the whole run is being cancelled (`jobrun kill RUN`).
function Run:cancel_requested() return state.run_cancelled(self.dir) end

function Run:open_jobs()
  local out = {}
  for _, job in ipairs(self.data.jobs) do
    if not verdict.TERMINAL[job.status] then out[#out + 1] = job end
  end
  return out
end

function Run:active()
  local out = {}
  for _, job in ipairs(self.data.jobs) do
    if job.native_id and not verdict.TERMINAL[job.status] then out[#out + 1] = job end
  end
  return out
end

function Run:all_terminal()
  for _, job in ipairs(self.data.jobs) do
    if not verdict.TERMINAL[job.status] then return false end
  end
  return true
end

-- recover(): pending jobs that a dead runner launched without saving get their native ids
-- back, so that they are never launched twice. Returns how many were looked at.
function Run:recover()
  local pending = {}
  for _, job in ipairs(self.data.jobs) do
    if job.status == "PENDING" and not job.native_id then pending[#pending + 1] = job end
  end
  local looked = 0
  for _, g in ipairs(self:groups(pending)) do
    local ctx, jobs = g[1], g[2]
    if ctx.backend.adopt and #jobs > 0 then
      self:take(ctx, jobs, ctx.backend.adopt(ctx, jobs), status.adopt)
      for _, job in ipairs(jobs) do self:changed(job) end
      looked = looked + #jobs
    end
  end
  return looked
end

-- poll(jobs): one backend query for all of them, what it observed of each job applied.
function Run:poll(jobs)
  local groups = self:groups(jobs)
  if #groups > 1 then
    local changed = {}
    for _, g in ipairs(groups) do
      for job in pairs(self:poll_with(g[1], g[2]) or {}) do changed[job] = true end
    end
    return changed
  end
  return self:poll_with(groups[1][1], jobs)
end

-- take(ctx, jobs, observed [, move]) -> the set of the jobs whose record changed: what the
-- backend observed of these jobs ({ [job or its name] = observation }) applied through
-- status.apply (or `move`, one of jobrun.run.status's transitions). A move it refuses is said, and
-- the job kept where it is.
function Run:take(ctx, jobs, observed, move)
  local changed = {}
  if type(observed) ~= "table" or next(observed) == nil then return changed end
  local given, by_name = {}, nil
  for _, job in ipairs(jobs) do given[job] = true end
  for key, obs in pairs(observed) do
    local job = key
    if type(key) == "string" then
      if not by_name then by_name = {}; for _, j in ipairs(jobs) do by_name[j.name] = j end end
      job = by_name[key]
    end
    if given[job] then
      local ok, res
      if type(obs) == "table" and obs.new_attempt ~= nil then
        ok, res = false, "a new attempt, which only a rerun starts"
      else
        ok, res = (move or status.apply)(job, obs)
      end
      if not ok then
        io.stderr:write(require("jobrun.report.sanitize").format("jobrun: %s: the %s backend reported %s; kept %s\n",
          job.name, ctx.backend.name or "?", tostring(res), tostring(job.status)))
      elseif res then
        changed[job] = true
        self:changed(job)
      end
    end
  end
  return changed
end

-- poll_with(ctx, jobs) -> the set of the jobs whose record the poll changed (only those are
-- encoded again at the next save: a poll of 1,000 waiting jobs that moved none re-encodes none).
function Run:poll_with(ctx, jobs)
  -- JOBRUN_TRACE=FILE: one line per poll cycle, for benchmarks and tests to count the backend
  -- queries they see against.
  local trace = os.getenv("JOBRUN_TRACE")
  if trace and trace ~= "" then fs.append(trace, string.format("poll %s %d\n", ctx.backend.name or "?", #jobs)) end
  return self:take(ctx, jobs, ctx.backend.poll(ctx, jobs))
end

-- fetch_logs(ctx, jobs [, opts]): a backend whose logs live elsewhere brings these jobs' logs
-- here; what it learnt of them on the way (its exit code, a fault) is applied.
function Run:fetch_logs(ctx, jobs, opts)
  if not ctx.backend.fetch_logs or #jobs == 0 then return {} end
  return self:take(ctx, jobs, ctx.backend.fetch_logs(ctx, jobs, opts))
end

-- refresh([jobs [, unique]]) -> how many jobs were asked about: one backend poll for the given
-- jobs (default: every unfinished launched one), then the ended ones settled. unique: the
-- caller's list names each job once already (a poll of every running job).
function Run:refresh(jobs, unique)
  jobs = jobs or self:active()
  -- Each job once, however often the caller names it (the drive loop's list of the jobs whose
  -- supervisors ended can name a job many times): else an ended job is analysed once per mention.
  if not unique then
    local seen, once = {}, {}
    for _, job in ipairs(jobs) do
      if not seen[job] then seen[job] = true; once[#once + 1] = job end
    end
    jobs = once
  end
  local moved_jobs = #jobs > 0 and self:poll(jobs) or {}
  -- Backends whose logs live elsewhere fetch them once a job has ended, before analysis.
  for _, g in ipairs(self:groups(jobs)) do
    local ctx = g[1]
    if ctx.backend.fetch_logs then
      local ended = {}
      for _, job in ipairs(g[2]) do
        if verdict.TERMINAL[job.status] and job.verdict == "pending" then ended[#ended + 1] = job end
      end
      if #ended > 0 then self:fetch_logs(ctx, ended) end
    end
  end
  -- The ended jobs' logs analysed together: user parsers run in one sandbox for all of them.
  local ended = {}
  for _, job in ipairs(jobs) do
    local ends = verdict.TERMINAL[job.status] and job.verdict == "pending"
    if moved_jobs[job] or ends then self:changed(job) end
    if ends then ended[#ended + 1] = job end
  end
  local found = results.analyze(ended, self.dir, function(job) return self:parsers_of(job) end)
  for i, job in ipairs(ended) do self:settle(job, found[i]) end
  return #jobs
end

-- submit_batch(jobs): one backend call for all of them where the backend can (launch requests
-- that go out together), else one each. What the backend answers for each job is applied: a
-- native id launches it (status.submit), none fails its launch (status.launch_failed).
function Run:submit_batch(jobs)
  local now = state.iso(process.time())
  local seen = {}
  for _, g in ipairs(self:groups(jobs)) do
    local ctx, group = g[1], g[2]
    -- A job withdrawn from an earlier pool (Ctrl-C, then `jobrun wait`) is free to run again.
    if ctx.backend.withdraw then
      for _, job in ipairs(group) do state.clear_cancel(self.dir, job, true) end
    end
    -- A backend that cannot be reached fails its own jobs' launch, not the other backends'.
    local ok, err = pcall(function()
      if ctx.backend.submit_many then
        local got = ctx.backend.submit_many(ctx, group)
        for _, job in ipairs(group) do
          local obs = type(got) == "table" and (got[job] or got[job.name]) or nil
          if type(obs) == "table" then seen[job] = obs end
        end
      else
        for _, job in ipairs(group) do
          local obs, why = ctx.backend.submit(ctx, job)
          seen[job] = type(obs) == "table" and obs or { launch_error = tostring(why) }
        end
      end
    end)
    if not ok then
      if not (self.data.backends and errors.is_user(err)) then error(err, 0) end
      for _, job in ipairs(group) do
        local obs = seen[job] or {}
        if obs.native_id == nil or obs.native_id == status.NONE then
          seen[job] = obs
          obs.launch_error = obs.launch_error or err.message
        end
      end
    end
  end
  for _, job in ipairs(jobs) do
    self:changed(job)
    local obs = seen[job] or {}
    if obs.native_id ~= nil and obs.native_id ~= status.NONE then
      local ok, why = status.submit(job, obs, now)
      if not ok then
        obs = { launch_error = "the backend's answer was refused: " .. tostring(why) }
        io.stderr:write(require("jobrun.report.sanitize").format(
          "jobrun: %s: the %s backend's launch was refused: %s\n",
          job.name, self:ctx_of(job.backend).backend.name or "?", tostring(why)))
      end
    end
    if not job.native_id then
      -- (what the backend noted of it as well, unless that is refused too)
      if not status.launch_failed(job, nil, obs, now) then
        status.launch_failed(job, obs.launch_error or "the backend's answer was refused", nil, now)
      end
      self:settle(job)
      job.termination_reason = job.termination_reason or "launch_failed"
      -- Why, where --json and --logs show it.
      job.fields.launch_error = job.launch_error
    end
  end
end

-- still_going(jobs) -> what becomes of a run's live jobs when the runner stops: those running
-- keep running, those a scheduler still holds stay pending there.
local function still_going(jobs)
  local running, pending = 0, 0
  for _, job in ipairs(jobs) do
    if job.status == "PENDING" then pending = pending + 1 else running = running + 1 end
  end
  local parts = {}
  if running == 1 then parts[1] = "the running job keeps running"
  elseif running > 1 or pending == 0 then parts[1] = string.format("the %d running jobs keep running", running) end
  if pending == 1 then parts[#parts + 1] = "the pending job stays queued"
  elseif pending > 1 then parts[#parts + 1] = string.format("the %d pending stay queued", pending) end
  return table.concat(parts, ", ")
end

-- cancelled_before_start(job): `jobrun kill` (the whole run, or --only this job) got to it first.
function Run:cancelled_before_start(job)
  if not self:cancel_reason(job) then return false end
  return (closed(self, job, "cancelled", status.cancel(job)))
end

-- launch(jobs) -> the jobs that were started (pending ones not cancelled meanwhile).
function Run:launch(jobs)
  local batch = {}
  for _, job in ipairs(jobs) do
    if job.status == "PENDING" and not job.native_id and not self:cancelled_before_start(job) then
      batch[#batch + 1] = job
    end
  end
  if #batch > 0 then self:submit_batch(batch) end
  local started = {}
  for _, job in ipairs(batch) do
    if job.native_id and not verdict.TERMINAL[job.status] then started[#started + 1] = job end
  end
  return started
end

-- launch_pending(limit): start what may start now (jobrun.run.scheduler: within max_parallel, or
-- --max-parallel's `limit`, and the needs), and return the jobs started.
function Run:launch_pending(limit)
  local _, started = require("jobrun.run.scheduler").for_run(self, { max_parallel = limit }):launch()
  return started or {}
end

-- queued(): jobs handed to a backend's pool that no slot has started yet.
function Run:queued()
  local out = {}
  for _, job in ipairs(self.data.jobs) do
    if job.status == "PENDING" and job.native_id and job.native_status == "QUEUED" then out[#out + 1] = job end
  end
  return out
end

-- withdraw(why): queued jobs taken back from the backend's pool: pending again (why nil) or,
-- with a reason, never to start. Their markers first (no slot starts them now); then the
-- backend says which it took back (status.withdraw) and which a slot had claimed meanwhile.
function Run:withdraw(why)
  local queued = self:queued()
  if #queued == 0 then return end
  local any = false
  local function move(job, obs)
    if obs.native_id == status.NONE then return status.withdraw(job, obs) end
    return status.apply(job, obs)
  end
  for _, g in ipairs(self:groups(queued)) do
    if g[1].backend.withdraw then
      for _, job in ipairs(g[2]) do state.mark_cancel(self.dir, job, why and (why .. "\n") or "withdrawn\n") end
      self:take(g[1], g[2], g[1].backend.withdraw(g[1], g[2], why), move)
      any = true
    end
  end
  if not any then return end
  for _, job in ipairs(queued) do self:changed(job) end
  -- Closed for a reason: their end is in their files now (no event will say so).
  if why then self:refresh(queued) end
end

-- abandon_pending(why): jobs that will never start, marked CANCELLED with the reason in words.
function Run:abandon_pending(why)
  self:withdraw(why)
  for _, job in ipairs(self.data.jobs) do
    if job.status == "PENDING" and not job.native_id then self:finish(job, "CANCELLED", "NOT_STARTED", why) end
  end
end

-- cancel(targets) -> { [name] = "killed" | "already completed" | "not found" | "failed: …" }:
-- jobs not launched yet are closed here (status.cancel); the rest are marked cancelled (no slot
-- of a pool starts them) and cancelled in one backend call, what it saw of them applied, then
-- refreshed.
function Run:cancel(targets)
  local outcome, live = {}, {}
  for _, job in ipairs(targets) do
    if verdict.TERMINAL[job.status] then
      outcome[job.name] = "already completed"
    elseif not job.native_id then
      closed(self, job, "cancelled", status.cancel(job))
      outcome[job.name] = "killed"
    else
      live[#live + 1] = job
    end
  end
  if #live > 0 then
    for _, job in ipairs(live) do state.mark_cancel(self.dir, job, "cancelled\n") end
    for _, g in ipairs(self:groups(live)) do
      local said, observed = g[1].backend.cancel(g[1], g[2])
      for name, r in pairs(type(said) == "table" and said or {}) do outcome[name] = r end
      self:take(g[1], g[2], observed)
    end
    self:refresh(live)
  end
  return outcome
end

-- rerun(jobs): each of these (terminal) jobs starts a new attempt (status.new_attempt): the
-- latest one is kept in job.attempts with its log, and the job is PENDING again under fresh
-- files. A whole-run cancel left by an earlier kill no longer applies.
function Run:rerun(jobs, keep_cancel)
  -- Refused before any job changes: a job that has not ended cannot start again.
  for _, job in ipairs(jobs) do
    local ok, why = status.allowed(job, { status = "PENDING", new_attempt = {} })
    if not ok then errors.raise("job %s cannot run again: %s", job.name, why) end
  end
  if not keep_cancel then state.clear_cancel(self.dir, nil) end
  -- Every job's environment, its secrets restored, before any job changes: a secret with no
  -- value stops the rerun here (exit 2), never launching the placeholder.
  for _, job in ipairs(jobs) do local _ = self.ctx.secret_env[job.name] end
  -- The new attempts run the tree as it is now: their own commit, not the run's first one.
  local ok, info = pcall(function() return require("jobrun.base.git").info(self.data.cwd or ".") end)
  local now_git = ok and info and require("jobrun.base.git").record(info) or nil
  for _, job in ipairs(jobs) do
    -- The plan's {needs…} markers back: filled again from the needed jobs' new attempts.
    needs.unfill(job)
    if job.spec and job.spec.outputs then rawset(self.ctx.secret_env, job.name, nil) end
    -- The run directory as the run's paths show it (relative to where it was started, or not).
    local dir_shown = (job.log_path and job.log_path:match("^(.*)/logs/[^/]*$")) or self.dir
    local commands
    local pjob = self:planned_job(job.name)
    local base = job.attempt or ((job.attempt_base or 0) + (job.restart_count or 0) + 1)
    if pjob and pjob.run_for_attempt and job.spec then
      commands = {}
      for i = 1, (job.spec.max_restarts or 0) + 1 do commands[i] = pjob.run_for_attempt(base + i) end
    end
    assert(status.new_attempt(job, dir_shown, commands))
    provenance.stamp(job, now_git)
    self:changed(job)
  end
end

-- drive(opts) -> "done" | "interrupted" | "terminated", signal: launch within max_parallel and
-- wait until every job is terminal (jobrun.run.scheduler does both). The caller holds driver.lock.
--   opts.max_parallel   overrides the run's
--   opts.detached       a driver with no user: it also ends when the run is cancelled
--   opts.quiet          no progress line
function Run:drive(opts)
  local data = self.data
  local signals = assert(process.signals({ "INT", "TERM", "HUP" }))
  local interrupts = 0
  local last_save, save_interval = process.now(), SAVE_INTERVAL
  local show = progress.new(opts, data)
  local scheduler = require "jobrun.run.scheduler"
  local sched = scheduler.for_run(self,
    { max_parallel = opts.max_parallel, handles = { signals } })
  -- Failed jobs whose retry policy names their failure and that were not retried yet (an
  -- observer such as `check` saw them end while no driver ran) start again now.
  if retry.after(self, data.jobs) then sched:again() end

  -- A save that fails (a full disk) is said once and tried again: the jobs go on, and their
  -- own files keep their outcomes. Only the last save's failure stops the command (exit 3).
  local save_failed
  -- try_save() -> whether another writer had saved since the last look (true when the save
  -- failed: it may have merged before it did)
  local function try_save()
    local ok, err = pcall(self.save, self)
    if ok then save_failed = nil; return err end
    if not errors.is_user(err) then error(err, 0) end
    if not save_failed then
      show:clear()
      io.stderr:write("jobrun: ", err.message, " (will try again)\n")
    end
    save_failed = err
    return true
  end
  local function finish(outcome, sig)
    show:clear()
    signals:close()
    self:save()
    return outcome, sig
  end

  -- on_signals() -> outcome, signal when the signals read end the drive, else nil.
  local function on_signals()
    for _, sig in ipairs(signals:read()) do
      if sig == "TERM" or sig == "HUP" then
        -- Stop at once; the jobs keep running and `jobrun wait` takes the run over.
        show:clear()
        io.stderr:write(string.format("jobrun: SIG%s: stopping; %s.\n"
          .. "  Resume waiting: jobrun wait %s\n", sig, still_going(sched.running), data.run_id))
        return finish("terminated", sig)
      end
      interrupts = interrupts + 1
      if interrupts == 1 then
        -- Pending jobs stay pending (taken back from a pool): `jobrun wait` starts them later.
        sched:hold()
        show:clear()
        io.stderr:write(string.format("\njobrun: interrupted: no more jobs will start; %s.\n"
          .. "  Resume waiting: jobrun wait %s\n  Cancel them:    jobrun kill %s\n"
          .. "  Press Ctrl-C again to cancel them now.\n", still_going(sched.running), data.run_id, data.run_id))
      else
        show:clear()
        io.stderr:write("jobrun: cancelling the running jobs…\n")
        self:cancel(sched.running)
        return finish("interrupted", sig)
      end
    end
  end

  sched:launch()
  while true do
    if self:cancel_requested() then
      sched:stop("cancelled")
      if opts.detached then return finish("done") end
    end
    if sched:done() then break end
    show:update(data)
    local now = process.now()
    if now - last_save >= save_interval then
      -- What other writers saved (kill, check, another shell's wait) is taken in: every job
      -- looked at, only when there was any (each second over 10,000 jobs was a cost of its own).
      local cpu = os.clock()
      if try_save() then sched:take_in() end
      last_save = now
      -- Paced by its own cost (CPU time), as the polls are: a save of 10,000 jobs that takes
      -- 20 ms comes every 2 s, a small run's every second.
      save_interval = scheduler.paced(SAVE_INTERVAL, cpu, 10)
      if sched:done() then break end
    end
    -- Wait for a job's end, a signal, or the next progress tick / backend poll.
    local ready = sched:step(math.min(show.interval or math.huge, math.max(0, last_save + save_interval - now)))
    if #ready > 0 then
      local outcome, sig = on_signals()
      if outcome then return outcome, sig end
    end
  end
  local outcome = interrupts > 0 and "interrupted" or "done"
  return finish(outcome)
end

-- waitables(jobs) -> what each backend can wait on for these jobs (pidfds of local supervisors).
function Run:waitables(jobs)
  local groups = self:groups(jobs)
  if #groups == 1 then
    local c = groups[1][1]
    return c.backend.waitables and c.backend.waitables(c, jobs) or {}
  end
  local out = {}
  for _, g in ipairs(groups) do
    if g[1].backend.waitables then
      for _, w in ipairs(g[1].backend.waitables(g[1], g[2])) do out[#out + 1] = w end
    end
  end
  return out
end

-- by_name() -> the run's jobs by name.
function Run:by_name()
  local out = {}
  for _, job in ipairs(self.data.jobs) do out[job.name] = job end
  return out
end

-- skip(job, why): a job whose needed job did not pass: SKIPPED, never started, with why.
function Run:skip(job, why)
  if not self:finish(job, "SKIPPED", "NOT_STARTED", "skipped") then return false end
  job.fields.skipped = why
  if job.verdict == "fail" then job.mismatches = { why } end
  return true
end

-- try_driver() -> lock | nil: the run's driver lock, unless another process holds it.
function Run:try_driver()
  return fs.lock(self.dir .. "/driver.lock", false, true)
end

-- exit code of a drive's outcome, when it is not the report's.
M.SIGNAL_EXIT = { terminated = 143, interrupted = 130 }

return M
