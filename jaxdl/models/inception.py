"""Inception networks: GoogLeNet (Inception v1, Szegedy et al. 2014, Table 1; claim C9) and Inception v3
(Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016, "Rethinking the Inception architecture"), with their blocks.

GoogLeNet (`googlenet`): 22 weight layers deep (conv1, conv2's reduce + 3×3, 9 Inception blocks of depth 2, the
linear layer), 224×224×3 input. An Inception block concatenates four branches: 1×1; 1×1 reduce → 3×3; 1×1 reduce
→ 5×5; 3×3/1 max pool → 1×1 "pool proj" (`InceptionV1`). Local response normalisation after pool1 and conv2, 40%
dropout before the linear layer, two auxiliary classifiers on 4a and 4d used only in training.

Parameter counts — three different numbers, all reproduced by the tests:
  * Table 1's "params" column counts WEIGHTS ONLY (no biases) IN UNITS OF 1,024, and approximately: inception
    (3a) has 163,328 weights = 159.5K → "159K", (3b) 379.0K → "380K", (4b) 438.0K → "437K", conv2 114,688 =
    "112K", the linear layer 1,024,000 = "1000K"; (4a), (4d), (4e), (5b) are within 2%, (4c) (497.5K vs "463K")
    and (5a) (1018K vs "1072K") within 8%, and conv1's "2.7K" is no count of a 7×7×3→64 layer (9,408 weights).
    The column sums to 6,797.7K — the "6.8M parameters" of the course; this model's weights are 6,826.4K.
  * This model, the paper's architecture with biases, no batch norm, aux heads off: 6,998,552 parameters
    (6,990,272 weights + 8,280 biases); the two auxiliary heads add 3,188,840 + 3,190,888 (`aux_heads=True`).
  * torchvision's `googlenet` (6,624,904) is a different network: batch norm after every convolution (no conv
    biases), and a 3×3 instead of a 5×5 convolution in the "5×5" branch — a known bug kept for its pretrained
    weights (pytorch/vision#906). `googlenet` with batch_norm=True, branch5x5_kernel=3 reproduces it exactly.

Auxiliary heads (`aux_heads=True`): avg pool 5×5/3 → 1×1 conv 128 → FC 1024 → dropout 70% → linear. The model
still returns the main logits only (what the trainer expects); in training the aux logits are sown into the
'intermediates' collection as 'aux1_logits', 'aux2_logits': `model.apply(..., train=True,
mutable=['intermediates'])` returns them, for a loss with the paper's 0.3 weight. With aux heads off (the default)
they have no parameters at all.

Inception v3 (`inception_v3`, 299×299×3) as in torchvision (which follows the authors' TF-slim release), batch
norm (ε = 1e-3) after every bias-free convolution. The factorisations of the 2016 paper are its blocks:
  InceptionA   §3.1, Fig. 5: a 5×5 convolution factorised into two 3×3 (branch 3x3dbl) — alongside a 5×5 branch
               kept by the released model;
  InceptionC   §3.2, Fig. 6: n×n factorised into 1×n followed by n×1 (n = 7), on the 17×17 grid;
  InceptionE   Fig. 7: the expanded filter bank on the 8×8 grid (1×3 and 3×1 in parallel, concatenated);
  InceptionB/D §5, Fig. 10: grid-size reduction — stride-2 convolution branches in parallel with a max pool,
               concatenated, instead of pooling then convolving (a bottleneck) or the reverse (expensive).
Parameters: 23,834,568, or 27,161,264 with the auxiliary head (torchvision's published count).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn.conv import Conv
from jaxdl.nn.pooling import avg_pool
from jaxdl.nn.precision import as_float
from jaxdl.models.alexnet import adaptive_avg_pool, local_response_norm
from jaxdl.registry import MODELS

# Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj per Inception block.
GOOGLENET_BLOCKS = {
    'inception_3a': (64, 96, 128, 16, 32, 32), 'inception_3b': (128, 128, 192, 32, 96, 64),
    'inception_4a': (192, 96, 208, 16, 48, 64), 'inception_4b': (160, 112, 224, 24, 64, 64),
    'inception_4c': (128, 128, 256, 24, 64, 64), 'inception_4d': (112, 144, 288, 32, 64, 64),
    'inception_4e': (256, 160, 320, 32, 128, 128),
    'inception_5a': (256, 160, 320, 32, 128, 128), 'inception_5b': (384, 192, 384, 48, 128, 128),
}


class BasicConv(nn.Module):
  """Convolution → (batch norm) → ReLU. With batch norm the convolution has no bias (β replaces it)."""
  features: int
  kernel_size: tuple[int, int] = (1, 1)
  strides: tuple[int, int] = (1, 1)
  padding: Any = 'SAME'
  batch_norm: bool = False
  bn_eps: float = 1e-3

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Conv(self.features, tuple(self.kernel_size), strides=tuple(self.strides), padding=self.padding,
             use_bias=not self.batch_norm, kernel_init=nn.initializers.he_normal(), name='conv')(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=self.bn_eps, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  return avg_pool(x, (3, 3), strides=(1, 1), padding='SAME', count_include_pad=True)


class InceptionV1(nn.Module):
  """The GoogLeNet block: concat[1×1, 1×1→3×3, 1×1→5×5, 3×3/1 max pool→1×1] (Szegedy et al. 2014, Fig. 2b)."""
  n1x1: int
  n3x3_reduce: int
  n3x3: int
  n5x5_reduce: int
  n5x5: int
  pool_proj: int
  batch_norm: bool = False
  branch5x5_kernel: int = 5

  @nn.compact
  def __call__(self, x, train: bool = False):
    bc = lambda f, k, name: BasicConv(f, (k, k), batch_norm=self.batch_norm, name=name)   # noqa: E731
    b1 = bc(self.n1x1, 1, 'b1_1x1')(x, train)
    b2 = bc(self.n3x3, 3, 'b2_3x3')(bc(self.n3x3_reduce, 1, 'b2_reduce')(x, train), train)
    k5 = self.branch5x5_kernel
    b3 = bc(self.n5x5, k5, f'b3_{k5}x{k5}')(bc(self.n5x5_reduce, 1, 'b3_reduce')(x, train), train)
    b4 = bc(self.pool_proj, 1, 'b4_pool_proj')(nn.max_pool(x, (3, 3), strides=(1, 1), padding='SAME'), train)
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxHeadV1(nn.Module):
  """GoogLeNet's auxiliary classifier: avg pool 5×5/3 (14 → 4) → 1×1 conv 128 → FC 1024 → dropout → linear."""
  num_outputs: int
  batch_norm: bool = False
  dropout_rate: float = 0.7

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = avg_pool(x, (5, 5), strides=(3, 3), padding='VALID') if min(x.shape[1:3]) >= 5 else x
    x = adaptive_avg_pool(x, (4, 4))
    x = BasicConv(128, (1, 1), batch_norm=self.batch_norm, name='conv')(x, train)
    x = nn.relu(nn.Dense(1024, name='fc1')(x.reshape((x.shape[0], -1))))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, name='fc2')(x)


