"""Devices, hosts and the ('data',) mesh.

The same code runs on 1 CPU, 8 GPUs or N hosts: parameters are replicated, the global batch is split along
'data'. Each process feeds its local slice with `jax.make_array_from_process_local_data`.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdl.errors import UserError

_initialized = False


def multiprocess_env() -> bool:
  """True when the environment describes several processes (SLURM, or jaxdl's local launcher)."""
  if int(os.environ.get('JAX_NUM_PROCESSES', '1')) > 1:
    return True
  return int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_JOB_ID' in os.environ


def maybe_initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()` once, when the environment describes several processes."""
  global _initialized
  if _initialized or not multiprocess_env():
    return
  _initialized = True
  if os.environ.get('JAX_PLATFORMS', '') == 'cpu' or os.environ.get('JAXDL_CPU_COLLECTIVES'):
    # Cross-process collectives on CPU go through gloo.
    jax.config.update('jax_cpu_collectives_implementation', os.environ.get('JAXDL_CPU_COLLECTIVES', 'gloo'))
  if 'JAX_COORDINATOR_ADDRESS' in os.environ:
    jax.distributed.initialize(coordinator_address=os.environ['JAX_COORDINATOR_ADDRESS'],
                               num_processes=int(os.environ['JAX_NUM_PROCESSES']),
                               process_id=int(os.environ['JAX_PROCESS_ID']))
  else:  # SLURM: jax reads the cluster from SLURM's variables.
    jax.distributed.initialize()


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
