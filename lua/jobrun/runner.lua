-- The run lifecycle: create a run, launch its jobs within max_parallel, wait for them without
-- polling (pidfds and a signalfd), settle their results, keep state.json current.
-- One process at a time drives a run (launches its pending jobs): the holder of driver.lock.
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local state = require "jobrun.state"
local results = require "jobrun.results"
local verdict = require "jobrun.verdict"
local backends = require "jobrun.backends"
local progress = require "jobrun.progress"
local errors = require "jobrun.errors"
local json = require "jobrun.json"
local analysis = require "jobrun.analysis"

local runner = {}

-- How often state.json is rewritten while jobs run; launches are recorded per job beside it.
local SAVE_INTERVAL = 1.0

-- create(plan, opts) -> run_dir, data: the run directory and its first state.json.
function runner.create(p, opts)
  local state_dir = opts["state-dir"]
  local run_dir = state.create(state_dir, p.run_id)
  local shown = state.run_dir(state_dir, p.run_id)
  local data = {
    run_id = p.run_id, suite = p.suite, suite_path = state.absolute(p.suite_path),
    backend = p.backend, git = p.git, started_at = state.iso(process.time()),
    max_parallel = p.max_parallel, fail_fast = p.fail_fast, cwd = fs.getcwd(),
    plan_options = p.plan_options, jobs = {},
  }
  local names = {}
  for i, pjob in ipairs(p.jobs) do names[i] = pjob.name end
  local keys = state.assign_keys(names)
  for i, pjob in ipairs(p.jobs) do data.jobs[i] = results.record(pjob, shown, keys[i]) end
  runner.save(run_dir, data)
  state.set_latest(state_dir, p.run_id)
  return run_dir, data
end

-- Encoded jobs, kept until the job changes: a save re-encodes only what changed since the last.
local encoded = setmetatable({}, { __mode = "k" })

function runner.changed(job) encoded[job] = nil end

local function encode_jobs(data)
  local out = {}
  for i, job in ipairs(data.jobs) do
    local text = encoded[job]
    if not text then
      text = json.encode(results.for_state(job))
      encoded[job] = text
    end
    out[i] = text
  end
  return out
end

function runner.save(run_dir, data)
  local _lock <close> = state.lock(run_dir)
  state.write(run_dir, data, encode_jobs(data))
end

-- update(run_dir, fn) -> data: read, change and write state.json under its lock; not written
-- when fn returns false (nothing changed).
function runner.update(run_dir, fn)
  local _lock <close> = state.lock(run_dir)
  local data = state.read(run_dir)
  if fn(data) ~= false then state.write(run_dir, data, encode_jobs(data)) end
  return data
end

-- context(run_dir, data, p) -> ctx: what backends and the loop share.
function runner.context(run_dir, data, p)
  local ctx = {
    run_dir = run_dir, run_id = data.run_id, cwd = data.cwd, handles = {},
    backend = backends.get(data.backend),
  }
  -- What only the suite knows — parsers (its packs, its own, the built-ins), expectation
  -- functions, the real environment with its secrets — comes from the plan when this process
  -- made it, else from the suite file as it is now (else the built-ins alone). Re-reading the
  -- suite waits until something asks: a finished run's `check` never needs it.
  local function from_plan(key)
    if not p and data.suite_path then p = runner.replan(data) or false end
    ctx.parsers = analysis.parsers(p and p.decls)
    ctx.secret_env, ctx.expects = {}, {}
    for _, pjob in ipairs(p and p.jobs or {}) do
      ctx.secret_env[pjob.name] = pjob.env
      ctx.expects[pjob.name] = pjob.expect
    end
    setmetatable(ctx, nil)
    return ctx[key]
  end
  local lazy = { parsers = true, secret_env = true, expects = true }
  return setmetatable(ctx, { __index = function(_, key) if lazy[key] then return from_plan(key) end end })
end

-- A plan rebuilt from the suite, for a process that did not make the run (expect functions,
-- unredacted environments). nil when the suite cannot be loaded any more.
function runner.replan(data)
  local ok, p = pcall(function()
    local plan = require "jobrun.plan"
    local dsl = require "jobrun.dsl"
    local o = data.plan_options or {}
    -- The run recorded git info only inside a repository; the suite sees the same then.
    local git_global = data.git and require("jobrun.git").lazy(data.cwd or ".") or nil
    local decls = dsl.load(data.suite_path, git_global)
    local rebuilt = plan.build(decls, { run_id = data.run_id, set = o.set, only = o.only, tags = o.tags,
                               backend = o.backend, timeout = o.timeout, git = data.git })
    rebuilt.decls = decls
    return rebuilt
  end)
  return ok and p or nil
end

local function expect_of(ctx, job)
  local e = ctx.expects[job.name]
  if e ~= nil then return e end
  return job.spec and job.spec.expect
end

