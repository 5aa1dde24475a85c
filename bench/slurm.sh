#!/bin/sh
# Benchmark: N (default 200) short jobs on the test Slurm cluster (tests/slurm/cluster.sh),
# through jobrun against a plain loop of sbatch followed by polling by hand with squeue once a
# second — wall time of each, and the scheduler commands jobrun sends per poll cycle (target ≤ 2),
# counted by shims on PATH.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
n=${N:-200}
sh "$top/tests/slurm/cluster.sh" start > /dev/null
eval "$(sh "$top/tests/slurm/cluster.sh" env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir shims
for cmd in sbatch scontrol squeue sacct scancel; do
  real=$(command -v "$cmd")
  printf '#!/bin/sh\necho %s >> %s/commands.log\nexec %s "$@"\n' "$cmd" "$work" "$real" > "shims/$cmd"
  chmod +x "shims/$cmd"
done

cat > many.lua <<LUA
local ids = {}
for i = 1, $n do ids[i] = i end
suite "many" { backend = "slurm", matrix = { i = ids }, run = "true" }
LUA
now() { date +%s.%N; }

t0=$(now)
PATH="$work/shims:$PATH" JOBRUN_TRACE="$work/cycles.log" "$bin" run many.lua --run-id bench > /dev/null 2>&1
t1=$(now)
sbatch=$(grep -c '^sbatch$' commands.log || true)
polls=$(grep -c -E '^(scontrol|squeue|sacct)$' commands.log || true)
cycles_j=$(wc -l < cycles.log)

printf '#!/bin/sh\nsrun true\n' > plain.sh
mkdir -p out
t2=$(now)
ids=""
i=0
while [ $i -lt "$n" ]; do
  ids="$ids,$(sbatch --parsable --output=out/%j.log plain.sh)"
  i=$((i + 1))
done
ids=${ids#,}
cycles=0
while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do cycles=$((cycles + 1)); sleep 1; done
t3=$(now)

awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v s="$sbatch" -v p="$polls" -v cy="$cycles" \
    -v cj="$cycles_j" 'BEGIN {
  printf "%d jobs on 4 Slurm nodes\n", n
  printf "jobrun run: %.1f s (%d sbatch; %d poll cycles, %d status commands: %.2f per cycle)\n", b - a, s, cj, p, p / cj
  printf "sbatch loop + squeue every second: %.1f s (%d polls)\n", d - c, cy + 1
}'
