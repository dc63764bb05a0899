"""jax.distributed's coordination service, in a process of its own (README, "Cluster").

jax runs the service inside process 0. When process 0 dies, every other process's error poll fails at once and the
C++ runtime aborts it (SIGABRT, a stack trace, "another task died") before jaxdl can say which process went away.
Here process 0 starts the service as a child (`sharding.maybe_initialize_distributed`), so the service outlives it:
the others' watchdogs then see process 0's heartbeat stop and exit with one line naming it (exit 2), like for any
other peer.

Lifetime: the service reads its standard input, a pipe from process 0. `done` (process 0 passed jax's shutdown
barrier, so every process finished) -> it stops after a second; end of input without `done` (process 0 died or
left on an error) -> it stays up `grace` seconds, long enough for the others' watchdogs, then stops. SIGTERM and
SIGINT are ignored: a preempted job saves its checkpoints through this service after the signal.

  python -m jaxdl.train.coordination BIND_ADDRESS NUM_PROCESSES HEARTBEAT_S SHUTDOWN_S GRACE_S
prints `ready` once the service listens, or `error: ...` and exits 2.
"""
from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time


def port_in_use(bind: str) -> bool:
  """Is `bind` ('host:port', '[::]:port') taken? Checked before the service starts: jaxlib's service crashes
  (SIGSEGV) about half the time on a port it cannot bind instead of raising. False when it cannot tell."""
  host, _, port = bind.rpartition(':')
  host = host.strip('[]') or '::'
  family = socket.AF_INET6 if ':' in host else socket.AF_INET
  try:
    with socket.socket(family, socket.SOCK_STREAM) as s:
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind((host, int(port)))
  except OSError as e:
    return e.errno == errno.EADDRINUSE
  except ValueError:
    return False
  return False


def serve(bind: str, num_processes: int, heartbeat_s: int, shutdown_s: int, grace_s: float, stdin=None,
          stdout=None) -> int:
  stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
  if port_in_use(bind):
    print(f'error: the address {bind} is already in use', file=stdout, flush=True)
    return 2
  from jax._src.lib import _jax  # pylint: disable=g-import-not-at-top — the service alone, no backend
  try:
    service = _jax.get_distributed_runtime_service(bind, num_processes, heartbeat_timeout=heartbeat_s,
                                                   shutdown_timeout=shutdown_s)
  except Exception as e:  # noqa: BLE001 — e.g. the port is taken
    print(f'error: {str(e).splitlines()[0] if str(e) else type(e).__name__}', file=stdout, flush=True)
    return 2
  print('ready', file=stdout, flush=True)
  line = stdin.readline()
  time.sleep(1.0 if line.strip() == 'done' else grace_s)   # let the others disconnect, or name process 0
  del service
  return 0


def main(argv: list[str]) -> int:
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  bind, n, heartbeat_s, shutdown_s, grace_s = argv
  code = serve(bind, int(n), int(heartbeat_s), int(shutdown_s), float(grace_s))
  sys.stdout.flush()
  os._exit(code)   # not the service's destructor: it may wait for processes that are gone


if __name__ == '__main__':
  main(sys.argv[1:])
