"""The CIFAR-10 models of the UvA deep-learning course, JAX tutorial 5 "Inception, ResNet and DenseNet" (P. Lippe),
for claim C15: GoogLeNet 259,338 params, ResNet 272,378, PreAct-ResNet 272,250, DenseNet 239,146.

Written out from the tutorial's flax code, keeping every choice that changes the parameter count:

* `googlenet_cifar`: conv3×3 64 → BN → ReLU, then inception blocks (branches 1×1 | 1×1→3×3 | 1×1→5×5 |
  max-pool 3×3/1 → 1×1, each conv bias-free + BN + ReLU, concatenated) with two max-pools 3×3/2 (32→16→8; padding
  'SAME') in between → global average pool → Dense(10).
* `resnet_cifar_uva`: conv3×3 16 (no bias) → BN → ReLU → 3 stages × 3 post-activation blocks (16, 32, 64);
  block: conv3×3/s → BN → ReLU → conv3×3 → BN, + shortcut, → ReLU; the downsampling shortcut is a 1×1/2 conv WITH
  bias and without BN (2,656 params: 512 + 32 + 2,048 + 64). That choice is what gives 272,378 (= the 269,722 of
  He et al.'s option-A ResNet-20 + 2,656; with BN and no bias, option B, it would be 272,474).
* `preact_resnet_cifar_uva`: conv3×3 16 (no bias), no BN/ReLU after the stem; block: BN → ReLU → conv3×3/s → BN →
  ReLU → conv3×3, + shortcut; the downsampling shortcut is BN → ReLU → conv1×1/2 (no bias) of the block input;
  no final BN: 272,250.
* `densenet_cifar_uva`: conv3×3 32 (growth 16 × bn_size 2, WITH bias) → 4 dense blocks of 6 layers (BN → ReLU →
  conv1×1 32 → BN → ReLU → conv3×3 16, concatenated) with transitions (BN → ReLU → conv1×1 C/2 → avg-pool 2×2)
  → BN → ReLU → global average pool → Dense(10): 239,146.

Initialisers as in the tutorial (He-normal; fan_out for the ResNets), batch norm with flax's defaults
(momentum 0.99, ε = 1e-5), activation ReLU (`act` picks another jaxdl.nn.activations name).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import activations, norms, pooling
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

# UvA tutorial 5 (JAX), parameter counts printed by the notebook.
UVA_PARAMS = {'googlenet_cifar': 259_338, 'resnet_cifar_uva': 272_378, 'preact_resnet_cifar_uva': 272_250,
              'densenet_cifar_uva': 239_146}

kaiming_normal = nn.initializers.kaiming_normal()                                   # googlenet / densenet
resnet_kernel_init = nn.initializers.variance_scaling(2.0, mode='fan_out', distribution='normal')


def _bn(train: bool, name: str | None = None) -> nn.Module:
  return norms.make_norm('batch', 4, train=train, momentum=0.99, eps=1e-5, name=name)


def _act(name: str):
  return activations.get_activation(name)   # a fixed activation (no parameters), like the tutorial's act_fn


class InceptionBlock(nn.Module):
  """Four branches concatenated: 1×1 | 1×1 → 3×3 | 1×1 → 5×5 | max-pool 3×3/1 → 1×1 (conv-BN-act each)."""
  c_red: Sequence[int]          # (3×3 reduce, 5×5 reduce)
  c_out: Sequence[int]          # (1×1, 3×3, 5×5, max)
  act: str = 'relu'

  def _cba(self, x, features, k, train, name):
    x = Conv(features, (k, k), padding='SAME', kernel_init=kaiming_normal, use_bias=False, name=name)(x)
    return _act(self.act)(_bn(train, f'{name}_bn')(x))

  @nn.compact
  def __call__(self, x, train: bool = False):
    b1 = self._cba(x, self.c_out[0], 1, train, 'conv_1x1')
    b3 = self._cba(self._cba(x, self.c_red[0], 1, train, 'reduce_3x3'), self.c_out[1], 3, train, 'conv_3x3')
    b5 = self._cba(self._cba(x, self.c_red[1], 1, train, 'reduce_5x5'), self.c_out[2], 5, train, 'conv_5x5')
    bm = self._cba(pooling.max_pool(x, (3, 3), strides=(1, 1), padding='SAME'), self.c_out[3], 1, train, 'conv_max')
    return jnp.concatenate([b1, b3, b5, bm], axis=-1)


# (c_red 3×3, 5×5), (c_out 1×1, 3×3, 5×5, max); 'pool' = max-pool 3×3/2.
GOOGLENET_BLOCKS = (((32, 16), (16, 32, 8, 8)), ((32, 16), (24, 48, 12, 12)), 'pool',
                    ((32, 16), (24, 48, 12, 12)), ((32, 16), (16, 48, 16, 16)), ((32, 16), (16, 48, 16, 16)),
                    ((32, 16), (32, 48, 24, 24)), 'pool',
                    ((48, 16), (32, 64, 16, 16)), ((48, 16), (32, 64, 16, 16)))


@MODELS.register('googlenet_cifar', example_input_shape=(32, 32, 3), heavy=True,
                 description='UvA tutorial 5 GoogLeNet for CIFAR-10 (259,338 params)')
class GoogLeNetCifar(nn.Module):
  num_outputs: int = 10
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Conv(64, (3, 3), padding='SAME', kernel_init=kaiming_normal, use_bias=False, name='stem')(
        as_float(x))
    x = _act(self.act)(_bn(train, 'stem_bn')(x))
    k = 0
    for spec in GOOGLENET_BLOCKS:
      if spec == 'pool':
        x = pooling.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
      else:
        x = InceptionBlock(spec[0], spec[1], self.act, name=f'inception{k}')(x, train)
        k += 1
    return nn.Dense(self.num_outputs, name='head')(jnp.mean(x, axis=(1, 2)))


class UvaResNetBlock(nn.Module):
  """Post-activation block; `subsample`: stride 2 and a 1×1/2 conv (with bias, no BN) on the shortcut."""
  features: int
  subsample: bool = False
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    s = (2, 2) if self.subsample else (1, 1)
    z = Conv(self.features, (3, 3), strides=s, padding='SAME', kernel_init=resnet_kernel_init, use_bias=False,
             name='conv1')(x)
    z = _act(self.act)(_bn(train, 'bn1')(z))
    z = Conv(self.features, (3, 3), padding='SAME', kernel_init=resnet_kernel_init, use_bias=False, name='conv2')(z)
    z = _bn(train, 'bn2')(z)
    if self.subsample:
      x = Conv(self.features, (1, 1), strides=(2, 2), kernel_init=resnet_kernel_init, name='downsample')(x)
    return _act(self.act)(z + x)


class UvaPreActResNetBlock(nn.Module):
  """Pre-activation block; `subsample`: stride 2 and BN → act → conv1×1/2 (no bias) on the shortcut."""
  features: int
  subsample: bool = False
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    s = (2, 2) if self.subsample else (1, 1)
    z = _act(self.act)(_bn(train, 'bn1')(x))
    z = Conv(self.features, (3, 3), strides=s, padding='SAME', kernel_init=resnet_kernel_init, use_bias=False,
             name='conv1')(z)
    z = _act(self.act)(_bn(train, 'bn2')(z))
    z = Conv(self.features, (3, 3), padding='SAME', kernel_init=resnet_kernel_init, use_bias=False, name='conv2')(z)
    if self.subsample:
      x = _act(self.act)(_bn(train, 'downsample_bn')(x))
      x = Conv(self.features, (1, 1), strides=(2, 2), kernel_init=resnet_kernel_init, use_bias=False,
               name='downsample')(x)
    return z + x


class _UvaResNetBase(nn.Module):
  num_outputs: int = 10
  num_blocks: Sequence[int] = (3, 3, 3)
  c_hidden: Sequence[int] = (16, 32, 64)
  act: str = 'relu'

  preact = False

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = Conv(self.c_hidden[0], (3, 3), padding='SAME', kernel_init=resnet_kernel_init, use_bias=False,
             name='stem')(as_float(x))
    if not self.preact:   # pre-activation blocks normalise their own input
      x = _act(self.act)(_bn(train, 'stem_bn')(x))
    block = UvaPreActResNetBlock if self.preact else UvaResNetBlock
    for i, n in enumerate(self.num_blocks):
      for j in range(n):
        x = block(self.c_hidden[i], j == 0 and i > 0, self.act, name=f'block{i + 1}_{j}')(x, train)
    return nn.Dense(self.num_outputs, name='head')(jnp.mean(x, axis=(1, 2)))


@MODELS.register('resnet_cifar_uva', example_input_shape=(32, 32, 3),
                 description='UvA tutorial 5 ResNet for CIFAR-10 (272,378 params)')
class UvaResNet(_UvaResNetBase):
  """ResNet of UvA tutorial 5 (see the module docstring)."""


@MODELS.register('preact_resnet_cifar_uva', example_input_shape=(32, 32, 3),
                 description='UvA tutorial 5 pre-activation ResNet for CIFAR-10 (272,250 params)')
class UvaPreActResNet(_UvaResNetBase):
  """Pre-activation ResNet of UvA tutorial 5 (see the module docstring)."""
  preact = True


class UvaDenseLayer(nn.Module):
  bn_size: int
  growth_rate: int
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    z = _act(self.act)(_bn(train, 'bn1')(x))
    z = Conv(self.bn_size * self.growth_rate, (1, 1), kernel_init=kaiming_normal, use_bias=False, name='conv1')(z)
    z = _act(self.act)(_bn(train, 'bn2')(z))
    z = Conv(self.growth_rate, (3, 3), padding='SAME', kernel_init=kaiming_normal, use_bias=False, name='conv2')(z)
    return jnp.concatenate([x, z], axis=-1)


@MODELS.register('densenet_cifar_uva', example_input_shape=(32, 32, 3), heavy=True,
                 description='UvA tutorial 5 DenseNet for CIFAR-10 (239,146 params)')
class UvaDenseNet(nn.Module):
  """DenseNet of UvA tutorial 5 (see the module docstring)."""
  num_outputs: int = 10
  num_layers: Sequence[int] = (6, 6, 6, 6)
  bn_size: int = 2
  growth_rate: int = 16
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    c = self.growth_rate * self.bn_size
    x = Conv(c, (3, 3), padding='SAME', kernel_init=kaiming_normal, name='stem')(as_float(x))
    for i, n in enumerate(self.num_layers):
      for j in range(n):
        x = UvaDenseLayer(self.bn_size, self.growth_rate, self.act, name=f'block{i + 1}_layer{j + 1}')(x, train)
      c += n * self.growth_rate
      if i < len(self.num_layers) - 1:   # transition: halve the channels and the resolution
        c //= 2
        x = _act(self.act)(_bn(train, f'transition{i + 1}_bn')(x))
        x = Conv(c, (1, 1), kernel_init=kaiming_normal, use_bias=False, name=f'transition{i + 1}_conv')(x)
        x = pooling.avg_pool(x, (2, 2), strides=(2, 2))
    x = _act(self.act)(_bn(train, 'final_bn')(x))
    return nn.Dense(self.num_outputs, name='head')(jnp.mean(x, axis=(1, 2)))
