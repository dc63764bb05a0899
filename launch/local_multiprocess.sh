#!/usr/bin/env bash
# Start N `jaxdl train` processes on this machine, connected by jax.distributed over loopback (gloo on CPU).
#   launch/local_multiprocess.sh N --config=experiments/mlp_digits.py --workdir=runs/x [--config.KEY=VALUE ...]
# Each process gets JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID; jaxdl calls
# jax.distributed.initialize() from them.
# Exit status: 0 when every process succeeded; otherwise that of the FIRST process to fail (named on stderr), the
# others being stopped at once (SIGTERM, then SIGKILL after JAXDL_KILL_GRACE seconds, default 3): they would wait
# in a collective for the one that failed. 75 (stopped by SIGTERM, resumable) is not a failure: SIGTERM/SIGINT to
# this script is passed to every process, each saves and exits 75, and so does the script.
set -uo pipefail
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N [jaxdl train args...]  (N = number of processes, a positive integer)" >&2
  exit 2
fi
n=$1; shift
port=${JAXDL_COORDINATOR_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
jaxdl_cmd=${JAXDL_CMD:-jaxdl}
grace=${JAXDL_KILL_GRACE:-3}
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
declare -A rank_of=()
for ((i = 0; i < n; i++)); do
  JAX_COORDINATOR_ADDRESS="127.0.0.1:${port}" JAX_NUM_PROCESSES="$n" JAX_PROCESS_ID="$i" \
    $jaxdl_cmd train "$@" &
  rank_of[$!]=$i
done
trap 'kill -TERM "${!rank_of[@]}" 2>/dev/null' INT TERM   # preemption: every process saves and exits 75

describe() {  # exit status -> words
  if [ "$1" -gt 128 ]; then echo "was killed by signal $(($1 - 128)) (status $1)"; else echo "exited with status $1"; fi
}

status=0; failed=0
while [ ${#rank_of[@]} -gt 0 ]; do
  finished=''
  wait -n -p finished "${!rank_of[@]}" 2>/dev/null
  rc=$?
  if [ -z "${finished:-}" ]; then         # a trapped signal interrupted the wait, or bash had reaped the process
    for p in "${!rank_of[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then wait "$p" 2>/dev/null; rc=$?; finished=$p; break; fi
    done
    [ -z "${finished:-}" ] && continue
  fi
  rank=${rank_of[$finished]}
  unset "rank_of[$finished]"
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 75 ] && [ "$failed" -eq 0 ]; then
    status=$rc; failed=1
    echo "local_multiprocess.sh: process $rank of $n $(describe "$rc") first; stopping the other processes" >&2
    if [ ${#rank_of[@]} -gt 0 ]; then
      kill -TERM "${!rank_of[@]}" 2>/dev/null
      for ((t = 0; t < grace * 10; t++)); do
        alive=0
        for p in "${!rank_of[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
      done
      kill -KILL "${!rank_of[@]}" 2>/dev/null
    fi
  elif [ "$rc" -eq 75 ] && [ "$status" -eq 0 ]; then
    status=75
  fi
done
exit "$status"
