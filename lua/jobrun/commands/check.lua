-- jobrun check [RUN]: refresh every job from its backend, settle results, save, print the table;
-- with --watch, again whenever a job ends (or every few seconds) until all have ended.
local options = require "jobrun.options"
local Run = require "jobrun.run"
local report = require "jobrun.report"
local state = require "jobrun.state"
local errors = require "jobrun.errors"
local term = require "jobrun.c.term"

local command = {
  name = "check",
  usage = "jobrun check [RUN] [--failed] [--status S,…] [--only GLOB] [--logs] [--tail N] [--watch] [options]",
  summary = "refresh every job's status, save it, print the table",
  options = options.concat(options.OUTPUT, options.REPORT,
    { { "watch", "flag", nil, "refresh until every job has ended (redrawn in place on a TTY)" },
      { "failed", "flag", nil, "show only the jobs whose verdict is fail" },
      { "status", "list", "S,…", "show only jobs with these statuses, e.g. RUNNING,LOST" },
      { "only", "list", "GLOB", "show only jobs whose name matches (repeatable)" } }),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. Asks the backend
once for all the run's unfinished jobs. --failed, --status and --only choose the rows shown (and
the logs --logs prints); the exit code is always the whole run's: 0 when every job has passed,
1 when any failed, 4 when none has failed but some have not finished, 3 when the backend could
not be asked. Local jobs that a pool whose slots all died never started are pending again:
check starts a detached driver that runs them in a new pool.]],
}

local STATUSES = { PENDING = true, RUNNING = true, SUCCEEDED = true, FAILED = true, TIMEOUT = true,
                   CANCELLED = true, LAUNCH_FAILED = true, LOST = true, SKIPPED = true }

-- filter(opts) -> fn(data) -> the data to show: the run with only the chosen jobs.
local function filter(opts)
  local statuses
  if opts.status and #opts.status > 0 then
    statuses = {}
    for _, item in ipairs(opts.status) do
      for s in item:gmatch("[^,%s]+") do
        local up = s:upper()
        if not STATUSES[up] then
          errors.raise("--status: unknown status '%s' (PENDING, RUNNING, SUCCEEDED, FAILED, TIMEOUT, CANCELLED, "
            .. "LAUNCH_FAILED, LOST, SKIPPED)", s)
        end
        statuses[up] = true
      end
    end
  end
  local globs = opts.only and #opts.only > 0 and opts.only or nil
  if not (opts.failed or statuses or globs) then return function(data) return data end end
  local plan = require "jobrun.plan"
  return function(data)
    local shown = {}
    for k, v in pairs(data) do shown[k] = v end
    shown.jobs = {}
    for _, job in ipairs(data.jobs) do
      local keep = (not opts.failed or job.verdict == "fail") and (not statuses or statuses[job.status])
      if keep and globs then keep = plan.matches_any(job.name, globs) end
      if keep then shown.jobs[#shown.jobs + 1] = job end
    end
    return shown
  end
end

-- exit_code(data): the whole run's; 4 when nothing has failed but jobs have not finished.
local function exit_code(data)
  local code = report.exit_code(data)
  if code == 1 then
    local sum = require("jobrun.results").summary(data.jobs)
    if sum.failed == 0 and sum.pending > 0 then return 4 end
  end
  return code
end

-- refresh(run) -> backend_error: one round of asking the backend, saved. Jobs handed back by a
-- pool whose slots all died before starting them are pending again: a detached driver (as
-- launch's) hands them to a new pool, unless a driver is at work already.
local function refresh(run)
  run:update(function(r)
    local asked = r:recover() + r:refresh()
    return asked > 0 -- a finished run's state needs no rewrite
  end)
  if (run.ctx.pool_returned or 0) > 0 then
    run.ctx.pool_returned = 0
    local lock = run:try_driver()
    if lock then
      lock:release()
      local driver = require("jobrun.c.process").spawn({ argv = { "/proc/self/exe", "__drive", run.dir },
        stdout = run.dir .. "/driver.log", stderr = "stdout", setsid = true })
      if driver then driver:close() end
    end
  end
  -- (each backend's, in a run of several)
  local said = {}
  for _, c in ipairs(run:contexts()) do
    if c.backend_error then
      said[#said + 1] = (run.data.backends and (c.backend.name or "?") .. ": " or "") .. c.backend_error
    end
  end
  return said[1] and table.concat(said, "; ") or nil
end

-- watch: wake when a local job ends (its supervisor's pidfd), else every poll interval.
local function watch(run, opts)
  local tty = term.isatty(opts.json and 2 or 1)
  local view = filter(opts)
  local backend_error = refresh(run)
  local last
  while true do
    local text = report.text(view(run.data), opts)
    if text ~= last then
      local out = opts.json and io.stderr or io.stdout
      if tty then out:write("\27[H\27[2J") end
      out:write(text, backend_error and ("(backend unreachable: " .. backend_error .. ")\n") or "")
      out:flush()
      last = text
    end
    local open = run:open_jobs()
    if #open == 0 then return backend_error end
    -- Jobs not launched yet (a driver starts them) show up in state.json: look again now and then.
    run:await(5)
    backend_error = refresh(run)
  end
end

function command.run(opts, args)
  if #args > 1 then errors.raise("check: expected at most one RUN, got %d", #args) end
  local view = filter(opts)
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local run_dir, data = run.dir, run.data
  local backend_error
  if opts.watch then
    backend_error = watch(run, opts)
    -- The table is on screen; what is left is the rest of the report.
    local rest = {}
    for k, v in pairs(opts) do rest[k] = v end
    report.emit_extras(view(data), rest, run_dir)
  else
    backend_error = refresh(run)
    report.emit(view(data), opts, run_dir)
  end
  require("jobrun.notify").on_end(run)
  if backend_error then
    errors.infra("the %s backend could not be asked (%s); every job keeps its last known status",
      type(data.backends) == "table" and table.concat(data.backends, "/") or data.backend, backend_error)
  end
  return exit_code(data)
end

return command
