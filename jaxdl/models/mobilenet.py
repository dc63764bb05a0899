"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen 2018; seed 000 "Do we need max pooling?").

Depthwise separable convolutions (Howard et al. 2017): a depthwise k×k conv filters each channel on its own
(`feature_group_count` = channels, 9·C parameters), a pointwise 1×1 conv mixes channels. The inverted residual
block expands C → tC with a 1×1 conv (BN, ReLU6), filters with a depthwise 3×3/s (BN, ReLU6) and projects back
with a LINEAR 1×1 conv (BN, no activation); the identity is added when stride = 1 and C_in = C_out.

`mobilenet_v2` is torchvision's `mobilenet_v2()` (width 1.0): conv3×3/2 32 → the (t, c, n, s) table below →
conv1×1 1280 → global average pool → Dropout(0.2) → Dense. Every conv is bias-free and followed by BN.
Parameters: 3,504,872 (torchvision's count).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn.precision import as_float
from jaxdl.models.resnet import batch_norm, conv2d
from jaxdl.registry import MODELS

TORCHVISION_PARAMS = {'mobilenet_v2': 3_504_872}
# Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
  """Channels rounded to a multiple of 8, never below 90% of v (torchvision `_make_divisible`)."""
  new = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new + divisor if new < 0.9 * v else new


class ConvBNReLU6(nn.Module):
  features: int
  kernel: int = 3
  strides: int = 1
  groups: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = conv2d(self.features, self.kernel, self.strides, groups=self.groups, name='conv')(x)
    return nn.relu6(batch_norm(train, 'bn')(x))


class InvertedResidual(nn.Module):
  """[conv1×1 tC → BN → ReLU6] → dwconv3×3/s → BN → ReLU6 → conv1×1 C_out → BN (linear bottleneck) (+ x)."""
  features: int
  strides: int = 1
  expand_ratio: int = 6

  @nn.compact
  def __call__(self, x, train: bool = False):
    c_in = x.shape[-1]
    hidden = int(round(c_in * self.expand_ratio))
    y = x
    if self.expand_ratio != 1:
      y = ConvBNReLU6(hidden, 1, name='expand')(y, train)
    y = ConvBNReLU6(hidden, 3, self.strides, groups=hidden, name='depthwise')(y, train)
    y = batch_norm(train, 'project_bn')(conv2d(self.features, 1, name='project')(y))
    return x + y if self.strides == 1 and c_in == self.features else y


@MODELS.register('mobilenet_v2', example_input_shape=(64, 64, 3), input_shape=(224, 224, 3), heavy=True,
                 description='MobileNetV2 (Sandler et al. 2018; torchvision, 3.5M params)')
class MobileNetV2(nn.Module):
  """torchvision MobileNetV2; `width_mult` scales every layer's channels (rounded to multiples of 8)."""
  num_outputs: int = 1000
  width_mult: float = 1.0
  dropout_rate: float = 0.2
  setting: Sequence[Sequence[int]] = INVERTED_RESIDUAL_SETTING

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = ConvBNReLU6(make_divisible(32 * self.width_mult), 3, 2, name='stem')(as_float(x), train)
    k = 0
    for t, c, n, s in self.setting:
      for j in range(n):
        x = InvertedResidual(make_divisible(c * self.width_mult), s if j == 0 else 1, t, name=f'block{k}')(x, train)
        k += 1
    last = make_divisible(1280 * max(1.0, self.width_mult))
    x = ConvBNReLU6(last, 1, name='last')(x, train)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(jnp.mean(x, axis=(1, 2)))
    return nn.Dense(self.num_outputs, name='classifier')(x)
