"""Residual networks (seed 000 "Residual networks"; seed 004 §X.4–X.5): y = relu(F(x) + shortcut(x)).

Three families, all with batch norm (statistics of the batch in training, running averages in eval):

* `resnet18/34/50/101/152` — He et al. 2015 (arXiv:1512.03385) Table 1 in torchvision's layout: conv 7×7/2
  (no bias) → BN → ReLU → max-pool 3×3/2 → 4 stages of basic (3×3, 3×3) or bottleneck (1×1, 3×3, 1×1 ×4)
  blocks, 64·2^i channels → global average pool → Dense(num_outputs). Every conv is followed by BN
  ("conv-BN-ReLU"); a block's shortcut is the identity, or a 1×1 strided projection conv + BN (option B) where
  the shape changes. Bottlenecks stride their 3×3 conv (torchvision "v1.5"); `stride_in_1x1=True` strides the
  first 1×1 instead, as in the paper's Caffe models (v1): same parameters, fewer multiply-adds (jaxdl.inspect.flops).
  Parameter counts equal torchvision's: 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808.
* `preact_resnet18/…/152` — pre-activation ResNets (He et al. 2016b, "Identity mappings", Fig. 4e) in the layout
  of fb.resnet.torch `preresnet.lua`, the ImageNet code the paper builds on, with bias-free convs: stem conv → BN →
  ReLU → max-pool; each block computes BN → ReLU → conv (→ BN → ReLU → conv …) and adds an UN-activated
  shortcut; the first block of stage 1 takes the stem's activation as is; the first block of stages 2–4 applies its
  BN-ReLU before the split, so its 1×1 projection (no BN) sees the activated input; a final BN → ReLU precedes the
  pooling. Counts: 11,687,720 / 21,795,880 / 25,549,352 / 44,541,480 / 60,185,128, i.e. torchvision's v1 counts
  minus 1,792 (basic) or 7,680 (bottleneck): BN moves to the block inputs, the projections lose theirs, a final BN
  (512 or 2048 channels) is added.
* `resnet20/32/44/56/110` — the CIFAR ResNets of He et al. 2015 §4.2 (see `CifarResNet`).

Blocks after the first of a stage all have the same shapes; with `scan=True` they run as one `nn.scan`, their
parameters stacked on a leading axis (`layer3_rest/conv1/kernel` of shape (n − 1, 3, 3, C, C)), which keeps the
compile time of deep nets low; `scan=False` unrolls them as `layer3_1, layer3_2, …` (torchvision's naming).
ResNet-152, forward + backward at 64×64, 2 shared CPU cores: trace + compile 7–16 s scanned vs 17–25 s unrolled
(and the jitted init 6–9 s vs 14–23 s); CIFAR ResNet-110: 3.3 s vs 13.7 s.

FLOPs (claim C10; jaxdl.inspect.flops counts multiply-adds at 224×224): the paper's row 1.8 / 3.6 / 3.8 / 7.6 / 11.3 ×10⁹
is the v1 net (`stride_in_1x1=True`) with zero-padding shortcuts for 18/34 (`shortcut='A'`, the paper's choice
there) and projections for 50–152: 1.795 / 3.644 / 3.858 / 7.570 / 11.282 ×10⁹ — every one rounds to the paper's
figure except ResNet-50 (3.86, which the paper gives as 3.8). torchvision's v1.5 costs 4.09 ×10⁹ for ResNet-50.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn import norms, pooling
from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

# torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu') for every conv (He et al. 2015b).
he_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def conv2d(features: int, kernel: int, strides: int = 1, *, groups: int = 1, use_bias: bool = False,
           padding: Any = None, name: str | None = None) -> nn.Module:
  """A k×k convolution padded like PyTorch's `padding=k//2` (symmetric, so stride-2 grids align with torch's)."""
  p = kernel // 2
  return Conv(features, (kernel, kernel), strides=(strides, strides),
              padding=((p, p), (p, p)) if padding is None else padding, feature_group_count=groups,
              use_bias=use_bias, kernel_init=he_fan_out, name=name)


def batch_norm(train: bool, name: str | None = None) -> nn.Module:
  """BN with PyTorch's defaults (momentum 0.1 ⇔ flax 0.9, ε = 1e-5)."""
  return norms.make_norm('batch', 4, train=train, momentum=0.9, eps=1e-5, name=name)


