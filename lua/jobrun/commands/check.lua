-- jobrun check [RUN]: refresh every job from its backend, settle results, save, print the table;
-- with --watch, again whenever a job ends (or every few seconds) until all have ended.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local report = require "jobrun.report.text"
local state = require "jobrun.run.store"
local errors = require "jobrun.base.errors"
local term = require "jobrun.c.term"
local process = require "jobrun.c.process"
local sanitize = require "jobrun.report.sanitize"
local scan = require "jobrun.c.scan"
local textable = require "jobrun.report.table"
local progress = require "jobrun.report.progress"
local duration = require "jobrun.suite.duration"

local command = {
  name = "check",
  usage = "jobrun check [RUN] [--failed] [--status S,…] [--only GLOB] [--logs] [--tail N] "
    .. "[--watch [--interval D]] [options]",
  summary = "refresh every job's status, save it, print the table",
  options = options.concat(options.OUTPUT, options.REPORT,
    { { "watch", "flag", nil, "redraw until every job has ended: running jobs' last lines, the ETA" },
      { "interval", "value", "DURATION", "--watch redraws this often, and when a job ends (default 2s)" },
      { "failed", "flag", nil, "show only the jobs whose verdict is fail" },
      { "status", "list", "S,…", "show only jobs with these statuses, e.g. RUNNING,LOST" },
      { "only", "list", "GLOB", "show only jobs whose name matches; !GLOB: all but those (repeatable)" } }),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. Asks the backend
once for all the run's unfinished jobs. --failed, --status and --only choose the rows shown (and
the logs --logs prints); the exit code is always the whole run's: 0 when every job has passed,
1 when any failed, 4 when none has failed but some have not finished, 3 when the backend could
not be asked. Local jobs that a pool whose slots all died never started are pending again:
check starts a detached driver that runs them in a new pool.]],
}

local STATUSES = require("jobrun.suite.schema").STATUS_SET

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
    local sum = require("jobrun.judge.results").summary(data.jobs)
    if sum.failed == 0 and sum.pending > 0 then return 4 end
  end
  return code
end

-- refresh(run) -> backend_error: one round of asking the backend, saved; a run whose end this
-- check saw goes into the history index. Jobs handed back by a pool whose slots all died before
-- starting them are pending again: a detached driver (as launch's) hands them to a new pool,
-- unless a driver is at work already.
local function refresh(run)
  local asked = 0
  run:update(function(r)
    asked = r:recover() + r:refresh()
    return asked > 0 -- a finished run's state needs no rewrite
  end)
  if asked > 0 and run:all_terminal() then require("jobrun.run.history").record(run.dir, run.data) end
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

-- How often --watch redraws when no job has ended (the last log lines move on).
command.INTERVAL = 2

-- last_line(path) -> the log's last non-empty line as a terminal would show it now (after its
-- last carriage return: a progress bar's latest state), escape sequences out; nil when none.
-- Read by the one tail reader (scan.tail_lines), as the reports read theirs.
local function last_line(path)
  local lines = path and scan.tail_lines(path, 1, { width = 4096 })
  return lines and lines[#lines] or nil
end

-- watch_text(data, run_dir, opts, width, now) -> what --watch shows: the table, then each
-- running job's last log line (escaped, cut to width) and the ETA of the run.
function command.watch_text(data, run_dir, opts, width, now)
  local out = { report.text(data, opts) }
  local running, names = {}, 0
  for _, job in ipairs(data.jobs) do
    if job.status == "RUNNING" then
      running[#running + 1] = job
      names = math.max(names, math.min(30, textable.width(sanitize.text(job.name))))
    end
  end
  if #running > 0 then
    out[#out + 1] = "\nRunning:\n"
    for _, job in ipairs(running) do
      local name = textable.cut(sanitize.text(job.name), names)
      local line = job.log_path_rel and run_dir and last_line(run_dir .. "/" .. job.log_path_rel)
      local row = "  " .. name .. string.rep(" ", names - textable.width(name)) .. "  "
        .. (line and sanitize.text(line) or "(no output yet)")
      out[#out + 1] = textable.cut(row, width) .. "\n"
    end
  end
  local open = 0
  for _, job in ipairs(data.jobs) do
    if not require("jobrun.judge.verdict").TERMINAL[job.status] then open = open + 1 end
  end
  if open > 0 then
    local eta = progress.eta(data, math.tointeger(tonumber(data.max_parallel)), now)
    out[#out + 1] = textable.cut(eta and ("ETA: " .. progress.clock(eta + 0.999) .. " (from the mean duration of "
      .. "the jobs that have ended)") or "ETA: once a job has ended", width) .. "\n"
  end
  return table.concat(out)
end

-- watch: wake when a local job ends (its supervisor's pidfd), else every --interval (jobrun.run.scheduler).
local function watch(run, opts)
  local fd = opts.json and 2 or 1
  local tty = term.isatty(fd)
  local view = filter(opts)
  local backend_error = refresh(run)
  local interval = command.INTERVAL
  if opts.interval then
    local why
    interval, why = duration.parse(opts.interval)
    if not interval then errors.raise("--interval: %s", why) end
  end
  local last
  -- draw() -> true once every job has ended: the screen redrawn when what it shows has changed.
  local function draw()
    local width = (tty and term.size(fd)) or tonumber(os.getenv("COLUMNS") or "") or 80
    local text = command.watch_text(view(run.data), run.dir, opts, width, process.time())
    if text ~= last then
      local out = opts.json and io.stderr or io.stdout
      if tty then out:write("\27[H\27[2J") end
      out:write(text, backend_error and ("(backend unreachable: " .. backend_error .. ")\n") or "")
      out:flush()
      last = text
    end
    return #run:open_jobs() == 0
  end
  -- Jobs not launched yet (a driver starts them) show up in state.json: look again now and then.
  local sched = require("jobrun.run.scheduler").new(run, { observe = true, tick = interval })
  local first = true
  sched:await(function()
    if not first then backend_error = refresh(run) end
    first = false
    return draw()
  end)
  return backend_error
end

function command.run(opts, args)
  if #args > 1 then errors.raise("check: expected at most one RUN, got %d", #args) end
  local view = filter(opts)
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local run_dir, data = run.dir, run.data
  if opts.interval and not opts.watch then errors.raise("check: --interval goes with --watch") end
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
  require("jobrun.report.notify").on_end(run)
  if backend_error then
    errors.infra("the %s backend could not be asked (%s); every job keeps its last known status",
      type(data.backends) == "table" and table.concat(data.backends, "/") or data.backend, backend_error)
  end
  return exit_code(data)
end

return command
