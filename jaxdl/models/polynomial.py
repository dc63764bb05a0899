"""Polynomial regression: a fixed feature map [x, x², …, x^d] followed by a linear model (seed 002, course 1:
"Analogy with the polynomial regression"; degree d is the capacity knob)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.models.linear import least_squares
from jaxdl.registry import MODELS


def polynomial_features(x: jax.Array, degree: int) -> jax.Array:
  """[x, x², …, x^d] of a scalar input per row: (N, 1) or (N,) -> (N, d). The bias is the linear layer's."""
  x = jnp.asarray(x, jnp.float32).reshape(-1, 1)
  return x ** jnp.arange(1, degree + 1, dtype=jnp.float32)[None, :]


@MODELS.register('polynomial', example_input_shape=(1,), description='polynomial regression: features x..x^d + linear')
class PolynomialRegression(nn.Module):
  degree: int = 3
  num_outputs: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    return nn.Dense(self.num_outputs, name='dense')(polynomial_features(x, self.degree))


def fit_polynomial(x: jax.Array, y: jax.Array, degree: int, ridge: float = 0.0) -> dict:
  """Least-squares fit of a degree-d polynomial; returns `PolynomialRegression` params."""
  theta = least_squares(polynomial_features(x, degree), y, ridge)
  return {'dense': {'bias': theta[0], 'kernel': theta[1:]}}
