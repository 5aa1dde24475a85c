# What the local benchmarks share, sourced after `set -eu`: $top, $bin (JOBRUN_BIN or the
# build's), a scratch directory that is the working directory and goes away at exit, now(),
# and many_suite N MAX_PARALLEL, which writes many.lua: N jobs of `true`.
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
now() { date +%s.%N; }
many_suite() {
  cat > many.lua <<LUA
local ids = {}
for i = 1, $1 do ids[i] = i end
suite "many" { matrix = { i = ids }, run = { "true" }, max_parallel = $2 }
LUA
}
