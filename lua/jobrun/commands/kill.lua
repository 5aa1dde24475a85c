-- jobrun kill [RUN] [--only GLOB]: cancel every unfinished job (or those matching), one
-- backend call for all of them, and say per job what happened.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local state = require "jobrun.run.store"
local plan = require "jobrun.plan"
local color = require "jobrun.report.color"
local json = require "jobrun.base.json"
local errors = require "jobrun.base.errors"
local sanitize = require "jobrun.report.sanitize"

local command = {
  name = "kill",
  usage = "jobrun kill [RUN] [--only GLOB] [options]",
  summary = "cancel every unfinished job of a run (or those matching)",
  options = options.concat({
    { "only", "list", "GLOB", "only jobs whose name matches; !GLOB: all but those (repeatable)" } },
    options.JSON, options.COMMON),
  help = [[
Per job: Killed, Withdrawn (never started: it was cancelled before it started), Already
completed (it had ended), Not found (the backend does not know it), or Failed. Exits 1 if any
kill failed. With --json, each job's result is one of killed, withdrawn, already completed,
not found, failed: ….]],
}

local function selected(job, globs)
  return not globs or #globs == 0 or plan.matches_any(job.name, globs)
end

function command.run(opts, args)
  if #args > 1 then errors.raise("kill: expected at most one RUN, got %d", #args) end
  local run = Run.open(state.resolve(opts["state-dir"], args[1]))
  local whole_run = not opts.only or #opts.only == 0
  -- Jobs still open when the kill began: one that the marks below end before it is asked
  -- about (a queued job no slot had started) was killed by this kill, not already completed.
  local open_before = {}
  for _, job in ipairs(run.data.jobs) do
    if not require("jobrun.judge.verdict").TERMINAL[job.status] then open_before[job.name] = true end
  end
  -- Tell a driver (run, wait or launch's) to start nothing more: the whole run, or these jobs.
  if whole_run then
    run:request_cancel()
  else
    local chosen = {}
    for _, job in ipairs(run.data.jobs) do
      if selected(job, opts.only) then chosen[#chosen + 1] = job end
    end
    run:request_cancel(chosen)
  end
  local outcome
  run:update(function(r)
    r:recover()
    r:refresh()
    local targets = {}
    for _, job in ipairs(r.data.jobs) do
      if selected(job, opts.only) then targets[#targets + 1] = job end
    end
    -- Expectation functions come from the suite (the run's context), as for check.
    outcome = r:cancel(targets)
    for _, job in ipairs(targets) do
      if outcome[job.name] == "already completed" and open_before[job.name] and job.status == "CANCELLED"
          and job.native_status == "NOT_STARTED" then
        outcome[job.name] = "killed"
      end
      -- Cancelled before it ever ran (pending, or queued in a pool): withdrawn, not killed.
      if outcome[job.name] == "killed" and job.status == "CANCELLED" and not job.started_at then
        outcome[job.name] = "withdrawn"
      end
    end
  end)
  local data = run.data

  local paint = color.painter(color.enabled(opts.color, opts.json and 2 or 1))
  local out = opts.json and io.stderr or io.stdout
  local counts = { killed = 0, withdrawn = 0, completed = 0, notfound = 0, failed = 0 }
  local rows = json.array()
  out:write(paint(sanitize.format("=== Kill %s ===", data.run_id), "bold"), "\n")
  for _, job in ipairs(data.jobs) do
    local r = outcome[job.name]
    if r then
      local line
      if r == "killed" then
        counts.killed = counts.killed + 1; line = paint("✓ Killed", "green")
      elseif r == "withdrawn" then
        counts.withdrawn = counts.withdrawn + 1; line = paint("✓ Withdrawn (never started)", "green")
      elseif r == "already completed" then
        counts.completed = counts.completed + 1; line = paint("✓ Already completed", "green")
      elseif r == "not found" then
        counts.notfound = counts.notfound + 1; line = paint("✓ Not found", "green")
      else
        counts.failed = counts.failed + 1; line = paint("✗ " .. sanitize.text((r:gsub("^failed", "Failed"))), "red")
      end
      out:write("  ", sanitize.text(job.name), ": ", line, "\n")
      rows[#rows + 1] = json.object({ name = job.name, result = r, status = job.status },
        { "name", "result", "status" })
    end
  end
  out:write(string.format("Killed: %d%s · Already completed: %d · Not found: %d · Failed: %d\n",
    counts.killed, counts.withdrawn > 0 and string.format(" · Withdrawn (never started): %d", counts.withdrawn) or "",
    counts.completed, counts.notfound, counts.failed))
  if opts.json then
    io.stdout:write(json.encode(json.object({ run_id = data.run_id, jobs = rows }, { "run_id", "jobs" }), true), "\n")
  end
  return counts.failed > 0 and 1 or 0
end

return command
