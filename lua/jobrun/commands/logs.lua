-- jobrun logs [RUN] JOB [--tail N] [--follow]: a job's log, whole, its end, or as it grows.
local options = require "jobrun.cli.options"
local Run = require "jobrun.run"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"
local suggest = require "jobrun.cli.suggest"
local fs = require "jobrun.c.fs"
local scan = require "jobrun.c.scan"
local errors = require "jobrun.base.errors"
local sanitize = require "jobrun.report.sanitize"

local command = {
  name = "logs",
  usage = "jobrun logs [RUN] JOB [--tail N] [--follow]",
  summary = "print a job's log (its end with --tail, as it grows with --follow)",
  options = options.concat({
    { "tail", "value", "N", "only the last N lines" },
    { "follow", "flag", nil, "keep printing as the log grows, until the job ends" },
    { "attempt", "value", "N", "an earlier attempt's log (after jobrun rerun)" },
  }, options.COMMON),
}

-- --tail shows at most this much of one line, then "… [cut: N more bytes]".
local TAIL_LINE_BYTES = 4096

function command.run(opts, args)
  if #args < 1 or #args > 2 then errors.raise("logs: expected [RUN] JOB\nUsage: %s", command.usage) end
  local run_arg, name = nil, args[1]
  if #args == 2 then run_arg, name = args[1], args[2] end
  local tail
  if opts.tail then
    tail = math.tointeger(tonumber(opts.tail))
    if not tail or tail < 0 then errors.raise("--tail must be a whole number, not '%s'", opts.tail) end
  end
  local run = Run.open(state.resolve(opts["state-dir"], run_arg))
  local data = run.data
  local job
  local names = {}
  for _, j in ipairs(data.jobs) do
    names[#names + 1] = j.name
    if j.name == name then job = j end
  end
  if not job then
    errors.raise("run %s has no job '%s'%s", data.run_id, name, suggest.hint(name, names))
  end
  local ctx = run:ctx_of(job.backend)
  -- A backend whose logs live elsewhere brings the job's log here first.
  run:fetch_logs(ctx, { job }, { force = true })
  local path = ctx.backend.log_path(ctx, job)
  if opts.attempt then
    local n = math.tointeger(tonumber(opts.attempt))
    if not n or n < 1 then errors.raise("--attempt must be a whole number from 1, not '%s'", opts.attempt) end
    local found
    for _, a in ipairs(job.attempts or {}) do
      if n > (a.attempt_base or 0) and n <= (a.attempt or 0) then found = a end
    end
    if found then
      path = run.dir .. "/" .. found.log_path_rel
      opts.follow = nil -- an earlier attempt's log is finished
    elseif n <= (job.attempt_base or 0) or (job.attempt and n > job.attempt) then
      errors.raise("job %s has no attempt %d (its latest is %s)", name, n, tostring(job.attempt or 1))
    end
  end
  -- A job that never launched has no log: say why instead of printing nothing.
  if not job.native_id and not fs.stat(path) then
    local why = (job.fields and (job.fields.launch_error or job.fields.skipped)) or job.launch_error
    if job.status == "LAUNCH_FAILED" or job.status == "CANCELLED" or job.status == "SKIPPED" then
      why = why or job.termination_reason
      io.stderr:write(sanitize.format("jobrun: job %s was never launched (%s)%s\n", name, job.status,
        why and (": " .. tostring(why)) or ""))
      return 1
    end
    if job.status == "PENDING" and not opts.follow then
      io.stderr:write(sanitize.format("jobrun: job %s has not started yet (no log)\n", name))
      return 0
    end
  end
  local text, offset
  if tail then
    -- Only the end of the log is read, backwards, in bounded blocks (scan.last_lines).
    local info
    text, info = scan.last_lines(path, tail, TAIL_LINE_BYTES)
    text, offset = text or "", info and info.size or 0
  else
    text = fs.read(path) or ""
    offset = #text
  end
  io.stdout:write(text)
  io.stdout:flush()
  if not opts.follow then return 0 end
  local remote = ctx.backend.fetch_logs ~= nil
  -- Woken early when the job's supervisor ends (jobrun.run.scheduler, observing); otherwise look for
  -- new lines 4 times a second in a local file, or at the backend's poll interval for logs
  -- fetched over the network.
  local sched = require("jobrun.run.scheduler").new(run, { observe = true,
    tick = remote and (ctx.backend.poll_interval or 2) or 0.25 })
  local function print_new()
    local st = fs.stat(path)
    if st and st.size > offset then
      local chunk = fs.read_tail(path, st.size - offset) or ""
      io.stdout:write(chunk)
      io.stdout:flush()
      offset = st.size
    end
  end
  sched:await(function()
    if remote then run:fetch_logs(ctx, { job }, { force = true }) end
    print_new()
    run:refresh({ job })
    if verdict.TERMINAL[job.status] then
      print_new() -- what it wrote as it ended
      return true
    end
    return false
  end)
  return 0
end

return command