def max_pool_3x3_s2(x):
  return pooling.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


def scan_blocks(block: nn.Module, x, n: int, train: bool):
  """Applies `block` n times with separate (stacked) parameters via `nn.scan`: x → block(x) → …"""
  def body(mdl, c, _):
    return mdl(c, train), None
  scanned = nn.scan(body, variable_axes={'params': 0, 'batch_stats': 0},
                    split_rngs={'params': True, 'dropout': True}, length=n)
  return scanned(block, x, None)[0]


def run_stage(make_block: Callable[..., nn.Module], x, n: int, train: bool, name: str, scan: bool):
  """Stage `name`: block `name`_0 = make_block(first=True), then n − 1 identical blocks (scanned or unrolled)."""
  x = make_block(first=True, name=f'{name}_0')(x, train)
  if n > 1 and scan:
    return scan_blocks(make_block(first=False, name=f'{name}_rest'), x, n - 1, train)
  for j in range(1, n):
    x = make_block(first=False, name=f'{name}_{j}')(x, train)
  return x


def zero_pad_shortcut(x, features: int, strides: int):
  """Option A (He et al. 2015 §4.1/§4.2): subsample x[:, ::s, ::s] and zero-pad the channels, (C_out − C_in)/2 on
  each side (the layout of akamaster/pytorch_resnet_cifar10: F.pad(x[:, :, ::2, ::2], (0,0,0,0, C/4, C/4)))."""
  x = x[:, ::strides, ::strides, :]
  extra = features - x.shape[-1]
  return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class BasicBlock(nn.Module):
  """relu(BN(conv3×3(relu(BN(conv3×3/s(x))))) + shortcut(x)); shortcut = x, or where the shape changes
  'B': BN(conv1×1/s(x)) (torchvision `downsample`) | 'A': zero_pad_shortcut(x)."""
  features: int
  strides: int = 1
  shortcut: str = 'B'

  @nn.compact
  def __call__(self, x, train: bool = False):
    y = conv2d(self.features, 3, self.strides, name='conv1')(x)
    y = nn.relu(batch_norm(train, 'bn1')(y))
    y = conv2d(self.features, 3, name='conv2')(y)
    y = batch_norm(train, 'bn2')(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      if self.shortcut == 'A':
        x = zero_pad_shortcut(x, self.features, self.strides)
      else:
        x = conv2d(self.features, 1, self.strides, name='downsample_conv')(x)
        x = batch_norm(train, 'downsample_bn')(x)
    return nn.relu(y + x)


class Bottleneck(nn.Module):
  """relu(BN(conv1×1→4w) ∘ relu∘BN∘conv3×3 w ∘ relu∘BN∘conv1×1 w (x) + shortcut(x)); the stride sits on the 3×3
  (torchvision v1.5) or on the first 1×1 (`stride_in_1x1`, the paper's v1); shortcut where the shape changes:
  'B' BN(conv1×1/s(x)) | 'A' zero_pad_shortcut(x)."""
  features: int
  strides: int = 1
  stride_in_1x1: bool = False
  shortcut: str = 'B'
  expansion: int = 4

  @nn.compact
  def __call__(self, x, train: bool = False):
    out = self.features * self.expansion
    s1, s3 = (self.strides, 1) if self.stride_in_1x1 else (1, self.strides)
    y = nn.relu(batch_norm(train, 'bn1')(conv2d(self.features, 1, s1, name='conv1')(x)))
    y = nn.relu(batch_norm(train, 'bn2')(conv2d(self.features, 3, s3, name='conv2')(y)))
    y = batch_norm(train, 'bn3')(conv2d(out, 1, name='conv3')(y))
    if self.strides != 1 or x.shape[-1] != out:
      if self.shortcut == 'A':
        x = zero_pad_shortcut(x, out, self.strides)
      else:
        x = batch_norm(train, 'downsample_bn')(conv2d(out, 1, self.strides, name='downsample_conv')(x))
    return nn.relu(y + x)


class PreActBasicBlock(nn.Module):
  """He et al. 2016b: conv3×3(relu(BN(conv3×3/s(relu(BN(x)))))) + shortcut. `preact`: 'residual' (BN-ReLU on the
  residual branch only; identity shortcut), 'both' (BN-ReLU before the split; the projection sees it) or 'none'
  (the input is already activated)."""
  features: int
  strides: int = 1
  preact: str = 'residual'
  expansion: int = 1

  def _pre(self, x, train):
    if self.preact == 'none':
      return x, x
    y = nn.relu(batch_norm(train, 'preact_bn')(x))
    return y, (y if self.preact == 'both' else x)

  def _shortcut(self, x, out):
    if self.strides != 1 or x.shape[-1] != out:
      return conv2d(out, 1, self.strides, name='downsample_conv')(x)
    return x

  @nn.compact
  def __call__(self, x, train: bool = False):
    y, x = self._pre(x, train)
    y = conv2d(self.features, 3, self.strides, name='conv1')(y)
    y = conv2d(self.features, 3, name='conv2')(nn.relu(batch_norm(train, 'bn1')(y)))
    return y + self._shortcut(x, self.features)


class PreActBottleneck(PreActBasicBlock):
  """He et al. 2016b bottleneck: (BN-ReLU-conv1×1 w) → (BN-ReLU-conv3×3/s w) → (BN-ReLU-conv1×1 4w) + shortcut."""
  expansion: int = 4

  @nn.compact
  def __call__(self, x, train: bool = False):
    out = self.features * self.expansion
    y, x = self._pre(x, train)
    y = conv2d(self.features, 1, name='conv1')(y)
    y = conv2d(self.features, 3, self.strides, name='conv2')(nn.relu(batch_norm(train, 'bn1')(y)))
    y = conv2d(out, 1, name='conv3')(nn.relu(batch_norm(train, 'bn2')(y)))
    return y + self._shortcut(x, out)


# He et al. 2015, Table 1: (block, blocks per stage).
DEPTHS = {18: ('basic', (2, 2, 2, 2)), 34: ('basic', (3, 4, 6, 3)), 50: ('bottleneck', (3, 4, 6, 3)),
          101: ('bottleneck', (3, 4, 23, 3)), 152: ('bottleneck', (3, 8, 36, 3))}
# torchvision.models.resnet{18,...,152}(): sum of p.numel() over model.parameters().
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# The paper's FLOPs row (multiply-adds), Table 1.
PAPER_GFLOPS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


def _check_depth(depth: int, family: str) -> None:
  if depth not in DEPTHS:
    raise UserError(f'{family} depth {depth}', 'one of ' + ', '.join(map(str, DEPTHS)), 'fix config.model.depth')


def _check_shortcut(shortcut: str) -> None:
  if shortcut not in ('A', 'B'):
    raise UserError(f'shortcut {shortcut!r}', "'A' (zero-padded identity) or 'B' (1×1 projection + BN)",
                    'fix config.model.shortcut')


class ResNet(nn.Module):
  """ImageNet ResNet v1 (He et al. 2015, torchvision layout; see the module docstring). `width` is the stem /
  first-stage width (64). `shortcut` where a block changes shape: 'B' projection (torchvision; the paper's
  choice for 50–152) | 'A' zero-padded identity (the paper's Table 1 18/34-layer nets, "no extra parameter")."""
  depth: int = 50
  num_outputs: int = 1000
  width: int = 64
  stride_in_1x1: bool = False
  shortcut: str = 'B'
  scan: bool = True

  def __post_init__(self):
    super().__post_init__()
    _check_depth(self.depth, 'ResNet')
    _check_shortcut(self.shortcut)

  @nn.compact
  def __call__(self, x, train: bool = False):
    kind, counts = DEPTHS[self.depth]
    x = conv2d(self.width, 7, 2, name='conv1')(as_float(x))
    x = max_pool_3x3_s2(nn.relu(batch_norm(train, 'bn1')(x)))
    for i, n in enumerate(counts):
      w, s = self.width * 2 ** i, 1 if i == 0 else 2

      def make(first, name, w=w, s=s):
        if kind == 'basic':
          return BasicBlock(w, s if first else 1, self.shortcut, name=name)
        return Bottleneck(w, s if first else 1, self.stride_in_1x1, self.shortcut, name=name)
      x = run_stage(make, x, n, train, f'layer{i + 1}', self.scan)
    return nn.Dense(self.num_outputs, name='fc')(jnp.mean(x, axis=(1, 2)))


class PreActResNet(nn.Module):
  """ImageNet pre-activation ResNet (He et al. 2016b; fb.resnet.torch preresnet.lua layout, see module docstring)."""
  depth: int = 50
  num_outputs: int = 1000
  width: int = 64
  scan: bool = True

  def __post_init__(self):
    super().__post_init__()
    _check_depth(self.depth, 'pre-activation ResNet')

  @nn.compact
  def __call__(self, x, train: bool = False):
    kind, counts = DEPTHS[self.depth]
    block = PreActBasicBlock if kind == 'basic' else PreActBottleneck
    x = conv2d(self.width, 7, 2, name='conv1')(as_float(x))
    x = max_pool_3x3_s2(nn.relu(batch_norm(train, 'bn1')(x)))
    for i, n in enumerate(counts):
      w, s = self.width * 2 ** i, 1 if i == 0 else 2

      def make(first, name, w=w, s=s, i=i):
        preact = ('none' if i == 0 else 'both') if first else 'residual'
        return block(w, s if first else 1, preact, name=name)
      x = run_stage(make, x, n, train, f'layer{i + 1}', self.scan)
    x = nn.relu(batch_norm(train, 'final_bn')(x))
    return nn.Dense(self.num_outputs, name='fc')(jnp.mean(x, axis=(1, 2)))


class CifarResNet(nn.Module):
  """CIFAR ResNet-(6n+2), He et al. 2015 §4.2 (the course's "ResNet-20 vs ResNet-56" nets).

  conv3×3 16 (no bias) → BN → ReLU → 3 stages of n `BasicBlock`s with 16, 32, 64 channels (the first block of
  stages 2 and 3 has stride 2 on its first conv) → global average pool → Dense(num_outputs) (with bias).
  Block: conv3×3/s → BN → ReLU → conv3×3 → BN → (+ shortcut) → ReLU (post-activation, v1). Convs have no bias and
  padding 1 (PyTorch-style symmetric). Shortcuts are the identity except at the two downsampling blocks:
  shortcut='A' (the paper's CIFAR choice): x[:, ::2, ::2] zero-padded from C to 2C channels, C/2 zeros on each side
  (no parameters); 'B': conv1×1/2 (no bias) → BN. Initialisation: He-normal (fan_out) convs, BN γ=1 β=0, flax's
  default Dense. Parameters, option A: 269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 for depth 20/32/44/56/110
  (the paper's 0.27M / 0.46M / 0.66M / 0.85M / 1.7M); option B adds 2,752 (ResNet-20 B: 272,474).
  Parameter names follow torchvision's (conv1, bn1, layer{1,2,3}_{j}/conv1 …, fc); `scan=True` (the default of
  `resnet110` only) stacks blocks 1…n−1 of each stage as layer{i}_rest.
  """
  depth: int = 20
  num_outputs: int = 10
  shortcut: str = 'A'
  width: int = 16
  scan: bool = False

  def __post_init__(self):
    super().__post_init__()
    if self.depth < 8 or (self.depth - 2) % 6:
      raise UserError(f'CIFAR ResNet depth {self.depth}', 'depth = 6n + 2 (20, 32, 44, 56, 110, ...)',
                      'fix config.model.depth')
    _check_shortcut(self.shortcut)

  @nn.compact
  def __call__(self, x, train: bool = False):
    n = (self.depth - 2) // 6
    x = conv2d(self.width, 3, name='conv1')(as_float(x))
    x = nn.relu(batch_norm(train, 'bn1')(x))
    for i in range(3):
      w, s = self.width * 2 ** i, 1 if i == 0 else 2

      def make(first, name, w=w, s=s):
        return BasicBlock(w, s if first else 1, self.shortcut, name=name)
      x = run_stage(make, x, n, train, f'layer{i + 1}', self.scan)
    return nn.Dense(self.num_outputs, name='fc')(jnp.mean(x, axis=(1, 2)))


_IMAGENET = dict(example_input_shape=(64, 64, 3), input_shape=(224, 224, 3))  # example: the fast test; input: summary


@MODELS.register('resnet18', **_IMAGENET, heavy=True, description='ResNet-18 (He et al. 2015; torchvision, 11.7M params)')
class ResNet18(ResNet):
  depth: int = 18


@MODELS.register('resnet34', **_IMAGENET, heavy=True,
                 description='ResNet-34 (He et al. 2015; torchvision, 21.8M params)')
class ResNet34(ResNet):
  depth: int = 34


@MODELS.register('resnet50', **_IMAGENET, heavy=True,
                 description='ResNet-50 (He et al. 2015; torchvision v1.5, 25.6M params)')
class ResNet50(ResNet):
  depth: int = 50


@MODELS.register('resnet101', **_IMAGENET, heavy=True,
                 description='ResNet-101 (He et al. 2015; torchvision v1.5, 44.5M params)')
class ResNet101(ResNet):
  depth: int = 101


@MODELS.register('resnet152', **_IMAGENET, heavy=True,
                 description='ResNet-152 (He et al. 2015; torchvision v1.5, 60.2M params)')
class ResNet152(ResNet):
  depth: int = 152


@MODELS.register('preact_resnet18', **_IMAGENET, heavy=True, description='pre-activation ResNet-18 (He et al. 2016b)')
class PreActResNet18(PreActResNet):
  depth: int = 18


@MODELS.register('preact_resnet34', **_IMAGENET, heavy=True,
                 description='pre-activation ResNet-34 (He et al. 2016b)')
class PreActResNet34(PreActResNet):
  depth: int = 34


@MODELS.register('preact_resnet50', **_IMAGENET, heavy=True,
                 description='pre-activation ResNet-50 (He et al. 2016b)')
class PreActResNet50(PreActResNet):
  depth: int = 50


@MODELS.register('preact_resnet101', **_IMAGENET, heavy=True,
                 description='pre-activation ResNet-101 (He et al. 2016b)')
class PreActResNet101(PreActResNet):
  depth: int = 101


@MODELS.register('preact_resnet152', **_IMAGENET, heavy=True,
                 description='pre-activation ResNet-152 (He et al. 2016b)')
class PreActResNet152(PreActResNet):
  depth: int = 152


_CIFAR = dict(example_input_shape=(32, 32, 3))


@MODELS.register('resnet20', **_CIFAR, description='CIFAR ResNet-20 (He et al. 2015 §4.2, option A, 0.27M)')
class ResNet20(CifarResNet):
  depth: int = 20


@MODELS.register('resnet32', **_CIFAR, description='CIFAR ResNet-32 (He et al. 2015 §4.2, option A, 0.46M)')
class ResNet32(CifarResNet):
  depth: int = 32


@MODELS.register('resnet44', **_CIFAR, heavy=True,
                 description='CIFAR ResNet-44 (He et al. 2015 §4.2, option A, 0.66M)')
class ResNet44(CifarResNet):
  depth: int = 44


@MODELS.register('resnet56', **_CIFAR, heavy=True,
                 description='CIFAR ResNet-56 (He et al. 2015 §4.2, option A, 0.85M)')
class ResNet56(CifarResNet):
  depth: int = 56


@MODELS.register('resnet110', **_CIFAR, heavy=True,
                 description='CIFAR ResNet-110 (He et al. 2015 §4.2, option A, 1.7M)')
class ResNet110(CifarResNet):
  depth: int = 110
  scan: bool = True     # 18 blocks a stage: scanned (stacked parameters) to keep the compile time low
