-- The one-line live progress of run/wait: counts and elapsed time, redrawn in place on a TTY
-- (stderr), absent off a TTY; once jobs have finished, an estimate of the time left, as GNU
-- parallel's --eta gives: from the finished jobs' mean duration and the slots (max_parallel).
local term = require "jobrun.c.term"
local process = require "jobrun.c.process"
local sanitize = require "jobrun.report.sanitize"
local state = require "jobrun.run.store"
local verdict = require "jobrun.judge.verdict"

local progress = {}
progress.__index = progress

function progress.new(opts, data)
  local self = setmetatable({ on = term.isatty(2) and not opts.quiet, started = process.now(),
                              shown = false, total = #data.jobs,
                              slots = math.tointeger(tonumber(opts.max_parallel or data.max_parallel)) }, progress)
  self.interval = self.on and 1 or nil
  return self
end

local function clock(s)
  s = math.floor(s)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, (s % 3600) // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end
progress.clock = clock

-- eta(data, slots, now) -> seconds left, or nil before any job has finished (or when none is
-- left). Each running job is taken to need the finished jobs' mean duration in all (at least
-- what it has run so far); the pending ones then fill the slots as they free, one after another.
function progress.eta(data, slots, now)
  local sum, n = 0, 0
  local running, pending = {}, 0
  for _, job in ipairs(data.jobs) do
    if verdict.TERMINAL[job.status] then
      if job.duration_s then sum = sum + job.duration_s; n = n + 1 end
    elseif job.status == "RUNNING" then
      local started = job.started_at and state.epoch(job.started_at)
      running[#running + 1] = started and math.max(0, now - started) or 0
    else
      pending = pending + 1
    end
  end
  if n == 0 or (#running == 0 and pending == 0) then return nil end
  local mean = sum / n
  slots = math.max(1, math.min(slots or math.huge, #running + pending))
  local free = {}
  for _, ran in ipairs(running) do free[#free + 1] = math.max(0, mean - ran) end
  table.sort(free)
  while #free < slots do table.insert(free, 1, 0) end
  -- more running than slots (another driver's jobs): the earliest to end free theirs first
  for _ = 1, pending do
    table.sort(free)
    free[1] = free[1] + mean
  end
  local left = 0
  for _, t in ipairs(free) do left = math.max(left, t) end
  return left
end

function progress:line(data)
  local running, pending, passed, failed = 0, 0, 0, 0
  for _, job in ipairs(data.jobs) do
    if job.verdict == "pass" then passed = passed + 1
    elseif job.verdict == "fail" then failed = failed + 1
    elseif job.status == "PENDING" then pending = pending + 1
    else running = running + 1 end
  end
  local text = string.format("%s  %d/%d done · %d running · %d pending · %d passed · %d failed",
    clock(process.now() - self.started), passed + failed, self.total, running, pending, passed, failed)
  local eta = progress.eta(data, self.slots, process.time())
  if eta then text = text .. " · ETA " .. clock(eta + 0.999) end
  return text
end

function progress:update(data)
  if not self.on then return end
  local cols = term.size(2) or 80
  local text = sanitize.text(self:line(data))
  if #text > cols - 1 then text = text:sub(1, cols - 1) end
  io.stderr:write("\r\27[K", text)
  io.stderr:flush()
  self.shown = true
end

function progress:clear()
  if self.on and self.shown then
    io.stderr:write("\r\27[K")
    io.stderr:flush()
    self.shown = false
  end
end

return progress
