-- Backends by name: the built-in ones, or a Lua module `jobrun.backends.<name>` found on
-- package.path (which includes the suite's directory), with the same interface:
--   submit(ctx, job) -> true | nil, why        (sets job.native_id; default: submit_many of one)
--   poll(ctx, jobs)                            (one query for all of them; sets job.status …)
--   cancel(ctx, jobs) -> { [name] = "killed" | "already completed" | "not found" | "failed: …" }
--   log_path(ctx, job) -> path of the job's log on this machine (default: logs/<job>.log of the run)
--   waitables(ctx, jobs) -> { {job, handle} }  (optional: pollable handles, ready at a job's end)
--   submit_many(ctx, jobs)                     (optional: launch a batch in one go)
--   fetch_logs(ctx, jobs [, {force}])          (optional: bring logs kept elsewhere into log_path)
--   adopt(ctx, jobs)                           (optional: recover launches a dead runner missed)
--   check(options)                             (optional: before a run is created; raise if unusable)
--   poll_interval                              (optional: seconds between polls without waitables)
--   work_tree                                  (optional: true when jobs run in the launching work tree)
local errors = require "jobrun.errors"

local backends = {}

function backends.get(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    errors.raise("backend name '%s' must be letters, digits or _", tostring(name))
  end
  local ok, backend = pcall(require, "jobrun.backends." .. name)
  if not ok then
    if tostring(backend):find("module 'jobrun.backends." .. name .. "' not found", 1, true) then
      errors.raise("unknown backend '%s' (built in: local, slurm, skypilot; or put a Lua module jobrun/backends/%s.lua "
        .. "on package.path)", name, name)
    end
    error(backend, 0)
  end
  backend.log_path = backend.log_path or function(ctx, job) return ctx.run_dir .. "/" .. job.log_path_rel end
  -- A backend that launches in batches launches one job as a batch of one.
  if not backend.submit and backend.submit_many then
    backend.submit = function(ctx, job)
      backend.submit_many(ctx, { job })
      if job.native_id then return true end
      return nil, job.launch_error
    end
  end
  for _, fn in ipairs({ "submit", "poll", "cancel" }) do
    if type(backend[fn]) ~= "function" then
      errors.raise("backend '%s' has no %s function", name, fn)
    end
  end
  return backend
end

return backends
