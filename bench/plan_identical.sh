#!/bin/sh
# Is `plan --json` the same, byte for byte, from two builds? BEFORE=path/to/old/jobrun
# sh bench/plan_identical.sh compares it with ./jobrun (or JOBRUN_BIN) for every suite in
# suites/ and examples/ and for bench/plan.sh's suites (10,000 and 100,000 jobs), with one run id.
# Only the git commit a suite passes on (METTA_GIT_REF, git.commit) may differ, as the two builds
# may stand at different commits. Exit 1 on the first difference.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${JOBRUN_BIN:-$top/jobrun}
before=${BEFORE:?set BEFORE to the jobrun build to compare with}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
normal() { sed -E 's/[0-9a-f]{40}/<commit>/g'; }
same() { # file
  "$before" plan "$1" --json --run-id same 2>/dev/null | normal > "$work/a" || true
  "$bin" plan "$1" --json --run-id same 2>/dev/null | normal > "$work/b" || true
  if cmp -s "$work/a" "$work/b"; then echo "same: $1 ($(wc -c < "$work/b") bytes)"
  else echo "DIFFERENT: $1"; diff "$work/a" "$work/b" | head -20; exit 1; fi
}
for f in "$top"/suites/*.lua "$top"/examples/*.lua; do same "$f"; done
for seeds in 100 1000; do
  { sed -n '/^suite() {/,/^LUA$/p' "$top/bench/plan.sh"; echo "}"; } > "$work/suite.sh"
  (. "$work/suite.sh"; suite "$seeds") > "$work/bench$seeds.lua"
  same "$work/bench$seeds.lua"
done
