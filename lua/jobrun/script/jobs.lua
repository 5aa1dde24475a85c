-- The jobs and suites a script declares (jobrun.script.api): Job and Suite handles, and how their
-- jobs get into the script's run (jobrun.script.session) — planned, reused or adopted on --resume,
-- launched as one group of the run's scheduler.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local errors = require "jobrun.base.errors"
local plan = require "jobrun.plan"
local results = require "jobrun.judge.results"
local schema = require "jobrun.suite.schema"
local verdict = require "jobrun.judge.verdict"
local analysis = require "jobrun.judge.analysis"
local Session = require "jobrun.script.session"

local jobs = {}

local function deep_eq(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- What makes two declarations of a job the same job (resume reuses a passed one).
local SPEC_KEYS = { "commands", "setup", "env", "nodes", "timeout", "max_restarts", "options", "expect", "expect_fn" }
local function same_spec(a, b)
  if not a or not b then return false end
  for _, k in ipairs(SPEC_KEYS) do
    if not deep_eq(a[k], b[k]) then return false end
  end
  return true
end

-- The session a job or suite handle belongs to; kept off the handle, which a script may look into.
local session_of = setmetatable({}, { __mode = "k" })

local Job = {}
Job.__index = Job
jobs.Job = Job

local Suite = {}
Suite.__index = Suite
jobs.Suite = Suite

-- finished(job) -> true once the job has ended and been judged.
function jobs.finished(job)
  local r = job.record
  return (r ~= nil and verdict.TERMINAL[r.status] and r.verdict ~= "pending") and true or false
end
local finished = jobs.finished

-- Declaring ---------------------------------------------------------------------------------------

-- plan_one(session, spec, where, what): a job's planned form, through the suite schema and plan.build.
function jobs.plan_one(session, spec, where, what)
  if type(spec) ~= "table" then errors.at(where, "%s needs a table: jobrun.job { name = …, run = … }", what) end
  local name = spec.name
  if type(name) ~= "string" or name == "" then errors.at(where, "%s needs a name (a non-empty string)", what) end
  local fields = {}
  for k, v in pairs(spec) do if k ~= "name" then fields[k] = v end end
  local label = string.format('job "%s"', name)
  schema.check_table("suite", fields, where, label)
  local decls = { file = session.script, source = "", suite = { name = name, where = where, fields = fields },
                  conditions = {}, condition_order = {}, parsers = {}, parser_order = {} }
  local p = plan.build(decls, { run_id = session.run_id, git = session.git })
  session:guard_git(p.git_policy, where, p.backend)
  if #p.jobs ~= 1 then errors.at(where, "%s: jobrun.job declares one job (no matrix); use a suite", label) end
  return p.jobs[1]
end

-- claim(session, name, where): the name taken for this run, or the error naming its first declaration.
local function claim(session, name, where)
  local first = session.names[name]
  if first then
    errors.at(where, "job name '%s' is already used in this run (declared at %s:%d); job names are unique in a run",
      name, first.file, first.line)
  end
  session.names[name] = where
end

-- new_job(session, pjob, where) -> a Job handle for a planned job.
function jobs.new_job(session, pjob, where)
  claim(session, pjob.name, where)
  local job = setmetatable({ name = pjob.name, pjob = pjob, where = where }, Job)
  session_of[job] = session
  return job
end

-- new_suite(session, path, options, where) -> a Suite handle, planned when launched.
function jobs.new_suite(session, path, options, where)
  local suite = setmetatable({ path = path, options = options, where = where }, Suite)
  session_of[suite] = session
  return suite
end

-- Into the run ------------------------------------------------------------------------------------

-- settle(session, job): on --resume, the run's record of that name, if it has not ended by the record,
-- asked of the backend now: it may have ended while no script watched (then it is judged with
-- this declaration's expectations when its spec is the same, and reused or run again as any
-- ended job; one still running is adopted).
local function settle(session, job)
  if not session.resume then return end
  local run = session:ensure_run(job.pjob.backend, job.where, job.pjob.options)
  for _, r in ipairs(run.data.jobs) do
    if r.name == job.name and r.native_id and not verdict.TERMINAL[r.status] then
      if same_spec(r.spec, results.record(job.pjob, session:dir_shown(), r.key).spec) and not job.planned then
        run:plan_job(job.pjob)
        job.planned = true
      end
      run:refresh({ r })
    end
  end
end

-- refuse_unended(session, job): a job of that name that has not ended in the run is adopted (waited
-- for) when its spec is the same; with another spec it cannot start again.
local function refuse_unended(session, job)
  local run = session:ensure_run(job.pjob.backend, job.where, job.pjob.options)
  for _, r in ipairs(run.data.jobs) do
    if r.name == job.name and not verdict.TERMINAL[r.status]
      and not same_spec(r.spec, results.record(job.pjob, session:dir_shown(), r.key).spec) then
      errors.at(job.where, "job '%s' of run %s has not ended (%s) and its spec has changed: wait for it "
        .. "or kill it before resuming", job.name, run.data.run_id, r.status)
    end
  end
end

-- prepare_again(session, job, existing) -> true when it must be launched: the run's earlier record
-- of the job — adopted while it has not ended, else started again as a new attempt.
local function prepare_again(session, job, existing, fresh)
  local run = session.run
  refuse_unended(session, job)
  if not job.planned then run:plan_job(job.pjob); job.planned = true end
  if not verdict.TERMINAL[existing.status] then
    -- The same job, not ended (refuse_unended saw its spec): waited for, not started again.
    job.record = existing
    if existing.native_id then
      io.stderr:write(string.format("jobrun: %s is still running in run %s (attempt %s): waiting for it\n",
        job.name, run.data.run_id, tostring(existing.attempt or 1)))
      return false
    end
    return true -- held back by a script that stopped before submitting it: submitted now
  end
  run:rerun({ existing })
  existing.spec = fresh.spec
  existing.params = fresh.params
  job.record = existing
  return true
end

-- prepare(session, job) -> true when it must be launched: its record in the run, a passed one reused
-- on --resume, one still running adopted, an earlier one started again as a new attempt.
local function prepare(session, job)
  local run = session:ensure_run(job.pjob.backend, job.where, job.pjob.options)
  local existing
  for _, r in ipairs(run.data.jobs) do if r.name == job.name then existing = r end end
  if not existing then
    job.record = run:add_job(job.pjob, session:dir_shown())
    return true
  end
  local fresh = results.record(job.pjob, session:dir_shown(), existing.key)
  if existing.verdict == "pass" and same_spec(existing.spec, fresh.spec) then
    job.record, job.reused = existing, true
    io.stderr:write(require("jobrun.report.sanitize").format(
      "jobrun: %s passed in run %s (attempt %s): not run again\n", job.name,
      run.data.run_id, tostring(existing.attempt or 1)))
    return false
  end
  return prepare_again(session, job, existing, fresh)
end

-- launch(session, list, max_parallel, fail_fast): the jobs into the run and to their backend.
function jobs.launch(session, list, max_parallel, fail_fast)
  -- Refused before any of the batch is added: none is left added but not started.
  for _, job in ipairs(list) do settle(session, job) end
  for _, job in ipairs(list) do refuse_unended(session, job) end
  local batch = {}
  for _, job in ipairs(list) do
    if prepare(session, job) then batch[#batch + 1] = job.record end
  end
  if #batch > 0 then
    -- A group of the scheduler: what its max_parallel holds back (the local backend's pool
    -- keeps it, unless fail_fast: a slot would start the next job before the failure is seen)
    -- starts as earlier ones end.
    local sched = session:scheduler()
    sched:add_group({ jobs = batch, max_parallel = max_parallel, fail_fast = fail_fast })
    session.run:save()
    sched:launch()
    session.run:save()
    session.last_save = process.now()
  end
end

-- Job ---------------------------------------------------------------------------------------------

function Job:submit()
  if not self.record then jobs.launch(session_of[self], { self }) end
  return self
end

function Job:done()
  if not self.record then return false end
  if not finished(self) then
    local session = session_of[self]
    local sched = session:scheduler()
    if #sched.running > 0 and sched:poll_due() then sched:poll(); session:save(false) end
  end
  return finished(self)
end

function Job:result()
  if not self.record then return nil end
  return results.public(self.record)
end

-- logs(): the log so far; a backend that keeps it elsewhere is asked for it first (at most
-- once per poll interval while the job runs).
function Job:logs()
  if not self.record then return "" end
  local session = session_of[self]
  if not self.reused then session:fetch({ self.record }, false) end
  return fs.read(session.run.dir .. "/" .. self.record.log_path_rel) or ""
end

function Job:wait(o)
  local session = session_of[self]
  self:submit()
  local entry
  if type(o) == "table" and o.stream and not self.reused then entry = session:stream(self.record) end
  session:block(function() return finished(self) end)
  if entry then
    session:stream_out(true)
    session:unstream(entry)
  end
  session:save(true)
  return self:result()
end

function Job:cancel()
  if not self.record then return {} end
  local session = session_of[self]
  local outcome = session.run:cancel({ self.record })
  session:save(true)
  return outcome[self.name]
end

-- Suite -------------------------------------------------------------------------------------------

-- plan_options(o, session) -> the options of plan.from_options for a suite's jobrun.suite options
-- (set as a list of AXIS=V or a table { axis = v | { v… } }, only and tag a string or a list).
local function plan_options(o, session)
  local opts = { set = o.set, only = o.only, tag = o.tag, ["state-dir"] = session.state_dir,
                 ["run-id"] = session.run_id }
  if type(opts.only) == "string" then opts.only = { opts.only } end
  if type(opts.tag) == "string" then opts.tag = { opts.tag } end
  if type(opts.set) == "table" and opts.set[1] == nil then
    local list = {}
    for axis, v in pairs(opts.set) do
      list[#list + 1] = axis .. "=" .. (type(v) == "table" and table.concat(v, ",") or tostring(v))
    end
    opts.set = list
  elseif type(opts.set) == "string" then
    opts.set = { opts.set }
  end
  return opts
end

function Suite:launch()
  if self.jobs then return self end
  local session = session_of[self]
  local p = plan.from_options(self.path, plan_options(self.options, session))
  session:guard_git(p.git_policy, p.git_where, p.backend)
  local list = {}
  for i, pjob in ipairs(p.jobs) do list[i] = jobs.new_job(session, pjob, self.where) end
  session:ensure_run(p.backend, self.where, p.jobs[1] and p.jobs[1].options)
  -- The suite's parsers (its packs') read its own jobs' logs; another suite's jobs keep theirs.
  local parsers = analysis.parsers(p.decls)
  local ctx = session.run.ctx
  ctx.job_parsers = ctx.job_parsers or {}
  for _, pjob in ipairs(p.jobs) do ctx.job_parsers[pjob.name] = parsers end
  self.jobs = list
  jobs.launch(session, list, p.max_parallel, p.fail_fast)
  return self
end

-- job(name) -> the suite's job of that name (once launched), or nil.
function Suite:job(name)
  for _, job in ipairs(self.jobs or {}) do if job.name == name then return job end end
  return nil
end

function Suite:results()
  local out = {}
  for i, job in ipairs(self.jobs or {}) do out[i] = job:result() end
  return out
end

function Suite:done()
  if not self.jobs then return false end
  for _, job in ipairs(self.jobs) do if not finished(job) then return false end end
  return true
end

function Suite:passed()
  for _, r in ipairs(self:results()) do if r.verdict ~= "pass" then return false end end
  return self.jobs ~= nil
end

function Suite:wait()
  local session = session_of[self]
  self:launch()
  session:block(function() return self:done() end)
  session:save(true)
  return self:results()
end

-- What a script calls runs shielded from signals until it returns (Session.shielded).
for _, name in ipairs({ "submit", "done", "logs", "wait", "cancel" }) do Job[name] = Session.shielded(Job[name]) end
for _, name in ipairs({ "launch", "wait" }) do Suite[name] = Session.shielded(Suite[name]) end

return jobs
