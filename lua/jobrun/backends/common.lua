-- What the backends share: backoff with jitter, retrying a call, and following cancelled jobs
-- until their backend says they have ended. One copy of each, so that every backend retries and
-- waits the same way.
local process = require "jobrun.c.process"

local common = {}

local status = require "jobrun.run.status"

local TERMINAL = require("jobrun.suite.schema").TERMINAL

-- backoff(try, base, cap) -> seconds to wait after the try-th failure: base·2^(try-1), at most
-- cap, with jitter (half to all of it) so that many clients do not retry in step.
function common.backoff(try, base, cap)
  return math.min(base * 2 ^ (try - 1), cap) * (0.5 + math.random() / 2)
end

-- retry(tries, fn [, base, cap]) -> fn's result | nil, err: fn() -> value | nil, err, final;
-- tried again after a backoff until it gives a value, says `final`, or tries run out.
function common.retry(tries, fn, base, cap)
  local value, err, final
  for try = 1, tries do
    value, err, final = fn(try)
    if value or final then return value, err end
    if try < tries then process.sleep(common.backoff(try, base or 1, cap or 10)) end
  end
  return nil, err
end

-- follow_cancel(poll, jobs, results, timeout, interval, wait): after a cancel request,
-- poll(jobs) until each job has ended: CANCELLED is "killed", another end "already completed";
-- one still going when the timeout passes is "failed: still <native status>". Between polls,
-- wait(interval) (a backend's event, at most that long) or a sleep. The jobs are the backend's
-- working copies (jobrun.run.status.scratch): each takes what a poll observed of it (a poll of the
-- kind before, which sets the jobs' fields itself, works too).
function common.follow_cancel(poll, jobs, results, timeout, interval, wait)
  local deadline = process.now() + (timeout or 60)
  local waiting = jobs
  while #waiting > 0 and process.now() < deadline do
    local seen = poll(waiting)
    if type(seen) == "table" then
      local by_name
      for key, obs in pairs(seen) do
        local job = key
        if type(key) == "string" then
          if not by_name then by_name = {}; for _, j in ipairs(waiting) do by_name[j.name] = j end end
          job = by_name[key]
        end
        if type(job) == "table" then status.fold(job, obs) end
      end
    end
    local still = {}
    for _, job in ipairs(waiting) do
      if job.status == "CANCELLED" then results[job.name] = "killed"
      elseif TERMINAL[job.status] then results[job.name] = "already completed"
      else still[#still + 1] = job end
    end
    waiting = still
    if #waiting > 0 then (wait or process.sleep)(interval or 0.5) end
  end
  for _, job in ipairs(waiting) do results[job.name] = "failed: still " .. tostring(job.native_status) end
  return results
end

return common
