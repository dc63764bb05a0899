"""Devices, hosts and the ('data',) mesh.

The same code runs on 1 CPU, 8 GPUs or N hosts: parameters are replicated, the global batch is split along
'data'. Each process feeds its local slice with `jax.make_array_from_process_local_data`.

Several processes (README, "Cluster"): `distributed_args` says, as a pure function of the environment (jaxdl's local
launcher or SLURM), what `jax.distributed.initialize` is given -- including the GPUs each SLURM task drives.
Failures are bounded: a process missing at start (JAXDL_DIST_INIT_TIMEOUT, 60 s) or silent mid-run
(JAXDL_DIST_HEARTBEAT_TIMEOUT, 20 s; a heartbeat through jax.distributed's key-value store) stops the others with
one line naming it, exit 2, before the C++ runtime's own timeouts would abort them with a stack trace.
"""
from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
import traceback

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdl.errors import UserError

# Failure detection (README, "Cluster"): how long a process waits for all processes to join, and how long a
# silent peer may go without a heartbeat before every other process stops with a one-line error (exit 2).
DEFAULT_INIT_TIMEOUT_S = 60
DEFAULT_HEARTBEAT_TIMEOUT_S = 20
EXIT_PEER_LOST = 2
SHUTDOWN_TIMEOUT_S = 300   # jax's default: how long jax's shutdown barrier waits for every process
_state: dict = {'initialized': False, 'watchdog': None, 'service': None}


