"""Activation functions by the names the course uses (configs select them by name)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxdl.errors import UserError


def lecun_tanh(x):
  """LeCun et al. 1998 (Efficient BackProp): f(x) = 1.7159 tanh(2x/3), so f(±1) = ±1."""
  return 1.7159 * jnp.tanh(2.0 * x / 3.0)


def step(x):
  """Heaviside step, the perceptron's activation (0 for x < 0, 1 otherwise)."""
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'identity': lambda x: x,
    'sigmoid': jax.nn.sigmoid,
    'tanh': jnp.tanh,
    'lecun_tanh': lecun_tanh,
    'relu': jax.nn.relu,
    'leaky_relu': jax.nn.leaky_relu,
    'elu': jax.nn.elu,
    'selu': jax.nn.selu,
    'gelu': jax.nn.gelu,
    'swish': jax.nn.swish,
    'softplus': jax.nn.softplus,
    'step': step,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  if name not in ACTIVATIONS:
    raise UserError(f'unknown activation {name!r}', 'one of: ' + ', '.join(sorted(ACTIVATIONS)),
                    'fix config.model.activation')
  return ACTIVATIONS[name]
