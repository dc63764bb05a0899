"""Activation (hidden transfer) functions by the names the course uses; configs select them by name.

Fixed functions are pure `x -> f(x)` (`get_activation(name, **params)`); learned ones (PReLU, maxout) are flax
modules. `Activation(kind=...)` is the one module a network uses for any of them, so a config's
`model.activation` may name either kind. Derivatives come from autodiff (tests check them against the formulas).

  sigmoid     σ(x) = 1 / (1 + e^−x)                 σ′ = σ(1 − σ) ≤ 1/4 (at 0)          seed 000, 001
  tanh        tanh(x)                               tanh′ = 1 − tanh² ≤ 1 (at 0)         seed 000, 001
  lecun_tanh  1.7159 tanh(2x/3), f(±1) = ±1         LeCun et al. 1998 (Efficient BackProp)
  relu        max(x, 0)                             Nair & Hinton 2010
  leaky_relu  x if x ≥ 0 else a·x, a = 0.01         Maas et al. 2013 (`slope`)
  prelu       x if x ≥ 0 else a_c·x, a_c learned    He et al. 2015 (one slope per channel, init 0.25)
  elu         x if x ≥ 0 else α(e^x − 1)            Clevert et al. 2016 (`alpha` = 1)
  selu        λ·elu_α(x), λ ≈ 1.0507, α ≈ 1.6733    Klambauer et al. 2017
  swish       x·σ(βx), β = 1 (= SiLU)               Ramachandran et al. 2017 (seed 004's table writes 2x·σ(βx))
  maxout      max_j (w_jᵀx + b_j) over k pieces     Goodfellow et al. 2013 (the layer before supplies k× units)
  step        0 for x < 0, 1 otherwise              the perceptron's
"""
from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError


def lecun_tanh(x):
  """LeCun et al. 1998 (Efficient BackProp): f(x) = 1.7159 tanh(2x/3), so f(±1) = ±1."""
  return 1.7159 * jnp.tanh(2.0 * x / 3.0)


def step(x):
  """Heaviside step, the perceptron's activation (0 for x < 0, 1 otherwise)."""
  return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


def leaky_relu(x, slope: float = 0.01):
  """x for x ≥ 0, slope·x otherwise (Maas et al. 2013; seed 004: max(0.01x, x))."""
  return jnp.where(x >= 0, x, slope * x)


def elu(x, alpha: float = 1.0):
  """x for x ≥ 0, α(eˣ − 1) otherwise (Clevert et al. 2016)."""
  return jax.nn.elu(x, alpha)


def swish(x, beta: float = 1.0):
  """x·σ(βx) (Ramachandran et al. 2017); β = 1 is SiLU, β → ∞ tends to relu, β = 0 to x/2."""
  return x * jax.nn.sigmoid(beta * x)


def maxout(x, pieces: int = 2):
  """max over groups of `pieces` consecutive features: (..., C·k) -> (..., C) (Goodfellow et al. 2013)."""
  if x.shape[-1] % pieces:
    raise UserError(f'maxout with {pieces} pieces got {x.shape[-1]} features', f'a multiple of {pieces}',
                    'give the layer before maxout pieces × the units')
  return jnp.max(x.reshape(*x.shape[:-1], x.shape[-1] // pieces, pieces), axis=-1)


# name -> (function, its keyword parameters with defaults)
ACTIVATIONS: dict[str, Callable[..., jax.Array]] = {
    'identity': lambda x: x,
    'linear': lambda x: x,
    'sigmoid': jax.nn.sigmoid,
    'tanh': jnp.tanh,
    'lecun_tanh': lecun_tanh,
    'relu': jax.nn.relu,
    'leaky_relu': leaky_relu,
    'elu': elu,
    'selu': jax.nn.selu,
    'gelu': jax.nn.gelu,
    'swish': swish,
    'silu': jax.nn.silu,
    'softplus': jax.nn.softplus,
    'step': step,
    'maxout': maxout,   # parameter-free given the layer before it (which has k× units)
}
LEARNED = ('prelu',)    # activations with their own parameters (flax modules)
PARAMS = {'leaky_relu': ('slope',), 'elu': ('alpha',), 'swish': ('beta',), 'maxout': ('pieces',)}


def names() -> list[str]:
  return sorted(set(ACTIVATIONS) | set(LEARNED))


def _unknown(name):
  return UserError(f'unknown activation {name!r}', 'one of: ' + ', '.join(names()), 'fix config.model.activation')


def get_activation(name: str, **params) -> Callable[[jax.Array], jax.Array]:
  """The pure function `name` with its parameters bound (those that do not apply to it are ignored)."""
  if name in LEARNED:
    raise UserError(f'activation {name!r} has learned parameters', 'use jaxdl.nn.activations.Activation (a module)',
                    'build it with Activation(kind=...) inside a module')
  if name not in ACTIVATIONS:
    raise _unknown(name)
  kw = {k: v for k, v in params.items() if k in PARAMS.get(name, ())}
  return functools.partial(ACTIVATIONS[name], **kw) if kw else ACTIVATIONS[name]


def width_multiplier(name: str, pieces: int = 2) -> int:
  """How many pre-activations one unit of this activation consumes (k for maxout, else 1)."""
  return pieces if name == 'maxout' else 1


class PReLU(nn.Module):
  """f(x) = x for x ≥ 0, a_c·x otherwise, with a learned slope per channel (He et al. 2015, eq. 1; a_c init 0.25).

  flax.linen.PReLU learns one shared slope; this is the paper's channel-wise form (`channel_shared` for the other).
  """
  init_slope: float = 0.25
  channel_shared: bool = False

  @nn.compact
  def __call__(self, x):
    shape = () if self.channel_shared else (x.shape[-1],)
    a = self.param('slope', nn.initializers.constant(self.init_slope), shape, jnp.float32)
    return jnp.where(x >= 0, x, a.astype(x.dtype) * x)


class Maxout(nn.Module):
  """A maxout layer: `features` units, each the max of `pieces` affine functions of x (Goodfellow et al. 2013)."""
  features: int
  pieces: int = 2
  kernel_init: Callable = nn.linear.default_kernel_init

  @nn.compact
  def __call__(self, x):
    z = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init, name='dense')(x)
    return maxout(z, self.pieces)


class Activation(nn.Module):
  """Any activation by name, fixed or learned: `Activation('prelu')(x)`, `Activation('leaky_relu', slope=0.2)(x)`."""
  kind: str = 'relu'
  slope: float = 0.01        # leaky_relu
  alpha: float = 1.0         # elu
  beta: float = 1.0          # swish
  pieces: int = 2            # maxout
  prelu_init: float = 0.25   # prelu's initial slope

  @nn.compact
  def __call__(self, x):
    if self.kind == 'prelu':
      return PReLU(self.prelu_init, name='prelu')(x)
    return get_activation(self.kind, slope=self.slope, alpha=self.alpha, beta=self.beta, pieces=self.pieces)(x)


def check_name(name: str) -> None:
  if name not in ACTIVATIONS and name not in LEARNED:
    raise _unknown(name)
