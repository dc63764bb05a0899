"""Linear models: f_θ(x) = θᵀ[1; x] — least squares, Adaline, perceptron, logistic and softmax regression.

The network part is one affine layer (`Linear`); the closed-form solutions are pure functions. The course writes
the bias as θ₀, the weight of the constant feature φ₀ = 1.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.registry import MODELS


@MODELS.register('linear', example_input_shape=(3,), description='affine map θᵀ[1; x] (linear, logistic, softmax regression, perceptron)')
class Linear(nn.Module):
  """One affine layer on the flattened input. The bias is the course's θ₀ (the weight of φ₀ = 1)."""
  num_outputs: int = 1
  use_bias: bool = True
  init_std: float = 0.0           # 0: flax's default (LeCun normal); >0: N(0, σ²)
  zero_init: bool = False         # start at θ = 0 (perceptron, Adaline)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1)).astype(jnp.float32)
    if self.zero_init:
      init = nn.initializers.zeros
    elif self.init_std:
      init = nn.initializers.normal(self.init_std)
    else:
      init = nn.linear.default_kernel_init
    return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=init, name='dense')(x)


def add_bias_feature(x: jax.Array) -> jax.Array:
  """φ(x) = [1; x] for every row of x (N, d) -> (N, d+1)."""
  x = x.reshape((x.shape[0], -1))
  return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)


def least_squares(x: jax.Array, y: jax.Array, ridge: float = 0.0) -> jax.Array:
  """θ minimising (1/N)‖y − Φθ‖² + α‖θ‖², Φ = [1, x] (course: (XXᵀ + αI)w = Xy).

  Solved stably: with α = 0 by an SVD least-squares solve (never forms XXᵀ, works when it is singular);
  with α > 0 as the least-squares problem on the augmented system [Φ; √(Nα) I] θ ≈ [y; 0], which equals
  (ΦᵀΦ + NαI)θ = Φᵀy (the bias is penalised too, as in the course's wᵀw). Returns θ = [bias, weights].
  """
  phi = add_bias_feature(jnp.asarray(x, jnp.float32))
  y = jnp.asarray(y, jnp.float32).reshape(phi.shape[0], -1)
  if ridge:
    n, p = phi.shape
    phi = jnp.concatenate([phi, jnp.sqrt(n * ridge) * jnp.eye(p, dtype=phi.dtype)])
    y = jnp.concatenate([y, jnp.zeros((p, y.shape[1]), y.dtype)])
  theta, *_ = jnp.linalg.lstsq(phi, y)
  return theta


def theta_from_params(params) -> jax.Array:
  """[bias; kernel] of a `Linear` model's params, in the course's θ = [θ₀, θ₁, ...] order."""
  d = params['dense']
  return jnp.concatenate([d['bias'][None, :], d['kernel']], axis=0)


def params_from_theta(theta: jax.Array) -> dict:
  theta = jnp.asarray(theta).reshape(theta.shape[0], -1)
  return {'dense': {'bias': theta[0], 'kernel': theta[1:]}}