def multiprocess_env(env=None) -> bool:
  """True when the environment describes several processes (SLURM, or jaxdl's local launcher)."""
  env = os.environ if env is None else env
  if int(env.get('JAX_NUM_PROCESSES', '1')) > 1:
    return True
  return int(env.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_JOB_ID' in env


def _env_seconds(env, name: str, default: int) -> int:
  raw = env.get(name, '')
  if not raw:
    return default
  if not raw.isdigit() or int(raw) <= 0:
    raise UserError(f'{name}={raw!r} is not a number of seconds', 'a positive integer', f'set {name}, e.g. {default}')
  return int(raw)


def dist_timeouts(env=None) -> tuple[int, int]:
  """(init, heartbeat) timeouts in seconds: JAXDL_DIST_INIT_TIMEOUT, JAXDL_DIST_HEARTBEAT_TIMEOUT."""
  env = os.environ if env is None else env
  return (_env_seconds(env, 'JAXDL_DIST_INIT_TIMEOUT', DEFAULT_INIT_TIMEOUT_S),
          _env_seconds(env, 'JAXDL_DIST_HEARTBEAT_TIMEOUT', DEFAULT_HEARTBEAT_TIMEOUT_S))


def _tasks_on_this_node(env) -> int:
  """SLURM's tasks-per-node spec ('8(x2),4') expanded, read at this node (SLURM_NODEID)."""
  spec = env.get('SLURM_STEP_TASKS_PER_NODE') or env.get('SLURM_TASKS_PER_NODE') or ''
  counts = []
  for part in filter(None, spec.split(',')):
    n, _, rep = part.partition('(x')
    counts += [int(n)] * (int(rep.rstrip(')')) if rep else 1)
  node = int(env.get('SLURM_NODEID', '0'))
  return counts[node] if node < len(counts) else 1


def local_device_ids(env) -> list[int] | None:
  """The accelerator ordinals this SLURM task drives, as numbered inside the task (after CUDA_VISIBLE_DEVICES).

  jax's default, `[SLURM_LOCALID]`, is wrong when SLURM binds GPUs per task (`--gpus-per-task`): every task then
  sees its one GPU as ordinal 0, and local rank 1 asks for an ordinal it cannot see (jax issues 23452, 28194).
  Here: one visible device -> [0]; k visible devices shared by L local tasks -> this task's k/L of them;
  nothing visible-restricted -> one device per local task (all of them for a single task). None: CPU, let jax be.
  """
  platforms = env.get('JAX_PLATFORMS', '')
  if platforms and 'cpu' in platforms.split(',')[:1]:
    return None
  tasks, rank = _tasks_on_this_node(env), int(env.get('SLURM_LOCALID', '0'))
  visible = None
  for var in ('CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES'):
    if env.get(var, '').strip():
      visible = [d for d in env[var].split(',') if d.strip()]
      break
  if visible is None:
    return None if tasks == 1 else [rank]
  if len(visible) == 1:
    return [0]
  if len(visible) % tasks:
    raise UserError(f'{len(visible)} visible GPUs cannot be shared equally by the {tasks} tasks on this node',
                    'as many GPUs per node as tasks per node (or a multiple)',
                    'submit with --gpus-per-node equal to --ntasks-per-node (see launch/slurm.sbatch)')
  per = len(visible) // tasks
  return list(range(rank * per, (rank + 1) * per))


def distributed_args(env=None) -> dict | None:
  """What `jax.distributed.initialize` is given in this environment (None: a single process, nothing to do).

  A pure function of the environment: jaxdl's local launcher (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
  JAX_PROCESS_ID) or SLURM (SLURM_NTASKS, SLURM_PROCID; jax finds the coordinator from the step's node list). The
  C++ runtime's own timeouts are set past jaxdl's watchdog (`dist_timeouts`), which stops first with one line.
  """
  env = os.environ if env is None else env
  if not multiprocess_env(env):
    return None
  init_s, beat_s = dist_timeouts(env)
  timeouts = {'initialization_timeout': init_s + 30, 'heartbeat_timeout_seconds': 2 * beat_s + 10}
  if 'JAX_COORDINATOR_ADDRESS' in env:
    return {'coordinator_address': env['JAX_COORDINATOR_ADDRESS'], 'num_processes': int(env['JAX_NUM_PROCESSES']),
            'process_id': int(env['JAX_PROCESS_ID']), 'local_device_ids': None, **timeouts}
  return {'coordinator_address': None, 'num_processes': int(env['SLURM_NTASKS']),
          'process_id': int(env['SLURM_PROCID']), 'local_device_ids': local_device_ids(env), **timeouts}


def _coordinator(args: dict) -> str:
  if args['coordinator_address']:
    return args['coordinator_address']
  try:  # SLURM: the first node of the step, as jax computes it
    from jax._src.clusters import SlurmCluster  # pylint: disable=g-import-not-at-top
    return SlurmCluster.get_coordinator_address(None, os.environ.get('JAX_COORDINATOR_PORT'))
  except Exception:  # noqa: BLE001
    return 'the first node of the job'


def _start_service(args: dict) -> tuple[subprocess.Popen, str] | None:
  """Process 0 starts jax.distributed's coordination service as a child (`jaxdl.train.coordination`), so that it
  outlives process 0: (the child, the coordinator address). None where the address is unknown here (jax then runs
  the service in this process)."""
  address = _coordinator(args) if args['coordinator_address'] or os.environ.get('SLURM_STEP_NODELIST') else None
  if not address or ':' not in address:
    return None
  bind = os.environ.get('JAX_COORDINATOR_BIND_ADDRESS', '[::]:' + address.rsplit(':', 1)[1])
  proc = subprocess.Popen([sys.executable, '-m', 'jaxdl.train.coordination', bind, str(args['num_processes']),
                           str(args['heartbeat_timeout_seconds']), str(SHUTDOWN_TIMEOUT_S),
                           str(args['heartbeat_timeout_seconds'] + 5)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  line = proc.stdout.readline().strip()
  if line != 'ready':
    proc.kill()
    raise UserError(f'the jax.distributed coordination service could not start on {bind}: '
                    f'{line.removeprefix("error: ") or "it exited with status " + str(proc.wait()) + " (is the port in use?)"}',
                    'a free port on the first node', 'set JAX_COORDINATOR_ADDRESS (or JAX_COORDINATOR_PORT on SLURM) '
                    'to a free port')
  return proc, address


def _release_service(finished: bool) -> None:
  """Process 0 leaves: `done` after jax's shutdown barrier (the service stops at once), else the service stays up
  long enough for the other processes to name process 0."""
  proc, _state['service'] = _state['service'], None
  if proc is None:
    return
  try:
    if finished:
      proc.stdin.write('done\n')
    proc.stdin.close()
  except OSError:
    pass


def _shutdown_at_exit() -> None:
  """A normal exit: jax's shutdown barrier (every process finished), then the service is let go."""
  try:
    jax.distributed.shutdown()
  finally:
    _release_service(finished=True)


def _fail(message: str) -> None:
  """Prints one line and leaves at once: a process whose peers are gone cannot pass jax's shutdown barrier."""
  sys.stdout.flush()
  print(f'jaxdl: error: {message}', file=sys.stderr, flush=True)
  os._exit(EXIT_PEER_LOST)


def _init_timed_out(args: dict, seconds: int) -> str:
  me, n, addr = args['process_id'], args['num_processes'], _coordinator(args)
  others = [i for i in range(n) if i != me]
  if me != 0:
    host, _, port = addr.rpartition(':')
    try:
      socket.create_connection((host, int(port)), timeout=2).close()
    except (OSError, ValueError):
      return str(UserError(f'process {me} of {n} could not reach the coordinator, process 0, at {addr} within '
                           f'{seconds} s: process 0 is missing or its address is unreachable', 'all processes started',
                           'see process 0\'s log; JAXDL_DIST_INIT_TIMEOUT sets the wait'))
    others = [i for i in others if i != 0] or [0]   # the coordinator answers: process 0 is there
  who = f'process {others[0]}' if len(others) == 1 else 'one or more of processes ' + ','.join(map(str, others))
  return str(UserError(f'process {me} of {n}: {who} did not join within {seconds} s (coordinator {addr})',
                       'all processes started and able to reach the coordinator',
                       'see the missing process\'s log; JAXDL_DIST_INIT_TIMEOUT sets the wait'))


class _Watchdog:
  """Every process bumps a counter in jax.distributed's key-value store and watches the others' counters: a peer
  silent for `timeout` s (killed, host gone) stops this process with a line naming it, before the C++ runtime's
  own heartbeat check aborts with a stack trace. Peers that finished (`done`) are not watched."""

  def __init__(self, client, me: int, n: int, timeout: int):
    self.client, self.me, self.n, self.timeout = client, me, n, timeout
    self.stop = threading.Event()
    self.thread = threading.Thread(target=self._run, name='jaxdl-peer-watchdog', daemon=True)
    self.thread.start()

  def _value(self, key: str):
    try:
      return self.client.key_value_try_get(key)
    except Exception:  # noqa: BLE001 — NOT_FOUND: not written yet
      return None

  def _run(self) -> None:
    seen: dict[int, tuple[object, float]] = {}
    period = max(0.2, min(2.0, self.timeout / 10))
    while not self.stop.wait(period):
      now = time.monotonic()
      try:
        self.client.key_value_increment(f'jaxdl/alive/{self.me}', 1)
      except Exception:  # noqa: BLE001 — the coordination service (on process 0) is gone
        if not self.stop.is_set():
          _fail(str(UserError(f'process {self.me} of {self.n} lost the coordinator, process 0 (dead or '
                              'unreachable)', 'all processes alive', "see process 0's log; rerun the same command "
                              'to resume from the last checkpoint')))
        return
      for q in range(self.n):
        if q == self.me or self._value(f'jaxdl/done/{q}') is not None:
          continue
        v = self._value(f'jaxdl/alive/{q}')
        if q not in seen or seen[q][0] != v:
          seen[q] = (v, now)
        elif now - seen[q][1] > self.timeout and not self.stop.is_set():
          _fail(str(UserError(f'process {q} of {self.n} stopped responding (no heartbeat for {self.timeout} s): '
                              'it died or its host is unreachable', 'all processes alive',
                              f"see process {q}'s log; rerun the same command to resume from the last checkpoint "
                              '(JAXDL_DIST_HEARTBEAT_TIMEOUT sets the wait)')))

  def finish(self) -> None:
    """This process is leaving normally: peers stop watching it."""
    self.stop.set()
    try:
      self.client.key_value_set(f'jaxdl/done/{self.me}', '1', allow_overwrite=True)
    except Exception:  # noqa: BLE001
      pass


def maybe_initialize_distributed() -> None:
  """Calls `jax.distributed.initialize` once, when the environment describes several processes, with bounded
  waits: a process missing at start or lost mid-run stops every other one with a line naming it (exit 2)."""
  if _state['initialized']:
    return
  args = distributed_args()
  if args is None:
    return
  _state['initialized'] = True
  init_s, beat_s = dist_timeouts()
  if os.environ.get('JAX_PLATFORMS', '') == 'cpu' or os.environ.get('JAXDL_CPU_COLLECTIVES'):
    # Cross-process collectives on CPU go through gloo.
    jax.config.update('jax_cpu_collectives_implementation', os.environ.get('JAXDL_CPU_COLLECTIVES', 'gloo'))
  # jax's preemption service installs a C++ SIGTERM handler that takes the signal away from jaxdl's own
  # (`preemption`), whose flag every process checks collectively (`Run.preempted`): SIGTERM would save nothing.
  jax.config.update('jax_enable_preemption_service', False)
  joined = threading.Event()

  def init_watchdog():
    if not joined.wait(init_s):
      _fail(_init_timed_out(args, init_s))
  threading.Thread(target=init_watchdog, name='jaxdl-init-watchdog', daemon=True).start()
  if args['process_id'] == 0:
    try:
      started = _start_service(args)
    except UserError:
      joined.set()
      raise
    if started is not None:   # jax's own service, in this process, listens on a spare port, unused
      _state['service'], address = started
      args = dict(args, coordinator_address=address, coordinator_bind_address='127.0.0.1:0')
  try:
    jax.distributed.initialize(**{k: v for k, v in args.items() if v is not None})
  except Exception as e:  # noqa: BLE001 — e.g. an address that does not resolve
    joined.set()
    if _state['service'] is not None:
      _state['service'].kill()
      _state['service'] = None
    raise UserError(f'jax.distributed could not start process {args["process_id"]} of {args["num_processes"]}: '
                    f'{str(e).splitlines()[0] if str(e) else type(e).__name__}', 'a reachable coordinator',
                    'check JAX_COORDINATOR_ADDRESS or the SLURM allocation') from e
  joined.set()
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  _state['watchdog'] = _Watchdog(jax_distributed.global_state.client, args['process_id'], args['num_processes'],
                                 beat_s)
  atexit.register(_shutdown_at_exit)
  atexit.register(_state['watchdog'].finish)   # runs before jax's own shutdown (atexit is last-in, first-out)


def is_peer_failure(e: BaseException) -> bool:
  """Did a collective fail because another process went away (gloo/NCCL/gRPC connection errors)?"""
  if _state['watchdog'] is None or isinstance(e, UserError):
    return False
  text = str(e)
  return any(s in text for s in ('Gloo', 'gloo', 'Connection closed by peer', 'Connection reset', 'NCCL',
                                 'UNAVAILABLE', 'DEADLINE_EXCEEDED'))


def peer_failure(e: BaseException) -> UserError:
  """A collective failed: give the watchdog time (twice its timeout) to name the process that went away (it then
  stops this one), else -- or at once when a launcher stops this process (SIGTERM) -- a generic one-line error."""
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  dog = _state['watchdog']
  deadline = time.monotonic() + (2 * dog.timeout + 2 if dog else 0)   # slack for a loaded machine
  while time.monotonic() < deadline and not preemption.requested():
    time.sleep(0.1)
  return UserError(f'a collective failed because another process went away ({str(e).splitlines()[0][:160]})',
                   'all processes alive', "see the other processes' logs; rerun the same command to resume")


def leave(code: int, exc: BaseException | None = None) -> None:
  """How a multi-process `jaxdl` exits (no-op in a single process).

  An error exits at once: jax's shutdown barrier would wait for peers that are stuck in a collective with this
  process (300 s), while they learn of the exit through the watchdog. A preempted run (75) passes the barrier with
  every peer, then exits before Python's finalisation un-installs the SIGTERM handler: a launcher that stops the
  remaining tasks as soon as one exits non-zero (srun --kill-on-bad-exit) must not turn the peers' 75 into 143.
  """
  dog = _state['watchdog']
  if dog is None or code == 0:
    return
  if code == 75:
    dog.finish()
    _shutdown_at_exit()
  else:
    dog.stop.set()
    if exc is not None:
      traceback.print_exception(exc)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def check_batch_size(global_batch: int, what: str = 'train.batch_size', micro: int = 1) -> None:
  n = jax.device_count()
  if global_batch % (n * micro):
    per = f' × grad_accum_steps={micro}' if micro > 1 else ''
    raise UserError(f'config {what}={global_batch} does not divide across {n} devices{per}',
                    f'a multiple of {n * micro}',
                    f'set --config.{what} to {max(1, round(global_batch / (n * micro))) * n * micro}')


def to_global(batch: dict, sharding: NamedSharding) -> dict:
  """This process's slice of the batch -> global arrays sharded along 'data'."""
  n = jax.process_count()
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v), (v.shape[0] * n, *v.shape[1:]))
          for k, v in batch.items()}
