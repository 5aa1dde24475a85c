-- Why a distributed job died (issue #28): the culprit rank and node, the chain of what followed,
-- read from multi-rank logs in the formats the launchers print them.
local tap = require "tap"
local fs = require "jobrun.c.fs"
local scan = require "jobrun.c.scan"
local analysis = require "jobrun.judge.analysis"
local forensics = require "jobrun.judge.forensics"

local dir = require("helpers").scratch()
local n = 0
local function log(lines)
  n = n + 1
  local path = dir .. "/log" .. n
  assert(fs.write_atomic(path, table.concat(lines, "\n") .. "\n"))
  return path
end

local builtin = analysis.parsers(nil)
local function analyze(lines, job)
  return analysis.analyze(log(lines), builtin, job)
end

tap.test("an OOM on rank 3 of 16, then every other rank's NCCL watchdog (torchrun [rankN]:)", function()
  local lines = {}
  for r = 0, 15 do
    lines[#lines + 1] = string.format("[rank%d]:[I1207 06:40:%02d.101 %d ProcessGroupNCCL.cpp:2045] step 812 loss 2.31",
      r, r, 4100 + r)
  end
  for _, l in ipairs({
    "[rank3]: Traceback (most recent call last):",
    "[rank3]:   File \"/app/train.py\", line 212, in <module>",
    "[rank3]:     loss.backward()",
    "[rank3]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 3 has a total capacity "
      .. "of 79.15 GiB of which 1.05 GiB is free. Including non-PyTorch memory, this process has 78.09 GiB "
      .. "memory in use.",
  }) do lines[#lines + 1] = l end
  for r = 0, 15 do
    if r ~= 3 then
      lines[#lines + 1] = string.format("[rank%d]:[E1207 06:50:41.%03d %d ProcessGroupNCCL.cpp:616] [Rank %d] "
        .. "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=8121, OpType=ALLREDUCE, NumelIn=4194304, "
        .. "NumelOut=4194304, Timeout(ms)=600000) ran for 600041 milliseconds before timing out.",
        r, 100 + r, 4100 + r, r)
    end
  end
  local found = analyze(lines, { nodes = { "gpu-07" } })
  tap.is(found.termination_reason, "cuda_oom", "termination: the most specific reason")
  tap.is(found.culprit and found.culprit.rank, 3, "culprit: rank 3")
  tap.is(found.culprit and found.culprit.reason, "cuda_oom", "culprit's reason")
  tap.is(found.culprit and found.culprit.node, "gpu-07", "node: the backend's node list (one node)")
  tap.like(found.culprit and found.culprit.line or "", "^%[rank3%]: torch.OutOfMemoryError", "the culprit's own line")
  tap.is(found.cause_chain,
    { { reason = "nccl_timeout", ranks = { 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 } } },
    "chain: the watchdogs of the 15 others")
  tap.is(forensics.line(found.culprit, found.cause_chain, 1),
    "rank 3 (node gpu-07): cuda_oom → nccl_timeout on ranks 0–2, 4–15 → exit 1", "summary line")
end)

tap.test("a segfault on one node, then NCCL errors on the rest (SkyPilot prefixes)", function()
  local found = analyze({
    "(head, rank=0, pid=5101) [2026-12-07 06:00:00,001] INFO step 1200",
    "(worker1, rank=1, pid=5102) [2026-12-07 06:00:00,004] INFO step 1200",
    "(worker2, rank=2, pid=5103) [2026-12-07 06:00:00,006] INFO step 1200",
    "(worker3, rank=3, pid=5104) [2026-12-07 06:00:00,009] INFO step 1200",
    "(worker2, rank=2, pid=5103) Fatal Python error: Segmentation fault",
    "(worker2, rank=2, pid=5103) ",
    "(worker2, rank=2, pid=5103) Thread 0x00007f2a1c9fe640 (most recent call first):",
    "(worker2, rank=2, pid=5103)   File \"/usr/lib/python3.10/threading.py\", line 324 in wait",
    "(worker2, rank=2, pid=5103) bash: line 1:  5103 Segmentation fault      (core dumped) python train.py",
    "(head, rank=0, pid=5101) [rank0]: torch.distributed.DistBackendError: NCCL error in: "
      .. "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, remote process exited or there was a network "
      .. "error, NCCL version 2.21.5",
    "(head, rank=0, pid=5101) [rank0]: ncclRemoteError: A call failed possibly due to a network error or a remote "
      .. "process exiting prematurely.",
    "(worker1, rank=1, pid=5102) [rank1]: torch.distributed.DistBackendError: NCCL error in: "
      .. "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, remote process exited or there was a network "
      .. "error, NCCL version 2.21.5",
    "(worker3, rank=3, pid=5104) [rank3]: torch.distributed.DistBackendError: NCCL error in: "
      .. "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, remote process exited or there was a network "
      .. "error, NCCL version 2.21.5",
  })
  tap.is(found.culprit and found.culprit.rank, 2, "culprit: rank 2")
  tap.is(found.culprit and found.culprit.node, "worker2", "node: SkyPilot's worker name")
  tap.is(found.culprit and found.culprit.reason, "segfault", "the segfault is the cause, not the NCCL errors")
  tap.is(found.cause_chain, { { reason = "nccl_error", ranks = { 0, 1, 3 } } }, "chain: NCCL errors on the others")
  tap.is(forensics.line(found.culprit, found.cause_chain, 139),
    "rank 2 (node worker2): segfault → nccl_error on ranks 0–1, 3 → exit 139", "summary line")
end)

tap.test("a preemption (srun --label; Slurm names the node)", function()
  local found = analyze({
    "0: 2026-12-07 06:10:00,000 INFO step 40 loss=2.9",
    "1: 2026-12-07 06:10:00,010 INFO step 40 loss=2.9",
    "slurmstepd: error: *** STEP 4242.0 ON node3 CANCELLED AT 2026-12-07T06:10:05 DUE TO PREEMPTION ***",
    "srun: Job step aborted: Waiting up to 32 seconds for job step to finish.",
    "1: bash: line 1:   771 Killed                  python train.py",
    "srun: error: node3: tasks 0-1: Killed",
  })
  tap.is(found.termination_reason, "preempted", "termination")
  tap.is(found.culprit and found.culprit.node, "node3", "the node Slurm named")
  tap.is(found.culprit and found.culprit.rank, nil, "no rank: the node went, with all its ranks")
  tap.is(found.culprit and found.culprit.reason, "preempted", "reason")
  tap.is(found.cause_chain, { { reason = "killed", ranks = { 1 } } }, "what followed")
  tap.is(forensics.line(found.culprit, found.cause_chain, nil), "node node3: preempted → killed on rank 1",
    "summary line")
end)

tap.test("an NCCL network error naming a host (torchrun --tee: [defaultN]: before NCCL's own prefix)", function()
  local found = analyze({
    "[default0]:gpu-node-a:5120:5188 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC",
    "[default6]:gpu-node-b:6120:6190 [2] NCCL INFO Channel 00/0 : 6[2] -> 7[3] via P2P/IPC",
    "[default6]:gpu-node-b:6120:6190 [2] NCCL WARN NET/IB : Got completion from peer 10.0.0.11<56013> with status=12 "
      .. "opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.0.0.12 remoteGid ::ffff:10.0.0.11 hca mlx5_1",
    "[default6]:gpu-node-b:6120:6190 [2] NCCL INFO transport/net.cc:1298 -> 6",
    "[default6]:[rank6]: torch.distributed.DistBackendError: NCCL error in: "
      .. "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO "
      .. "for details), NCCL version 2.21.5",
    "[default6]:[rank6]: ncclSystemError: System call (e.g. socket, malloc) or external library call failed or "
      .. "device error.",
    "[default0]:[rank0]:[E1207 07:01:00.000 5120 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective "
      .. "operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.",
    "[default2]:[rank2]:[E1207 07:01:00.000 5122 ProcessGroupNCCL.cpp:616] [Rank 2] Watchdog caught collective "
      .. "operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.",
  })
  tap.is(found.termination_reason, "nccl_error", "termination")
  tap.is(found.culprit and found.culprit.rank, 6, "culprit: rank 6 (torchrun's prefix, not NCCL's device 2)")
  tap.is(found.culprit and found.culprit.node, "gpu-node-b", "node: the host in NCCL's prefix")
  tap.is(found.culprit and found.culprit.reason, "nccl_error", "reason")
  tap.is(found.cause_chain, { { reason = "nccl_timeout", ranks = { 0, 2 } } }, "chain")
end)

tap.test("a Python exception on rank 5 of 8, its lines late in the log but early in time", function()
  local lines = {}
  for r = 0, 7 do
    lines[#lines + 1] = string.format("%d: 2026-12-07 06:20:0%d,000 INFO epoch 3 step 90", r, r % 2)
  end
  for _, l in ipairs({
    -- Rank 1 fails later (06:20:09) but its output is flushed first.
    "1: 2026-12-07 06:20:09,700 ERROR loader stopped",
    "1: Traceback (most recent call last):",
    "1:   File \"/app/data.py\", line 51, in __iter__",
    "1: RuntimeError: DataLoader worker (pid 9130) exited unexpectedly",
    "5: 2026-12-07 06:20:02,300 ERROR bad batch",
    "5: Traceback (most recent call last):",
    "5:   File \"/app/train.py\", line 91, in step",
    "5:     loss = criterion(out, target)",
    "5: ValueError: Expected input batch_size (32) to match target batch_size (16).",
  }) do lines[#lines + 1] = l end
  for _, r in ipairs({ 0, 2, 3, 4, 6, 7 }) do
    lines[#lines + 1] = string.format("%d: [rank%d]:[E1207 06:30:02.000 %d ProcessGroupNCCL.cpp:616] [Rank %d] "
      .. "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=77, OpType=BROADCAST) ran for 600000 "
      .. "milliseconds before timing out.", r, r, 700 + r, r)
  end
  local found = analyze(lines)
  tap.is(found.culprit and found.culprit.rank, 5, "culprit: rank 5, the earliest by time")
  tap.is(found.culprit and found.culprit.reason, "exception", "reason: an exception")
  tap.like(found.culprit and found.culprit.line or "", "ValueError: Expected input batch_size", "its line")
  tap.is(found.cause_chain, { { reason = "exception", ranks = { 1 } },
    { reason = "nccl_timeout", ranks = { 0, 2, 3, 4, 6, 7 } } }, "chain: rank 1's exception, then the timeouts")
end)

tap.test("jobrun's own local prefix (rank=N)", function()
  local found = analyze({
    "(rank=0) starting",
    "(rank=1) starting",
    "(rank=1) RuntimeError: CUDA error: an illegal memory access was encountered",
    "(rank=0) [rank0]:[E1207 06:50:41.000 1 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective "
      .. "operation timeout: WorkNCCL(SeqNum=3, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.",
  })
  tap.is({ found.culprit and found.culprit.rank, found.culprit and found.culprit.reason }, { 1, "cuda_error" },
    "rank 1")
  tap.is(found.cause_chain, { { reason = "nccl_timeout", ranks = { 0 } } }, "chain")
end)

local ROOT_CAUSE = {
  "E1207 06:50:41.731000 140 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1) "
    .. "local_rank: 3 (pid: 3110) of binary: /usr/bin/python3",
  "Traceback (most recent call last):",
  "  File \"/usr/local/bin/torchrun\", line 8, in <module>",
  "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
  "============================================================",
  "train.py FAILED",
  "------------------------------------------------------------",
  "Failures:",
  "[1]:",
  "  time      : 2026-12-07_06:50:41",
  "  host      : gpu-07",
  "  rank      : 5 (local_rank: 5)",
  "  exitcode  : -6 (pid: 3112)",
  "------------------------------------------------------------",
  "Root Cause (first observed failure):",
  "[0]:",
  "  time      : 2026-12-07_06:40:12",
  "  host      : gpu-07",
  "  rank      : 3 (local_rank: 3)",
  "  exitcode  : 1 (pid: 3110)",
  "  error_file: <N/A>",
  "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
  "============================================================",
}

tap.test("torchrun's root-cause block: the rank and host where no line has a prefix", function()
  local lines = { "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB." }
  for _, l in ipairs(ROOT_CAUSE) do lines[#lines + 1] = l end
  local found = analyze(lines)
  tap.is(found.culprit and { found.culprit.rank, found.culprit.node, found.culprit.reason },
    { 3, "gpu-07", "cuda_oom" }, "rank 3 on gpu-07; the reason the log names")
  lines = { "[rank3]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB." }
  for _, l in ipairs(ROOT_CAUSE) do lines[#lines + 1] = l end
  found = analyze(lines)
  tap.is(found.culprit and { found.culprit.rank, found.culprit.node }, { 3, "gpu-07" },
    "a prefixed culprit gets its node from the block")
end)

tap.test("no rank prefixes: no culprit, never a wrong one", function()
  local found = analyze({
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    "[E1207 06:50:41.000 1 ProcessGroupNCCL.cpp:616] Watchdog caught collective operation timeout: WorkNCCL ran "
      .. "for 600000 ms",
  })
  tap.is(found.termination_reason, "cuda_oom", "the reason is still found")
  tap.is(found.culprit, nil, "culprit null")
  tap.is(found.cause_chain, nil, "no chain")
  tap.is(forensics.line(nil, nil, 1), nil, "no summary line")
end)

tap.test("garbled and interleaved prefixes are skipped", function()
  local found = analyze({
    "[rank3: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    "(worker1, rank=x, pid=3) torch.OutOfMemoryError: CUDA out of memory.",
    "(worker1, rank=1, pid=3) (head, rank=0, pid=2) torch.OutOfMemoryError: CUDA out of memory.",
    "[rank4]:[rank5]: torch.OutOfMemoryError: CUDA out of memory.",
    "(worker2, rank=2, pid=9) [rank2]:[E1207 06:50:41.000 1 ProcessGroupNCCL.cpp:616] Watchdog caught collective "
      .. "operation timeout: WorkNCCL ran for 600000 ms",
  })
  tap.is(found.termination_reason, "cuda_oom", "termination from the unprefixed text")
  tap.is(found.culprit and found.culprit.rank, 2, "only the well-formed line counts")
  tap.is(found.culprit and found.culprit.reason, "nccl_timeout", "its reason")
end)

tap.test("prefix grammar", function()
  local function p(line)
    local r = forensics.prefix(line)
    return r and { r.rank, r.node_rank, r.node, r.text } or nil
  end
  tap.is(p("(worker1, rank=1, pid=3110) hello"), { 1, 1, "worker1", "hello" }, "SkyPilot worker")
  tap.is(p("(head, rank=0, pid=3110) [rank3]: hi"), { 3, 0, "head", "hi" }, "SkyPilot + torchrun")
  tap.is(p("(rank=2) x"), { 2, 2, nil, "x" }, "jobrun local")
  tap.is(p("[default7]:x"), { 7, nil, nil, "x" }, "torchrun --tee")
  tap.is(p(" 12: x"), { 12, 12, nil, "x" }, "srun --label, padded")
  tap.is(p("gpu-07:3110:3200 [3] NCCL WARN x"), { 3, nil, "gpu-07", "NCCL WARN x" }, "NCCL")
  tap.is(p("12:30:01 INFO x"), nil, "a time is no srun label")
  tap.is(p("[rank12] x"), nil, "no colon")
  tap.is(p("plain line"), nil, "none")
end)

tap.test("timestamps", function()
  local k1, t1 = forensics.stamp("2026-12-07 06:20:02,300 ERROR")
  local k2, t2 = forensics.stamp("[2026-12-07T06:20:09.700Z] x")
  tap.is({ k1, k2 }, { "iso", "iso" }, "ISO and logging")
  tap.ok(t1 < t2, "ordered")
  local k3, t3 = forensics.stamp("[E1207 06:50:41.123456 1 x]")
  tap.is(k3, "glog", "glog")
  tap.ok(math.abs(t3 - (((12 * 31 + 7) * 24 + 6) * 3600 + 50 * 60 + 41.123456)) < 1e-6, "glog seconds")
  tap.is(forensics.ranges({ 0, 1, 2, 4, 6, 7 }), "0–2, 4, 6–7", "ranges")
end)

tap.test("scan.ranks keeps one line per rank and needle, across blocks, with offsets", function()
  local lines = {}
  for i = 1, 20000 do lines[#lines + 1] = string.format("(worker%d, rank=%d, pid=1) step %d ok", i % 64, i % 64, i) end
  for r = 0, 63 do lines[#lines + 1] = string.format("(worker%d, rank=%d, pid=1) ncclRemoteError: peer gone", r, r) end
  for r = 0, 63 do lines[#lines + 1] = string.format("(worker%d, rank=%d, pid=1) ncclRemoteError: again", r, r) end
  lines[#lines + 1] = "no prefix ncclRemoteError"
  local path = log(lines)
  local hits = scan.ranks(path, { "ncclRemoteError", "absent needle" })
  tap.is(hits[1].count, 129, "every line counted")
  tap.is(#hits[1].lines, 65, "64 ranks and one unprefixed line kept")
  tap.like(hits[1].lines[1][1], "^%(worker0, rank=0, pid=1%) ncclRemoteError: peer gone$", "the first, whole")
  local text = fs.read(path)
  tap.is(text:sub(hits[1].lines[1][2] + 1, hits[1].lines[1][2] + #hits[1].lines[1][1]), hits[1].lines[1][1],
    "its offset is the file's")
  tap.is(hits[2].count, 0, "an absent needle")
end)

tap.test("cause classes", function()
  local function class(job, classes)
    job.verdict = job.verdict or "fail"
    return forensics.class(job, classes)
  end
  tap.is(class({ verdict = "pass", termination_reason = "preempted" }), nil, "null for a pass")
  tap.is(class({ termination_reason = "preempted" }), "infrastructure", "preempted")
  tap.is(class({ termination_reason = "node_fail" }), "infrastructure", "node_fail")
  tap.is(class({ termination_reason = "nccl_error" }), "infrastructure", "an NCCL system/network error")
  tap.is(class({ status = "LAUNCH_FAILED", termination_reason = "launch_failed" }), "infrastructure", "launch")
  tap.is(class({ status = "LOST" }), "infrastructure", "LOST")
  tap.is(class({ termination_reason = "result_unwritable: ENOSPC" }), "infrastructure", "jobrun's own files")
  tap.is(class({ termination_reason = "cuda_oom" }), "program", "cuda_oom")
  tap.is(class({ termination_reason = "segfault" }), "program", "segfault")
  tap.is(class({ exit_code = 3 }), "program", "a non-zero exit with no reason")
  tap.is(class({ exit_code = 0 }), "unknown", "a failed expectation with a clean exit")
  tap.is(class({ termination_reason = "nccl_timeout" }), "unknown", "a hang")
  tap.is(class({ termination_reason = "shm_exhausted" }), "unknown", "shm_exhausted")
  tap.is(class({ termination_reason = "shm_exhausted" }, { shm_exhausted = "infrastructure" }), "infrastructure",
    "re-classed by the suite")
  tap.is(class({ termination_reason = "nccl_error", culprit = { rank = 2, reason = "segfault",
    line = "Segmentation fault" } }), "program", "the culprit's origin decides: NCCL errors after a segfault")
  tap.is(class({ termination_reason = "preempted", culprit = { rank = 1, reason = "nccl_timeout",
    line = "Watchdog caught collective operation timeout" } }), "infrastructure",
    "a culprit that only followed does not hide the backend's reason")
end)

tap.test("GPU-hours", function()
  local h = forensics.gpu_hours
  tap.is(h({ duration_s = 1800, spec = { nodes = 2, gpus = 4 } }), 4.0, "local: gpus × nodes × hours")
  tap.is(h({ duration_s = 1800, spec = { nodes = 2 } }), nil, "nothing said: none")
  tap.is(h({ duration_s = 3600, tres = "billing=16,cpu=16,gres/gpu=8,mem=64G,node=2", spec = { nodes = 2, gpus = 1 } }),
    8.0, "Slurm's allocated TRES wins over the suite's gpus")
  tap.is(h({ duration_s = 3600, tres = "gres/gpu:2", spec = { nodes = 2 } }), 4.0,
    "Slurm's TRES per node (squeue's %b)")
  tap.is(h({ duration_s = 3600, tres = "gres:gpu:a100:4", spec = { nodes = 1 } }), 4.0, "with a GPU type")
  tap.is(h({ backend = "skypilot", duration_s = 3600, spec = { nodes = 4,
    options = { resources = { accelerators = "H100:8" } } } }), 32.0, "SkyPilot: accelerators × nodes")
  tap.is(h({ backend = "skypilot", duration_s = 3600, spec = { nodes = 1, options = { resources = { gpus = 2 } } } }),
    2.0, "SkyPilot: resources.gpus")
  local jobs = {
    { gpu_hours = 2.8, attempts = { { gpu_hours = 0.4 } } },
    { gpu_hours = 0.0 },
  }
  tap.is(forensics.gpu_line(jobs), "3.2 GPU-hours, 2.8 of them on retries", "total, and the attempts after the first")
  tap.is(forensics.gpu_line({ { gpu_hours = 3.2 } }), "3.2 GPU-hours", "no retries")
  tap.is(forensics.gpu_line({ {} }), nil, "no GPUs: no line")
end)

tap.done()
