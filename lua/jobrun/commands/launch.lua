-- jobrun launch SUITE: start the jobs and return; a detached driver starts the rest when
-- --max-parallel holds some back.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local report = require "jobrun.report.text"
local process = require "jobrun.c.process"
local run_cmd = require "jobrun.commands.run"

local command = {
  name = "launch",
  usage = "jobrun launch SUITE.lua [options]",
  summary = "launch the jobs and return at once; they keep running",
  options = options.concat(options.LAUNCH, options.OUTPUT),
  help = [[
Starts the suite's jobs and returns. Follow them from any shell with jobrun check, jobrun wait,
jobrun logs and jobrun kill. Exits 1 if a job could not be launched.]],
}

function command.run(opts, args)
  local run, lock, p = run_cmd.start(opts, args, command)
  local run_dir, data = run.dir, run.data
  run:launch_pending(p.max_parallel)
  run:save()
  local pending = 0
  local failed = 0
  local queued = 0
  for _, job in ipairs(data.jobs) do
    if job.status == "PENDING" and not job.native_id then pending = pending + 1 end
    if job.native_status == "QUEUED" then queued = queued + 1 end
    if job.status == "LAUNCH_FAILED" then failed = failed + 1 end
  end
  lock:release()
  if pending > 0 then
    -- The rest start as slots free up, driven by a process that outlives this one (a backend
    -- with a pool of its own, like local, needs none).
    local driver = process.spawn({ argv = { "/proc/self/exe", "__drive", run_dir },
      stdout = run_dir .. "/driver.log", stderr = "stdout", setsid = true })
    if driver then driver:close() end
  end
  if opts.json then
    report.write_json(data)
  end
  local out = opts.json and io.stderr or io.stdout
  -- Jobs queued to a pool of max_parallel slots: that many start now, the rest as slots free up.
  local waiting_in_pool = p.max_parallel and math.max(0, queued - p.max_parallel) or 0
  local started = #data.jobs - pending - failed - waiting_in_pool
  pending = pending + waiting_in_pool
  local function n(count, word) return string.format("%d %s%s", count, word, count == 1 and "" or "s") end
  local parts = { n(started, "job") .. " started" }
  if pending > 0 and data.suites then
    parts[#parts + 1] = string.format("%d waiting for the jobs they need (or a slot)", pending)
  elseif pending > 0 then parts[#parts + 1] = string.format("%d waiting for a slot (max_parallel %s)", pending,
    tostring(p.max_parallel)) end
  if failed > 0 then parts[#parts + 1] = string.format("%d failed to launch", failed) end
  out:write(require("jobrun.report.sanitize").format("Launched run %s: %s.\n", data.run_id, table.concat(parts, ", ")))
  out:write(require("jobrun.report.sanitize").format(
    "  jobrun check %s    # status table\n  jobrun wait %s     # block until all end\n"
    .. "  jobrun kill %s     # cancel\n", data.run_id, data.run_id, data.run_id))
  return failed > 0 and 1 or 0
end

-- __drive RUN_DIR: the detached driver behind launch.
function command.drive(run_dir)
  local run = Run.open(run_dir)
  local lock = run:try_driver()
  if not lock then return 0 end
  run:sync()
  run:recover()
  local outcome = run:drive({ quiet = true, detached = true })
  lock:release()
  require("jobrun.run.history").record(run.dir, run.data)
  if outcome == "done" then require("jobrun.report.notify").on_end(run) end
  return Run.SIGNAL_EXIT[outcome] or 0
end

return command
