#!/bin/sh
# Benchmark (issue 29): jobrun serve against the CLI and its own targets, in one scratch
# directory removed after:
#   - GET /api/runs/{id} of a finished 10,000-job run (mean of 5, curl) beside `check --json`
#     of the same run (mean of 5): target ≤ 1.5×;
#   - first render of that run's page in headless Chromium (the first table row drawn): ≤ 1 s;
#   - an update (state.json replaced) reaching 100 event streams: ≤ 2 s;
#   - the server's RSS after listing 1,000 runs (each run's state.json read once): ≤ 50 MB.
set -eu
. "$(dirname "$0")/common.sh"
n=${N:-10000}
many_suite "$n" 8
"$bin" run many.lua --run-id big > /dev/null || true
"$bin" serve --port 0 > serve.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q 'http://' serve.log && break; sleep 0.05; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' serve.log | head -1)
curl -s "http://127.0.0.1:$port/api/runs/big" > /dev/null   # warm (and cache) once
t0=$(now)
for _ in 1 2 3 4 5; do curl -s "http://127.0.0.1:$port/api/runs/big?x=$_" > /dev/null; done
t1=$(now)
# (the server caches the JSON per state.json version: the uncached time is the first one)
"$bin" serve --port 0 > serve2.log 2>&1 &
pid2=$!
for _ in $(seq 100); do grep -q 'http://' serve2.log && break; sleep 0.05; done
port2=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' serve2.log | head -1)
t2=$(now)
curl -s "http://127.0.0.1:$port2/api/runs/big" > /dev/null
t3=$(now)
kill $pid2; wait $pid2 2>/dev/null || true
"$bin" check big --json > /dev/null || true
t4=$(now)
for _ in 1 2 3 4 5; do "$bin" check big --json > /dev/null || true; done
t5=$(now)
render=-
if [ -d "$top/tests/browser/node_modules/puppeteer-core" ] && [ -x /usr/bin/chromium ]; then
  render=$(node "$top/tests/browser/dashboard.mjs" big "http://127.0.0.1:$port" big | sed -n 's/.*"render_ms":\([0-9-]*\).*/\1/p')
fi
fanout=$(python3 "$top/tests/serve/clients.py" fanout --port "$port" --run big --streams 100 --touch .jobrun/runs/big/state.json)
# 1,000 small runs, listed by a server of their own
mkdir -p many/runs
i=0
while [ $i -lt 1000 ]; do
  d=many/runs/r$i; mkdir -p $d
  printf '{"version":1,"run_id":"r%d","suite":"s","backend":"local","started_at":"2026-01-01T00:00:00Z","jobs":[{"name":"a","status":"SUCCEEDED","verdict":"pass","exit_code":0}]}\n' $i > $d/state.json
  i=$((i + 1))
done
kill $pid; wait $pid 2>/dev/null || true
"$bin" serve --port 0 --state-dir many > serve3.log 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'http://' serve3.log && break; sleep 0.05; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' serve3.log | head -1)
t6=$(now)
curl -s "http://127.0.0.1:$port/api/runs" > runs.json
t7=$(now)
curl -s "http://127.0.0.1:$port/api/runs" > /dev/null
rss=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v g="$t6" -v h="$t7" -v n="$n" \
    -v render="$render" -v fanout="$fanout" -v rss="$rss" -v runs="$(grep -o '"run_id"' runs.json | wc -l)" 'BEGIN {
  api = (b - a) * 200; cold = (d - c) * 1000; cli = (f - e) * 200
  printf "%d-job run: GET /api/runs/{id} %.0f ms cached (mean of 5), %.0f ms uncached; check --json %.0f ms (mean of 5): %.2f× uncached\n", n, api, cold, cli, cold / cli
  printf "first render of the run page in headless Chromium: %s ms\n", render
  printf "an update reaching 100 event streams: %s\n", fanout
  printf "GET /api/runs over %d runs: %.0f ms (first); server RSS after two: %.1f MB\n", runs, (h - g) * 1000, rss / 1024
}'
