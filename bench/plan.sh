#!/bin/sh
# Benchmark: `jobrun plan --json` of a 10,000-job matrix (100 × 10 × 10 with a condition axis),
# wall time and peak RSS, beside a baseline in the same run: Python's itertools.product +
# json.dumps of the same rows (what the old Python tooling would do, minus any validation).
# Targets (issue 2): under 1 s and under 100 MB.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/big.lua" <<'LUA'
local seeds = {}
for i = 1, 100 do seeds[i] = i end
condition "a" { args = { "--mode", "a" }, expect = { exit_code = 0 } }
condition "b" { args = { "--mode", "b", "it's" }, tags = { "ci" } }
suite "big" {
  matrix = { seed = seeds, lr = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 },
             condition = { "a", "b", "a", "b", "a", "b", "a", "b", "a", "b" } },
  exclude = { { seed = 1, lr = 1 } },
  include = { { lr = 2, extra = "x" } },
  name = "{suite}_{seed}_{lr}_{condition}_{#}",
  run = "train --seed {seed} --lr {lr} {args}",
  env = { RUN = "{name}.{run_id}", ARGS = "{args}" },
  timeout = "1h",
}
LUA
# Ten conditions with repeats would make duplicate names; give each row a distinct name instead.
sed -i 's/_{#}//; s/"a", "b", "a", "b", "a", "b", "a", "b", "a", "b"/"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"/' "$work/big.lua"
for c in c d e f g h i j; do echo "condition \"$c\" { args = { \"--mode\", \"$c\" } }" >> "$work/conds.lua"; done
cat "$work/conds.lua" "$work/big.lua" > "$work/suite.lua"

measure() { # label, command...
  label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.json"
  read -r secs kb < "$work/time"
  echo "$label: $secs s wall, $((kb / 1024)) MB peak RSS, $(wc -c < "$work/out.json") bytes"
}

jobs=$("$bin" plan "$work/suite.lua" --json --run-id bench | grep -c '"name":')
echo "jobs in the plan: $jobs"
measure "jobrun plan --json" "$bin" plan "$work/suite.lua" --json --run-id bench
measure "baseline python3 product+json.dumps" python3 -c '
import itertools, json, sys
jobs = []
for seed, lr, cond in itertools.product(range(1, 101), range(1, 11), "abcdefghij"):
    if seed == 1 and lr == 1: continue
    name = f"big_{seed}_{lr}_{cond}"
    jobs.append({"name": name, "params": {"seed": seed, "lr": lr, "condition": cond}, "backend": "local",
                 "nodes": 1, "run": f"train --seed {seed} --lr {lr} --mode {cond}",
                 "env": {"RUN": name + ".bench", "ARGS": "--mode " + cond}, "timeout": 3600})
json.dump({"run_id": "bench", "suite": "big", "jobs": jobs}, sys.stdout, indent=2)'
