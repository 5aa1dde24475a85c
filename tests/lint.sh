# luacheck over the Lua library, the suites, the examples and the Lua tests; and the one writer of
# a job's status (README "How a job's record moves"): outside the run's status module, no code
# assigns a job's status (backends return observations; the run applies them through
# status.apply). The second test greps for `job.status = …` and its look-alikes (a job record
# under any of the names the library gives one).
cd "$JOBRUN_TOP" || exit 1
echo "1..2"
if out=$(luacheck --no-color --codes -q lua suites examples tests bench 2>&1); then
  echo "ok 1 - luacheck is clean"
else
  echo "not ok 1 - luacheck is clean"
  printf '%s\n' "$out" | sed 's/^/#   /'
fi
status_module=$(find lua -name status.lua -path '*jobrun/*' | head -1)
writes=$(grep -rnE '(^|[^[:alnum:]_](then|else|do|;)) *([[:alnum:]_.]+ *, *)*(job|j|jb|rec|record|copy|into|target|entry|pjob|disk|mine|jobs\[[^]]*\])\.status *(, *[[:alnum:]_.]+ *)*= *[^=]' \
  lua --include='*.lua' | grep -v "^$status_module:" | grep -vE '^[^:]+:[0-9]+: *--')
if [ -z "$writes" ]; then
  echo "ok 2 - no job status written outside $status_module"
else
  echo "not ok 2 - no job status written outside $status_module"
  printf '%s\n' "$writes" | sed 's/^/#   /'
fi
