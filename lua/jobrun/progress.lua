-- The one-line live progress of run/wait: counts and elapsed time, redrawn in place on a TTY
-- (stderr), absent off a TTY.
local term = require "jobrun.c.term"
local process = require "jobrun.c.process"
local sanitize = require "jobrun.sanitize"

local progress = {}
progress.__index = progress

function progress.new(opts, data)
  local self = setmetatable({ on = term.isatty(2) and not opts.quiet, started = process.now(),
                              shown = false, total = #data.jobs }, progress)
  self.interval = self.on and 1 or nil
  return self
end

local function clock(s)
  s = math.floor(s)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, (s % 3600) // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

function progress:line(data)
  local running, pending, passed, failed = 0, 0, 0, 0
  for _, job in ipairs(data.jobs) do
    if job.verdict == "pass" then passed = passed + 1
    elseif job.verdict == "fail" then failed = failed + 1
    elseif job.status == "PENDING" then pending = pending + 1
    else running = running + 1 end
  end
  return string.format("%s  %d/%d done · %d running · %d pending · %d passed · %d failed",
    clock(process.now() - self.started), passed + failed, self.total, running, pending, passed, failed)
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
