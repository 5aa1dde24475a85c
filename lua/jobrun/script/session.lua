-- One script's session (jobrun.script.api): its state — the run, made on first use, the logs being
-- streamed, the coroutines of jobrun.all — and the event loop its blocking calls run: a step of the
-- run's scheduler (jobrun.run.scheduler), the streamed logs printed (fetched first, at the backend's
-- poll interval, from a backend whose logs live elsewhere), the state saved.
-- A session is the table the script command made (S), given the methods below.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local errors = require "jobrun.base.errors"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local Run = require "jobrun.run"
local cguard = require "jobrun.c.guard"

local SAVE_INTERVAL = 1.0

local Session = {}
Session.__index = Session

-- new(S) -> S as a session. S: { opts, script (absolute path), run_id, state_dir, git (record),
-- git_info, resume (a Run or nil) }; the script command sets S.signals later.
function Session.new(S)
  S.names = {}     -- job name -> where it was declared
  S.tasks = {}     -- coroutines of jobrun.all
  S.streams = {}   -- list of { job = record, offset = n }
  S.run = S.resume
  S.last_save = process.now()
  S.fetched = setmetatable({}, { __mode = "k" }) -- job record -> when its remote log was fetched
  return setmetatable(S, Session)
end

-- dir_shown() -> the run's directory as job records name it.
function Session:dir_shown()
  return state.run_dir(self.state_dir, self.run_id)
end

-- ensure_run(backend, where, backend_options) -> the script's run, made on first use.
function Session:ensure_run(backend, where, backend_options)
  if not self.run then
    -- A backend that can tell before anything is created whether it can work says so now
    -- (exit 3), as run and launch do.
    local b = Run.require_backend(backend)
    if b.check then b.check(backend_options or {}) end
    self.run = Run.create({ run_id = self.run_id, suite = self.name, suite_path = self.script, backend = backend,
                            git = self.git, jobs = {}, plan_options = {} }, { ["state-dir"] = self.state_dir })
    self.run.data.script = self.script
    self.run.data.suite_path = nil
    self.run:save(true)
  end
  if self.run.data.backend ~= backend then
    errors.at(where, "a script's run has one backend (%s); this job wants %s",
      self.run.data.backend, tostring(backend))
  end
  return self.run
end

-- save(force): the run's state, at most once per SAVE_INTERVAL unless forced.
function Session:save(force)
  if self.run and (force or process.now() - self.last_save >= SAVE_INTERVAL) then
    self.run:save(); self.last_save = process.now()
  end
end

-- guard_git(policy, where, backend): a job's or suite's git = { require_clean, require_pushed }, as
-- run and launch check it (--skip-git-check skips it).
function Session:guard_git(policy, where, backend)
  if not policy or not (policy.require_clean or policy.require_pushed) then return end
  if self.opts["skip-git-check"] then
    io.stderr:write("jobrun: git check skipped (--skip-git-check)\n")
    return
  end
  require("jobrun.base.git").guard(self.git_info, policy, where, backend)
end

-- Streamed logs -------------------------------------------------------------------------------

