#!/bin/sh
# Benchmark: what waiting costs. N (default 1000) jobs of `sleep S` (default 2) on the test Slurm
# cluster (tests/slurm/cluster.sh), run to the end by `jobrun run`, against a plain loop that asks
# squeue (the same compact format) at the same interval while the same N jobs, submitted as one
# array by hand, run to the end. CPU (user + system, the squeue children included) per second of
# wall time, as a share of one core; target ≤ 1 % for 1,000 jobs (issue 21).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
n=${N:-1000}
s=${S:-2}
sh "$top/tests/slurm/cluster.sh" start > /dev/null
eval "$(sh "$top/tests/slurm/cluster.sh" env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir shims out
# Each status command jobrun sends is counted (squeue; scontrol for builds that poll with it).
for cmd in squeue scontrol; do
  real=$(command -v "$cmd")
  printf '#!/bin/sh\necho %s >> %s/polls.log\nexec %s "$@"\n' "$cmd" "$work" "$real" > "shims/$cmd"
  chmod +x "shims/$cmd"
done
: > polls.log
cat > many.lua <<LUA
local ids = {}
for i = 1, $n do ids[i] = i end
suite "many" { backend = "slurm", matrix = { i = ids }, run = "sleep $s" }
LUA

# jobrun: wall, user and system seconds of the run and its children.
# WINDOW=S: only the first S seconds of each (then every job left is cancelled): a 10,000-job
# run's cost per second without its hour. The run's CPU is also read at WARM seconds (default a
# quarter of the window) from /proc, so that the wait alone (WARM to the end, launch done) is
# told apart from the launch.
ticks=$(getconf CLK_TCK)
cpu_of() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15 + $16 + $17) / t }' "/proc/$1/stat" 2>/dev/null || echo -; }
warm=${WARM:-$(( ${WINDOW:-120} / 4 ))}
PATH="$work/shims:$PATH" /usr/bin/time -f "%e %U %S" -o jobrun.time ${WINDOW:+timeout -s TERM "$WINDOW"} \
  "$bin" run many.lua --run-id w > /dev/null 2>&1 &
sleep "$warm"
runner=$(pgrep -f -n "run many.lua --run-id w" || true)
cpu_warm=$(cpu_of "$runner"); polls_warm=$(wc -l < polls.log)
wait || true
[ -z "${WINDOW:-}" ] || scancel -u "$(id -un)"
sed -i '/^Command exited/d' jobrun.time
polls=$(wc -l < polls.log)
read -r wall user sys < jobrun.time

# The loop: the same jobs (one array, split at MaxArraySize as jobrun splits it), squeue every
# wall/polls seconds while any is left.
interval=$(awk -v w="$wall" -v p="$polls" 'BEGIN { printf "%.3f", w / (p > 0 ? p : 1) }')
max=$(scontrol show config | sed -n 's/^MaxArraySize *= *//p')
printf '#!/bin/sh\nsrun sleep %s\n' "$s" > plain.sh
ids=""
left=$n
while [ "$left" -gt 0 ]; do
  k=$left; [ "$k" -gt "$max" ] && k=$max
  ids="$ids,$(sbatch --parsable --array=0-$((k - 1)) --output=out/%A_%a.log plain.sh)"
  left=$((left - k))
done
ids=${ids#,}
cat > loop.sh <<LOOP
c=0
while [ -n "\$(squeue --me -h -t all -j $ids -o '%i|%F|%K|%T|%r|%N|%n|%S|%e' 2>/dev/null | grep -v -E '\|(COMPLETED|FAILED|CANCELLED)\|')" ]; do
  c=\$((c + 1)); echo \$c > loop.polls; sleep $interval
done
LOOP
echo 0 > loop.polls
/usr/bin/time -f "%e %U %S" -o loop.time ${WINDOW:+timeout "$WINDOW"} sh loop.sh || true
[ -z "${WINDOW:-}" ] || scancel -u "$(id -un)"
sed -i '/^Command exited/d' loop.time
read -r lwall luser lsys < loop.time
awk -v n="$n" -v s="$s" -v w="$wall" -v u="$user" -v y="$sys" -v p="$polls" -v lw="$lwall" -v lu="$luser" \
    -v ly="$lsys" -v lp="$(cat loop.polls)" -v i="$interval" -v wm="$warm" -v cw="$cpu_warm" -v pw="$polls_warm" 'BEGIN {
  printf "%d jobs of sleep %s on 4 Slurm nodes\n", n, s
  printf "jobrun run: %.1f s, %d polls, CPU %.2f s = %.2f %% of a core\n", w, p, u + y, 100 * (u + y) / w
  if (cw != "-" && w > wm) printf "  of which the wait from second %d on (launch done): %d polls, CPU %.2f s = %.2f %% of a core\n", wm, p - pw, u + y - cw, 100 * (u + y - cw) / (w - wm)
  printf "squeue loop every %.2f s: %.1f s, %d polls, CPU %.2f s = %.2f %% of a core\n", i, lw, lp, lu + ly, 100 * (lu + ly) / lw
}'
