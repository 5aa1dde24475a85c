-- Built-in parsers: what any job's log can tell, whatever ran in it. A suite or pack replaces
-- one by declaring a parser of the same name. Priorities below 10 leave the last word to
-- packs that know their program (Metta's [SUMMARY] block is priority 10).
local builtin = {
  { name = "cuda_oom", contains = "CUDA out of memory", field = "termination_reason", value = "cuda_oom",
    priority = 5, description = "PyTorch ran out of GPU memory" },
  { name = "oom_killer", contains = "Out of memory: Killed process", field = "termination_reason",
    value = "oom", priority = 5, description = "the kernel's OOM killer" },
  { name = "oom_cgroup", contains = "oom-kill", field = "termination_reason", value = "oom", priority = 4,
    description = "a cgroup's OOM kill event" },
  { name = "segfault", contains = "Segmentation fault", field = "termination_reason", value = "segfault",
    priority = 3, description = "a crash reported by the shell" },
  { name = "killed", pattern = "^Killed$", field = "termination_reason", value = "killed", priority = 1,
    description = "the shell's report of a SIGKILLed command" },
  { name = "python_exception", contains = "Traceback (most recent call last):", priority = 0,
    description = "the last Python traceback's exception line, into fields.exception",
    fn = function(log, result)
      -- The exception line is the first unindented line after the traceback's header.
      local last
      for header in log:gmatch("()Traceback %(most recent call last%):") do last = header end
      if not last then return end
      for line in log:sub(last):gmatch("[^\n]+") do
        local text = line:gsub("^%b() ?", "") -- a rank or task prefix, and its one space
        if not text:match("^Traceback") and not text:match("^%s") and text:match("%S") then
          result.fields.exception = text
          result.fields.exception_type = text:match("^([%w_.]+):") or text:match("^([%w_.]+)$")
          return
        end
      end
    end },
  { name = "backend_facts", priority = -10,
    description = "what the backend saw, when the log says nothing: timeout, cancelled, a signal",
    fn = function(_, result)
      if result.termination_reason ~= nil then return end
      result.termination_reason = require("jobrun.parsers.builtin").fact(result.job)
    end },
}

-- fact(job): the termination the backend's own facts imply, or nil.
function builtin.fact(job)
  if not job then return nil end
  if job.backend_termination then return job.backend_termination end
  if job.status == "TIMEOUT" then return "timeout" end
  if job.status == "CANCELLED" then return "cancelled" end
  if job.signal then return "signal_" .. job.signal end
  return nil
end

return builtin
