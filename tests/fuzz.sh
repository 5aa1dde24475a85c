# The libFuzzer targets (tests/fuzz/*.c), each built with -fsanitize=fuzzer,address,undefined
# (make build/fuzz/<target>) and run for FUZZ_SECONDS (default 20) from its seed corpus
# (tests/fuzz/corpus/<target>/, read only). One TAP line per target: a crash, a sanitizer report
# or a failed check fails it, with the input that did it (base64) in the diagnostics. What the
# fuzzer writes (new inputs, artifacts, its scratch files) goes to a temporary directory that is
# removed after.
cd "$JOBRUN_TOP" || exit 1
targets="scan_fuzz json_fuzz metrics_fuzz"
seconds=${FUZZ_SECONDS:-20}
echo "1..$(echo $targets | wc -w)"
n=0
for t in $targets; do
  n=$((n + 1))
  work=$(mktemp -d)
  if ! make -s "build/fuzz/$t" > "$work/build.log" 2>&1; then
    echo "not ok $n - fuzz: $t (build failed)"
    tail -20 "$work/build.log" | sed 's/^/#   /'
    rm -rf "$work"
    continue
  fi
  mkdir "$work/corpus"
  if TMPDIR="$work" "build/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "tests/fuzz/corpus/$t" \
       > "$work/log" 2>&1; then
    echo "ok $n - fuzz: $t, $(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log") inputs in ${seconds}s"
  else
    echo "not ok $n - fuzz: $t"
    grep -E "$t:|ERROR|SUMMARY|runtime error|^#[0-9]+ " "$work/log" | head -30 | sed 's/^/#   /'
    for crash in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
      [ -f "$crash" ] && echo "#   input ($(basename "$crash")): $(head -c 4096 "$crash" | base64 -w0)"
    done
  fi
  rm -rf "$work"
done
