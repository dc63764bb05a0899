"""Multilayer perceptron (feedforward network) with optional dropout and batch normalisation."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.activations import get_activation
from jaxdl.registry import MODELS


@MODELS.register('mlp', example_input_shape=(8, 8, 1), description='fully connected network: hidden layers + linear head')
class MLP(nn.Module):
  """x -> [Dense -> (BatchNorm) -> activation -> (Dropout)] * len(hidden) -> Dense(num_outputs)."""
  hidden: Sequence[int] = (128,)
  num_outputs: int = 10
  activation: str = 'relu'
  dropout_rate: float = 0.0
  input_dropout_rate: float = 0.0
  batch_norm: bool = False
  output_bias: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    act = get_activation(self.activation)
    x = x.reshape((x.shape[0], -1)).astype(jnp.float32)
    if self.input_dropout_rate:
      x = nn.Dropout(self.input_dropout_rate, deterministic=not train)(x)
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, use_bias=not self.batch_norm, name=f'dense{i}')(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f'bn{i}')(x)
      x = act(x)
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, use_bias=self.output_bias, name='head')(x)
