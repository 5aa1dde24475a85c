#!/bin/sh
# Benchmark: `jobrun plan --json` of a 10,000-job matrix (100 × 10 × 10 with a condition axis)
# and of a 100,000-job one (1,000 × 10 × 10), wall time and peak RSS over RUNS runs (default 3),
# beside a baseline in the same run: Python's itertools.product + json.dumps of the same rows
# (what the old Python tooling would do, minus any validation).
# Targets: 10,000 jobs under 1 s and 100 MB (issue 2); 100,000 jobs ≤ 3 s and ≤ 300 MB (issue 14).
# SIZES="100 1000" (seeds: 100 makes 9,990 jobs, 1000 makes 99,990) picks the cases.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# suite SEEDS > file: the benchmark's suite with SEEDS seeds.
suite() {
  for c in c d e f g h i j; do echo "condition \"$c\" { args = { \"--mode\", \"$c\" } }"; done
  cat <<LUA
local seeds = {}
for i = 1, $1 do seeds[i] = i end
condition "a" { args = { "--mode", "a" }, expect = { exit_code = 0 } }
condition "b" { args = { "--mode", "b", "it's" }, tags = { "ci" } }
suite "big" {
  matrix = { seed = seeds, lr = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 },
             condition = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" } },
  exclude = { { seed = 1, lr = 1 } },
  include = { { lr = 2, extra = "x" } },
  name = "{suite}_{seed}_{lr}_{condition}",
  run = "train --seed {seed} --lr {lr} {args}",
  env = { RUN = "{name}.{run_id}", ARGS = "{args}" },
  timeout = "1h",
}
LUA
}

# measure LABEL COMMAND…: RUNS runs; the range of wall times and of peak RSS.
measure() {
  label=$1; shift
  : > "$work/times"
  i=0
  while [ "$i" -lt "$runs" ]; do
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.json"
    cat "$work/time" >> "$work/times"
    i=$((i + 1))
  done
  sort -n "$work/times" | awk -v label="$label" -v bytes="$(wc -c < "$work/out.json")" -v runs="$runs" '
    NR == 1 { lo = $1 } { hi = $1; m[NR] = $2 / 1024 }
    END { mlo = m[1]; mhi = m[1]; for (i in m) { if (m[i] < mlo) mlo = m[i]; if (m[i] > mhi) mhi = m[i] }
          printf "  %s: %.2f–%.2f s wall, %.0f–%.0f MB peak RSS (%d runs), %d bytes\n", label, lo, hi, mlo, mhi, runs, bytes }'
}

for seeds in ${SIZES:-100 1000}; do
  suite "$seeds" > "$work/suite.lua"
  jobs=$("$bin" plan "$work/suite.lua" --json --run-id bench | grep -c '"name":')
  echo "jobs in the plan: $jobs"
  measure "jobrun plan --json" "$bin" plan "$work/suite.lua" --json --run-id bench
  measure "baseline python3 product+json.dumps" python3 -c '
import itertools, json, sys
seeds = int(sys.argv[1])
jobs = []
for seed, lr, cond in itertools.product(range(1, seeds + 1), range(1, 11), "abcdefghij"):
    if seed == 1 and lr == 1: continue
    name = f"big_{seed}_{lr}_{cond}"
    jobs.append({"name": name, "params": {"seed": seed, "lr": lr, "condition": cond}, "backend": "local",
                 "nodes": 1, "run": f"train --seed {seed} --lr {lr} --mode {cond}",
                 "env": {"RUN": name + ".bench", "ARGS": "--mode " + cond}, "timeout": 3600})
json.dump({"run_id": "bench", "suite": "big", "jobs": jobs}, sys.stdout, indent=2)' "$seeds"
done
