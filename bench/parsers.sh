#!/bin/sh
# Benchmark of sandboxed log analysis (issue 21 item 8): user parsers (fn, declared patterns) run
# in a forked child per batch of ended jobs. N jobs (default 500) that each print a summary, run
# with max_parallel 2, with the built-in parsers only (no fork) and with a suite fn parser plus
# the metta pack (sandboxed), beside each other: the difference is the sandbox's cost.
# Also one `analyze` of one log with a sandboxed parser, against the built-ins alone.
set -eu
. "$(dirname "$0")/common.sh"
n=${N:-500}
for kind in plain user; do
  {
    echo 'local ids = {}'
    echo "for i = 1, $n do ids[i] = i end"
    if [ "$kind" = user ]; then
      echo 'use "metta"'
      echo 'parser "nan" { fn = function(text, result) if text:find("NaN loss") then result.fields.nan = true end end }'
    fi
    echo 'suite "many" { matrix = { i = ids }, max_parallel = 2,'
    echo '  run = "echo step 1 loss=0.5; echo [SUMMARY] Exit code: 0; echo [SUMMARY] Restart Count: 0" }'
  } > "$kind.lua"
done
cpu() { awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat; } # this shell's children, in ticks
hz=$(getconf CLK_TCK)
for kind in plain user; do
  c0=$(cpu); t0=$(now)
  "$bin" run "$kind.lua" --run-id "$kind" > /dev/null 2>&1 || true
  t1=$(now); c1=$(cpu)
  awk -v k="$kind" -v n="$n" -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN {
    printf "%-5s %d jobs, max_parallel 2: run %.2f s wall, %.2f s CPU (jobrun and its jobs)\n", k, n, b - a, c / hz }'
done
seq 1 20000 | sed 's/^/step loss=0.5 /' > one.log
for kind in plain user; do
  t0=$(now)
  for _ in 1 2 3 4 5 6 7 8 9 10; do "$bin" analyze one.log --suite "$kind.lua" > /dev/null; done
  t1=$(now)
  awk -v k="$kind" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-5s analyze of a 20,000-line log: %.1f ms (mean of 10)\n", k, (b - a) * 100 }'
done
