-- jobrun run SUITE: expand → launch → wait → analyse → report.
local options = require "jobrun.cli.options"
local plan = require "jobrun.plan"
local Run = require "jobrun.run"
local report = require "jobrun.report.text"
local errors = require "jobrun.base.errors"
local git = require "jobrun.base.git"

local command = {
  name = "run",
  usage = "jobrun run SUITE.lua [options]",
  summary = "launch every job, wait for all of them, report; exit 0 iff all passed",
  options = options.concat(options.LAUNCH, options.FAIL_FAST, options.OUTPUT, options.REPORT),
  help = [[
Launches the suite's jobs (at most --max-parallel at once), waits for every one without polling,
and prints the report. Ctrl-C stops launching and says how to resume (jobrun wait) or cancel
(jobrun kill); a second Ctrl-C cancels the jobs this run started.]],
}

-- start(opts, args, usage) -> run, driver_lock, plan: a new run, ready to drive.
function command.start(opts, args, usage)
  if #args ~= 1 then errors.raise("%s: expected one suite file, got %d\nUsage: %s", usage.name, #args, usage.usage) end
  local p = plan.from_options(args[1], opts)
  if opts["fail-fast"] then p.fail_fast = true end -- -x: whatever the suite says
  local backend = Run.require_backend(p.backend)
  if opts["skip-git-check"] then
    if p.git_policy and (p.git_policy.require_clean or p.git_policy.require_pushed) then
      io.stderr:write("jobrun: git check skipped (--skip-git-check)\n")
    end
  else
    git.guard(p.git_info, p.git_policy, p.git_where, p.backend)
  end
  p.plan_options = { set = p.set_options, only = opts.only, tags = opts.tag, backend = opts.backend,
                     timeout = opts.timeout, suites = opts.suite }
  -- A backend that can tell before anything is created whether it can work (a server that
  -- answers, and is new enough) says so now: exit 3, no run left behind.
  -- (A run of several backends goes on without one that cannot: its jobs fail to launch.)
  if backend.check and not p.backends then backend.check(p.jobs[1] and p.jobs[1].options or {}) end
  local run = Run.create(p, opts)
  require("jobrun.report.notify").on_launch(run)
  return run, run:try_driver(), p
end

function command.run(opts, args)
  local run, lock, p = command.start(opts, args, command)
  local data = run.data
  if not opts.json then
    io.stderr:write(require("jobrun.report.sanitize").format(
      "jobrun: run %s: %s of suite%s %s on %s\n", data.run_id, require("jobrun.report.table").count(#data.jobs, "job"),
      data.suites and "s" or "", data.suites and table.concat(require("jobrun.plan.needs").suite_names(data), ", ")
      or data.suite, data.backends and table.concat(data.backends, ", ") or data.backend))
  end
  local outcome = run:drive({ max_parallel = p.max_parallel })
  lock:release()
  return command.finish(run, outcome, opts), run.dir
end

-- finish(run, outcome, opts) -> exit code: after a drive (run, wait, rerun), the report, unless
-- a SIGTERM/SIGHUP ended it (143 at once) or Ctrl-C (130 after the report).
function command.finish(run, outcome, opts)
  if outcome == "terminated" then return Run.SIGNAL_EXIT.terminated end
  -- The run has ended: into the history index (before the report, which reads it).
  require("jobrun.run.history").record(run.dir, run.data)
  report.emit(run.data, opts, run.dir)
  require("jobrun.report.notify").on_end(run)
  if outcome == "interrupted" then return Run.SIGNAL_EXIT.interrupted end
  return report.exit_code(run.data)
end

return command
