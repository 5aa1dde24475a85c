# Every unit and transcript test again, against the AddressSanitizer + UBSan build.
# One TAP line per test file; a sanitizer report anywhere fails that file. The Slurm tests run
# once, in the plain build (files named *slurm*): they restart the shared test cluster's
# controller, which two concurrent runs would do to each other.
cd "$JOBRUN_TOP" || exit 1
files=$(ls tests/unit/*.lua tests/integration/*.lua tests/cli/*.t | grep -v '^tests/integration/[^/]*slurm[^/]*$')
echo "1..$(echo "$files" | wc -l)"
n=0
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  LSAN_OPTIONS="suppressions=$JOBRUN_TOP/tests/lsan.supp:print_suppressions=0"
for f in $files; do
  n=$((n + 1))
  log=$(mktemp)
  if JOBRUN_BUILD=asan tests/exec "$f" >"$log" 2>&1 && ! grep -qE '^not ok|ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    echo "ok $n - asan: $f"
  else
    echo "not ok $n - asan: $f"
    # Also on stderr, which prove shows without -v (CI's log is all there is to go on).
    grep -E '^not ok|Sanitizer|runtime error:|^#|leak|left' "$log" | head -30 | sed 's/^/#   /' | tee /dev/stderr
  fi
  rm -f "$log"
done
