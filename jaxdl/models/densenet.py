"""DenseNet (Huang, Liu, van der Maaten & Weinberger 2017; seed 000 "Variations around skip connections").

Inside a dense block every layer sees the concatenation of all earlier feature maps of the block:
x_ℓ = H_ℓ([x_0, x_1, …, x_{ℓ−1}]), H = BN → ReLU → conv1×1 (bn_size·k) → BN → ReLU → conv3×3 (k), k the growth
rate. Transition layers between blocks: BN → ReLU → conv1×1 (halves the channels, compression 0.5) → avg-pool 2×2/2.

`densenet121` is torchvision's `densenet121()`: stem conv 7×7/2 (64, no bias) → BN → ReLU → max-pool 3×3/2 →
blocks of (6, 12, 24, 16) layers, k = 32, bn_size = 4 → final BN → ReLU → global average pool → Dense. No conv has
a bias. Parameters: 7,978,856 (torchvision's count).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import pooling
from jaxdl.nn.precision import as_float
from jaxdl.models.resnet import batch_norm, conv2d, max_pool_3x3_s2
from jaxdl.registry import MODELS

TORCHVISION_PARAMS = {'densenet121': 7_978_856}


class DenseLayer(nn.Module):
  """[x, conv3×3(relu(BN(conv1×1(relu(BN(x))))))]: appends `growth_rate` channels (bottleneck "DenseNet-B")."""
  growth_rate: int
  bn_size: int = 4

  @nn.compact
  def __call__(self, x, train: bool = False):
    y = conv2d(self.bn_size * self.growth_rate, 1, name='conv1')(nn.relu(batch_norm(train, 'norm1')(x)))
    y = conv2d(self.growth_rate, 3, name='conv2')(nn.relu(batch_norm(train, 'norm2')(y)))
    return jnp.concatenate([x, y], axis=-1)


class Transition(nn.Module):
  """BN → ReLU → conv1×1 (features) → avg-pool 2×2/2."""
  features: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = conv2d(self.features, 1, name='conv')(nn.relu(batch_norm(train, 'norm')(x)))
    return pooling.avg_pool(x, (2, 2), strides=(2, 2))


@MODELS.register('densenet121', example_input_shape=(64, 64, 3), input_shape=(224, 224, 3), heavy=True,
                 description='DenseNet-121 (Huang et al. 2017; torchvision, 8.0M params)')
class DenseNet(nn.Module):
  """ImageNet DenseNet-BC in torchvision's layout (defaults: DenseNet-121)."""
  block_config: Sequence[int] = (6, 12, 24, 16)
  growth_rate: int = 32
  num_init_features: int = 64
  bn_size: int = 4
  num_outputs: int = 1000

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = conv2d(self.num_init_features, 7, 2, name='conv0')(as_float(x))
    x = max_pool_3x3_s2(nn.relu(batch_norm(train, 'norm0')(x)))
    for i, n in enumerate(self.block_config):
      for j in range(n):
        x = DenseLayer(self.growth_rate, self.bn_size, name=f'denseblock{i + 1}_layer{j + 1}')(x, train)
      if i < len(self.block_config) - 1:
        x = Transition(x.shape[-1] // 2, name=f'transition{i + 1}')(x, train)
    x = nn.relu(batch_norm(train, 'norm5')(x))
    return nn.Dense(self.num_outputs, name='classifier')(jnp.mean(x, axis=(1, 2)))