@MODELS.register('googlenet', example_input_shape=(224, 224, 3), heavy=True,
                 description='GoogLeNet / Inception v1 (Szegedy et al. 2014): 22 layers, 6,998,552 params (≈6.8M)')
class GoogLeNet(nn.Module):
  """GoogLeNet (module docstring). Layers conv1, conv2_reduce, conv2, inception_3a … inception_5b, fc (+ aux1, aux2).

  lrn: the two local response normalisations (Caffe's form: k = 1, α = 1e-4/5). batch_norm + branch5x5_kernel=3:
  torchvision's variant. aux_heads: build the auxiliary classifiers (sown, not returned).
  """
  num_outputs: int = 1000
  lrn: bool = True
  batch_norm: bool = False
  branch5x5_kernel: int = 5
  aux_heads: bool = False
  dropout_rate: float = 0.4
  aux_dropout_rate: float = 0.7

  @nn.compact
  def __call__(self, x, train: bool = False, feature_map: bool = False):
    """Logits; `feature_map=True`: inception_5b's maps [B, 7, 7, 1024] at 224×224 instead (a trunk)."""
    x = as_float(x)
    bn = self.batch_norm
    lrn = lambda x: local_response_norm(x, 5, 1.0, 1e-4 / 5, 0.75) if self.lrn else x   # noqa: E731
    pool = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')              # noqa: E731
    x = BasicConv(64, (7, 7), (2, 2), ((3, 3), (3, 3)), batch_norm=bn, name='conv1')(x, train)       # 112
    x = lrn(pool(x))                                                                                  # 56
    x = BasicConv(64, (1, 1), batch_norm=bn, name='conv2_reduce')(x, train)
    x = BasicConv(192, (3, 3), batch_norm=bn, name='conv2')(x, train)
    x = pool(lrn(x))                                                                                  # 28
    aux = self.aux_heads and (train or self.is_initializing())
    for name, widths in GOOGLENET_BLOCKS.items():
      if name in ('inception_4a', 'inception_5a'):
        x = pool(x)                                                                                   # 14, 7
      x = InceptionV1(*widths, batch_norm=bn, branch5x5_kernel=self.branch5x5_kernel, name=name)(x, train)
      if aux and name in ('inception_4a', 'inception_4d'):
        head = 'aux1' if name == 'inception_4a' else 'aux2'
        logits = AuxHeadV1(self.num_outputs, bn, self.aux_dropout_rate, name=head)(x, train)
        self.sow('intermediates', f'{head}_logits', logits)
    if feature_map:
      return x
    x = jnp.mean(x, axis=(1, 2))
    if self.dropout_rate:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, name='fc')(x)


