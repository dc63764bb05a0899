#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests (issue 15): Debian's slurm-wlm (slurmctld + slurmd) and
# munge, configured for localhost: select/cons_tres, proctrack/linuxproc, task/none, no accounting. Needs root;
# no systemd: the daemons are started directly (munged as the munge user, with its own state directory).
#   launch/slurm_local_cluster.sh start   # installs the packages if missing, starts munged, slurmctld, slurmd
#   launch/slurm_local_cluster.sh stop
#   export SLURM_CONF=$JAXDL_SLURM_DIR/slurm.conf   # (default /tmp/jaxdl-slurm) then sbatch, squeue, scontrol ...
# Exit status: 0 with the cluster up (the node idle); 3 when it cannot be set up (the reason on stderr), so that
# callers can skip SLURM tests with that reason.
set -uo pipefail
dir=${JAXDL_SLURM_DIR:-/tmp/jaxdl-slurm}
conf=$dir/slurm.conf
export SLURM_CONF=$conf
say() { echo "slurm_local_cluster.sh: $*" >&2; }
give_up() { say "cannot start the cluster: $*"; exit 3; }

stop() {
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2>/dev/null
  done
  sleep 1
  rm -f "$dir"/*.pid
}

start() {
  [ "$(id -u)" -eq 0 ] || give_up "needs root (daemons, munge key)"
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge; } \
      >"$dir.install.log" 2>&1 ||
      give_up "apt-get install slurm-wlm munge failed (see $dir.install.log)"
  fi
  stop
  mkdir -p "$dir"/{spool,state,log} "$dir/munge"/{run,lib,log}
  # munge: a key for this machine, daemon as the munge user, its socket in our state directory.
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 ||
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key "$dir/munge" "$dir/munge"/*; chmod 400 /etc/munge/munge.key
  chmod 700 "$dir/munge/lib" "$dir/munge/log"; chmod 755 "$dir/munge" "$dir/munge/run"
  local sock=$dir/munge/run/munge.socket.2
  runuser -u munge -- munged --socket="$sock" --pid-file="$dir/munge/run/munged.pid" \
    --seed-file="$dir/munge/lib/munged.seed" --log-file="$dir/munge/log/munged.log" --force ||
    give_up "munged did not start (see $dir/munge/log/munged.log)"
  cp "$dir/munge/run/munged.pid" "$dir/munged.pid"
  local host cpus mem
  host=$(hostname -s)
  getent hosts "$host" >/dev/null || give_up "hostname $host does not resolve (add it to /etc/hosts)"
  # Eight CPUs at least, whatever the cores: tests run four 2-task jobs at once (config_overrides allows it).
  cpus=$(nproc); [ "$cpus" -lt 8 ] && cpus=8
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
  cat >"$conf" <<EOF
ClusterName=jaxdl-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${JAXDL_SLURMCTLD_PORT:-6817}
SlurmdPort=${JAXDL_SLURMD_PORT:-6818}
AuthType=auth/munge
AuthInfo=socket=$sock,cred_expire=15
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
ReturnToService=2
# cred_expire (AuthInfo) is also how long a requeued job waits before it runs again: 15 s, not 120.
JobRequeue=0
MinJobAge=600
KillWait=10
SchedulerParameters=sched_interval=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  slurmctld -c -i || give_up "slurmctld did not start (see $dir/log/slurmctld.log)"
  slurmd -c || give_up "slurmd did not start (see $dir/log/slurmd.log)"
  for _ in $(seq 60); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      say "up: node $host, $cpus CPUs; export SLURM_CONF=$conf"
      return 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1
    sleep 0.5
  done
  give_up "the node did not become idle within 30 s: $(sinfo -h -N -o '%t %E' 2>&1 | head -1)"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
