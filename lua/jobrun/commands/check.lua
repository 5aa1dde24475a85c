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
  usage = "jobrun check [RUN] [--logs] [--tail N] [--watch] [options]",
  summary = "refresh every job's status, save it, print the table",
  options = options.concat(options.OUTPUT, options.REPORT,
    { { "watch", "flag", nil, "refresh until every job has ended (redrawn in place on a TTY)" } }),
  help = [[
RUN is a run id, a path to a run's state.json, or omitted for the latest run. Asks the backend
once for all the run's unfinished jobs. Exits 0 when every job has passed, 1 when any failed or
is still pending, 3 when the backend could not be asked.]],
}

-- refresh(run) -> backend_error: one round of asking the backend, saved.
local function refresh(run)
  run:update(function(r)
    local asked = r:recover() + r:refresh()
    return asked > 0 -- a finished run's state needs no rewrite
  end)
  return run.ctx.backend_error
end

-- watch: wake when a local job ends (its supervisor's pidfd), else every poll interval.
local function watch(run, opts)
  local tty = term.isatty(opts.json and 2 or 1)
  local backend_error = refresh(run)
  local last
  while true do
    local text = report.text(run.data, opts)
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
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local run_dir, data = run.dir, run.data
  local backend_error
  if opts.watch then
    backend_error = watch(run, opts)
    -- The table is on screen; what is left is the rest of the report.
    local rest = {}
    for k, v in pairs(opts) do rest[k] = v end
    report.emit_extras(data, rest, run_dir)
  else
    backend_error = refresh(run)
    report.emit(data, opts, run_dir)
  end
  if backend_error then
    errors.infra("the %s backend could not be asked (%s); every job keeps its last known status",
      data.backend, backend_error)
  end
  return report.exit_code(data)
end

return command
