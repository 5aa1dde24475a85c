-- jobrun wait [RUN]: block until every job of the run has ended, then report as run does.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local state = require "jobrun.run.store"
local process = require "jobrun.c.process"
local progress = require "jobrun.report.progress"
local errors = require "jobrun.base.errors"

local command = {
  name = "wait",
  usage = "jobrun wait [RUN] [options]",
  summary = "block until every job of a run has ended, then report",
  options = options.concat(options.OUTPUT, options.REPORT),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. If no process is
driving the run (its runner was interrupted or killed), wait takes over: it starts the jobs that
had not started yet and waits for all of them.]],
}

-- Another process drives the run: follow the record, refreshing what has been launched and
-- waking when a job ends (jobrun.run.scheduler, observing); take the run over if that driver goes away.
local function follow(run, opts)
  local show = progress.new(opts, run.data)
  local signals <close> = assert(process.signals({ "TERM", "HUP" }))
  -- Jobs the driver has yet to start show up in state.json, so look again now and then.
  local sched = require("jobrun.run.scheduler").new(run, { observe = true, handles = { signals }, tick = 1 })
  local outcome
  local function ended()
    -- Nobody drives the run: take it over before looking, so that a job found ended is judged by
    -- the driver (its retry policy applied), not only recorded.
    local lock = run:try_driver()
    if lock then
      show:clear()
      signals:close()
      run:recover()
      outcome = run:drive({})
      lock:release()
      return true
    end
    run:update(function(r) return r:refresh() > 0 end)
    if run:all_terminal() then show:clear(); outcome = "done"; return true end
    show:update(run.data)
    return false
  end
  while not sched:await(ended) do
    if #signals:read() > 0 then show:clear(); return "terminated" end
  end
  return outcome
end

function command.run(opts, args)
  if #args > 1 then errors.raise("wait: expected at most one RUN, got %d", #args) end
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local outcome = follow(run, opts)
  return require("jobrun.commands.run").finish(run, outcome, opts)
end

return command
