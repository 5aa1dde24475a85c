-- jobrun flaky [--last N] [--flips N]: the jobs that both passed and failed at one commit within
-- the last N runs, or whose verdict flipped more than --flips times, each with the runs that
-- show it (from the history index).
local options = require "jobrun.cli.options"
local history = require "jobrun.run.history"
local json = require "jobrun.base.json"
local color = require "jobrun.report.color"
local sanitize = require "jobrun.report.sanitize"
local errors = require "jobrun.base.errors"
local history_command = require "jobrun.commands.history"

local clean = sanitize.text

local command = {
  name = "flaky",
  usage = "jobrun flaky [--last N] [--suite S] [--flips N] [--json] [options]",
  summary = "jobs that both passed and failed at one commit, or flip often",
  options = options.concat({
    { "last", "value", "N", "the last N runs (default 20)" },
    { "suite", "value", "S", "only runs of this suite" },
    { "flips", "value", "N", "also jobs whose verdict changed more than N times (default 3)" },
  }, options.JSON, options.COMMON),
  help = [[
A job is flaky when, over the last N runs, one commit saw it both pass and fail (each attempt
counts, reruns included), or its verdict changed from one attempt to the next more than --flips
times. Each is listed with the runs (RUN@ATTEMPT) that show it. Exits 0.]],
}

function command.run(opts, args)
  if #args > 0 then errors.raise("flaky: takes no arguments\nUsage: %s", command.usage) end
  local last = history_command.last_of(opts)
  local flips = history.FLIPS
  if opts.flips then
    flips = math.tointeger(tonumber(opts.flips))
    if not flips or flips < 0 then errors.raise("--flips must be a whole number, not '%s'", opts.flips) end
  end
  local db = history_command.open(opts["state-dir"])
  local rows = history.attempts(db, { last = last, suite = opts.suite })
  local runs = history.recent_runs(db, last, opts.suite)
  db:close()
  local found = history.flaky(rows, flips)
  if opts.json then
    local docs = json.array()
    for i, f in ipairs(found) do
      local commits = json.array()
      for k, c in ipairs(f.commits) do
        commits[k] = json.object({ commit = c.commit, passed = json.array(c.passed), failed = json.array(c.failed) },
          { "commit", "passed", "failed" })
      end
      docs[i] = json.object({ name = f.name, passed = f.stats.passed, failed = f.stats.failed, flips = f.flips,
        commits = commits }, { "name", "passed", "failed", "flips", "commits" })
    end
    io.stdout:write(json.encode(json.object({ runs = #runs, flips_threshold = flips, jobs = docs },
      { "runs", "flips_threshold", "jobs" }), true), "\n")
    return 0
  end
  local paint = color.painter(color.enabled(opts.color, 1))
  local out = io.stdout
  out:write(paint(string.format("Flaky jobs over the last %d run%s", #runs, #runs == 1 and "" or "s"), "bold"), "\n\n")
  if #found == 0 then
    out:write("None: no job both passed and failed at one commit, or flipped more than " .. flips .. " times.\n")
    return 0
  end
  for _, f in ipairs(found) do
    out:write(paint(clean(f.name), "yellow"), string.format(": passed %d, failed %d, %d flip%s\n", f.stats.passed,
      f.stats.failed, f.flips, f.flips == 1 and "" or "s"))
    for _, c in ipairs(f.commits) do
      out:write(string.format("  at commit %s: passed in %s; failed in %s\n", c.commit:sub(1, 8),
        clean(table.concat(c.passed, ", ")), clean(table.concat(c.failed, ", "))))
    end
    if #f.commits == 0 then out:write(string.format("  flipped %d times (more than %d)\n", f.flips, flips)) end
  end
  return 0
end

return command
