# luacheck over the Lua library, the suites, the examples and the Lua tests, as one TAP test.
cd "$JOBRUN_TOP" || exit 1
echo "1..1"
if out=$(luacheck --no-color --codes -q lua suites examples tests bench 2>&1); then
  echo "ok 1 - luacheck is clean"
else
  echo "not ok 1 - luacheck is clean"
  printf '%s\n' "$out" | sed 's/^/#   /'
fi
