#!/bin/sh
# Benchmark: `jobrun logs RUN JOB --tail N` against `tail -n N` on the same log, a generated
# log of SIZE_MB (default 1024) MB in a temporary directory (removed after). Each figure is the
# range (min–max) of RUNS (default 7) wall times, with jobrun's peak RSS.
# Targets (issue 11): within 2× of tail -n, and under 50 ms whatever the log's size.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# A run with one job, whose log is then replaced by the generated one.
echo 'suite "tb" { run = "true" }' > s.lua
"$bin" run s.lua --run-id tb > /dev/null 2>&1
log=$work/.jobrun/runs/tb/logs/tb.log
yes '(head, rank=0, pid=4242) [INFO] step 123456 loss=0.4321 lr=0.0003 [trainer] sps=41234 heart.get=0.61' \
  | head -c $((size_mb * 1024 * 1024)) > "$log"
# The end of the log: ordinary lines, then one of 100 KB (a progress bar that never ended a line).
for i in 1 2 3 4 5 6 7 8 9 10; do echo "[SUMMARY] line $i" >> "$log"; done
head -c 102400 /dev/zero | tr '\0' '#' >> "$log"
echo >> "$log"
cat "$log" > /dev/null # the page cache warm for everyone alike

now() { date +%s%N; }
# range LABEL CMD...: min–max wall ms over $runs runs, and the last run's peak RSS.
range() {
  label=$1; shift
  min=""; max=""
  for _ in $(seq "$runs"); do
    t0=$(now); /usr/bin/time -f %M -o rss.txt "$@" > out.txt; t1=$(now)
    t=$(( (t1 - t0) / 1000 ))
    if [ -z "$min" ] || [ "$t" -lt "$min" ]; then min=$t; fi
    if [ -z "$max" ] || [ "$t" -gt "$max" ]; then max=$t; fi
  done
  printf '%-34s %6.1f–%-6.1f ms   peak RSS %5d KiB\n' "$label" \
    "$(awk -v t="$min" 'BEGIN { print t / 1000 }')" "$(awk -v t="$max" 'BEGIN { print t / 1000 }')" \
    "$(tail -n 1 rss.txt)"
}

echo "log: $(($(stat -c %s "$log") / 1024 / 1024)) MB, last line 100 KB; $runs runs each"
for n in 1 5 100 1000; do
  range "jobrun logs --tail $n" "$bin" logs tb tb --tail "$n"
  range "tail -n $n" tail -n "$n" "$log"
done
# What jobrun costs before it reads any log: the same command on an empty one.
: > "$log"
range "jobrun logs --tail 5 (empty log)" "$bin" logs tb tb --tail 5
