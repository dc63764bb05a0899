"""Linear models: f_θ(x) = θᵀ[1; x] (linear/least-squares regression, logistic and softmax regression)."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.registry import MODELS


@MODELS.register('linear', example_input_shape=(3,), description='affine map θᵀ[1; x] (linear, logistic, softmax regression)')
class Linear(nn.Module):
  """One affine layer on the flattened input. The bias is the course's θ₀ (the weight of φ₀ = 1)."""
  num_outputs: int = 1
  use_bias: bool = True
  kernel_init_std: float = 0.0   # 0: flax's default (LeCun normal)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1))
    init = nn.initializers.normal(self.kernel_init_std) if self.kernel_init_std else nn.linear.default_kernel_init
    return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=init, name='dense')(x.astype(jnp.float32))
