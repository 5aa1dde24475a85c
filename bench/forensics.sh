#!/bin/sh
# Benchmark: the culprit's scan (issue #28) on a generated 64-rank log of SIZE_MB (default 1024)
# MB — SkyPilot and torchrun prefixes on every line, one rank's CUDA OOM half-way through, every
# other rank's NCCL watchdog at the end — against grep -c of the same log (target: within 3×).
#   jobrun analyze --json (the parsers' tail, then forensics over the whole log)
#   grep -c -F of one needle, and grep -c -F -f of the termination parsers' needles
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
size_mb=${SIZE_MB:-1024}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

awk 'BEGIN { for (r = 0; r < 64; r++) { n = int(r / 8); who = n == 0 ? "head" : "worker" n
  printf "(%s, rank=%d, pid=%d) [default%d]:2026-12-07 06:%02d:%02d,123 INFO train.py:88 step=1200 " \
    "loss=2.3456 lr=3e-4 tok/s=41234 grad_norm=0.87\n", who, n, 3100 + r, r, r % 60, r % 60 } }' > block
while [ "$(wc -c < block)" -lt $((size_mb * 1024 * 1024 / 2)) ]; do cat block block > b2; mv b2 block; done
half=$((size_mb * 1024 * 1024 / 2))
head -c "$half" block | sed '$d' > job.log
echo '(worker3, rank=3, pid=3127) [default27]:torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.' >> job.log
head -c "$half" block | sed '$d' >> job.log
rm block
awk 'BEGIN { for (r = 0; r < 64; r++) if (r != 27) { n = int(r / 8); who = n == 0 ? "head" : "worker" n
  printf "(%s, rank=%d, pid=%d) [default%d]:[rank%d]:[E1207 06:55:00.123 %d ProcessGroupNCCL.cpp:1537] " \
    "[PG 0 Rank %d] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) " \
    "ran for 600000 milliseconds before timing out.\n", who, n, 3100 + r, r, r, 3100 + r, r } }' >> job.log
"$top/build/luarun" /dev/stdin <<'LUA' > needles.txt 2>/dev/null || true
local seen = {}
for _, p in ipairs(require "jobrun.judge.parsers.builtin") do
  if p.contains and p.field == "termination_reason" and not seen[p.contains] then
    seen[p.contains] = true; print(p.contains)
  end
end
LUA

cat job.log > /dev/null # warm the page cache for everyone alike
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
now() { date +%s.%N; }
best() { # best of 3 wall times in ms of a command
  b=""
  for _ in 1 2 3; do
    t0=$(now); "$@" > out.txt; t1=$(now)
    t=$(ms "$t0" "$t1")
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
  done
  echo "$b"
}
j=$(best "$bin" analyze job.log --json)
grep -q '"rank": 27' out.txt || { echo "forensics found no culprit:"; cat out.txt; exit 1; }
grep -q '"cuda_oom"' out.txt && grep -q '"nccl_timeout"' out.txt || { echo "no OOM or chain"; exit 1; }
g1=$(best grep -c -F "CUDA out of memory" job.log)
gn=""
if [ -s needles.txt ]; then gn=$(best grep -c -F -f needles.txt job.log); fi
echo "log: $(($(wc -c < job.log) / 1048576)) MB, 64 ranks"
echo "jobrun analyze (culprit: rank 27, cuda_oom → nccl_timeout on 63 ranks): ${j} ms"
echo "grep -c -F one needle:                    ${g1} ms   ratio $(awk -v a="$j" -v b="$g1" 'BEGIN { printf "%.2f", a / b }')x"
[ -n "$gn" ] && echo "grep -c -F -f the $(wc -l < needles.txt) termination needles:  ${gn} ms   ratio $(awk -v a="$j" -v b="$gn" 'BEGIN { printf "%.2f", a / b }')x"
exit 0
