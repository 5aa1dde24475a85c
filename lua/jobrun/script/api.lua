-- What `require "jobrun"` gives a script (README "Scripts: jobs driven from Lua"), and only a
-- script: jobs and suites that a Lua program starts and waits for itself, all in one run (the
-- script's), on one event loop.
-- Blocking calls (wait, sleep, all) run that loop, a step of the run's scheduler
-- (jobrun.run.scheduler): one backend wait over every running job of the run (pidfds for local
-- jobs), one refresh (for a backend without pidfds, at most one per its poll interval, however
-- often the script asks), the jobs a suite's max_parallel held back started, the streamed logs
-- printed (fetched first, at the same pace, from a backend whose logs live elsewhere), the
-- state saved. Functions given to jobrun.all run as coroutines on the same loop.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local errors = require "jobrun.base.errors"
local plan = require "jobrun.plan"
local results = require "jobrun.judge.results"
local schema = require "jobrun.suite.schema"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local analysis = require "jobrun.judge.analysis"
local Run = require "jobrun.run"
local cguard = require "jobrun.c.guard"

local api = {}

local dsl = require "jobrun.suite.dsl"
local SAVE_INTERVAL = 1.0

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

-- new(S) -> the module a script requires. S: { opts, script (absolute path), run_id, state_dir,
-- git (record), git_info, resume (a Run or nil) }.
function api.new(S)
  S.names = {}     -- job name -> where it was declared
  S.tasks = {}     -- coroutines of jobrun.all
  S.streams = {}   -- list of { job = record, offset = n }
  S.run = S.resume
  S.last_save = process.now()
  S.fetched = setmetatable({}, { __mode = "k" }) -- job record -> when its remote log was fetched
  local M = {}

  local function dir_shown()
    return state.run_dir(S.state_dir, S.run_id)
  end

  -- ensure_run(backend): the script's run, made on first use.
  local function ensure_run(backend, where, backend_options)
    if not S.run then
      -- A backend that can tell before anything is created whether it can work says so now
      -- (exit 3), as run and launch do.
      local b = Run.require_backend(backend)
      if b.check then b.check(backend_options or {}) end
      S.run = Run.create({ run_id = S.run_id, suite = S.name, suite_path = S.script, backend = backend, git = S.git,
                           jobs = {}, plan_options = {} }, { ["state-dir"] = S.state_dir })
      S.run.data.script = S.script
      S.run.data.suite_path = nil
      S.run:save(true)
    end
    local _ = S.run.ctx.parsers -- the lazy context, made now so that jobs can join it
    if S.run.data.backend ~= backend then
      errors.at(where, "a script's run has one backend (%s); this job wants %s",
        S.run.data.backend, tostring(backend))
    end
    return S.run
  end

  local function save(force)
    if S.run and (force or process.now() - S.last_save >= SAVE_INTERVAL) then
      S.run:save(); S.last_save = process.now()
    end
  end

  local function stream_out(final)
    local n = #S.streams
    for _, s in ipairs(S.streams) do
      -- What the log gained since the last look, not the whole log again.
      local chunk = S.run and fs.read(S.run.dir .. "/" .. s.job.log_path_rel, s.offset) or nil
      if chunk and #chunk > 0 then
        local upto = final and #chunk or (chunk:match("^.*\n()") or 1) - 1
        if upto > 0 then
          local part = chunk:sub(1, upto)
          s.offset = s.offset + upto
          if n > 1 or s.prefix then
            part = part:gsub("([^\n]*)(\n?)", function(line, nl)
              if line == "" and nl == "" then return "" end
              return "[" .. s.job.name .. "] " .. line .. nl
            end)
          end
          io.stdout:write(part)
          if final and part:sub(-1) ~= "\n" then io.stdout:write("\n") end
        end
      end
    end
    io.stdout:flush()
  end

  -- fetch(jobs, force): the logs of jobs whose logs live elsewhere (SkyPilot) brought into their
  -- log files, each at most once per poll interval unless forced.
  local function fetch(jobs, force)
    local ctx = S.run.ctx
    if not ctx.backend.fetch_logs then return end
    local now, want = process.now(), {}
    for _, job in ipairs(jobs) do
      if job.native_id and not job.log_fetched
        and (force or now - (S.fetched[job] or -math.huge) >= (ctx.backend.poll_interval or 2)) then
        want[#want + 1] = job
        S.fetched[job] = now
      end
    end
    if #want > 0 then
      S.run:fetch_logs(ctx, want, { force = true })
      -- What a script can read of a log has been streamed first.
      stream_out(false)
    end
  end

  -- scheduler() -> the run's scheduler (jobrun.run.scheduler): every launch of the script is a group of
  -- it (a suite's max_parallel and fail_fast), and its step is the loop's wait. Backends without
  -- pidfds are asked at their poll interval, however often the script asks; the logs being
  -- streamed are fetched after each poll. The script's jobs get no retry policy.
  local function scheduler()
    if not S.sched then
      S.sched = require("jobrun.run.scheduler").new(S.run, {
        handles = S.signals and { S.signals } or nil, retry = false, recheck = true, poll_now = true,
        backoff = false,
        on_poll = function()
          local live = {}
          for _, s in ipairs(S.streams) do
            if not verdict.TERMINAL[s.job.status] then live[#live + 1] = s.job end
          end
          if #live > 0 then fetch(live, true) end
        end })
    end
    return S.sched
  end

  -- stop_on_signal(): Ctrl-C (or TERM, HUP) seen by the loop stops the script. The signal is
  -- left pending, so that the guard around the script (jobrun.c.guard) raises it again at every
  -- instruction: a script's own pcall cannot swallow it. The script command says what keeps
  -- running.
  local function stop_on_signal()
    local sig = require("jobrun.c.guard").pending()
    if sig then error({ signal = sig }, 0) end
  end

  -- tick(timeout): one turn of the loop.
  local function tick(timeout)
    local run = S.run
    local extra = S.signals and { S.signals } or nil
    if run then
      local ready, moved = scheduler():step(timeout)
      if #ready > 0 then stop_on_signal() end
      if moved > 0 then save(true) end
    elseif extra then
      if #process.poll(extra, timeout) > 0 then stop_on_signal() end
    elseif timeout > 0 then
      process.sleep(timeout)
    end
    stream_out(false)
    save(false)
  end

  local function runnable(task)
    return not task.done and (task.cond == nil or task.cond())
  end

  -- block(cond [, deadline]): until cond() holds; inside a task, the task yields to the loop.
  local function block(cond, deadline)
    local me = S.current
    if me then
      me.cond, me.deadline = cond, deadline
      coroutine.yield()
      cguard.hold(true) -- back in jobrun's code (see shielded)
      return
    end
    while true do
      local ran = true
      while ran do
        ran = false
        for _, task in ipairs(S.tasks) do
          if runnable(task) then
            ran = true
            S.current = task
            local held = cguard.hold(false) -- the task's own code may be stopped by a signal
            local ok, err = coroutine.resume(task.co)
            cguard.hold(held)
            S.current = nil
            if not ok then error(err, 0) end
            if coroutine.status(task.co) == "dead" then task.done = true; task.result = err end
          end
        end
      end
      if cond() then return end
      local timeout = 1.0
      local soonest = deadline
      for _, task in ipairs(S.tasks) do
        if not task.done and task.deadline and (not soonest or task.deadline < soonest) then soonest = task.deadline end
      end
      if soonest then timeout = math.max(0, math.min(timeout, soonest - process.now())) end
      if #S.streams > 0 then timeout = math.min(timeout, 0.2) end
      tick(timeout)
    end
  end

  -- guard(policy, where): a job's or suite's git = { require_clean, require_pushed }, as run
  -- and launch check it (--skip-git-check skips it).
  local function guard(policy, where, backend)
    if not policy or not (policy.require_clean or policy.require_pushed) then return end
    if S.opts["skip-git-check"] then
      io.stderr:write("jobrun: git check skipped (--skip-git-check)\n")
      return
    end
    require("jobrun.base.git").guard(S.git_info, policy, where, backend)
  end

  local function finished(job)
    local r = job.record
    return (r ~= nil and verdict.TERMINAL[r.status] and r.verdict ~= "pending") and true or false
  end

  -- Job ---------------------------------------------------------------------------------------
  local Job = {}
  Job.__index = Job

  -- plan_one(spec, where): a job's planned form, through the suite schema and plan.build.
  local function plan_one(spec, where, what)
    if type(spec) ~= "table" then errors.at(where, "%s needs a table: jobrun.job { name = …, run = … }", what) end
    local name = spec.name
    if type(name) ~= "string" or name == "" then errors.at(where, "%s needs a name (a non-empty string)", what) end
    local fields = {}
    for k, v in pairs(spec) do if k ~= "name" then fields[k] = v end end
    local label = string.format('job "%s"', name)
    schema.check_table("suite", fields, where, label)
    local decls = { file = S.script, source = "", suite = { name = name, where = where, fields = fields },
                    conditions = {}, condition_order = {}, parsers = {}, parser_order = {} }
    local p = plan.build(decls, { run_id = S.run_id, git = S.git })
    guard(p.git_policy, where, p.backend)
    if #p.jobs ~= 1 then errors.at(where, "%s: jobrun.job declares one job (no matrix); use a suite", label) end
    return p.jobs[1]
  end

  local function claim(name, where)
    local first = S.names[name]
    if first then
      errors.at(where, "job name '%s' is already used in this run (declared at %s:%d); job names are unique in a run",
        name, first.file, first.line)
    end
    S.names[name] = where
  end

  local function new_job(pjob, where)
    claim(pjob.name, where)
    return setmetatable({ name = pjob.name, pjob = pjob, where = where }, Job)
  end

  -- settle(job): on --resume, the run's record of that name, if it has not ended by the record,
  -- asked of the backend now: it may have ended while no script watched (then it is judged with
  -- this declaration's expectations when its spec is the same, and reused or run again as any
  -- ended job; one still running is adopted).
  local function settle(job)
    if not S.resume then return end
    local run = ensure_run(job.pjob.backend, job.where, job.pjob.options)
    for _, r in ipairs(run.data.jobs) do
      if r.name == job.name and r.native_id and not verdict.TERMINAL[r.status] then
        if same_spec(r.spec, results.record(job.pjob, dir_shown(), r.key).spec) and not job.planned then
          run:plan_job(job.pjob)
          job.planned = true
        end
        run:refresh({ r })
      end
    end
  end

  -- refuse_unended(job): a job of that name that has not ended in the run is adopted (waited
  -- for) when its spec is the same; with another spec it cannot start again.
  local function refuse_unended(job)
    local run = ensure_run(job.pjob.backend, job.where, job.pjob.options)
    for _, r in ipairs(run.data.jobs) do
      if r.name == job.name and not verdict.TERMINAL[r.status]
        and not same_spec(r.spec, results.record(job.pjob, dir_shown(), r.key).spec) then
        errors.at(job.where, "job '%s' of run %s has not ended (%s) and its spec has changed: wait for it "
          .. "or kill it before resuming", job.name, run.data.run_id, r.status)
      end
    end
  end

  -- prepare(job) -> true when it must be launched: its record in the run, a passed one reused
  -- on --resume, one still running adopted, an earlier one started again as a new attempt.

  local function prepare(job)
    local run = ensure_run(job.pjob.backend, job.where, job.pjob.options)
    local existing
    for _, r in ipairs(run.data.jobs) do if r.name == job.name then existing = r end end
    if not existing then
      job.record = run:add_job(job.pjob, dir_shown())
      return true
    end
    local fresh = results.record(job.pjob, dir_shown(), existing.key)
    if existing.verdict == "pass" and same_spec(existing.spec, fresh.spec) then
      job.record, job.reused = existing, true
      io.stderr:write(require("jobrun.report.sanitize").format(
        "jobrun: %s passed in run %s (attempt %s): not run again\n", job.name,
        run.data.run_id, tostring(existing.attempt or 1)))
      return false
    end
    refuse_unended(job)
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

  local function launch(jobs, max_parallel, fail_fast)
    -- Refused before any of the batch is added: none is left added but not started.
    for _, job in ipairs(jobs) do settle(job) end
    for _, job in ipairs(jobs) do refuse_unended(job) end
    local batch = {}
    for _, job in ipairs(jobs) do
      if prepare(job) then batch[#batch + 1] = job.record end
    end
    if #batch > 0 then
      -- A group of the scheduler: what its max_parallel holds back (the local backend's pool
      -- keeps it, unless fail_fast: a slot would start the next job before the failure is seen)
      -- starts as earlier ones end.
      local sched = scheduler()
      sched:add_group({ jobs = batch, max_parallel = max_parallel, fail_fast = fail_fast })
      S.run:save()
      sched:launch()
      S.run:save()
      S.last_save = process.now()
    end
  end

  function Job:submit()
    if not self.record then launch({ self }) end
    return self
  end

  function Job:done()
    if not self.record then return false end
    if not finished(self) then
      local sched = scheduler()
      if #sched.running > 0 and sched:poll_due() then sched:poll(); save(false) end
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
    if not self.reused then fetch({ self.record }, false) end
    return fs.read(S.run.dir .. "/" .. self.record.log_path_rel) or ""
  end

  function Job:wait(o)
    self:submit()
    local entry
    if type(o) == "table" and o.stream and not self.reused then
      entry = { job = self.record, offset = 0 }
      S.streams[#S.streams + 1] = entry
    end
    block(function() return finished(self) end)
    if entry then
      stream_out(true)
      for i, s in ipairs(S.streams) do if s == entry then table.remove(S.streams, i); break end end
    end
    save(true)
    return self:result()
  end

  function Job:cancel()
    if not self.record then return {} end
    local outcome = S.run:cancel({ self.record })
    save(true)
    return outcome[self.name]
  end

  function M.job(spec)
    local where = dsl.location(2)
    return new_job(plan_one(spec, where, "jobrun.job"), where)
  end

  -- Suite -------------------------------------------------------------------------------------
  local Suite = {}
  Suite.__index = Suite

  function Suite:launch()
    if self.jobs then return self end
    local o = self.options
    local opts = { set = o.set, only = o.only, tag = o.tag, ["state-dir"] = S.state_dir, ["run-id"] = S.run_id }
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
    local p = plan.from_options(self.path, opts)
    guard(p.git_policy, p.git_where, p.backend)
    local jobs = {}
    for i, pjob in ipairs(p.jobs) do jobs[i] = new_job(pjob, self.where) end
    ensure_run(p.backend, self.where, p.jobs[1] and p.jobs[1].options)
    -- The suite's parsers (its packs') read its own jobs' logs; another suite's jobs keep theirs.
    local parsers = analysis.parsers(p.decls)
    S.run.ctx.job_parsers = rawget(S.run.ctx, "job_parsers") or {}
    for _, pjob in ipairs(p.jobs) do S.run.ctx.job_parsers[pjob.name] = parsers end
    self.jobs = jobs
    launch(jobs, p.max_parallel, p.fail_fast)
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
    self:launch()
    block(function() return self:done() end)
    save(true)
    return self:results()
  end

  function M.suite(path, o)
    local where = dsl.location(2)
    if type(path) ~= "string" then errors.at(where, "jobrun.suite needs a suite file's path") end
    if o ~= nil and type(o) ~= "table" then errors.at(where, "jobrun.suite's options must be a table") end
    return setmetatable({ path = path, options = o or {}, where = where }, Suite)
  end

  -- all { a, b, f… } [, { stream = bool }] -> their results, in order: jobs and suites are
  -- started and waited for together; functions run as coroutines on the same loop.
  function M.all(list, o)
    local where = dsl.location(3) -- (the script's line: past the shielded wrapper)
    if type(list) ~= "table" then errors.at(where, "jobrun.all needs a list: jobrun.all { a, b }") end
    -- The jobs not started yet go to the backend together (one batch: one request for all where
    -- the backend can).
    local fresh, seen = {}, {}
    for _, item in ipairs(list) do
      if getmetatable(item) == Job and not item.record and not seen[item] then
        seen[item] = true
        fresh[#fresh + 1] = item
      end
    end
    launch(fresh)
    local items = {}
    for i, item in ipairs(list) do
      local mt = getmetatable(item)
      if mt == Job then
        if type(o) == "table" and o.stream and not item.reused then
          local entry = { job = item.record, offset = 0, prefix = true }
          S.streams[#S.streams + 1] = entry
          items[i] = { job = item, entry = entry }
        else
          items[i] = { job = item }
        end
      elseif mt == Suite then
        item:launch()
        items[i] = { suite = item }
      elseif type(item) == "function" then
        local task = { co = coroutine.create(item) }
        S.tasks[#S.tasks + 1] = task
        items[i] = { task = task }
      else
        errors.at(where, "jobrun.all: item %d is not a job, a suite or a function", i)
      end
    end
    local function done(it)
      if it.job then return finished(it.job) end
      if it.suite then return it.suite:done() end
      return it.task.done
    end
    block(function()
      for _, it in ipairs(items) do if not done(it) then return false end end
      return true
    end)
    stream_out(true)
    local out = {}
    for i, it in ipairs(items) do
      if it.entry then
        for k, s in ipairs(S.streams) do if s == it.entry then table.remove(S.streams, k); break end end
      end
      if it.job then out[i] = it.job:result()
      elseif it.suite then out[i] = it.suite:results()
      else out[i] = it.task.result end
    end
    save(true)
    return out
  end

  function M.sleep(seconds)
    if type(seconds) ~= "number" or seconds < 0 then
      errors.at(dsl.location(3), "jobrun.sleep needs a number of seconds")
    end
    local deadline = process.now() + seconds
    block(function() return process.now() >= deadline end, deadline)
  end

  -- The run, for the script's own reports: its id and directory.
  function M.run_id() return S.run_id end

  -- finish(): once the script has returned (or failed). Jobs it held back for a suite's
  -- max_parallel are all submitted before it ends, as slots free up; jobs keep running.
  S.finish = function()
    local n = S.sched and S.sched:unlaunched() or 0
    if n > 0 then
      io.stderr:write(string.format("jobrun: %d job(s) not submitted yet (a suite's max_parallel): "
        .. "submitting them as earlier ones end\n", n))
      block(function() return S.sched:unlaunched() == 0 end)
    end
    stream_out(true)
    if S.run then S.run:save() end
  end

  -- shielded(fn): fn as jobrun's own code called by the script. A signal waits while it runs
  -- (jobrun.c.guard.hold), so that nothing is cut off halfway (a job submitted but not
  -- recorded): the loop stops at its own safe point (tick), or the script's code once it runs
  -- again.
  local function shielded(fn)
    return function(...)
      local prev = cguard.hold(true)
      local _ <close> = setmetatable({}, { __close = function() cguard.hold(prev) end })
      return fn(...)
    end
  end
  for _, name in ipairs({ "all", "sleep" }) do M[name] = shielded(M[name]) end
  for _, name in ipairs({ "submit", "done", "logs", "wait", "cancel" }) do Job[name] = shielded(Job[name]) end
  for _, name in ipairs({ "launch", "wait" }) do Suite[name] = shielded(Suite[name]) end
  S.finish = shielded(S.finish)
  return M
end

return api
