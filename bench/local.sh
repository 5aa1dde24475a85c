#!/bin/sh
# Benchmark of the local backend (issue 3), each figure beside a baseline from the same run:
#   1. 1,000 jobs of `true`, max_parallel 2: `jobrun run` against `xargs -P 2` (target ≤ 1.5×);
#   2. `jobrun check --json` of that finished 1,000-job run (target < 100 ms), beside
#      `jq` reading the same state.json.
set -eu
. "$(dirname "$0")/common.sh"
n=${N:-1000}
many_suite "$n" 2
t0=$(now)
seq "$n" | xargs -P 2 -n 1 sh -c 'true' >/dev/null
t1=$(now)
"$bin" run many.lua --run-id bench > /dev/null
t2=$(now)
"$bin" check bench --json > /dev/null   # warm
t3=$(now)
for _ in 1 2 3 4 5; do "$bin" check bench --json > /dev/null; done
t4=$(now)
for _ in 1 2 3 4 5; do jq '.jobs | length' .jobrun/runs/bench/state.json > /dev/null; done
t5=$(now)
awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" 'BEGIN {
  x = b - a; j = c - b
  printf "%d jobs, max_parallel 2: xargs -P 2 (sh -c true): %.2f s; jobrun run: %.2f s; ratio %.2fx\n", n, x, j, j / x
  printf "check --json of the finished run: %.0f ms (mean of 5); jq reading state.json: %.0f ms\n", (e - d) * 200, (f - e) * 200
}'
