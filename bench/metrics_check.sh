#!/bin/sh
# Benchmark (issue 26): what metrics cost a 10,000-job run. Two local runs of N (default 10,000)
# jobs, max_parallel 8, made here: one of jobs that print 40 progress lines each with no metric
# declared (the baseline), one of the same jobs with 3 metrics declared and judged (loss, tps,
# mfu: 40 points each; their series in the run's series file, metrics/series.jsonl).
# Measured: `jobrun run` of each (the analysis of every log at each job's end is in it), and
# `check --json` of each finished run (mean of 5), whose answer carries each job's 3 metric
# records. Target: the metrics add ≤ 20 % to `check --json`.
set -eu
. "$(dirname "$0")/common.sh"
n=${N:-10000}
suite() { # suite NAME DECLARE
  cat > "$1.lua" <<LUA
$2
local ids = {}
for i = 1, $n do ids[i] = i end
suite "$1" {
  matrix = { i = ids }, max_parallel = 8,
  run = [[i=1; while [ \$i -le 40 ]; do echo "step \$i | loss: 2.\$i | tps: 4\${i}00 | mfu: 0.4\$i"; i=\$((i+1)); done]],
  $3
}
LUA
}
suite plain "" ""
suite metered 'metric "loss" {} metric "tps" {} metric "mfu" {}' \
  'expect = { metrics = { loss = { "<= 3", agg = "last" }, tps = ">= 1000", mfu = ">= 0.1" } },'
t0=$(now); "$bin" run plain.lua --run-id plain > /dev/null || true
t1=$(now); "$bin" run metered.lua --run-id metered > /dev/null || true
t2=$(now)
"$bin" check plain --json > /dev/null || true     # warm
t3=$(now); for _ in 1 2 3 4 5; do "$bin" check plain --json > /dev/null || true; done
t4=$(now); for _ in 1 2 3 4 5; do "$bin" check metered --json > /dev/null || true; done
t5=$(now)
[ -z "${KEEP:-}" ] || cp -r .jobrun "$KEEP"
echo "verdicts (metered):" $("$bin" check metered --json | grep -o '"verdict": "[a-z]*"' | sort | uniq -c)
awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" \
    -v sp="$(wc -c < .jobrun/runs/plain/state.json)" -v sm="$(wc -c < .jobrun/runs/metered/state.json)" \
    -v ss="$(cat .jobrun/runs/metered/metrics/series.jsonl 2>/dev/null | wc -c)" 'BEGIN {
  printf "%d jobs of 40 progress lines, max_parallel 8\n", n
  printf "jobrun run: no metrics %.1f s, 3 metrics %.1f s (%.2fx)\n", b - a, c - b, (c - b) / (b - a)
  printf "state.json: %d bytes, %d bytes (and a series file of %d bytes)\n", sp, sm, ss
  printf "check --json (mean of 5): no metrics %.0f ms, 3 metrics %.0f ms (+%.0f %%)\n", (e - d) * 200, (f - e) * 200,
    100 * ((f - e) / (e - d) - 1)
}'
