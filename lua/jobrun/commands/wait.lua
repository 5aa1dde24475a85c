-- jobrun wait [RUN]: block until every job of the run has ended, then report as run does.
local options = require "jobrun.options"
local runner = require "jobrun.runner"
local report = require "jobrun.report"
local state = require "jobrun.state"
local verdict = require "jobrun.verdict"
local process = require "jobrun.c.process"
local progress = require "jobrun.progress"
local errors = require "jobrun.errors"

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

-- Another process drives the run: follow the state it writes, waking when a job ends.
local function follow(run_dir, opts)
  local first = state.read(run_dir)
  local show = progress.new(opts, first)
  local ctx = runner.context(run_dir, first, nil)
  while true do
    local data = runner.update(run_dir, function(d)
      return runner.refresh(ctx, d) > 0
    end)
    local open = false
    for _, job in ipairs(data.jobs) do if not verdict.TERMINAL[job.status] then open = true end end
    if not open then show:clear(); return data end
    show:update(data)
    local running = {}
    for _, job in ipairs(data.jobs) do
      if job.native_id and not verdict.TERMINAL[job.status] then running[#running + 1] = job end
    end
    local waits = ctx.backend.waitables and ctx.backend.waitables(ctx, running) or {}
    local handles = {}
    for i, w in ipairs(waits) do handles[i] = w.handle end
    -- Jobs the driver has yet to start show up in state.json, so look again now and then.
    process.poll(handles, 1)
  end
end

function command.run(opts, args)
  if #args > 1 then errors.raise("wait: expected at most one RUN, got %d", #args) end
  local run_dir = state.resolve(opts["state-dir"], args[1])
  local lock = runner.try_driver(run_dir)
  local data
  local outcome = "done"
  if lock then
    data = state.read(run_dir)
    local ctx = runner.context(run_dir, data, nil)
    runner.recover(ctx, data)
    runner.refresh(ctx, data)
    outcome = runner.drive(ctx, data, {})
    lock:release()
  else
    data = follow(run_dir, opts)
  end
  report.emit(data, opts, run_dir)
  if outcome == "interrupted" then return 130 end
  return report.exit_code(data)
end

return command