local function active(data)
  local out = {}
  for _, job in ipairs(data.jobs) do
    if job.native_id and not verdict.TERMINAL[job.status] then out[#out + 1] = job end
  end
  return out
end

-- recover(ctx, data): pending jobs that a dead runner launched without saving it get their
-- native ids back, so that they are never launched twice.
function runner.recover(ctx, data)
  if not ctx.backend.adopt then return 0 end
  local pending = {}
  for _, job in ipairs(data.jobs) do
    if job.status == "PENDING" and not job.native_id then pending[#pending + 1] = job end
  end
  if #pending > 0 then ctx.backend.adopt(ctx, pending) end
  return #pending
end

-- refresh(ctx, data, jobs) -> how many jobs were asked about: one backend poll for the given
-- jobs (default: every unfinished one), then their results settled.
function runner.refresh(ctx, data, jobs)
  jobs = jobs or active(data)
  if #jobs > 0 then
    -- JOBRUN_TRACE=FILE: one line per poll cycle, for benchmarks and tests to count the backend
    -- queries they see against.
    local trace = os.getenv("JOBRUN_TRACE")
    if trace and trace ~= "" then fs.append(trace, string.format("poll %s %d\n", ctx.backend.name or "?", #jobs)) end
    ctx.backend.poll(ctx, jobs)
  end
  -- Backends whose logs live elsewhere fetch them once a job has ended, before analysis.
  if ctx.backend.fetch_logs then
    local ended = {}
    for _, job in ipairs(jobs) do
      if verdict.TERMINAL[job.status] and job.verdict == "pending" then ended[#ended + 1] = job end
    end
    if #ended > 0 then ctx.backend.fetch_logs(ctx, ended) end
  end
  for _, job in ipairs(jobs) do
    runner.changed(job)
    if verdict.TERMINAL[job.status] and job.verdict == "pending" then
      results.settle(job, expect_of(ctx, job), ctx.run_dir, ctx.parsers)
    end
  end
  return #jobs
end

-- submit_batch(ctx, jobs): one backend call for all of them where the backend can (launch
-- requests that go out together), else one each. A backend sets what it knows of the status.
local function submit_batch(ctx, jobs)
  for _, job in ipairs(jobs) do
    runner.changed(job)
    job.submitted_at = state.iso(process.time())
  end
  if ctx.backend.submit_many then
    ctx.backend.submit_many(ctx, jobs)
  else
    for _, job in ipairs(jobs) do
      local ok, err = ctx.backend.submit(ctx, job)
      if not ok then job.launch_error = tostring(err) end
    end
  end
  for _, job in ipairs(jobs) do
    if not job.native_id then
      job.status, job.native_status = "LAUNCH_FAILED", nil
      results.settle(job, expect_of(ctx, job), ctx.run_dir, ctx.parsers)
      job.termination_reason = job.termination_reason or "launch_failed"
      -- Why, where --json and --logs show it.
      job.fields.launch_error = job.launch_error
    end
  end
end

local function count_running(data)
  local n = 0
  for _, job in ipairs(data.jobs) do
    if job.native_id and not verdict.TERMINAL[job.status] then n = n + 1 end
  end
  return n
end

-- cancelled_before_start(ctx, job): `jobrun kill --only` got to it first.
local function cancelled_before_start(ctx, job)
  if not fs.stat(state.cancel_marker(ctx.run_dir, job)) then return false end
  runner.changed(job)
  job.status, job.native_status = "CANCELLED", "NOT_STARTED"
  results.settle(job, expect_of(ctx, job), ctx.run_dir, ctx.parsers)
  return true
end

-- launch(ctx, jobs) -> the jobs that were started.
function runner.launch(ctx, jobs)
  local batch = {}
  for _, job in ipairs(jobs) do
    if job.status == "PENDING" and not job.native_id and not cancelled_before_start(ctx, job) then
      batch[#batch + 1] = job
    end
  end
  if #batch > 0 then submit_batch(ctx, batch) end
  local started = {}
  for _, job in ipairs(batch) do
    if job.native_id and not verdict.TERMINAL[job.status] then started[#started + 1] = job end
  end
  return started
end

-- launch_pending(ctx, data, limit): start pending jobs while fewer than `limit` run.
function runner.launch_pending(ctx, data, limit)
  local want = {}
  local room = limit and (limit - count_running(data)) or math.huge
  for _, job in ipairs(data.jobs) do
    if #want >= room then break end
    if job.status == "PENDING" and not job.native_id then want[#want + 1] = job end
  end
  runner.launch(ctx, want)
end

local function any_failed(data)
  for _, job in ipairs(data.jobs) do if job.verdict == "fail" then return true end end
  return false
end

-- Jobs that will never start: marked CANCELLED, with the reason in words.
local function abandon_pending(ctx, data, why)
  for _, job in ipairs(data.jobs) do
    if job.status == "PENDING" and not job.native_id then
      runner.changed(job)
      job.status, job.native_status = "CANCELLED", "NOT_STARTED"
      results.settle(job, expect_of(ctx, job), ctx.run_dir, ctx.parsers)
      job.termination_reason = why -- more precise than the backend fact ("cancelled")
    end
  end
end

local function cancel_marker(run_dir)
  return fs.stat(run_dir .. "/cancel") ~= nil
end

-- drive(ctx, data, opts) -> "done" | "interrupted": launch within max_parallel and wait until
-- every job is terminal. The caller holds driver.lock.
function runner.drive(ctx, data, opts)
  local limit = opts.max_parallel or data.max_parallel
  local signals = assert(process.signals({ "INT", "TERM" }))
  local interrupts = 0
  local stopping = false
  local last_save = process.now()
  local show = progress.new(opts, data)
  -- Backends without pidfds are polled; the interval backs off while nothing changes.
  local base_interval = ctx.backend.poll_interval or 2
  local max_interval = ctx.backend.poll_interval_max or base_interval
  local poll_interval = base_interval

  local function stop_launching(why)
    if not stopping then stopping = true; abandon_pending(ctx, data, why) end
  end

  -- Launch order is plan order; `queue` holds the jobs not started yet, `running` the rest.
  local queue, next_queued = {}, 1
  local running = active(data)
  for _, job in ipairs(data.jobs) do
    if job.status == "PENDING" and not job.native_id then queue[#queue + 1] = job end
  end
  local function launch_more()
    if stopping then return end
    local batch = {}
    while next_queued <= #queue and (not limit or #running + #batch < limit) do
      batch[#batch + 1] = queue[next_queued]
      next_queued = next_queued + 1
    end
    for _, job in ipairs(runner.launch(ctx, batch)) do running[#running + 1] = job end
  end

  while true do
    if cancel_marker(ctx.run_dir) then stop_launching("cancelled") end
    launch_more()
    if #running == 0 and (stopping or next_queued > #queue) then break end

    show:update(data)
    local now = process.now()
    if now - last_save >= SAVE_INTERVAL then runner.save(ctx.run_dir, data); last_save = now end

    -- Wait for a supervisor to end, a signal, or the next progress tick / backend poll.
    local waits = ctx.backend.waitables and ctx.backend.waitables(ctx, running) or {}
    local handles, jobs_of = { signals }, {}
    for _, w in ipairs(waits) do handles[#handles + 1] = w.handle; jobs_of[#handles] = w.job end
    local timeout = show.interval
    if #waits < #running then timeout = math.min(timeout or math.huge, poll_interval) end
    local ready = process.poll(handles, timeout)

    local changed = {}
    for _, i in ipairs(ready) do
      if i == 1 then
        for _, sig in ipairs(signals:read()) do
          interrupts = interrupts + 1
          if interrupts == 1 then
            -- Pending jobs stay pending: `jobrun wait` starts them later.
            stopping = true
            show:clear()
            io.stderr:write(string.format("\njobrun: interrupted: no more jobs will start; the %d running "
              .. "keep running.\n  Resume waiting: jobrun wait %s\n  Cancel them:    jobrun kill %s\n"
              .. "  Press Ctrl-C again to cancel them now.\n", #running, data.run_id, data.run_id))
          else
            show:clear()
            io.stderr:write("jobrun: cancelling the running jobs…\n")
            ctx.backend.cancel(ctx, running)
            runner.refresh(ctx, data, running)
            runner.save(ctx.run_dir, data)
            signals:close()
            show:clear()
            return "interrupted", sig
          end
        end
      else
        changed[#changed + 1] = jobs_of[i]
      end
    end
    local polled = #waits < #running
    if polled then changed = running end
    local before = {}
    for i, job in ipairs(changed) do before[i] = job.status .. "/" .. tostring(job.restart_count) end
    runner.refresh(ctx, data, changed)
    if polled then
      local moved = false
      for i, job in ipairs(changed) do
        if before[i] ~= job.status .. "/" .. tostring(job.restart_count) then moved = true end
      end
      poll_interval = moved and base_interval or math.min(poll_interval * 1.5, max_interval)
    end
    local still = {}
    for _, job in ipairs(running) do
      if not verdict.TERMINAL[job.status] then still[#still + 1] = job end
    end
    running = still
    if data.fail_fast and any_failed(data) then stop_launching("fail_fast") end
  end
  show:clear()
  runner.save(ctx.run_dir, data)
  signals:close()
  if interrupts > 0 then return "interrupted" end
  return "done"
end

-- try_driver(run_dir) -> lock | nil: the run's driver lock, unless another process holds it.
function runner.try_driver(run_dir)
  return fs.lock(run_dir .. "/driver.lock", false, true)
end

-- require_backend(name): the backend, or a usage error (exit 2) — a backend module that fails
-- to load is the user's file, not an internal error.
function runner.require_backend(name)
  local ok, backend = pcall(backends.get, name)
  if not ok then errors.raise("%s", errors.is_user(backend) and backend.message or tostring(backend)) end
  return backend
end

return runner
