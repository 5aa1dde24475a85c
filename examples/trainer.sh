#!/bin/sh
# A stand-in for Metta's skypilot_run.sh and its trainer (../shared/reference/metta-origins.md §7),
# small enough for a laptop: it "trains" in steps, touches a heartbeat file now and then, and ends
# the way the real script does — heartbeat monitor, max-runtime monitor, a forced restart on the
# first attempt, a failing command — then prints the same [SUMMARY] block, from the master rank
# only, and exits 1 only after a forced restart (so that the backend restarts it).
#
# Like the real script it takes the monitors' settings from the environment, where launch.py
# put its flags (-hb → HEARTBEAT_TIMEOUT, -t → MAX_RUNTIME_HOURS, --run-ci-tests →
# TEST_JOB_RESTART=true and TEST_NCCL=true):
#   HEARTBEAT_TIMEOUT   seconds without a heartbeat before the run is stopped (unset: no monitor)
#   MAX_RUNTIME_HOURS   runtime limit over all attempts, in hours (unset: none)
#   TEST_JOB_RESTART    true: force one restart half-way through the runtime (needs MAX_RUNTIME_HOURS)
#   TEST_NCCL           true: run the (pretend) NCCL test on the first attempt
#   FAKE_SPS            steps per second per node that the trainer reports (default 45000)
#   FAKE_HEART          env_agent/heart.gained at the last step; it grows from 0 (default 0.6)
# Its arguments are the tool's overrides, as METTA_ARGS holds them:
#   trainer.sh [trainer.total_timesteps=N] [trainer.step_time=S] [key=value …]
# trainer.total_timesteps must be a whole number; any --flag is unknown to the tool. Either
# mistake makes the command fail at once, like a tool rejecting its parameters. The trainer
# touches its heartbeat every 2 seconds of training. Each step, the master rank logs its metrics
# as a dict line, the way trainers print them: overview/sps (FAKE_SPS × the node count) and
# env_agent/heart.gained, the two Metta's release validation judged (metta-origins.md §5).
set -u

steps=20 step_time=0.05 bad=""
for arg in "$@"; do
  case "$arg" in
    trainer.total_timesteps=*) steps=${arg#*=}
      case "$steps" in ''|*[!0-9]*) bad="trainer.total_timesteps: '$steps' is not a whole number" ;; esac ;;
    trainer.step_time=*) step_time=${arg#*=} ;;
    -*) bad="unrecognized arguments: $arg" ;;
    *) ;; # other key=value overrides are accepted and ignored
  esac
done
hb_timeout=${HEARTBEAT_TIMEOUT:-}
max_runtime_hours=${MAX_RUNTIME_HOURS:-}
test_restart=false
[ "${TEST_JOB_RESTART:-false}" = true ] && test_restart=true

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

if [ "${TEST_NCCL:-false}" = true ] && [ "$restart_count" = 0 ]; then
  echo "[RUN] Running GPU diagnostics and NCCL tests (node $rank)..."
  echo "[SUCCESS] NCCL tests passed"
fi

reason="" cmd_exit=""
if [ -n "$bad" ]; then
  echo "error: $bad" >&2
  cmd_exit=2 reason=job_completed
else
  step=0
  echo "$start" > "$heartbeat"
  hb_ms=$( [ -n "$hb_timeout" ] && ms "$hb_timeout" )
  max_ms=$( [ -n "$max_runtime_hours" ] && ms "$(awk -v h="$max_runtime_hours" 'BEGIN { print h * 3600 }')" )
  beat_every=$(awk -v t="$step_time" 'BEGIN { n = int(2 / t); print (n > 0 ? n : 1) }')
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
    step=$((step + 1))
    printf '\033[32mstep %d/%d\033[0m loss %s\n' "$step" "$steps" "0.$((1000 - step % 1000))"
    if [ "$rank" = 0 ]; then
      awk -v s="$step" -v n="$steps" -v sps="${FAKE_SPS:-45000}" -v nodes="${JOBRUN_NUM_NODES:-1}" \
          -v heart="${FAKE_HEART:-0.6}" 'BEGIN {
        printf "{\047overview/sps\047: %.1f, \047env_agent/heart.gained\047: %.4f, \047overview/steps\047: %d}\n",
          sps * nodes, heart * s / n, s }'
    fi
    [ $((step % beat_every)) = 0 ] && now_ms > "$heartbeat"
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
