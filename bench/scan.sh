#!/bin/sh
# Benchmark: log analysis on a generated log of SIZE_MB (default 1024) MB whose [SUMMARY] block
# is at the end, each figure beside a baseline in the same run:
#   tail scope (the default) with the metta pack   vs  tac LOG | grep -m1 (target < 20 ms)
#   scope = "all" with the metta pack's parsers     vs  grep -c       (target within 2×)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
size_mb=${SIZE_MB:-1024}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

yes '(head, rank=0, pid=4242) [INFO] step 123456 loss=0.4321 lr=0.0003 [trainer] sps=41234 heart.get=0.61' \
  | head -c $((size_mb * 1024 * 1024)) > job.log
cat >> job.log <<'LOG'

(head, rank=0, pid=4242) [SUMMARY] ===== Job Summary =====
(head, rank=0, pid=4242) [SUMMARY] Metta Run ID: bench.run
(head, rank=0, pid=4242) [SUMMARY] Restart Count: 1
(head, rank=0, pid=4242) [SUMMARY] Exit code: 0
(head, rank=0, pid=4242) [SUMMARY] Termination reason: max_runtime_reached
LOG
cat > all.lua <<'LUA'
parser "exit_all" { contains = "[SUMMARY] Exit code:", pattern = "Exit code: (%d+)", field = "exit_code",
                    number = true, scope = "all" }
parser "term_all" { contains = "[SUMMARY] Termination reason:", pattern = "Termination reason: ([^%[]+)",
                    field = "termination_reason", scope = "all" }
parser "restart_all" { contains = "[SUMMARY] Restart Count:", pattern = "Restart Count: (%d+)",
                       field = "restart_count", number = true, scope = "all" }
suite "bench" { run = "true" }
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
tail_j=$(best "$bin" analyze job.log --use metta --json)
grep -q '"termination_reason": "max_runtime_reached"' out.txt || { echo "tail analysis found nothing"; exit 1; }
tail_g=$(best sh -c 'tac job.log | grep -m1 -F "[SUMMARY] Exit code:"')
all_j=$(best "$bin" analyze job.log --suite all.lua --json)
grep -q '"restart_count": 1' out.txt || { echo "full analysis found nothing"; exit 1; }
all_g=$(best grep -c -F "[SUMMARY] Exit code:" job.log)
echo "log: ${size_mb} MB"
echo "tail scope, metta pack:  jobrun analyze ${tail_j} ms   tac | grep -m1 ${tail_g} ms"
echo "all scope, 3 parsers:    jobrun analyze ${all_j} ms   grep -c ${all_g} ms   ratio $(awk -v a="$all_j" -v b="$all_g" 'BEGIN { printf "%.2f", a / b }')x"
