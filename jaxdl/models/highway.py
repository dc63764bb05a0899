"""Highway networks (Srivastava, Greff & Schmidhuber 2015; seed 000 "Variations around skip layer connections").

A highway layer gates between transforming and carrying its input (gates as in an LSTM):

  y = H(x)·T(x) + x·C(x),   T(x) = σ(W_T x + b_T) the transform gate,  C(x) the carry gate,

with the coupled carry C = 1 − T of the paper (`coupled=False`: a separate gate C(x) = σ(W_C x + b_C), the seed's
general form). H is a plain layer (Dense or 3×3 conv, then the activation). The transform-gate bias starts
NEGATIVE (the paper: −1 … −3) so that T ≈ σ(b_T) is small and every layer first mostly carries its input — the
network starts close to the identity, which is what lets 50–100 plain layers train (the paper's Fig. 1).

* `highway`: fully connected — flatten → Dense(width) → activation (a plain layer sets the width) → `depth`
  highway layers of `width` units → Dense(num_outputs) (the paper's MNIST nets: width 50, up to 100 layers).
* `highway_conv`: convolutional — per stage, a plain conv3×3 sets the width, `layers_per_stage` convolutional
  highway layers (H and T are 3×3 convs) follow, max-pool 2×2 between stages → global average pool → Dense.

`apply(..., mutable=['intermediates'])` returns the mean transform gate of every highway layer ('gate{i}').
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import activations, pooling
from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS


def _check(activation: str) -> None:
  activations.check_name(activation)
  if activation in activations.LEARNED or activations.width_multiplier(activation) != 1:
    raise UserError(f'highway activation {activation!r}', 'a fixed, width-preserving activation (relu, tanh, ...)',
                    'fix config.model.activation')


class HighwayLayer(nn.Module):
  """y = H(x)·T(x) + x·C(x) with H, T (and C) Dense (kernel_size None) or k×k convs of the input's width."""
  activation: str = 'relu'
  gate_bias_init: float = -2.0
  coupled: bool = True
  kernel_size: int | None = None

  def _layer(self, d: int, name: str, bias_init=nn.initializers.zeros):
    if self.kernel_size is None:
      return nn.Dense(d, bias_init=bias_init, name=name)
    k = self.kernel_size
    return Conv(d, (k, k), padding='SAME', bias_init=bias_init, name=name)

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    h = activations.get_activation(self.activation)(self._layer(d, 'H')(x))
    t = nn.sigmoid(self._layer(d, 'T', nn.initializers.constant(self.gate_bias_init))(x))
    c = 1.0 - t if self.coupled else nn.sigmoid(self._layer(d, 'C')(x))
    return h * t + x * c, t


@MODELS.register('highway', example_input_shape=(8, 8, 1),
                 description='fully connected highway network (Srivastava et al. 2015)')
class HighwayNet(nn.Module):
  """flatten → Dense(width) → act → depth × highway layer → Dense(num_outputs) (see the module docstring)."""
  width: int = 50
  depth: int = 10
  num_outputs: int = 10
  activation: str = 'relu'
  gate_bias_init: float = -2.0
  coupled: bool = True

  def __post_init__(self):
    super().__post_init__()
    _check(self.activation)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x.reshape((x.shape[0], -1)))
    x = activations.get_activation(self.activation)(nn.Dense(self.width, name='plain')(x))
    for i in range(self.depth):
      x, t = HighwayLayer(self.activation, self.gate_bias_init, self.coupled, name=f'highway{i}')(x)
      if not self.is_initializing():     # recorded on request only (never into init's variables)
        self.sow('intermediates', f'gate{i}', jnp.mean(t))
    return nn.Dense(self.num_outputs, name='head')(x)


@MODELS.register('highway_conv', example_input_shape=(16, 16, 3),
                 description='convolutional highway network (Srivastava et al. 2015)')
class HighwayConvNet(nn.Module):
  """Per stage: conv3×3 (width) → act → layers_per_stage × conv highway layer; max-pool 2×2 between stages."""
  widths: Sequence[int] = (16, 32, 64)
  layers_per_stage: int = 3
  num_outputs: int = 10
  activation: str = 'relu'
  gate_bias_init: float = -2.0
  coupled: bool = True

  def __post_init__(self):
    super().__post_init__()
    _check(self.activation)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    act = activations.get_activation(self.activation)
    k = 0
    for i, w in enumerate(self.widths):
      if i:
        x = pooling.max_pool(x, (2, 2), strides=(2, 2))
      x = act(Conv(w, (3, 3), padding='SAME', name=f'plain{i}')(x))
      for _ in range(self.layers_per_stage):
        x, t = HighwayLayer(self.activation, self.gate_bias_init, self.coupled, kernel_size=3, name=f'highway{k}')(x)
        if not self.is_initializing():
          self.sow('intermediates', f'gate{k}', jnp.mean(t))
        k += 1
    return nn.Dense(self.num_outputs, name='head')(jnp.mean(x, axis=(1, 2)))
