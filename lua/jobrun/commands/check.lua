-- jobrun check [RUN]: refresh every job from its backend, settle results, save, print the table.
local options = require "jobrun.options"
local runner = require "jobrun.runner"
local report = require "jobrun.report"
local state = require "jobrun.state"
local errors = require "jobrun.errors"

local command = {
  name = "check",
  usage = "jobrun check [RUN] [options]",
  summary = "refresh every job's status, save it, print the table",
  options = options.concat(options.OUTPUT, options.REPORT),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. Asks the backend
once for all the run's unfinished jobs. Exits 0 when every job has passed, 1 when any failed or
is still pending.]],
}

function command.run(opts, args)
  if #args > 1 then errors.raise("check: expected at most one RUN, got %d", #args) end
  local run_dir = state.resolve(opts["state-dir"], args[1])
  local backend_error
  local data = runner.update(run_dir, function(d)
    local ctx = runner.context(run_dir, d, nil)
    local asked = runner.recover(ctx, d) + runner.refresh(ctx, d)
    backend_error = ctx.backend_error
    return asked > 0 -- a finished run's state needs no rewrite
  end)
  report.emit(data, opts, run_dir)
  if backend_error then
    errors.infra("the %s backend could not be asked (%s); every job keeps its last known status",
      data.backend, backend_error)
  end
  return report.exit_code(data)
end

return command
