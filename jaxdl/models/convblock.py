"""`convblock`: the CIFAR-100 "Example CNN" of seed 000 (claim C12), built of factorised 1×3 / 3×1 convolutions.

Seed 000 ("EXAMPLE CNN", "MODEL ARCHITECTURE AND OPTIMIZATION SETUP"):

  Operator   Resolution  RF size  #Channels          ConvBlock: 2x [Conv(1x3)-(BN)-Relu-Conv(3x1)-(BN)-Relu]
  ConvBlock  32×32       5×5      32                 Sub: Conv(3x3, stride=2)-(BN)-Relu
  ConvBlock  32×32       9×9      32
  Sub        16×16       15×15    32                 "Number of parameters: ≃ 2M"
  ConvBlock  16×16       15×15    128
  ConvBlock  16×16       23×23    128
  Sub        8×8         31×31    128
  AvgPool    1×1                  128
  Linear     100

So a stage of width c is ConvBlock(c) → ConvBlock(c) → Sub(c); `stages` lists the widths, `head` optional 1×1
conv-(BN)-ReLU layers after the last stage, then global average pooling → (dropout) → Dense(num_outputs).
Convolutions are 'SAME' padded (the resolution column), with a bias unless followed by batch norm.

Parameter count, checked against the text (tests/test_ch3_experiments.py): the table as written
(`stages=(32, 128)`, the default) has 549,156 parameters with 100 classes (550,596 with batch norm), not the
"≃ 2M" the notes state. The course author's public PyTorch code for this experiment
(github.com/jeremyfix/deep_examples, PyTorch/cifar100/models.py) has the same block structure with wider stages,
three 1×1 conv layers of 512 before the pooling, and a narrower first conv in each block, cin·⌊√(cout/cin)⌋
channels (`inter='sqrt'`). `CIFAR100_2M` below is that network: 2,009,402 parameters (2,013,353 with batch
norm), the "≃ 2M" of the text. The experiment cifar100_ablation uses it for C12 on CIFAR-100.

`batch_norm`: Conv-BN-ReLU (no conv bias) instead of Conv-ReLU. `dropout_rate`: dropout on the pooled features
before the linear layer (the code's Dropout2d on 1×1 maps is the same). L2 and label smoothing are the trainer's
(config.loss.l2 — weights only, as the notes ask: "only the weights of the convolution and linear layers are
regularized" — and config.loss.label_smoothing).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import activations
from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

INTER = ('out', 'sqrt')
# He et al. (2015) normal init, fan_in, as the author's code (torch's kaiming_normal_): without it the 18-layer
# plain-ReLU "base" network (no BN) does not train from flax's default LeCun init.
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
# The ≈2M network of the author's code (see the module docstring): pass as config.model overrides.
CIFAR100_2M = {'stages': (96, 192), 'head': (512, 512, 512), 'inter': 'sqrt'}


def inter_width(cin: int, cout: int, inter: str) -> int:
  """Width of a block's first (1×3) conv: cout ('out'), or cin·⌊√(cout/cin)⌋ ('sqrt', the author's code)."""
  return cout if inter == 'out' else max(1, int(math.sqrt(cout / cin))) * cin


@MODELS.register('convblock', example_input_shape=(32, 32, 3),
                 description='seed-000 CIFAR-100 example CNN: ConvBlocks of 1×3/3×1 convs (table: 0.55M; '
                             'author\'s widths 96/192 + 3×1×1 512: 2.0M)')
class ConvBlockNet(nn.Module):
  """[ConvBlock(c) → ConvBlock(c) → Sub(c)] for c in stages → [1×1 conv]* head → global avg pool → Dense."""
  stages: Sequence[int] = (32, 128)
  head: Sequence[int] = ()
  inter: str = 'out'
  batch_norm: bool = False
  dropout_rate: float = 0.0
  activation: str = 'relu'
  num_outputs: int = 100

  def __post_init__(self):
    super().__post_init__()
    activations.check_name(self.activation)
    if self.inter not in INTER:
      raise UserError(f'model.inter={self.inter!r}', 'one of: ' + ', '.join(INTER), 'fix config.model.inter')
    if not self.stages or any(int(c) < 1 for c in self.stages):
      raise UserError(f'model.stages={self.stages!r}', 'one or more positive widths', 'fix config.model.stages')
    if not 0.0 <= self.dropout_rate < 1.0:
      raise UserError(f'model.dropout_rate={self.dropout_rate!r}', 'a rate in [0, 1)', 'fix config.model.dropout_rate')

  def _cba(self, x, features, kernel, train, strides=1):
    """Conv-(BN)-activation."""
    x = Conv(features, kernel, strides=strides, padding='SAME', use_bias=not self.batch_norm,
             kernel_init=he_normal)(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return activations.get_activation(self.activation)(x)

  def _block(self, x, cout, train):
    """2× [Conv(1×3)-(BN)-ReLU-Conv(3×1)-(BN)-ReLU]; the first 1×3 conv has `inter_width` channels."""
    cin = x.shape[-1]
    x = self._cba(x, inter_width(cin, cout, self.inter), (1, 3), train)
    x = self._cba(x, cout, (3, 1), train)
    x = self._cba(x, cout, (1, 3), train)
    return self._cba(x, cout, (3, 1), train)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    if x.ndim == 3:
      x = x[..., None]
    for c in self.stages:
      x = self._block(x, int(c), train)
      x = self._block(x, int(c), train)
      x = self._cba(x, int(c), (3, 3), train, strides=2)            # Sub
    for c in self.head:
      x = self._cba(x, int(c), (1, 1), train)
    x = jnp.mean(x, axis=(1, 2))                                     # AvgPool over the remaining 8×8
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, kernel_init=he_normal)(x)
