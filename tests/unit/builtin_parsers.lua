-- The built-in parsers over realistic logs (tests/fixtures/logs/): each failure mode named, with
-- the noise real logs have (NCCL INFO lines, warnings, progress bars, rank prefixes); the most
-- specific cause winning when several appear; words that only look like a failure; and one
-- `jobrun analyze --json` through the binary.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local analysis = require "jobrun.judge.analysis"
local dsl = require "jobrun.suite.dsl"
local json = require "jobrun.base.json"
local helpers = require "helpers"

local fixtures = os.getenv("JOBRUN_TOP") .. "/tests/fixtures/logs/"
local dir = helpers.scratch()
local n = 0

-- log(...) -> the path of a scratch log made of fixture files ("name.log") and text lines.
local function log(...)
  local parts = {}
  for _, part in ipairs({ ... }) do
    parts[#parts + 1] = part:match("^[%w_]+%.log$") and assert(fs.read(fixtures .. part)) or part .. "\n"
  end
  n = n + 1
  local path = dir .. "/log" .. n
  assert(fs.write_atomic(path, table.concat(parts)))
  return path
end

local builtins = analysis.parsers(nil)
local function reason(path) return analysis.analyze(path, builtins).termination_reason end
local function fixture(name) return reason(fixtures .. name) end

tap.test("each failure mode in a realistic log", function()
  tap.is(fixture("nccl_timeout.log"), "nccl_timeout",
    "watchdog timeout, heartbeat monitor, c10::DistBackendError, an NCCL WARN after the abort")
  tap.is(fixture("cuda_error.log"), "cuda_error", "illegal memory access on rank 2, (rank=N) prefixes")
  tap.is(fixture("shm_bus_error.log"), "shm_exhausted", "DataLoader bus error")
  tap.is(fixture("disk_full.log"), "disk_full", "[Errno 28] while saving a checkpoint")
  tap.is(fixture("slurm_oom.log"), "oom", "Slurm's oom_kill event and srun's Out Of Memory, over srun's Killed")
  tap.is(fixture("slurm_timeout.log"), "timeout", "Slurm's JOB and STEP time limit lines")
end)

tap.test("each failure mode in the forms PyTorch, NCCL, CUDA, Slurm and the kernel print", function()
  local cases = {
    { "cuda_oom", "[rank3]: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB" },
    { "cuda_oom", "(rank=1) RuntimeError: CUDA error: out of memory" },
    { "cuda_oom", "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`" },
    { "oom", "[default0]:slurmstepd: error: Detected 2 oom_kill events in StepId=7.batch. Some of the step "
      .. "tasks have been OOM Killed." },
    { "oom", "slurmstepd: error: Detected 1 oom-kill event(s) in step 1234.batch cgroup. Some of your "
      .. "processes may have been killed by the cgroup out-of-memory handler." },
    { "oom", "[1234567.890] Out of memory: Killed process 4242 (python) total-vm:98123456kB, anon-rss:81234567kB" },
    { "oom", "[ 812.004] Memory cgroup out of memory: Killed process 5151 (pt_main_thread) total-vm:1kB" },
    { "oom", "[ 812.001] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,task=python" },
    { "oom", "srun: error: node7: tasks 0-3: Out Of Memory" },
    { "oom", "slurmstepd: error: Step 77.0 exceeded memory limit (41943040 > 20971520), being killed" },
    { "disk_full", "0: OSError: [Errno 28] No space left on device" },
    { "disk_full", "Error: ENOSPC: no space left on device, write" },
    { "disk_full", "[rank0]: OSError: [Errno 28]" },
    { "disk_full", "tar: ./ckpt/shard-00003: Wrote only 4096 of 10240 bytes: No space left on device" },
    { "shm_exhausted", "[rank2]: RuntimeError: unable to write to file </torch_31337_1954506624_7>: "
      .. "No space left on device (28)" },
    { "shm_exhausted", "OSError: [Errno 28] No space left on device: '/dev/shm/psm_8f2a'" },
    { "shm_exhausted", "(rank=0) ERROR: Unexpected bus error encountered in worker. This might be caused by "
      .. "insufficient shared memory (shm)." },
    { "cuda_error", "[rank1]: RuntimeError: CUDA error: device-side assert triggered" },
    { "cuda_error", "../aten/src/ATen/native/cuda/Indexing.cu:1236: indexSelectSmallIndex: block: [0,0,0], "
      .. "thread: [0,0,0] Assertion `srcIndex < srcSelectDimSize` failed.\nRuntimeError: CUDA error: "
      .. "device-side assert triggered" },
    { "cuda_error", "RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm(handle)`" },
    { "cuda_error", "RuntimeError: cuDNN error: CUDNN_STATUS_INTERNAL_ERROR" },
    { "nccl_error", "[rank0]: torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/"
      .. "ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), "
      .. "NCCL version 2.19.3" },
    { "nccl_error", "[rank0]: ncclSystemError: System call (e.g. socket, malloc) or external library call failed" },
    { "nccl_error", "ncclInternalError: Internal check failed." },
    { "nccl_error", "RuntimeError: NCCL error in: /opt/pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:219, "
      .. "unhandled cuda error, NCCL version 2.14.3\nncclUnhandledCudaError: Call to CUDA function failed." },
    { "nccl_error", "  what():  [PG 0 Rank 3] Process group watchdog thread terminated with exception: NCCL error: "
      .. "remote process exited or there was a network error, NCCL version 2.21.5" },
    { "nccl_error", "torch.distributed.DistBackendError: [2] is setting up NCCL communicator and retrieving "
      .. "ncclUniqueId from [0] via c10d key-value store by key '0', but store->get('0') got error: Connection "
      .. "reset by peer" },
    { "nccl_error", "node1:881:902 [0] misc/socket.cc:484 NCCL WARN socketStartConnect: Connect to 10.0.0.2<35143> "
      .. "failed : Software caused connection abort" },
    { "nccl_timeout", "[rank1]:[E302 10:11:13.9 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective "
      .. "operation timeout: WorkNCCL(SeqNum=5, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) "
      .. "ran for 600000 milliseconds before timing out." },
    { "nccl_timeout", "torch.distributed.DistBackendError: [Rank 0] Work WorkNCCL(SeqNum=9, OpType=BROADCAST, "
      .. "NumelIn=1, NumelOut=1, Timeout(ms)=60000) timed out in blocking wait (TORCH_NCCL_BLOCKING_WAIT=1)." },
    { "timeout", "slurmstepd: error: *** STEP 1234.0 ON node1 CANCELLED AT 2026-01-05T10:00:00 DUE TO TIME LIMIT ***" },
    { "preempted", "slurmstepd: error: *** JOB 1234 ON node1 CANCELLED AT 2026-01-05T10:00:00 DUE TO PREEMPTION ***" },
    { "node_fail", "slurmstepd: error: *** JOB 1234 ON node3 CANCELLED AT 2026-01-05T10:00:00 DUE TO NODE FAILURE, "
      .. "SEE SLURMCTLD LOG FOR DETAILS ***" },
    { "node_fail", "srun: error: Node failure on node3" },
    { "segfault", "0: /var/spool/slurmd/job1234/slurm_script: line 9: 4242 Segmentation fault (core dumped) ./sim" },
    { "segfault", "  traceback : Signal 11 (SIGSEGV) received by PID 4242" },
    { "killed", "Killed" },
    { "killed", "(rank=2) Killed" },
    { "killed", "srun: error: node2: task 3: Killed" },
    { "killed", "/var/spool/slurmd/job1234/slurm_script: line 12: 4567 Killed                  python train.py" },
    { "killed", "  traceback : Signal 9 (SIGKILL) received by PID 4242" },
  }
  for _, case in ipairs(cases) do
    local want, text = case[1], case[2]
    tap.is(reason(log("noise before", text, "noise after")), want, want .. ": " .. text:sub(1, 70))
  end
end)

tap.test("the most specific cause wins", function()
  tap.is(fixture("cuda_oom_nccl_timeout.log"), "cuda_oom",
    "CUDA OOM on rank 1 over the NCCL timeouts it caused on ranks 0, 2, 3")
  tap.is(fixture("nccl_error.log"), "nccl_error", "an NCCL error on one rank over the watchdog timeout on another")
  tap.is(reason(log("slurm_timeout.log", "nccl_timeout.log")), "nccl_timeout",
    "an NCCL timeout over Slurm's time limit, whichever comes last")
  tap.is(reason(log("nccl_timeout.log", "slurm_timeout.log")), "nccl_timeout", "in the other order too")
  tap.is(reason(log("cuda_error.log", "slurm_oom.log")), "oom", "the OOM killer over a CUDA error")
  tap.is(reason(log("disk_full.log", "nccl_error.log")), "disk_full", "a full disk over an NCCL error")
  tap.is(reason(log("shm_bus_error.log", "Segmentation fault (core dumped)")), "shm_exhausted",
    "too little shared memory over the crash it caused")
  tap.is(reason(log("Segmentation fault", "srun: error: node1: task 0: Killed")), "segfault", "a crash over Killed")
  tap.is(reason(log("srun: error: Node failure on node3", "Segmentation fault")), "node_fail",
    "a node failure over a crash")
  tap.is(reason(log("slurm_timeout.log", "node2:77:99 [0] NCCL WARN Net : Connection closed by remote peer")),
    "timeout", "a bare NCCL WARN line does not outrank the time limit it followed")
  tap.is(reason(log("CUDA out of memory. Tried to allocate", "srun: error: node1: task 0: Out Of Memory")),
    "cuda_oom", "GPU memory over host memory")
  tap.is(reason(log("unable to write to file </torch_1_2>: No space left on device (28)")), "shm_exhausted",
    "a full /dev/shm is not a full disk")
  local metta = analysis.parsers(dsl.load_packs({ "metta" }))
  local found = analysis.analyze(log("cuda_oom_nccl_timeout.log", "[SUMMARY] Termination reason: job_completed"),
    metta)
  tap.is(found.termination_reason, "job_completed", "a pack's marker (priority 10) keeps the last word")
  for _, p in ipairs(builtins) do
    if p.field == "termination_reason" then
      tap.ok((p.priority or 0) < 10, p.name .. ": priority below the packs'")
    end
  end
end)

tap.test("the last Python exception, under rank prefixes and interleaved ranks", function()
  local found = analysis.analyze(fixtures .. "cuda_oom_nccl_timeout.log", builtins)
  tap.is(found.fields.exception_type, "torch.OutOfMemoryError", "[rank1]: prefix, a rank 0 line in between")
  found = analysis.analyze(fixtures .. "nccl_error.log", builtins)
  tap.like(found.fields.exception, "^torch%.distributed%.DistBackendError: NCCL error in:", "srun label and [rank1]:")
  found = analysis.analyze(fixtures .. "cuda_error.log", builtins)
  tap.is(found.fields.exception, "RuntimeError: CUDA error: an illegal memory access was encountered", "(rank=2)")
end)

tap.test("jobrun's own complaint is not the job's failure", function()
  local path = log("disk_full.log", "jobrun supervisor: cannot write /run/jobs/j.result.json: No space left on device")
  local found = analysis.analyze(path, builtins,
    { status = "LOST", backend_termination = "result_unwritable: No space left on device" })
  tap.is(found.termination_reason, "result_unwritable: No space left on device",
    "a result jobrun could not write: the backend's fact, whatever the log says")
  found = analysis.analyze(path, builtins, { status = "FAILED", signal = "KILL" })
  tap.is(found.termination_reason, "disk_full", "other backend facts do not outrank the log")
end)

tap.test("words that only look like a failure", function()
  local path = log(
    "python train.py --oom_retry 3 --nccl_timeout 1800 --timeout 600 --kill-on-bad-exit=1 --shm-size 16g",
    "config: {'oom': False, 'timeout': 30, 'disk_full_ok': True, 'segfault_guard': 0, 'killed_workers': 0}",
    "gpu-node1:140220:140220 [0] NCCL INFO Bootstrap : Using eth0:10.1.0.11<0>",
    "gpu-node1:140220:140289 [0] NCCL INFO NCCL_SOCKET_IFNAME set by environment to eth0",
    "gpu-node1:140220:140289 [0] NCCL INFO Channel 00/24 :    0   1   2   3",
    "[rank0]:[W302 10:00:04.118391207 Utils.hpp:164] Warning: Environment variable NCCL_ASYNC_ERROR_HANDLING is "
      .. "deprecated; use TORCH_NCCL_ASYNC_ERROR_HANDLING instead (function operator())",
    "[rank0]: UserWarning: TORCH_NCCL_ASYNC_ERROR_HANDLING is set; NCCL errors and timeouts will abort the process",
    "docker run --oom-kill-disable --shm-size=8g image",
    "Epoch 1: 100%|##########| 500/500 [01:40<00:00,  4.98it/s, loss=0.31, oom=0, timeouts=0]",
    "eval: no CUDA errors, 0 NCCL errors, 0 processes Killed by the watchdog",
    "checkpoint saved to /dev/shm/ckpt (no space issues)",
    "Time limit: 02:00:00, preemption: allowed, node failure retries: 2",
    "step 99 done")
  tap.is(reason(path), nil, "no termination reason")
  tap.is(reason(fixtures .. "cuda_oom_nccl_timeout.log") ~= nil, true, "(while the real thing is found)")
end)

tap.test("jobrun analyze --json on a fixture", function()
  local code, out, err = helpers.sh(dir, "jobrun analyze " .. helpers.q(fixtures .. "cuda_oom_nccl_timeout.log")
    .. " --json")
  tap.is(code, 0, "exit 0")
  tap.is(err, "", "nothing on stderr")
  local doc = json.decode(out)
  tap.is(doc and doc.termination_reason, "cuda_oom", "termination_reason: cuda_oom")
end)

os.execute("rm -rf " .. helpers.q(dir))
return tap.done()
