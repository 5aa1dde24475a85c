-- Built-in parsers: what any job's log can tell, whatever ran in it. A suite or pack replaces
-- one by declaring a parser of the same name.
--
-- When several termination reasons appear in one log, the most specific cause wins (README "Suite files"):
-- a rank that ran out of GPU memory makes the other ranks' collectives time out, and the job is
-- then killed; the log shows all three, and the cause is the first. Priorities, highest first:
--   9 cuda_oom   8 oom   7 disk_full, shm_exhausted   6 cuda_error   (resources, CUDA)
--   5 nccl_error   4 nccl_timeout                                     (NCCL)
--   3 timeout, preempted, node_fail   2 segfault   1 killed           (scheduler, signals)
--   0 a bare NCCL WARN line (nccl_error when nothing else is said)
-- All stay below 10, so packs that know their program (Metta's [SUMMARY] block) keep the last
-- word. On a tie the later declaration wins: shm_exhausted is declared after disk_full because
-- a full /dev/shm also says "No space left on device".
--
-- Needles are plain text found in C wherever they occur in a line, so rank prefixes
-- ("[rank3]:", "(rank=2) ", "0: ", "[default0]:") do not matter; patterns are unanchored for
-- the same reason. Each needle is specific enough that a hyperparameter name ("--oom_retry",
-- "nccl_timeout=600") does not match.
local function reason(name, value, priority, contains, description, pattern)
  return { name = name, contains = contains, pattern = pattern, field = "termination_reason",
           value = value, priority = priority, description = description }
end

local builtin = {
  -- Resource exhaustion and CUDA errors.
  reason("cuda_oom", "cuda_oom", 9, "CUDA out of memory",
    "PyTorch ran out of GPU memory (torch.OutOfMemoryError)"),
  reason("cuda_oom_runtime", "cuda_oom", 9, "CUDA error: out of memory",
    "the CUDA runtime ran out of GPU memory"),
  reason("cuda_oom_cublas", "cuda_oom", 9, "CUBLAS_STATUS_ALLOC_FAILED",
    "cuBLAS could not allocate GPU memory"),
  reason("oom_killer", "oom", 8, "of memory: Kill",
    "the kernel's OOM killer (\"Out of memory: Killed process\", also a memory cgroup's)"),
  reason("oom_cgroup", "oom", 8, "oom-kill",
    "a cgroup's OOM kill event (kernel oom-kill:, older Slurm's oom-kill event(s))", "oom%-kill[%s:]"),
  reason("oom_slurm", "oom", 8, "oom_kill event",
    "Slurm's report of OOM-killed step tasks (Detected N oom_kill event in StepId=…)"),
  reason("oom_srun", "oom", 8, ": Out Of Memory",
    "srun's report of a task that ran out of memory", "tasks? [%d,%-]+: Out Of Memory"),
  reason("oom_slurm_limit", "oom", 8, "exceeded memory limit",
    "Slurm killing a step over its memory limit", "exceeded memory limit.-being killed"),
  reason("disk_full", "disk_full", 7, "No space left on device",
    "a write failed on a full disk ([Errno 28] No space left on device)"),
  reason("disk_full_errno", "disk_full", 7, "[Errno 28]", "Python's OSError: [Errno 28] (ENOSPC)"),
  reason("disk_full_enospc", "disk_full", 7, "ENOSPC", "an ENOSPC error"),
  reason("shm_bus_error", "shm_exhausted", 7, "insufficient shared memory (shm)",
    "a PyTorch DataLoader worker's bus error from too little shared memory"),
  reason("shm_dataloader", "shm_exhausted", 7, "out of shared memory",
    "a DataLoader worker killed by a bus error: out of shared memory"),
  reason("shm_torch_file", "shm_exhausted", 7, "unable to write to file </torch_",
    "PyTorch could not write a tensor into shared memory (/dev/shm full)"),
  reason("shm_enospc", "shm_exhausted", 7, "No space left on device",
    "No space left on device in /dev/shm", "/dev/shm"),
  reason("cuda_error", "cuda_error", 6, "CUDA error: ",
    "a CUDA runtime error (illegal memory access, launch failure, …)"),
  reason("cuda_assert", "cuda_error", 6, "device-side assert triggered", "a CUDA device-side assert"),
  reason("cuda_cublas", "cuda_error", 6, "CUBLAS_STATUS_", "a cuBLAS error (CUBLAS_STATUS_…)"),
  reason("cuda_cudnn", "cuda_error", 6, "CUDNN_STATUS_", "a cuDNN error (CUDNN_STATUS_…)"),

  -- NCCL errors, then NCCL timeouts.
  reason("nccl_error", "nccl_error", 5, "NCCL error",
    "an NCCL error raised by PyTorch (NCCL error in: …, NCCL error: …)", "NCCL error[%s:]"),
  reason("nccl_system_error", "nccl_error", 5, "ncclSystemError", "NCCL's ncclSystemError"),
  reason("nccl_internal_error", "nccl_error", 5, "ncclInternalError", "NCCL's ncclInternalError"),
  reason("nccl_cuda_error", "nccl_error", 5, "ncclUnhandledCudaError", "NCCL's ncclUnhandledCudaError"),
  reason("nccl_remote_error", "nccl_error", 5, "ncclRemoteError",
    "NCCL's ncclRemoteError (a peer exited or the network failed)"),
  -- A DistBackendError whose message starts with "[Rank N]" or "[PG …]" is a timeout's report.
  reason("nccl_dist_backend", "nccl_error", 5, "torch.distributed.DistBackendError",
    "torch.distributed.DistBackendError, other than a timeout", "DistBackendError:%s*[^%[%s]"),
  reason("nccl_dist_backend_rank", "nccl_error", 5, "torch.distributed.DistBackendError",
    "torch.distributed.DistBackendError of one rank's setup ([N] is setting up NCCL communicator…)",
    "DistBackendError:%s*%[%d+%]"),
  reason("nccl_timeout", "nccl_timeout", 4, "Watchdog caught collective operation timeout",
    "PyTorch's NCCL watchdog: a collective operation timed out"),
  reason("nccl_timeout_blocking", "nccl_timeout", 4, "timed out in blocking wait",
    "an NCCL collective timed out (TORCH_NCCL_BLOCKING_WAIT)"),
  reason("nccl_heartbeat", "nccl_timeout", 4, "Heartbeat monitor timed out",
    "PyTorch's NCCL heartbeat monitor: the watchdog itself hung"),

  -- The scheduler's facts and signals.
  reason("slurm_time_limit", "timeout", 3, "DUE TO TIME LIMIT",
    "Slurm cancelled the job or step at its time limit", "CANCELLED AT %S+ DUE TO TIME LIMIT"),
  reason("jobrun_timeout", "timeout", 3, "[jobrun] timeout after ",
    "jobrun stopping a job at its timeout (the local supervisor, Slurm's batch script)",
    "%[jobrun%] timeout after %S+: sending TERM"),
  reason("slurm_preempted", "preempted", 3, "DUE TO PREEMPTION",
    "Slurm preempted the job or step", "CANCELLED AT %S+ DUE TO PREEMPTION"),
  reason("slurm_node_fail", "node_fail", 3, "DUE TO NODE FAILURE",
    "Slurm cancelled the job or step after a node failed", "CANCELLED AT %S+ DUE TO NODE FAILURE"),
  reason("srun_node_fail", "node_fail", 3, "Node failure on", "srun's report of a node failure",
    "error: Node failure on %S"),
  reason("segfault", "segfault", 2, "Segmentation fault", "a crash reported by the shell or Python"),
  reason("segfault_signal", "segfault", 2, "(SIGSEGV)", "torchrun's report of a SIGSEGV"),
  reason("killed", "killed", 1, "Killed",
    "the shell's or srun's report of a SIGKILLed command (a line ending in Killed)", "%f[%w]Killed%s*$"),
  reason("killed_job", "killed", 1, "Killed",
    "a non-interactive shell's report of a SIGKILLed command (line N: PID Killed COMMAND)",
    "line %d+: +%d+ Killed "),
  reason("killed_signal", "killed", 1, "(SIGKILL)", "torchrun's report of a SIGKILL"),
  reason("nccl_warn", "nccl_error", 0, "NCCL WARN",
    "an NCCL WARN line, when nothing more specific is found (it also follows other failures)"),

  { name = "python_exception", contains = "Traceback (most recent call last):", priority = 0,
    description = "the last Python traceback's exception line, into fields.exception",
    fn = function(log, result)
      -- The exception line is the first unindented line after the traceback's header. When the
      -- header carries a rank prefix ("[rank1]: ", "0: ", "(rank=2) "), only the lines with the
      -- same prefix are its own: other ranks' lines interleave with them.
      local last
      for header in log:gmatch("()Traceback %(most recent call last%):") do last = header end
      if not last then return end
      local from = last
      while from > 1 and log:sub(from - 1, from - 1) ~= "\n" do from = from - 1 end
      local prefix = log:sub(from, last - 1)
      for line in log:sub(last):gmatch("[^\n]+") do
        local text
        if prefix == "" then
          text = line:gsub("^%b() ?", "") -- a rank or task prefix, and its one space
        elseif line:sub(1, #prefix) == prefix then
          text = line:sub(#prefix + 1)
        end
        if text and not text:match("^Traceback") and not text:match("^%s") and text:match("%S") then
          result.fields.exception = text
          result.fields.exception_type = text:match("^([%w_.]+):") or text:match("^([%w_.]+)$")
          return
        end
      end
    end },
  { name = "backend_facts", priority = -10,
    description = "what the backend saw, when the log says nothing: timeout, cancelled, a signal; "
      .. "and a result jobrun could not write, whatever the log says",
    fn = function(_, result)
      -- When jobrun itself could not write the job's result, the job's outcome is unknown and
      -- the log's last words may be jobrun's own complaint ("No space left on device"): the
      -- backend's fact is the answer, not a disk_full read from that complaint.
      local job = result.job
      if job and type(job.backend_termination) == "string" and job.backend_termination:find("^result_unwritable") then
        result.termination_reason = job.backend_termination
        return
      end
      if result.termination_reason ~= nil then return end
      result.termination_reason = require("jobrun.judge.parsers.builtin").fact(result.job)
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
