"""Weight and bias initialisers by name (configs: `model.kernel_init`, `model.kernel_init_scale`, `model.bias_init`).

Each entry builds a flax/JAX initialiser `init(key, shape, dtype)` from one number, `scale`. For a Dense kernel of
shape (fan_in, fan_out) [conv: (..., fan_in/receptive, fan_out)], with the notes' conventions (seed 000,
"LECUN / XAVIER (GLOROT) / HE INITIALIZATION"):

  name            distribution                                scale means
  lecun_normal    N(0, σ² = 1/fan_in)          LeCun 1998     multiplies σ²
  lecun_uniform   U(±√(3/fan_in))  (σ² = 1/fan_in)            multiplies σ²
  glorot_normal   N(0, σ² = 2/(fan_in+fan_out)) Glorot 2010   multiplies σ²   (notes: std √2/√(fan_in+fan_out))
  glorot_uniform  U(±√6/√(fan_in+fan_out))                    multiplies σ²
  he_normal       N(0, σ² = 2/fan_in)           He 2015       multiplies σ²   (notes: std √2/√fan_in)
  he_uniform      U(±√6/√fan_in)                              multiplies σ²
  default         flax's Dense default: truncated N, σ² = 1/fan_in (lecun_normal of flax)   multiplies σ²
  torch_default   U(±1/√fan_in) (σ² = 1/(3 fan_in)): torch.nn.Linear's weights AND biases    multiplies σ²
  orthogonal      a random orthogonal matrix (Saxe et al. 2014)                               gain
  identity        gain·I (recurrent kernels, Le et al. 2015)                                  gain
  uniform         U(−a, a)                                                                     a
  normal          N(0, σ²)                                                                     σ (a std)
  constant        every entry = c                                                              c
  zeros / ones    0 / 1                                                                        (ignored)

The notes' "N(0, 1/√fan_in)" for XOR (T2) is a std of 1/√fan_in, i.e. lecun_normal. The normal families here are
NOT truncated (the notes' N); jax.nn.initializers' lecun_normal/he_normal are truncated normals with the same
variance — that is `default`. Biases have no fan-in in their shape: only zeros, ones, constant, uniform, normal
and torch_default (given `fan_in`) apply to them.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from jaxdl.errors import UserError

Initializer = Callable[..., jax.Array]   # (key, shape, dtype) -> array
vs = jax.nn.initializers.variance_scaling


def _uniform_symmetric(a: float) -> Initializer:
  """U(−a, a) (jax.nn.initializers.uniform(s) is U[0, s): not the notes' U(−a, a))."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -a, a)
  return init


def _identity(gain: float) -> Initializer:
  def init(key, shape, dtype=jnp.float32):
    del key
    if len(shape) != 2:
      raise UserError(f'identity init needs a 2-D kernel, got shape {shape}', 'a Dense / recurrent kernel',
                      'use another kernel_init for this layer')
    return gain * jnp.eye(shape[0], shape[1], dtype=dtype)
  return init


def _torch_default(scale: float, fan_in: int | None) -> Initializer:
  """torch.nn.Linear.reset_parameters: kaiming_uniform(a=√5) = U(±1/√fan_in) for weights and biases."""
  def init(key, shape, dtype=jnp.float32):
    n = fan_in if fan_in is not None else (math.prod(shape[:-1]) if len(shape) >= 2 else None)
    if n is None:
      raise UserError('torch_default bias init needs the layer fan-in', 'the layer to pass fan_in',
                      'use it through a jaxdl model (it passes fan_in)')
    return _uniform_symmetric(math.sqrt(scale) / math.sqrt(n))(key, shape, dtype)
  return init


# name -> builder(scale, fan_in) -> Initializer
INITIALIZERS: dict[str, Callable[[float, int | None], Initializer]] = {
    'lecun_normal': lambda s, _: vs(s, 'fan_in', 'normal'),
    'lecun_uniform': lambda s, _: vs(s, 'fan_in', 'uniform'),
    'glorot_normal': lambda s, _: vs(s, 'fan_avg', 'normal'),
    'glorot_uniform': lambda s, _: vs(s, 'fan_avg', 'uniform'),
    'he_normal': lambda s, _: vs(2.0 * s, 'fan_in', 'normal'),
    'he_uniform': lambda s, _: vs(2.0 * s, 'fan_in', 'uniform'),
    'default': lambda s, _: vs(s, 'fan_in', 'truncated_normal'),
    'torch_default': _torch_default,
    'orthogonal': lambda s, _: jax.nn.initializers.orthogonal(s),
    'identity': lambda s, _: _identity(s),
    'uniform': lambda s, _: _uniform_symmetric(s),
    'normal': lambda s, _: jax.nn.initializers.normal(s),
    'constant': lambda s, _: jax.nn.initializers.constant(s),
    'zeros': lambda s, _: jax.nn.initializers.zeros,
    'ones': lambda s, _: jax.nn.initializers.ones,
}
ALIASES = {'xavier_normal': 'glorot_normal', 'xavier_uniform': 'glorot_uniform', 'kaiming_normal': 'he_normal',
           'kaiming_uniform': 'he_uniform'}
BIAS_OK = ('zeros', 'ones', 'constant', 'uniform', 'normal', 'torch_default')


def names() -> list[str]:
  return sorted(INITIALIZERS) + sorted(ALIASES)


def get_initializer(name: str, scale: float = 1.0, *, fan_in: int | None = None, bias: bool = False,
                    where: str = 'kernel_init') -> Initializer:
  """The initialiser `name` with its one parameter `scale` (see the table above)."""
  name = ALIASES.get(name, name)
  if name not in INITIALIZERS:
    raise UserError(f'unknown initializer {name!r}', 'one of: ' + ', '.join(names()), f'fix config.model.{where}')
  if bias and name not in BIAS_OK:
    raise UserError(f'{name!r} cannot initialise a bias (a bias has no fan-in/fan-out)', 'one of: ' + ', '.join(BIAS_OK),
                    f'fix config.model.{where}')
  if name not in ('constant', 'zeros', 'ones') and not scale > 0:
    raise UserError(f'{where}_scale={scale} is impossible for {name!r}', 'a positive number', f'fix config.model.{where}_scale')
  return INITIALIZERS[name](float(scale), fan_in)


def expected_variance(name: str, shape: tuple[int, ...], scale: float = 1.0) -> float:
  """The variance of one entry the formula gives (the tests check the samples against it)."""
  name = ALIASES.get(name, name)
  recept = math.prod(shape[:-2]) if len(shape) > 2 else 1
  fan_in, fan_out = shape[-2] * recept, shape[-1] * recept
  d = min(shape[-2], shape[-1])
  return {
      'lecun_normal': scale / fan_in, 'lecun_uniform': scale / fan_in, 'default': scale / fan_in,
      'glorot_normal': 2 * scale / (fan_in + fan_out), 'glorot_uniform': 2 * scale / (fan_in + fan_out),
      'he_normal': 2 * scale / fan_in, 'he_uniform': 2 * scale / fan_in, 'torch_default': scale / (3 * fan_in),
      'uniform': scale ** 2 / 3, 'normal': scale ** 2,
      'orthogonal': scale ** 2 / max(fan_in, shape[-1]),   # (fan_in × out) with orthonormal rows or columns
      'identity': scale ** 2 * d / (fan_in * fan_out) - (scale * d / (fan_in * fan_out)) ** 2,
      'constant': 0.0, 'zeros': 0.0, 'ones': 0.0,
  }[name]
