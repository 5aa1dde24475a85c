#!/bin/sh
# Benchmark (issue 25): the history index (lua/jobrun/run/history.lua, src/sqlite.c).
#   1. indexing a finished 1,000-job local run (made with `jobrun run`): target ≤ 50 ms, the
#      index write alone (history.record, in process, mean of 5);
#   2. rebuilding the index from 1,000 runs × 12 jobs: target ≤ 5 s (`jobrun history --rebuild`);
#   3. `jobrun history` and `jobrun flaky` with 10,000 runs × 12 jobs in the index: target
#      ≤ 100 ms each (mean of 5), beside the sqlite3 CLI running the same query on the same file.
# The 10,000 runs are state.json files made from a real 12-job run's (each run a copy with its
# own id, start time, commit, nodes and seeded verdicts), in a temporary directory removed after.
# Needs build/luarun (make build/luarun) and the sqlite3 CLI (Debian package sqlite3) for the
# baseline.
set -eu
. "$(dirname "$0")/common.sh"
luarun=${JOBRUN_LUARUN:-$top/build/luarun}
ms() { awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN { printf "%.1f", (b - a) * 1000 / n }'; }

# 1. A real finished 1,000-job run, indexed.
export JOBRUN_STATE_DIR="$work/.jobrun"
many_suite 1000 8
"$bin" run many.lua --run-id big > /dev/null 2>&1 || true
cat > index_one.lua <<'LUA'
local history = require "jobrun.run.history"
local state = require "jobrun.run.store"
local process = require "jobrun.c.process"
local dir = arg[1]
local data = state.read(dir)
history.record(dir, data) -- warm (the index made)
local t0, c0 = process.now(), os.clock()
for _ = 1, 5 do history.record(dir, data) end
io.write(string.format("%.1f (cpu %.1f)", (process.now() - t0) * 1000 / 5, (os.clock() - c0) * 1000 / 5))
return 0
LUA
index_ms=$("$luarun" index_one.lua "$work/.jobrun/runs/big")
rows=$(sqlite3 .jobrun/history.sqlite 'SELECT count(*) FROM attempts')

# A 12-job run to copy: 4 nodes × 3 conditions.
mkdir -p gen && cd gen
cat > twelve.lua <<'LUA'
suite "twelve" { matrix = { size = { 1, 2, 4, 8 }, case = { "a", "b", "c" } }, run = { "true" } }
LUA
JOBRUN_STATE_DIR="$work/gen/.jobrun" "$bin" run twelve.lua --run-id template > /dev/null 2>&1 || true
cat > gen.lua <<'LUA'
-- gen.lua STATE_DIR TEMPLATE FROM TO: runs FROM..TO copied from the template's state.json.
local json = require "jobrun.base.json"
local fs = require "jobrun.c.fs"
local state = require "jobrun.run.store"
local dir, template, from, to = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local base = json.decode(assert(fs.read(template)))
for _, job in ipairs(base.jobs) do job.spec = nil end
math.randomseed(25)
for _ = 1, from - 1 do math.random(); math.random() end
local nodes = { "n1", "n2", "n3", "n4" }
for i = from, to do
  local id = string.format("r%05d", i)
  base.run_id = id
  base.started_at = state.iso(1.8e9 + i * 60)
  local commit = string.format("%040x", i // 50)
  base.git = { commit = commit, branch = "main", dirty = false }
  for k, job in ipairs(base.jobs) do
    -- job 1 is flaky (fails one time in three), node n3 fails one time in four, the rest pass.
    local node = nodes[(i + k) % 4 + 1]
    local fail = (k == 1 and math.random(3) == 1) or (node == "n3" and math.random(4) == 1)
    job.status, job.verdict = fail and "FAILED" or "SUCCEEDED", fail and "fail" or "pass"
    job.exit_code = fail and 1 or 0
    job.git, job.nodes = base.git, { node }
    job.duration_s = 10 + k
  end
  assert(fs.mkdir_p(dir .. "/runs/" .. id))
  assert(fs.write_atomic(dir .. "/runs/" .. id .. "/state.json", json.encode(base)))
end
return 0
LUA
tpl="$work/gen/.jobrun/runs/template/state.json"
mkdir -p "$work/s"
"$luarun" gen.lua "$work/s" "$tpl" 1 1000
cd "$work/s"

# 2. Rebuild from 1,000 runs × 12 jobs.
rebuild_ms=$(/usr/bin/time -f "%e %U %S" "$bin" history --rebuild --state-dir . 2>&1 >/dev/null |
  awk '{ printf "%.0f (cpu %.0f)", $1 * 1000, ($2 + $3) * 1000 }')

# 3. 10,000 runs × 12 jobs in the index.
"$luarun" "$work/gen/gen.lua" "$work/s" "$tpl" 1001 10000
rebuild10k_ms=$(/usr/bin/time -f "%e %U %S" "$bin" history --rebuild --state-dir . 2>&1 >/dev/null |
  awk '{ printf "%.0f (cpu %.0f)", $1 * 1000, ($2 + $3) * 1000 }')
n=$(sqlite3 history.sqlite 'SELECT count(*) FROM attempts')

# The queries that history and flaky make (lua/jobrun/run/history.lua, history.attempts), for the CLI.
cols="run_id, job, try, attempt, suite, run_started, params, commit_id, branch, dirty, status, exit_code, termination, cause_class, restarts, duration_s, started_at, ended_at, nodes, gpu_hours, verdict, metrics"
q_last() {
  echo "SELECT $cols FROM attempts WHERE run_id IN (SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT $1) ORDER BY run_started, run_id, job, try;"
}
# time5 CMD… -> "wall ms (cpu ms)", means of 5: the CPU time (user + sys, from /usr/bin/time)
# tells the work apart from the waiting on a loaded machine.
time5() {
  : > cpu.txt
  t0=$(now)
  for _ in 1 2 3 4 5; do /usr/bin/time -a -o cpu.txt -f "%U %S" "$@" > /dev/null; done
  t1=$(now)
  printf "%s (cpu %s)" "$(ms "$t0" "$t1" 5)" "$(awk '{ s += $1 + $2 } END { printf "%.1f", s * 1000 / NR }' cpu.txt)"
}
"$bin" history --state-dir . > /dev/null # warm
hist_ms=$(time5 "$bin" history --state-dir .)
hist_cli=$(time5 sqlite3 history.sqlite "$(q_last 20)")
hist200_ms=$(time5 "$bin" history --state-dir . --last 200)
hist200_cli=$(time5 sqlite3 history.sqlite "$(q_last 200)")
flaky_ms=$(time5 "$bin" flaky --state-dir .)
flaky_cli=$(time5 sqlite3 history.sqlite "$(q_last 20)")
flakyall_ms=$(time5 "$bin" flaky --state-dir . --last 10000)
flakyall_cli=$(time5 sqlite3 history.sqlite "$(q_last 10000)")
nodes_ms=$(time5 "$bin" history --state-dir . --nodes --last 1000)
nodes_cli=$(time5 sqlite3 history.sqlite "$(q_last 1000)")

echo "1. index a finished 1,000-job run ($rows rows): $index_ms ms (mean of 5; target 50)"
echo "2. rebuild from 1,000 runs x 12 jobs: $rebuild_ms ms (target 5000); from 10,000 runs: $rebuild10k_ms ms"
echo "3. with 10,000 runs x 12 jobs ($n rows) in the index, wall (cpu) ms, mean of 5 (target 100 ms), beside"
echo "   the sqlite3 CLI running the same query (the attempts of the window's runs):"
echo "   history (last 20 runs)        $hist_ms   sqlite3 $hist_cli"
echo "   history --last 200            $hist200_ms   sqlite3 $hist200_cli"
echo "   flaky (last 20 runs)          $flaky_ms   sqlite3 $flaky_cli"
echo "   flaky --last 10000 (all)      $flakyall_ms   sqlite3 $flakyall_cli"
echo "   history --nodes --last 1000   $nodes_ms   sqlite3 $nodes_cli"
