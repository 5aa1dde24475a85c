#!/bin/sh
# A real Slurm cluster on loopback for the tests: one slurmctld and four slurmd (node1..node4,
# each `slurmd -N nodeK` on its own port) on this machine, with munge for authentication and
# accounting off. Everything lives under $JOBRUN_SLURM_DIR (default /tmp/jobrun-slurm).
#
#   tests/slurm/cluster.sh start    write the config, start munged, slurmctld, 4 × slurmd, wait idle
#   tests/slurm/cluster.sh stop     stop them
#   tests/slurm/cluster.sh env      print `export SLURM_CONF=…` for a shell to eval
#   tests/slurm/cluster.sh status   exit 0 iff the four nodes answer
#   tests/slurm/cluster.sh stop-controller | start-controller   (for the outage test)
set -eu
dir=${JOBRUN_SLURM_DIR:-/tmp/jobrun-slurm}
conf=$dir/slurm.conf
host=$(hostname -s)

write_conf() {
  mkdir -p "$dir/state" "$dir/spool/node1" "$dir/spool/node2" "$dir/spool/node3" "$dir/spool/node4"
  cat > "$conf" <<CONF
ClusterName=jobrun
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire seconds before it starts again (default 120).
AuthInfo=cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=3600
KillWait=2
InactiveLimit=0
SlurmctldTimeout=20
SlurmdTimeout=20
SlurmdParameters=config_overrides
NodeName=node1 NodeHostname=$host NodeAddr=127.0.0.1 Port=17001 CPUs=8 RealMemory=2000 State=UNKNOWN
NodeName=node2 NodeHostname=$host NodeAddr=127.0.0.1 Port=17002 CPUs=8 RealMemory=2000 State=UNKNOWN
NodeName=node3 NodeHostname=$host NodeAddr=127.0.0.1 Port=17003 CPUs=8 RealMemory=2000 State=UNKNOWN
NodeName=node4 NodeHostname=$host NodeAddr=127.0.0.1 Port=17004 CPUs=8 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=node[1-4] Default=YES MaxTime=INFINITE State=UP
CONF
}

idle_nodes() {
  # Without its config file, sinfo would retry for a minute.
  [ -f "$conf" ] || { echo 0; return; }
  SLURM_CONF=$conf timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | grep -c -E ' (idle|mix|alloc)$' || true
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  chmod 0400 /etc/munge/munge.key
  munged --force
}

start() {
  if [ "$(idle_nodes)" = 4 ]; then echo "slurm: already up ($conf)"; return; fi
  write_conf
  start_munge
  start_controller
  for n in 1 2 3 4; do SLURM_CONF=$conf slurmd -f "$conf" -N "node$n"; done
  i=0
  while [ "$(idle_nodes)" != 4 ]; do
    i=$((i + 1))
    if [ $i -gt 120 ]; then
      echo "slurm: nodes did not come up; see $dir/*.log" >&2
      SLURM_CONF=$conf sinfo -N >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "slurm: 4 nodes idle (SLURM_CONF=$conf)"
}

stop() {
  for f in "$dir"/slurmd.node*.pid "$dir/slurmctld.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  echo "slurm: stopped"
}

start_controller() {
  SLURM_CONF=$conf slurmctld -f "$conf"
  # slurmd registers once at start-up; before the controller answers, it would wait a minute.
  i=0
  until SLURM_CONF=$conf scontrol ping 2>/dev/null | grep -q 'is UP'; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "slurm: slurmctld did not come up; see $dir/slurmctld.log" >&2; exit 1; }
    sleep 0.2
  done
}

stop_controller() {
  pid=$(cat "$dir/slurmctld.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

case "${1:-}" in
  stop-controller) stop_controller ;;
  start-controller) start_controller ;;
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  status) [ "$(idle_nodes)" = 4 ] ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
