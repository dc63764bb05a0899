"""Training state: a pytree of arrays only (apply function and optimiser live in the step's closure)."""
from __future__ import annotations

import hashlib
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class TrainState:
  step: jax.Array            # int32 scalar: number of updates applied
  params: Any
  opt_state: Any
  model_state: Any           # mutable collections other than params, e.g. {'batch_stats': ...}; {} if none
  avg_params: Any = None     # running average of the weights (EMA or Polyak), when train.averaging is on


def init_variables(model, rng: jax.Array, input_shape: tuple[int, ...], batch: int = 2, example: dict | None = None):
  """Initialises a model on a dummy batch; returns (params, model_state).

  A model that takes more batch fields than its inputs (its `batch_keys`, e.g. paddings) is initialised on zeros
  shaped and typed like `example` (a real batch), the extra fields as keyword arguments.
  """
  p_rng, d_rng = jax.random.split(rng)
  keys = getattr(model, 'batch_keys', ())
  if example is not None and keys:
    zeros = {k: jnp.zeros(np.shape(example[k]), np.asarray(example[k]).dtype) for k in ('inputs', *keys)}
    inputs = zeros.pop('inputs')
  else:
    inputs, zeros = jnp.zeros((batch, *input_shape), jnp.float32), {}
  variables = model.init({'params': p_rng, 'dropout': d_rng}, inputs, train=False, **zeros)
  variables = dict(variables)
  params = variables.pop('params')
  return params, variables


def create_train_state(model, tx, rng: jax.Array, input_shape: tuple[int, ...], averaging: bool = False,
                       example: dict | None = None) -> TrainState:
  params, model_state = init_variables(model, rng, input_shape, example=example)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    model_state=model_state, avg_params=params if averaging else None)


def _host_array(x) -> np.ndarray:
  """The full value of a (fully replicated) global array on this host."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def params_fingerprint(params: Any) -> str:
  """sha256 over (path, dtype, shape, bytes) of every parameter, in flattening order (sorted dict keys)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    arr = np.ascontiguousarray(_host_array(leaf))
    h.update(jax.tree_util.keystr(path).encode())
    h.update(f'{arr.dtype}{arr.shape}'.encode())
    h.update(arr.tobytes())
  return h.hexdigest()