# ---- Inception v3 -------------------------------------------------------------------------------------------

class _V3Block(nn.Module):
  """Shared helper: `self.conv(x, features, kernel, name, stride, padding)` = BasicConv with batch norm."""
  bn_eps: float = 1e-3

  def conv(self, x, features, kernel, name, train, stride=1, padding='SAME'):
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    return BasicConv(features, kernel, (stride, stride), padding, batch_norm=True, bn_eps=self.bn_eps,
                     name=name)(x, train)


class InceptionA(_V3Block):
  """35×35 block (Fig. 5): 1×1 64 | 1×1 48 → 5×5 64 | 1×1 64 → 3×3 96 → 3×3 96 (5×5 as two 3×3) | pool → 1×1."""
  pool_features: int = 32

  @nn.compact
  def __call__(self, x, train: bool = False):
    b1 = self.conv(x, 64, 1, 'branch1x1', train)
    b5 = self.conv(self.conv(x, 48, 1, 'branch5x5_1', train), 64, 5, 'branch5x5_2', train)
    b3 = self.conv(x, 64, 1, 'branch3x3dbl_1', train)
    b3 = self.conv(self.conv(b3, 96, 3, 'branch3x3dbl_2', train), 96, 3, 'branch3x3dbl_3', train)
    bp = self.conv(_avg_pool_3x3(x), self.pool_features, 1, 'branch_pool', train)
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_V3Block):
  """Grid reduction 35 → 17 (Fig. 10): 3×3/2 384 | 1×1 64 → 3×3 96 → 3×3/2 96 | 3×3/2 max pool, concatenated."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    b3 = self.conv(x, 384, 3, 'branch3x3', train, stride=2, padding='VALID')
    bd = self.conv(self.conv(x, 64, 1, 'branch3x3dbl_1', train), 96, 3, 'branch3x3dbl_2', train)
    bd = self.conv(bd, 96, 3, 'branch3x3dbl_3', train, stride=2, padding='VALID')
    bp = nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')
    return jnp.concatenate([b3, bd, bp], axis=-1)


class InceptionC(_V3Block):
  """17×17 block (Fig. 6): 7×7 convolutions factorised into 1×7 then 7×1; c7 maps inside, 192 out per branch."""
  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False):
    c7 = self.channels_7x7
    b1 = self.conv(x, 192, 1, 'branch1x1', train)
    b7 = self.conv(x, c7, 1, 'branch7x7_1', train)
    b7 = self.conv(self.conv(b7, c7, (1, 7), 'branch7x7_2', train), 192, (7, 1), 'branch7x7_3', train)
    bd = self.conv(x, c7, 1, 'branch7x7dbl_1', train)
    for i, (k, f) in enumerate((((7, 1), c7), ((1, 7), c7), ((7, 1), c7), ((1, 7), 192)), start=2):
      bd = self.conv(bd, f, k, f'branch7x7dbl_{i}', train)
    bp = self.conv(_avg_pool_3x3(x), 192, 1, 'branch_pool', train)
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_V3Block):
  """Grid reduction 17 → 8: 1×1 192 → 3×3/2 320 | 1×1 → 1×7 → 7×1 → 3×3/2 192 | 3×3/2 max pool."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    b3 = self.conv(self.conv(x, 192, 1, 'branch3x3_1', train), 320, 3, 'branch3x3_2', train, 2, 'VALID')
    b7 = self.conv(x, 192, 1, 'branch7x7x3_1', train)
    b7 = self.conv(self.conv(b7, 192, (1, 7), 'branch7x7x3_2', train), 192, (7, 1), 'branch7x7x3_3', train)
    b7 = self.conv(b7, 192, 3, 'branch7x7x3_4', train, 2, 'VALID')
    bp = nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')
    return jnp.concatenate([b3, b7, bp], axis=-1)