-- stream(record, prefix) -> an entry: the job's log printed as it grows, until unstream(entry).
function Session:stream(record, prefix)
  local entry = { job = record, offset = 0, prefix = prefix }
  self.streams[#self.streams + 1] = entry
  return entry
end

function Session:unstream(entry)
  for i, s in ipairs(self.streams) do if s == entry then table.remove(self.streams, i); break end end
end

-- with_names(text, name) -> text with each line prefixed by "[name] ".
local function with_names(text, name)
  return (text:gsub("([^\n]*)(\n?)", function(line, nl)
    if line == "" and nl == "" then return "" end
    return "[" .. name .. "] " .. line .. nl
  end))
end

-- stream_out(final): what the streamed logs gained since the last look, whole lines only unless
-- final; named by job when several are streamed (or when asked to be).
function Session:stream_out(final)
  local n = #self.streams
  for _, s in ipairs(self.streams) do
    -- What the log gained since the last look, not the whole log again.
    local chunk = self.run and fs.read(self.run.dir .. "/" .. s.job.log_path_rel, s.offset) or nil
    if chunk and #chunk > 0 then
      local upto = final and #chunk or (chunk:match("^.*\n()") or 1) - 1
      if upto > 0 then
        local part = chunk:sub(1, upto)
        s.offset = s.offset + upto
        if n > 1 or s.prefix then part = with_names(part, s.job.name) end
        io.stdout:write(part)
        if final and part:sub(-1) ~= "\n" then io.stdout:write("\n") end
      end
    end
  end
  io.stdout:flush()
end

-- fetch(jobs, force): the logs of jobs whose logs live elsewhere (SkyPilot) brought into their
-- log files, each at most once per poll interval unless forced.
function Session:fetch(jobs, force)
  local ctx = self.run.ctx
  if not ctx.backend.fetch_logs then return end
  local now, want = process.now(), {}
  for _, job in ipairs(jobs) do
    if job.native_id and not job.log_fetched
      and (force or now - (self.fetched[job] or -math.huge) >= (ctx.backend.poll_interval or 2)) then
      want[#want + 1] = job
      self.fetched[job] = now
    end
  end
  if #want > 0 then
    self.run:fetch_logs(ctx, want, { force = true })
    -- What a script can read of a log has been streamed first.
    self:stream_out(false)
  end
end

-- The loop --------------------------------------------------------------------------------------

-- scheduler() -> the run's scheduler (jobrun.run.scheduler): every launch of the script is a group of
-- it (a suite's max_parallel and fail_fast), and its step is the loop's wait. Backends without
-- pidfds are asked at their poll interval, however often the script asks; the logs being
-- streamed are fetched after each poll. The script's jobs get no retry policy.
function Session:scheduler()
  if not self.sched then
    self.sched = require("jobrun.run.scheduler").new(self.run, {
      handles = self.signals and { self.signals } or nil, retry = false, recheck = true, poll_now = true,
      backoff = false,
      on_poll = function()
        local live = {}
        for _, s in ipairs(self.streams) do
          if not verdict.TERMINAL[s.job.status] then live[#live + 1] = s.job end
        end
        if #live > 0 then self:fetch(live, true) end
      end })
  end
  return self.sched
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
function Session:tick(timeout)
  local extra = self.signals and { self.signals } or nil
  if self.run then
    local ready, moved = self:scheduler():step(timeout)
    if #ready > 0 then stop_on_signal() end
    if moved > 0 then self:save(true) end
  elseif extra then
    if #process.poll(extra, timeout) > 0 then stop_on_signal() end
  elseif timeout > 0 then
    process.sleep(timeout)
  end
  self:stream_out(false)
  self:save(false)
end

local function runnable(task)
  return not task.done and (task.cond == nil or task.cond())
end

-- run_tasks(): resume every task that can go on, until none can.
function Session:run_tasks()
  local ran = true
  while ran do
    ran = false
    for _, task in ipairs(self.tasks) do
      if runnable(task) then
        ran = true
        self.current = task
        local held = cguard.hold(false) -- the task's own code may be stopped by a signal
        local ok, err = coroutine.resume(task.co)
        cguard.hold(held)
        self.current = nil
        if not ok then error(err, 0) end
        if coroutine.status(task.co) == "dead" then task.done = true; task.result = err end
      end
    end
  end
end

-- wait_time(deadline) -> how long the loop's next turn may wait: a second at most, until the
-- soonest deadline (this one's or a task's), a fifth of one while logs are streamed.
function Session:wait_time(deadline)
  local timeout = 1.0
  local soonest = deadline
  for _, task in ipairs(self.tasks) do
    if not task.done and task.deadline and (not soonest or task.deadline < soonest) then soonest = task.deadline end
  end
  if soonest then timeout = math.max(0, math.min(timeout, soonest - process.now())) end
  if #self.streams > 0 then timeout = math.min(timeout, 0.2) end
  return timeout
end

-- block(cond [, deadline]): until cond() holds; inside a task, the task yields to the loop.
function Session:block(cond, deadline)
  local me = self.current
  if me then
    me.cond, me.deadline = cond, deadline
    coroutine.yield()
    cguard.hold(true) -- back in jobrun's code (see shielded)
    return
  end
  while true do
    self:run_tasks()
    if cond() then return end
    self:tick(self:wait_time(deadline))
  end
end

-- shielded(fn): fn as jobrun's own code called by the script. A signal waits while it runs
-- (jobrun.c.guard.hold), so that nothing is cut off halfway (a job submitted but not
-- recorded): the loop stops at its own safe point (tick), or the script's code once it runs
-- again.
function Session.shielded(fn)
  return function(...)
    local prev = cguard.hold(true)
    local _ <close> = setmetatable({}, { __close = function() cguard.hold(prev) end })
    return fn(...)
  end
end

return Session
