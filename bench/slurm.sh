#!/bin/sh
# Benchmark: N (default 200) short jobs of one shape on the test Slurm cluster
# (tests/slurm/cluster.sh), through jobrun against a plain loop of sbatch (the baseline, in the
# same run):
#   1. submission alone: `jobrun launch` (plan, one sbatch --array, the run's record) against
#      the loop of N sbatch — target ≤ 0.2× the loop;
#   2. to the end: `jobrun run` against the loop followed by polling by hand with squeue once a
#      second — wall time of each, and the scheduler commands jobrun sends per poll cycle
#      (target ≤ 2), counted by shims on PATH.
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
printf '#!/bin/sh\nsrun true\n' > plain.sh
mkdir -p out

# sbatch_loop -> the ids, comma-separated, of N plain jobs submitted one by one.
sbatch_loop() {
  ids=""
  i=0
  while [ $i -lt "$n" ]; do
    ids="$ids,$(sbatch --parsable --output=out/%j.log plain.sh)"
    i=$((i + 1))
  done
  echo "${ids#,}"
}
# drain IDS: wait until squeue lists none of them, asking once a second; prints the polls.
drain() {
  c=0
  while [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; do c=$((c + 1)); sleep 1; done
  echo "$c"
}

# 1. Submission alone.
t0=$(now)
PATH="$work/shims:$PATH" "$bin" launch many.lua --run-id submit > /dev/null 2>&1
t1=$(now)
sub_sbatch=$(grep -c '^sbatch$' commands.log || true)
"$bin" wait submit > /dev/null 2>&1 || true
: > commands.log
t2=$(now)
ids=$(sbatch_loop)
t3=$(now)
drain "$ids" > /dev/null

# 2. To the end.
t4=$(now)
PATH="$work/shims:$PATH" JOBRUN_TRACE="$work/cycles.log" "$bin" run many.lua --run-id bench > /dev/null 2>&1
t5=$(now)
sbatch=$(grep -c '^sbatch$' commands.log || true)
polls=$(grep -c -E '^(scontrol|squeue|sacct)$' commands.log || true)
cycles_j=$(wc -l < cycles.log)
t6=$(now)
ids=$(sbatch_loop)
cycles=$(drain "$ids")
t7=$(now)

awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v g="$t6" -v h="$t7" \
    -v ss="$sub_sbatch" -v s="$sbatch" -v p="$polls" -v cy="$cycles" -v cj="$cycles_j" 'BEGIN {
  printf "%d jobs of one shape on 4 Slurm nodes\n", n
  printf "submit: jobrun launch %.2f s (%d sbatch) vs a loop of %d sbatch %.2f s: %.2fx the loop\n", \
    b - a, ss, n, d - c, (b - a) / (d - c)
  printf "to the end: jobrun run %.1f s (%d sbatch; %d poll cycles, %d status commands: %.2f per cycle)\n", \
    f - e, s, cj, p, p / cj
  printf "to the end: sbatch loop + squeue every second %.1f s (%d polls)\n", h - g, cy + 1
}'
