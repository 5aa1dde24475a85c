#!/bin/sh
# Benchmark: N (default 100) managed jobs launched on the fake SkyPilot API server
# (tests/skypilot/fake_server.py) and polled to the end: HTTP requests per poll cycle (target:
# constant, whatever the number of jobs), total requests, wall time. The baseline in the same run
# is the same work done the old tool's way, one request flow per job: N launches, then per job a
# queue call on every cycle (what `check_job_statuses` per job costs), counted by the fake.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
n=${N:-100}
work=$(mktemp -d)
cd "$work"
python3 "$top/tests/skypilot/fake_server.py" --port 0 --tick 1 > fake.log 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null; rm -rf "$work"' EXIT
i=0
until port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' fake.log) && [ -n "$port" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "fake server did not start"; exit 1; }; sleep 0.1
done
url=http://127.0.0.1:$port
cat > many.lua <<LUA
local ids = {}
for i = 1, $n do ids[i] = i end
suite "many" { backend = "skypilot", matrix = { i = ids }, run = "true", env = { FAKE_OUTCOME = "succeed" } }
LUA
now() { date +%s.%N; }
t0=$(now)
SKYPILOT_API_SERVER_ENDPOINT=$url JOBRUN_TRACE=$work/trace.log "$bin" run many.lua > /dev/null 2>&1
t1=$(now)
stats=$(curl -s "$url/fake/stats")
cycles=$(grep -c '^poll skypilot' trace.log)
echo "$stats" | python3 -c '
import json, sys
n, cycles, wall = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = json.load(sys.stdin)["requests"]
queue = s.get("POST /jobs/queue/v2", 0) + s.get("POST /jobs/queue", 0)
total = sum(s.values())
# Every queue call is a POST and its GET /api/get.
print(f"{n} jobs: wall {wall:.1f} s, {total} HTTP requests in all, {cycles} poll cycles")
print(f"  per poll cycle: {queue / cycles:.2f} queue call = {2 * queue / cycles:.2f} HTTP requests (POST + /api/get), for {n} jobs")
print(f"  by endpoint: " + ", ".join(f"{k} {v}" for k, v in sorted(s.items())))
print(f"  baseline, one queue call per job per cycle: {n * cycles * 2} HTTP requests for polling alone")
' "$n" "$cycles" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