class InceptionE(_V3Block):
  """8×8 block (Fig. 7): expanded filter bank — 1×3 and 3×1 side by side, concatenated (2 × 384 maps)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    b1 = self.conv(x, 320, 1, 'branch1x1', train)
    b3 = self.conv(x, 384, 1, 'branch3x3_1', train)
    b3 = jnp.concatenate([self.conv(b3, 384, (1, 3), 'branch3x3_2a', train),
                          self.conv(b3, 384, (3, 1), 'branch3x3_2b', train)], axis=-1)
    bd = self.conv(self.conv(x, 448, 1, 'branch3x3dbl_1', train), 384, 3, 'branch3x3dbl_2', train)
    bd = jnp.concatenate([self.conv(bd, 384, (1, 3), 'branch3x3dbl_3a', train),
                          self.conv(bd, 384, (3, 1), 'branch3x3dbl_3b', train)], axis=-1)
    bp = self.conv(_avg_pool_3x3(x), 192, 1, 'branch_pool', train)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionAuxV3(_V3Block):
  """Inception v3's auxiliary classifier on the 17×17×768 grid: 5×5/3 avg pool → 1×1 128 → 5×5 768 → linear."""
  num_outputs: int = 1000

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = avg_pool(x, (5, 5), strides=(3, 3), padding='VALID') if min(x.shape[1:3]) >= 5 else x
    x = self.conv(x, 128, 1, 'conv0', train)
    x = self.conv(x, 768, 5, 'conv1', train, padding='VALID' if min(x.shape[1:3]) >= 5 else 'SAME')
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_outputs, name='fc')(x)


@MODELS.register('inception_v3', example_input_shape=(299, 299, 3), heavy=True,
                 description='Inception v3 (Szegedy et al. 2016), torchvision layout: 23,834,568 params (+aux 27.2M)')
class InceptionV3(nn.Module):
  """Inception v3 (module docstring), torchvision's layer names: Conv2d_1a_3x3 … Mixed_7c, AuxLogits, fc.

  aux_heads: the auxiliary classifier after Mixed_6e (sown as 'aux_logits' in 'intermediates' during training).
  """
  num_outputs: int = 1000
  aux_heads: bool = False
  dropout_rate: float = 0.5
  bn_eps: float = 1e-3

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    conv = lambda x, f, k, name, s=1, p='VALID': BasicConv(   # noqa: E731
        f, (k, k), (s, s), p, batch_norm=True, bn_eps=self.bn_eps, name=name)(x, train)
    pool = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')   # noqa: E731
    x = conv(x, 32, 3, 'Conv2d_1a_3x3', 2)        # 149
    x = conv(x, 32, 3, 'Conv2d_2a_3x3')           # 147
    x = conv(x, 64, 3, 'Conv2d_2b_3x3', p='SAME')  # 147
    x = pool(x)                                    # 73
    x = conv(x, 80, 1, 'Conv2d_3b_1x1')            # 73
    x = conv(x, 192, 3, 'Conv2d_4a_3x3')           # 71
    x = pool(x)                                    # 35
    eps = self.bn_eps
    x = InceptionA(eps, 32, name='Mixed_5b')(x, train)     # 35×35×256
    x = InceptionA(eps, 64, name='Mixed_5c')(x, train)     # 288
    x = InceptionA(eps, 64, name='Mixed_5d')(x, train)     # 288
    x = InceptionB(eps, name='Mixed_6a')(x, train)         # 17×17×768
    for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = InceptionC(eps, c7, name=name)(x, train)
    if self.aux_heads and (train or self.is_initializing()):
      self.sow('intermediates', 'aux_logits', InceptionAuxV3(eps, self.num_outputs, name='AuxLogits')(x, train))
    x = InceptionD(eps, name='Mixed_7a')(x, train)         # 8×8×1280
    x = InceptionE(eps, name='Mixed_7b')(x, train)         # 2048
    x = InceptionE(eps, name='Mixed_7c')(x, train)         # 2048
    x = jnp.mean(x, axis=(1, 2))
    if self.dropout_rate:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, name='fc')(x)
