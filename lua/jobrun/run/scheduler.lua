-- The one scheduler (issue 23): what starts when, and the one way jobrun waits for jobs. It is
-- given launch groups — each with its jobs (in launch order), `max_parallel`, `fail_fast` and
-- constraints such as `needs` (this job waits for those) — and offers step(timeout) (one turn:
-- wait, take in what ended, launch what may start) and await(cond) (turns until cond holds).
-- `run`, `rerun`, `wait` and launch's detached driver drive a run with it (Run:drive), the
-- script API runs its loop on it, and `wait`, `check --watch` and `logs --follow` follow a run
-- another process drives with an observing one (observe = true: it launches and settles nothing).
-- Waiting is never busy: pidfds and inotify of the local backend, a signalfd, and for backends
-- without them one poll per backend per cycle, the cycle backing off while nothing moves.
local process = require "jobrun.c.process"
local verdict = require "jobrun.judge.verdict"
local retry = require "jobrun.run.retry"
local needs = require "jobrun.plan.needs"

local M = {}
local Scheduler = {}
Scheduler.__index = Scheduler

local TERMINAL = verdict.TERMINAL

-- How long await waits in one step when nothing says otherwise.
M.TICK = 1.0

-- Where every running job is waited on through handles (pidfds, an inotify watch) and never
-- polled, each is still looked at once in this many seconds: a wait on events alone hangs for
-- good if one end is missed (seen once: a `wait` that took a local run over slept on with a job
-- its slot's journal said had ended, until a fresh `wait` read it at once).
M.RECONCILE = 30

local function unlaunched(job) return job.status == "PENDING" and not job.native_id end

-- new(run, opts) -> scheduler.
--   opts.groups       launch groups: { name, jobs, max_parallel, fail_fast, ctx, needs, prepare }
--                     needs(job, memo) -> nil (may start) | "wait" | "skip", why: a constraint
--                     (memo: a table fresh at each launch pass, for what every job of the group
--                     shares); prepare(job, memo) -> true, or false when the job was closed instead
--   opts.fail_fast    the whole run's: a job failing that had not failed stops every launch,
--                     the pending jobs CANCELLED (fail_fast)
--   opts.handles      more pollable handles (a signalfd): step returns the indices of those ready
--   opts.retry        false: no retry policy is applied (the script API's jobs)
--   opts.observe      launch and settle nothing: wait for the run's launched jobs (pidfds, or the
--                     backends' poll interval) and for the handles; the caller refreshes
--   opts.recheck      every step first takes in jobs that others (the caller) saw end
--   opts.on_poll(jobs) called after a poll of every running job
--   opts.tick         the longest wait of one step inside await (default M.TICK)
--   opts.poll_now     the first poll is due at once (else after one poll interval)
--   opts.backoff      false: the poll interval stays the quickest backend's
-- A poll (or a save of the run) waits at least this many times the CPU time the last one took
-- (1 % of a core).
M.PACE = 100

-- paced(interval, cpu, longest) -> interval, made at least M.PACE times the CPU time spent since
-- `cpu` (an os.clock() reading taken when the work began), but no longer than `longest` for it.
function M.paced(interval, cpu, longest)
  return math.max(interval, math.min((os.clock() - cpu) * M.PACE, longest))
end

function M.new(run, opts)
  opts = opts or {}
  local self = setmetatable({
    run = run, groups = {}, group_of = {}, handles = opts.handles or {},
    fail_fast = opts.fail_fast, retry = opts.retry ~= false, observe = opts.observe,
    recheck = opts.recheck, on_poll = opts.on_poll, tick = opts.tick or M.TICK,
    stopped = false, running = {}, at = {}, failed_before = {}, moves = 0,
    last_poll = opts.poll_now and -math.huge or process.now(),
  }, Scheduler)
  -- Backends without pidfds are polled; the interval backs off while nothing changes (the
  -- quickest backend's pace where a run has several).
  local base, max = math.huge, 0
  for _, c in ipairs(run:contexts()) do
    base = math.min(base, c.backend.poll_interval or 2)
    max = math.max(max, c.backend.poll_interval_max or c.backend.poll_interval or 2)
  end
  self.base_interval, self.max_interval = base, opts.backoff == false and base or math.max(max, base)
  self.poll_interval = base
  for _, job in ipairs(run.data.jobs) do if job.verdict == "fail" then self.failed_before[job] = true end end
  if not self.observe then
    for _, job in ipairs(run:active()) do self:track(job) end
  end
  for _, g in ipairs(opts.groups or {}) do self:add_group(g) end
  return self
end

-- for_run(run, opts) -> a scheduler of the run's own groups: one of all its jobs, or in a run
-- of several suites (a pipeline) one per suite, each with its max_parallel (opts.max_parallel:
-- --max-parallel for all), its fail_fast and its needs.
function M.for_run(run, opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.groups = M.groups_of(run, opts.max_parallel)
  if o.fail_fast == nil then o.fail_fast = run.data.fail_fast end
  return M.new(run, o)
end

-- groups_of(run, limit) -> the run's launch groups (see for_run).
function M.groups_of(run, limit)
  local data = run.data
  if not data.suites then
    return { { name = data.suite, jobs = data.jobs, max_parallel = limit or data.max_parallel, ctx = run.ctx } }
  end
  local lists = needs.lists(data)
  -- (memo: the launch pass's; the run's jobs by name are looked up once per pass)
  local function by_name(memo)
    memo.by_name = memo.by_name or run:by_name()
    return memo.by_name
  end
  -- Every job of a suite needs the same jobs: their state is read once per suite and pass.
  local function needed(job, memo)
    local sname = job.spec and job.spec.suite or ""
    memo.states = memo.states or {}
    local k = memo.states[sname]
    if not k then k = { needs.state(job, by_name(memo), lists) }; memo.states[sname] = k end
    return k[1], k[2]
  end
  -- A job whose {needs…} fields cannot be had fails to launch; the others get them filled in.
  local function prepare(job, memo)
    local env, why = needs.fill(job, by_name(memo), run.ctx.secret_env[job.name])
    if env == nil then
      run:launch_failed(job, why)
      return false
    end
    if job.spec and job.spec.outputs then rawset(run.ctx.secret_env, job.name, env) end
    return true
  end
  local info, at, out = {}, {}, {}
  for _, s in ipairs(data.suites) do info[s.name] = s end
  -- In the order of the suites' first jobs in the run.
  for _, job in ipairs(data.jobs) do
    local sname = job.spec and job.spec.suite or ""
    local g = at[sname]
    if not g then
      local s = info[sname] or {}
      g = { name = sname, jobs = {}, max_parallel = limit or s.max_parallel, fail_fast = s.fail_fast,
            ctx = run:ctx_of(job.backend), needs = needed, prepare = prepare }
      at[sname] = g
      out[#out + 1] = g
    end
    g.jobs[#g.jobs + 1] = job
  end
  return out
end

-- add_group(group): more jobs to launch (a script's suite, a batch of jobs). A job failing
-- afterwards counts for its fail_fast; one failed already does not.
function Scheduler:add_group(g)
  g.ctx = g.ctx or self.run.ctx
  g.cursor, g.busy = 1, 0
  g.failed_before = {}
  for _, job in ipairs(g.jobs) do
    self.group_of[job] = g
    if job.verdict == "fail" then g.failed_before[job] = true end
  end
  for _, job in ipairs(self.running) do if self.group_of[job] == g then g.busy = g.busy + 1 end end
  self.groups[#self.groups + 1] = g
  return g
end

-- track(job): a launched job the scheduler waits for.
function Scheduler:track(job)
  if self.at[job] then return end
  self.running[#self.running + 1] = job
  self.at[job] = #self.running
  local g = self.group_of[job]
  if g then g.busy = g.busy + 1 end
end

-- untrack(job): out of `running` in O(1) (a pool holds every job as running: a pass over all of
-- them at each event, as the jobs end one by one, was O(n²)).
local function untrack(self, job)
  local i = self.at[job]
  local running = self.running
  local last = running[#running]
  running[i], self.at[last] = last, i
  running[#running], self.at[job] = nil, nil
  local g = self.group_of[job]
  if g then g.busy = g.busy - 1 end
end

-- again(): a job is pending again (a retry, a pool's hand-back): every group looks from its start.
function Scheduler:again()
  for _, g in ipairs(self.groups) do g.cursor = 1 end
end

-- pooled(group): the backend keeps max_parallel itself (a pool of slots that takes every job at
-- once). Not with fail_fast: a slot would start the next job before anyone saw the failure, so
-- then jobs are handed over only as slots free up.
function Scheduler:pooled(g)
  return g.ctx.backend.pool and not (g.fail_fast or self.fail_fast)
end

-- launch() -> how many jobs were started or closed: in each group, its pending jobs in order,
-- within its max_parallel, those whose constraints allow it; a job whose need did not pass is
-- SKIPPED on the way, and a retry waits out its backoff.
function Scheduler:launch()
  if self.observe then return 0 end
  self:apply_fail_fast() -- (a launch failure counts before the next job starts)
  if self.stopped then return 0 end
  local run = self.run
  local picked, chosen, moved = {}, {}, 0
  local cancel_all
  local skipped, memo
  self.retry_at = nil
  repeat
    skipped = false
    memo = {}
    for _, g in ipairs(self.groups) do
      local jobs = g.jobs
      -- A job that has left "pending without an id" comes back only as a retry or from a pool
      -- (again()): the prefix of the group past that point is never looked at again.
      while g.cursor <= #jobs and not unlaunched(jobs[g.cursor]) do g.cursor = g.cursor + 1 end
      local list = picked[g] or {}
      local room = (g.max_parallel and not self:pooled(g)) and (g.max_parallel - g.busy - #list) or math.huge
      local i = g.cursor
      while room > 0 and i <= #jobs do
        local job = jobs[i]
        if unlaunched(job) and not chosen[job] then
          if retry.waiting(job) then
            if not self.retry_at or job.retry_at < self.retry_at then self.retry_at = job.retry_at end
          else
            local st, why
            if g.needs then st, why = g.needs(job, memo) end
            if st == "skip" then
              if cancel_all == nil then cancel_all = run:cancel_requested() and true or false end
              -- (while a kill is at work its jobs end CANCELLED, not SKIPPED)
              if not cancel_all then
                if not run:cancelled_before_start(job) then run:skip(job, why) end
                skipped = true
                moved = moved + 1
              end
            elseif st == nil then
              chosen[job] = true
              list[#list + 1] = job
              room = room - 1
            end
          end
        end
        i = i + 1
      end
      if #list > 0 and not picked[g] then picked[g] = list end
    end
  until not skipped
  local started = {}
  for _, g in ipairs(self.groups) do
    local list = picked[g]
    if list then
      local go = {}
      for _, job in ipairs(list) do
        if not g.prepare or g.prepare(job, memo) then go[#go + 1] = job else moved = moved + 1 end
      end
      -- A pool (the local backend's) is made per group, of its max_parallel slots.
      g.ctx.max_parallel = g.max_parallel
      for _, job in ipairs(run:launch(go)) do
        self.group_of[job] = self.group_of[job] or g
        self:track(job)
        started[#started + 1] = job
      end
      moved = moved + #go
      -- A launch failure that the retry policy names is started again.
      if self.retry and retry.after(run, go) then self:again() end
    end
  end
  self.moves = self.moves + moved
  return moved, started
end

-- take_in([jobs]): the jobs that have left (ended, or withdrawn from a pool: no native id again,
-- pending) are no longer waited for; with `jobs`, only these were refreshed. Without, other
-- writers (kill, check, another shell's wait) may have moved any job on: all are looked at.
-- Ended jobs get their retry policy here, whoever saw them end (before fail_fast, which the next
-- launch applies, sees them).
function Scheduler:take_in(jobs)
  if not jobs or jobs == self.running then jobs = table.move(self.running, 1, #self.running, 1, {}) end
  local ended
  for _, job in ipairs(jobs) do
    if self.at[job] and not (job.native_id and not TERMINAL[job.status]) then
      untrack(self, job)
      -- Handed back by a pool that ended before starting it: pending again, launched anew.
      if unlaunched(job) then self:again() end
      if TERMINAL[job.status] then ended = ended or {}; ended[#ended + 1] = job end
    end
  end
  if ended and self.retry and not self.stopped and retry.after(self.run, ended) then self:again() end
end

-- apply_fail_fast(): the run's fail_fast stops everything at a new failure; a group's cancels
-- that group's jobs not started yet.
function Scheduler:apply_fail_fast()
  if self.stopped then return end
  if self.fail_fast then
    for _, job in ipairs(self.run.data.jobs) do
      if job.verdict == "fail" and not self.failed_before[job] then return self:stop("fail_fast") end
    end
  end
  for _, g in ipairs(self.groups) do
    if g.fail_fast and not g.failed then
      for _, job in ipairs(g.jobs) do
        if job.verdict == "fail" and not g.failed_before[job] then g.failed = true; break end
      end
    end
    if g.failed then
      for i = g.cursor, #g.jobs do
        local job = g.jobs[i]
        if unlaunched(job) then
          self.run:finish(job, "CANCELLED", "NOT_STARTED", "fail_fast")
          self.moves = self.moves + 1
        end
      end
    end
  end
end

-- stop(why): nothing more starts; the jobs not started are CANCELLED with the reason in words
-- (taken back from a pool too).
function Scheduler:stop(why)
  if self.stopped then return end
  self.stopped = true
  self.run:abandon_pending(why)
  self:take_in()
end

-- hold(): nothing more starts; the jobs not started stay pending (taken back from a pool), for a
-- later `jobrun wait` to start.
function Scheduler:hold()
  self.stopped = true
  self.run:withdraw(nil)
  self:take_in()
end

-- done() -> true when nothing runs and nothing is left to start (stopped, or every job ended).
function Scheduler:done()
  return #self.running == 0 and (self.stopped or self.run:all_terminal())
end

-- unlaunched() -> how many jobs of the groups wait to be started.
function Scheduler:unlaunched()
  local n = 0
  if self.stopped then return 0 end
  for _, g in ipairs(self.groups) do
    for i = g.cursor, #g.jobs do if unlaunched(g.jobs[i]) then n = n + 1 end end
  end
  return n
end

-- poll_due() -> true when a backend without pidfds may be asked again (at most once per its
-- poll interval); one that can wait on its jobs is read whenever asked.
function Scheduler:poll_due()
  local waits_itself = true
  for _, c in ipairs(self.run:contexts()) do if not c.backend.waitables then waits_itself = false end end
  return waits_itself or process.now() - self.last_poll >= self.poll_interval
end

-- guarded(fn, ...): run fn; a signal noticed inside user code (jobrun.c.guard) ends it early and
-- is left pending for the signalfd, which the caller reads next.
local function guarded(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return true end
  if type(err) == "table" and err.signal then return false end
  error(err, 0)
end

-- settle(jobs, polled) -> false when a signal cut the logs' analysis short: the jobs refreshed
-- (one backend query per backend), the ended ones taken in; a poll's interval backs off while
-- nothing moves.
local function settle(self, jobs, polled)
  -- (two plain lists, no string a job: this runs every poll cycle over every running job)
  local status_before, restarts_before = {}, {}
  for i, job in ipairs(jobs) do status_before[i], restarts_before[i] = job.status, job.restart_count end
  local cpu = os.clock()
  if polled then self.last_poll = process.now() end
  local ok = guarded(self.run.refresh, self.run, jobs, polled)
  -- One walk: did anything move, and which jobs leave (ended, or handed back): only those are
  -- taken in (a poll of 10,000 jobs of which a few ended walks them once, not once more).
  local any_moved, leaving = false, {}
  local at = self.at
  for i, job in ipairs(jobs) do
    if status_before[i] ~= job.status or restarts_before[i] ~= job.restart_count then any_moved = true end
    if at[job] and not (job.native_id and not TERMINAL[job.status]) then leaving[#leaving + 1] = job end
  end
  if polled then
    self.poll_interval = any_moved and self.base_interval or math.min(self.poll_interval * 1.5, self.max_interval)
    -- Paced by its own cost: a poll waits at least M.PACE times the CPU time the last one
    -- took here (reading the backend's answer, a look at each job, the ended jobs' analysis;
    -- not the backend's own time, such as an API server's answer), up to the longest interval.
    -- A poll of 10 jobs takes a millisecond and keeps the backend's interval; one of 10,000
    -- takes a hundred times more, and waiting on them stays near 1 % of a core.
    self.poll_interval = M.paced(self.poll_interval, cpu, self.max_interval)
    if self.on_poll then self.on_poll(jobs) end
  end
  if #leaving > 0 then self:take_in(leaving) end
  return ok
end

-- poll(): every running job asked about now (one query per backend), the ended ones taken in.
function Scheduler:poll()
  if #self.running > 0 then settle(self, table.move(self.running, 1, #self.running, 1, {}), true) end
end

-- step(timeout) -> the indices of opts.handles that are ready, and how many jobs it started or
-- closed (launched, skipped, cancelled by fail_fast): one turn. Wait up to `timeout` seconds for
-- a launched job's end (a pidfd), a handle, or — for backends without pidfds — the poll
-- interval; refresh what may have moved (one query per backend); take in what ended (retries,
-- fail_fast); launch what may start now.
function Scheduler:step(timeout)
  local run = self.run
  local moves = self.moves
  if self.recheck then self:take_in() end
  local running = self.observe and run:active() or self.running
  local waits = run:waitables(running)
  local handles, items, covered, ready = {}, {}, 0, {}
  for i, h in ipairs(self.handles) do handles[i] = h end
  local n = #handles
  for _, w in ipairs(waits) do
    handles[#handles + 1] = w.handle
    items[#handles] = w
    covered = covered + (w.covers or 1)
    if w.ready then ready[#ready + 1] = #handles end
  end
  local polls = covered < #running
  if polls then
    local due = self.observe and self.base_interval or (self.last_poll + self.poll_interval - process.now())
    timeout = math.min(timeout, math.max(0, due))
  elseif #running > 0 and not self.observe then
    timeout = math.min(timeout, math.max(0, self.last_poll + M.RECONCILE - process.now()))
  end
  -- A retry waiting out its backoff starts when it is over.
  if self.retry_at and not self.stopped then
    timeout = math.min(timeout, math.max(0, self.retry_at - process.time()))
  end
  -- (what a backend says is ready already is taken without a wait)
  if #ready == 0 then ready = process.poll(handles, timeout)
  elseif self.observe then ready = process.poll(handles, 0) end
  local out, changed = {}, {}
  for _, i in ipairs(ready) do
    if i <= n then out[#out + 1] = i
    elseif items[i].changed then
      for _, job in ipairs(items[i].changed()) do changed[#changed + 1] = job end
    else
      changed[#changed + 1] = items[i].job
    end
  end
  if self.observe then return out, 0 end
  local since = process.now() - self.last_poll
  local polled = (polls and since >= self.poll_interval) or (not polls and #running > 0 and since >= M.RECONCILE)
  if polled then changed = table.move(running, 1, #running, 1, {}) end
  if #changed > 0 or polled then
    -- A signal came while the logs were analysed: answered now (its signalfd is ready).
    if not settle(self, changed, polled) then
      for i = 1, n do out[#out + 1] = i end
    end
  end
  self:launch()
  return out, self.moves - moves
end

-- await(cond [, deadline]) -> true once cond() holds; false at the deadline; false and the ready
-- handles' indices when one of opts.handles is ready (a signal for the caller).
function Scheduler:await(cond, deadline)
  self:launch()
  while not cond() do
    local timeout = self.tick
    if deadline then
      local left = deadline - process.now()
      if left <= 0 then return false end
      timeout = math.min(timeout, left)
    end
    local ready = self:step(timeout)
    if #ready > 0 then return false, ready end
  end
  return true
end

return M
