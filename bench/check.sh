#!/bin/sh
# Benchmark (issue 14): `jobrun check --json` of a finished 10,000-job local run (target
# ≤ 300 ms, mean of 5), beside `jq '.jobs|length'` reading the same state.json. The run (jobs of
# `true`, max_parallel 8) is made with `jobrun run` in a temporary directory, removed after.
# The statuses of the run's jobs are printed (all SUCCEEDED: the pool's work list is a file).
set -eu
. "$(dirname "$0")/common.sh"
n=${N:-10000}
many_suite "$n" 8
t0=$(now)
"$bin" run many.lua --run-id bench > /dev/null || true   # exit 1 when jobs failed
t1=$(now)
"$bin" check bench --json > /dev/null || true   # warm
t2=$(now)
for _ in 1 2 3 4 5; do "$bin" check bench --json > /dev/null || true; done
t3=$(now)
for _ in 1 2 3 4 5; do jq '.jobs|length' .jobrun/runs/bench/state.json > /dev/null; done
t4=$(now)
if [ -n "${JOBRUN_PROFILE_OUT:-}" ]; then
  JOBRUN_PROFILE="$JOBRUN_PROFILE_OUT" "$bin" check bench --json > /dev/null || true
fi
echo "job statuses:" $(grep -o '"status":"[A-Z_]*"' .jobrun/runs/bench/state.json | sort | uniq -c)
[ -z "${KEEP_STATE:-}" ] || cp .jobrun/runs/bench/state.json "$KEEP_STATE"
awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" \
    -v size="$(wc -c < .jobrun/runs/bench/state.json)" 'BEGIN {
  printf "%d jobs of true, max_parallel 8: jobrun run %.1f s; state.json %d bytes\n", n, b - a, size
  printf "check --json of the finished run: %.0f ms (mean of 5); jq .jobs|length: %.0f ms (mean of 5)\n", (d - c) * 200, (e - d) * 200
}'
