"""Xception (Chollet 2017, "Xception: deep learning with depthwise separable convolutions"; seed 004 §X.7).

"Extreme Inception": every 3×3 conv after the stem is a depthwise separable conv — a depthwise 3×3
(one filter per channel, `feature_group_count` = C) followed by a pointwise 1×1 — and the 36 conv layers are
grouped in modules with residual connections. Layout of Keras applications `Xception` (input 299×299):

  entry flow   conv3×3/2 32 (VALID) → BN → ReLU → conv3×3 64 (VALID) → BN → ReLU;
               3 modules (128, 256, 728): [ReLU →] sep 3×3 → BN → ReLU → sep 3×3 → BN → max-pool 3×3/2
               + shortcut conv1×1/2 → BN (the first module has no leading ReLU)
  middle flow  8 × [ReLU → sep 3×3 728 → BN] × 3 + identity
  exit flow    ReLU → sep 728 → BN → ReLU → sep 1024 → BN → max-pool 3×3/2 + shortcut conv1×1/2 → BN;
               sep 1536 → BN → ReLU → sep 2048 → BN → ReLU → global average pool → Dense

No conv has a bias. Parameters: 22,855,952 (Keras `Xception().summary()`: trainable params; its 22,910,480
total adds the 54,528 BN moving means and variances, which jaxdl keeps in 'batch_stats'). The 8 middle-flow
modules have equal shapes: `scan=True` runs them as one `nn.scan` (parameters stacked on a leading axis).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import pooling
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.models.resnet import batch_norm, conv2d, he_fan_out, scan_blocks
from jaxdl.registry import MODELS

KERAS_TRAINABLE_PARAMS = {'xception': 22_855_952}


class SeparableConv(nn.Module):
  """Depthwise 3×3 (9·C_in) then pointwise 1×1 (C_in·C_out), no bias (Keras SeparableConv2D, padding 'same')."""
  features: int

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    x = Conv(c, (3, 3), padding=((1, 1), (1, 1)), feature_group_count=c, use_bias=False, kernel_init=he_fan_out,
             name='depthwise')(x)
    return Conv(self.features, (1, 1), use_bias=False, kernel_init=he_fan_out, name='pointwise')(x)


class EntryModule(nn.Module):
  """[ReLU →] sep → BN → ReLU → sep → BN → max-pool 3×3/2, + BN(conv1×1/2(x))."""
  features: int
  first_features: int | None = None   # the exit module's first sep conv has 728 channels, its second 1024
  first_relu: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    shortcut = batch_norm(train, 'shortcut_bn')(conv2d(self.features, 1, 2, padding='SAME', name='shortcut')(x))
    y = nn.relu(x) if self.first_relu else x
    y = batch_norm(train, 'bn1')(SeparableConv(self.first_features or self.features, name='sep1')(y))
    y = batch_norm(train, 'bn2')(SeparableConv(self.features, name='sep2')(nn.relu(y)))
    y = pooling.max_pool(y, (3, 3), strides=(2, 2), padding='SAME')
    return y + shortcut


class MiddleModule(nn.Module):
  """x + [ReLU → sep 3×3 → BN] × 3."""
  features: int = 728

  @nn.compact
  def __call__(self, x, train: bool = False):
    y = x
    for i in range(3):
      y = batch_norm(train, f'bn{i + 1}')(SeparableConv(self.features, name=f'sep{i + 1}')(nn.relu(y)))
    return x + y


@MODELS.register('xception', example_input_shape=(64, 64, 3), input_shape=(299, 299, 3), heavy=True,
                 description='Xception (Chollet 2017; Keras applications, 22.9M params)')
class Xception(nn.Module):
  """Keras-applications Xception (see the module docstring)."""
  num_outputs: int = 1000
  middle_blocks: int = 8
  scan: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = conv2d(32, 3, 2, padding='VALID', name='conv1')(as_float(x))
    x = nn.relu(batch_norm(train, 'bn1')(x))
    x = nn.relu(batch_norm(train, 'bn2')(conv2d(64, 3, padding='VALID', name='conv2')(x)))
    for i, c in enumerate((128, 256, 728)):
      x = EntryModule(c, first_relu=i > 0, name=f'entry{i + 1}')(x, train)
    if self.scan and self.middle_blocks > 1:
      x = scan_blocks(MiddleModule(name='middle'), x, self.middle_blocks, train)
    else:
      for i in range(self.middle_blocks):
        x = MiddleModule(name=f'middle{i + 1}')(x, train)
    x = EntryModule(1024, first_features=728, name='exit1')(x, train)
    x = nn.relu(batch_norm(train, 'bn3')(SeparableConv(1536, name='sep3')(x)))
    x = nn.relu(batch_norm(train, 'bn4')(SeparableConv(2048, name='sep4')(x)))
    return nn.Dense(self.num_outputs, name='fc')(jnp.mean(x, axis=(1, 2)))
