-- jobrun logs [RUN] JOB [--tail N] [--follow]: a job's log, whole, its end, or as it grows.
local options = require "jobrun.options"
local runner = require "jobrun.runner"
local state = require "jobrun.state"
local verdict = require "jobrun.verdict"
local suggest = require "jobrun.suggest"
local process = require "jobrun.c.process"
local fs = require "jobrun.c.fs"
local scan = require "jobrun.c.scan"
local errors = require "jobrun.errors"

local command = {
  name = "logs",
  usage = "jobrun logs [RUN] JOB [--tail N] [--follow]",
  summary = "print a job's log (its end with --tail, as it grows with --follow)",
  options = options.concat({
    { "tail", "value", "N", "only the last N lines" },
    { "follow", "flag", nil, "keep printing as the log grows, until the job ends" },
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
  local run_dir = state.resolve(opts["state-dir"], run_arg)
  local data = state.read(run_dir)
  local job
  local names = {}
  for _, j in ipairs(data.jobs) do
    names[#names + 1] = j.name
    if j.name == name then job = j end
  end
  if not job then
    errors.raise("run %s has no job '%s'%s", data.run_id, name, suggest.hint(name, names))
  end
  local ctx = runner.context(run_dir, data, nil)
  -- A backend whose logs live elsewhere brings the job's log here first.
  if ctx.backend.fetch_logs then ctx.backend.fetch_logs(ctx, { job }, { force = true }) end
  local path = ctx.backend.log_path(ctx, job)
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
  while true do
    if remote then ctx.backend.fetch_logs(ctx, { job }, { force = true }) end
    local st = fs.stat(path)
    if st and st.size > offset then
      local chunk = fs.read_tail(path, st.size - offset) or ""
      io.stdout:write(chunk)
      io.stdout:flush()
      offset = st.size
    end
    runner.refresh(ctx, data, { job })
    if verdict.TERMINAL[job.status] then
      st = fs.stat(path)
      if st and st.size > offset then io.stdout:write((fs.read_tail(path, st.size - offset))) end
      return 0
    end
    -- Woken early when the job's supervisor ends; otherwise look for new lines 4 times a second
    -- in a local file, or at the backend's poll interval for logs fetched over the network.
    local waits = ctx.backend.waitables and ctx.backend.waitables(ctx, { job }) or {}
    local handles = {}
    for i, w in ipairs(waits) do handles[i] = w.handle end
    process.poll(handles, remote and (ctx.backend.poll_interval or 2) or 0.25)
  end
end

return command
