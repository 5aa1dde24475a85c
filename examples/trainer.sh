#!/bin/sh
# A stand-in for Metta's skypilot_run.sh and its trainer (../shared/reference/metta-origins.md §7),
# small enough for a laptop: it "trains" in steps, touches a heartbeat file, and ends the way the
# real script does — heartbeat monitor, max-runtime monitor, a forced restart on the first
# attempt (--test-restart), a failing command — then prints the same [SUMMARY] block, from the
# master rank only, and exits 1 only after a forced restart (so that the backend restarts it).
#
#   trainer.sh [--steps N] [--step-time S] [--heartbeat-timeout S] [--hang-after N]
#              [--max-runtime S] [--test-restart] [trainer.key=value …]
# Unknown --flags make the command fail at once, like a tool rejecting its parameters.
set -u

steps=20 step_time=0.05 hb_timeout="" hang_after="" max_runtime="" test_restart=false bad=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --step-time) step_time=$2; shift 2 ;;
    --heartbeat-timeout) hb_timeout=$2; shift 2 ;;
    --hang-after) hang_after=$2; shift 2 ;;
    --max-runtime) max_runtime=$2; shift 2 ;;
    --test-restart) test_restart=true; shift ;;
    --*) bad=$1; shift ;;
    *) shift ;; # key=value overrides are accepted and ignored
  esac
done

rank=${JOBRUN_NODE_RANK:-0}
restart_count=${JOBRUN_RESTART_COUNT:-0}
run_id=${METTA_RUN_ID:-quickstart}
meta=${DATA_DIR:-${TMPDIR:-/tmp}/jobrun-quickstart}/$run_id
mkdir -p "$meta"
heartbeat=$meta/heartbeat.$rank
stop_file=$meta/cluster_stop.$restart_count

now_ms() { date +%s%3N; }
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }

accumulated=0
[ -f "$meta/accumulated_runtime" ] && accumulated=$(cat "$meta/accumulated_runtime")
start=$(now_ms)
printf '[INFO] rank %s starting: restart count %s, accumulated runtime %s ms\n' "$rank" "$restart_count" "$accumulated"

reason="" cmd_exit=""
if [ -n "$bad" ]; then
  echo "error: unrecognized arguments: $bad" >&2
  cmd_exit=2 reason=job_completed
else
  step=0
  echo "$start" > "$heartbeat"
  hb_ms=$( [ -n "$hb_timeout" ] && ms "$hb_timeout" )
  max_ms=$( [ -n "$max_runtime" ] && ms "$max_runtime" )
  while :; do
    t=$(now_ms)
    elapsed=$((t - start))
    if [ -f "$stop_file" ]; then reason=$(cat "$stop_file"); break; fi
    if [ -n "$max_ms" ] && [ $((accumulated + elapsed)) -ge "$max_ms" ]; then reason=max_runtime_reached; break; fi
    if $test_restart && [ "$restart_count" = 0 ] && [ -n "$max_ms" ] \
        && [ "$elapsed" -ge $(((max_ms - accumulated) / 2)) ]; then
      reason=force_restart_test; break
    fi
    if [ -n "$hb_ms" ] && [ $((t - $(cat "$heartbeat"))) -gt "$hb_ms" ]; then reason=heartbeat_timeout; break; fi
    if [ "$step" -ge "$steps" ]; then cmd_exit=0 reason=job_completed; break; fi
    if [ -z "$hang_after" ] || [ "$step" -lt "$hang_after" ]; then
      step=$((step + 1))
      printf '\033[32mstep %d/%d\033[0m loss %s\n' "$step" "$steps" "0.$((1000 - step))"
      now_ms > "$heartbeat"
    fi
    sleep "$step_time"
  done
fi

if [ "$rank" = 0 ]; then
  echo "$reason" > "$stop_file" # the other ranks stop too
  echo $(( accumulated + $(now_ms) - start )) > "$meta/accumulated_runtime"
  # A shutdown by a monitor reports exit code 0, as Metta's cleanup does; a finished
  # command reports its own.
  echo "[INFO] Termination reason: $reason"
  echo "[SUMMARY] ===== Job Summary ====="
  echo "[SUMMARY] Metta Run ID: $run_id"
  echo "[SUMMARY] Skypilot Task ID: ${JOBRUN_JOB_NAME:-local}"
  echo "[SUMMARY] Restart Count: $restart_count"
  echo "[SUMMARY] Exit code: ${cmd_exit:-0}"
  echo "[SUMMARY] Termination reason: ${reason:-unknown}"
  echo "[SUMMARY] ======================"
fi
if [ "$reason" = force_restart_test ]; then
  echo "[INFO] Will exit with code 1 to trigger a restart"
  exit 1
fi
echo "[INFO] Will exit with code 0 to prevent a restart"
exit 0
