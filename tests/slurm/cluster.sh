#!/bin/sh
# A real Slurm cluster on loopback for the tests: one slurmctld and four slurmd (node1..node4,
# each `slurmd -N nodeK` on its own port) on this machine, with munge for authentication, and
# accounting through slurmdbd into a MariaDB of its own (mariadbd started directly, no systemd,
# its data directory under the cluster's). MinJobAge is 2 s, so that the tests can see the
# controller forget finished jobs (jobrun then reads them from its exit-code files or sacct).
# Everything lives under $JOBRUN_SLURM_DIR (default /tmp/jobrun-slurm).
#
#   tests/slurm/cluster.sh start    write the configs, start munged, mariadbd, slurmdbd, slurmctld,
#                                   4 × slurmd, wait idle (a no-op when all are up)
#   tests/slurm/cluster.sh stop     stop all of them (munged excepted: it is shared)
#   tests/slurm/cluster.sh env      print `export SLURM_CONF=…` for a shell to eval
#   tests/slurm/cluster.sh status   exit 0 iff the four nodes answer
#   tests/slurm/cluster.sh stop-controller | start-controller   (for the outage test)
#   tests/slurm/cluster.sh stop-slurmdbd | start-slurmdbd       (for the accounting outage test)
set -eu
dir=${JOBRUN_SLURM_DIR:-/tmp/jobrun-slurm}
conf=$dir/slurm.conf
dbdconf=$dir/slurmdbd.conf
db=$dir/mariadb
host=$(hostname -s)
# Loopback ports: slurmctld 16817, slurmdbd 16819, mariadbd 16306, slurmd 17001-17004.

# write_conf [PATH]: the configs; with PATH, slurm.conf alone, there (to compare with the one in use).
write_conf() {
  mkdir -p "$dir/state" "$dir/spool/node1" "$dir/spool/node2" "$dir/spool/node3" "$dir/spool/node4"
  cat > "${1:-$conf}" <<CONF
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=16819
JobCompType=jobcomp/none
ReturnToService=2
# Slurm's default, said explicitly: a batch job may be requeued (jobrun passes --no-requeue).
JobRequeue=1
# Slurm's recommended minimum: finished jobs leave the controller within seconds (the purge
# runs every MinJobAge seconds too), and the tests see what jobrun does then.
MinJobAge=2
# Smaller than Slurm's 1001, so that the tests can see jobrun split a larger group of jobs into
# arrays (it reads this from the controller): 201 tasks, 0-200, in one array at most.
MaxArraySize=201
KillWait=2
InactiveLimit=0
SlurmctldTimeout=20
SlurmdTimeout=20
SlurmdParameters=config_overrides
# Two GPUs a node, fake devices (gres.conf): for the GPU-hours of jobs that ask for gres/gpu.
GresTypes=gpu
NodeName=node1 NodeHostname=$host NodeAddr=127.0.0.1 Port=17001 CPUs=8 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
NodeName=node2 NodeHostname=$host NodeAddr=127.0.0.1 Port=17002 CPUs=8 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
NodeName=node3 NodeHostname=$host NodeAddr=127.0.0.1 Port=17003 CPUs=8 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
NodeName=node4 NodeHostname=$host NodeAddr=127.0.0.1 Port=17004 CPUs=8 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=node[1-4] Default=YES MaxTime=INFINITE State=UP
CONF
  [ -z "${1:-}" ] || return 0
  # The GPUs' device files: plain files stand for them (no cgroup constrains devices here).
  mkdir -p "$dir/dev"
  touch "$dir/dev/gpu0" "$dir/dev/gpu1"
  cat > "$dir/gres.conf" <<CONF
NodeName=node[1-4] Name=gpu File=$dir/dev/gpu[0-1]
CONF
  # slurmdbd refuses a config that others can read (it may hold the database password).
  umask 077
  cat > "$dbdconf" <<CONF
AuthType=auth/munge
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=16819
SlurmUser=root
PidFile=$dir/slurmdbd.pid
LogFile=$dir/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=16306
StorageUser=slurm
StorageLoc=slurm_acct_db
CONF
  umask 022
  chown root "$dbdconf"
  chmod 0600 "$dbdconf"
}

