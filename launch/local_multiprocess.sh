#!/usr/bin/env bash
# Start N `jaxdl train` processes on this machine, connected by jax.distributed over loopback (gloo on CPU).
#   launch/local_multiprocess.sh N --config=experiments/mlp_digits.py --workdir=runs/x [--config.KEY=VALUE ...]
# Each process gets JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID; jaxdl calls
# jax.distributed.initialize() from them. Waits for all; fails (exit code of the first failure) if any fails.
set -uo pipefail
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N [jaxdl train args...]  (N = number of processes, a positive integer)" >&2
  exit 2
fi
n=$1; shift
port=${JAXDL_COORDINATOR_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
jaxdl_cmd=${JAXDL_CMD:-jaxdl}
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
pids=()
for ((i = 0; i < n; i++)); do
  JAX_COORDINATOR_ADDRESS="127.0.0.1:${port}" JAX_NUM_PROCESSES="$n" JAX_PROCESS_ID="$i" \
    $jaxdl_cmd train "$@" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
status=0
for pid in "${pids[@]}"; do
  wait "$pid"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$status" -eq 0 ] && status=$rc
    kill "${pids[@]}" 2>/dev/null  # one failed: the others would wait forever in a collective
  fi
done
exit "$status"