# Nodes that answer: idle, running jobs, or finishing one (comp, as a file just before may leave them).
idle_nodes() {
  # Without its config file, sinfo would retry for a minute.
  [ -f "$conf" ] || { echo 0; return; }
  SLURM_CONF=$conf timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | grep -c -E ' (idle|mix|alloc|comp)$' || true
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  chmod 0400 /etc/munge/munge.key
  munged --force
}

alive() { pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# wait_until SECONDS WHAT COMMAND…: retry COMMAND every 0.2 s, else fail naming WHAT's log.
wait_until() {
  n=$(($1 * 5)); what=$2; shift 2
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt $n ] && { echo "slurm: $what did not come up; see $dir/$what.log" >&2; exit 1; }
    sleep 0.2
  done
}

sql() { mariadb --no-defaults --socket="$db.sock" -uroot -e "$1"; }

# MariaDB without systemd: its own data directory, socket and port; root through the socket.
start_mariadb() {
  alive "$db.pid" && return
  if [ ! -d "$db/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$db" --user=root --auth-root-authentication-method=socket \
      --skip-test-db > "$dir/mariadb-install.log" 2>&1 || { echo "slurm: mariadb-install-db failed; see $dir/mariadb-install.log" >&2; exit 1; }
  fi
  setsid mariadbd --no-defaults --user=root --datadir="$db" --socket="$db.sock" --pid-file="$db.pid" \
    --bind-address=127.0.0.1 --port=16306 --log-error="$dir/mariadb.log" --skip-name-resolve \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 < /dev/null > /dev/null 2>&1 &
  wait_until 60 mariadb sql "SELECT 1"
  sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  alive "$dir/slurmdbd.pid" && return
  SLURM_CONF=$conf slurmdbd
  wait_until 60 slurmdbd env SLURM_CONF="$conf" sacctmgr -n list cluster
  # Jobs are recorded under the cluster's name, which must exist in the database.
  if ! SLURM_CONF=$conf sacctmgr -n -P list cluster format=cluster | grep -qx jobrun; then
    SLURM_CONF=$conf sacctmgr -i add cluster jobrun > /dev/null
  fi
}

up() {
  alive "$db.pid" && alive "$dir/slurmdbd.pid" && alive "$dir/slurmctld.pid" && [ "$(idle_nodes)" = 4 ]
}

# current: the running cluster's slurm.conf is the one this script writes now (not an older one).
current() {
  write_conf "$conf.want" && cmp -s "$conf" "$conf.want"
}

start() {
  if up && current; then echo "slurm: already up ($conf)"; return; fi
  # Half up (or up with an older config): start everything afresh.
  stop > /dev/null
  write_conf
  start_munge
  start_mariadb
  start_slurmdbd
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

# stop_pids PIDFILE…: TERM to all, wait until they have gone; KILL after 15 s. (slurmctld 22.05
# with slurmdbd sometimes hangs in its shutdown after saving its state, waiting for a thread.)
stop_pids() {
  pids=""
  for f in "$@"; do
    pid=$(cat "$f" 2>/dev/null) && [ -n "$pid" ] && kill "$pid" 2>/dev/null && pids="$pids $pid"
  done
  i=0
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i + 1))
      if [ $i = 75 ]; then
        echo "slurm: process $pid did not stop within 15 s: KILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  done
}

stop() {
  # Nodes and controller together (slurmctld sends its last job records to slurmdbd), then
  # slurmdbd, then the database.
  stop_pids "$dir"/slurmd.node*.pid "$dir/slurmctld.pid"
  stop_pids "$dir/slurmdbd.pid"
  stop_pids "$db.pid"
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

stop_controller() { stop_pids "$dir/slurmctld.pid"; }

case "${1:-}" in
  stop-controller) stop_controller ;;
  start-controller) start_controller ;;
  stop-slurmdbd) stop_pids "$dir/slurmdbd.pid" ;;
  start-slurmdbd) start_slurmdbd ;;
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  status) [ "$(idle_nodes)" = 4 ] ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
