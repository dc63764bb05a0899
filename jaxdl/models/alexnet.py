"""AlexNet ("SuperVision", Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013/2014).

Seed 000 "10 years of CNN revolution", claim C7 (≈60M parameters, per-layer table). `alexnet` is the paper's
two-GPU network: 96-256-384-384-256 kernels, the 2nd, 4th and 5th convolutions connected only to the maps on their
own GPU (grouped convolutions, `feature_group_count=2`), the 3rd and the fully connected layers to all of them:

  layer  kernel          maps (per GPU)   params (weights + biases)     course table (weights, rounded)
  conv1  11×11×3, /4     96 (48 + 48)      34,848 +    96 =    34,944   35K
  conv2  5×5×48          256 (2 × 128)    307,200 +   256 =   307,456   307K  (the slide says "11×11": a typo)
  conv3  3×3×256         384 (2 × 192)    884,736 +   384 =   885,120   884K
  conv4  3×3×192         384 (2 × 192)    663,552 +   384 =   663,936   1.3M  (3·3·384·384: conv4 ungrouped)
  conv5  3×3×192         256 (2 × 128)    442,368 +   256 =   442,624   442K
  fc6    6·6·256 → 4096              37,748,736 + 4,096 = 37,752,832   37M
  fc7    4096 → 4096                 16,777,216 + 4,096 = 16,781,312   16M
  fc8    4096 → 1000                  4,096,000 + 1,000 =  4,097,000   4M
                                                         ----------
                                                         60,965,224   "60 million parameters" (paper, C7)

The course table agrees with the grouped network everywhere but conv4, where its 1.3M is the count of an
ungrouped 384→384 layer; the paper's text (and the totals) say conv4 is grouped. `variant='one_tower'` is the
single-GPU network of Krizhevsky 2014 ("One weird trick", 64-192-384-256-256, no groups), which is torchvision's
`alexnet`: 61,100,840 parameters.

Details from the paper: ReLU everywhere; local response normalisation (k=2, n=5, α=1e-4, β=0.75) after the ReLU of
conv1 and conv2 (`lrn`); overlapping max pooling 3×3 stride 2 after conv1, conv2 and conv5; dropout 0.5 on fc6 and
fc7. The input is 224×224×3 with conv1 padded by 2 (the paper's 224 only gives its 55×55 maps with a padding of 2,
or with a 227×227 input and none); an adaptive average pool to 6×6 (torchvision's) lets other input sizes through
without changing the parameters.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

VARIANTS = ('paper', 'one_tower')
# (maps, kernel, stride, padding, groups) per convolution.
ALEXNET_CONVS = {
    'paper': ((96, 11, 4, 2, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2)),
    'one_tower': ((64, 11, 4, 2, 1), (192, 5, 1, 2, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1)),
}


def local_response_norm(x, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
  """b_c = a_c / (k + α Σ_{c'} a_{c'}²)^β, c' over the `size` maps centred on c (Krizhevsky et al. 2012, §3.3).

  α multiplies the plain sum (the paper's formula; Caffe and torch divide α by `size`). Channels last.
  """
  c = x.shape[-1]
  half = size // 2
  sq = jnp.pad(jnp.square(x), [(0, 0)] * (x.ndim - 1) + [(half, size - 1 - half)])
  s = sum(sq[..., i:i + c] for i in range(size))
  return x / (k + alpha * s) ** beta


def adaptive_avg_pool(x, out_hw: tuple[int, int]):
  """torch's AdaptiveAvgPool2d on NHWC: output cell i averages rows ⌊iH/h⌋ … ⌈(i+1)H/h⌉ − 1 (identity if equal)."""
  h, w = x.shape[1:3]
  if (h, w) == tuple(out_hw):
    return x

  def bins(n, m):
    p = np.zeros((m, n), np.float32)
    for i in range(m):
      s, e = (i * n) // m, -((-(i + 1) * n) // m)
      p[i, s:e] = 1.0 / (e - s)
    return jnp.asarray(p, x.dtype)

  return jnp.einsum('ih,jw,nhwc->nijc', bins(h, out_hw[0]), bins(w, out_hw[1]), x)


def _check(variant: str) -> None:
  if variant not in VARIANTS:
    raise UserError(f'model.variant={variant!r}', 'one of: ' + ', '.join(VARIANTS), 'fix config.model.variant')


def classifier(x, num_outputs: int, width: int, dropout_rate: float, train: bool):
  """fc6 → ReLU → dropout → fc7 → ReLU → dropout → fc8 (AlexNet, ZFNet and VGG share it)."""
  x = x.reshape((x.shape[0], -1))
  init = nn.initializers.he_normal()
  for name in ('fc6', 'fc7'):
    x = nn.relu(nn.Dense(width, kernel_init=init, name=name)(x))
    if dropout_rate:
      x = nn.Dropout(dropout_rate, deterministic=not train)(x)
  return nn.Dense(num_outputs, name='fc8')(x)


@MODELS.register('alexnet', example_input_shape=(224, 224, 3), heavy=True,
                 description='AlexNet (Krizhevsky et al. 2012), two-GPU grouped convolutions, LRN; 60,965,224 params')
class AlexNet(nn.Module):
  """AlexNet (see the module docstring). variant: 'paper' (grouped, 96-256-384-384-256) | 'one_tower' (torchvision).

  lrn: local response normalisation after conv1 and conv2 (the paper; no parameters). dropout_rate on fc6, fc7.
  """
  num_outputs: int = 1000
  variant: str = 'paper'
  lrn: bool = True
  dropout_rate: float = 0.5
  fc_width: int = 4096

  def __post_init__(self):
    super().__post_init__()
    _check(self.variant)

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    init = nn.initializers.he_normal()
    for i, (maps, k, s, p, g) in enumerate(ALEXNET_CONVS[self.variant], start=1):
      x = nn.relu(Conv(maps, (k, k), strides=(s, s), padding=((p, p), (p, p)), feature_group_count=g,
                       kernel_init=init, name=f'conv{i}')(x))
      self.sow('intermediates', f'conv{i}_out', x)
      if i <= 2 and self.lrn:
        x = local_response_norm(x)
      if i in (1, 2, 5):
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')
    self.sow('intermediates', 'features', x)      # 6×6×256 at 224×224: the adaptive pool is then the identity
    x = adaptive_avg_pool(x, (6, 6))
    return classifier(x, self.num_outputs, self.fc_width, self.dropout_rate, train)


# (maps, kernel, stride, padding) per convolution; the pooling after conv1, conv2 pads one row/column at the end
# (ceil mode) to give the paper's 55×55 and 13×13 maps (Zeiler & Fergus 2014, Fig. 3).
ZFNET_CONVS = ((96, 7, 2, 1), (256, 5, 2, 0), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1))


@MODELS.register('zfnet', example_input_shape=(224, 224, 3), heavy=True,
                 description='ZFNet (Zeiler & Fergus 2013): AlexNet with 7×7/2 conv1 and 5×5/2 conv2')
class ZFNet(nn.Module):
  """Zeiler & Fergus's ImageNet model (Fig. 3): 224 → 7×7/2 conv 96 (110) → pool 3/2 (55) → norm → 5×5/2 conv
  256 (26) → pool 3/2 (13) → norm → 3×3 conv 384, 384, 256 (13) → pool 3/2 (6) → fc 4096, 4096, 1000.

  The paper's "contrast normalisation across feature maps" is the local response normalisation (`lrn`).
  One tower, no groups: 62,357,608 parameters (the paper gives no total).
  """
  num_outputs: int = 1000
  lrn: bool = True
  dropout_rate: float = 0.5
  fc_width: int = 4096

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    init = nn.initializers.he_normal()
    for i, (maps, k, s, p) in enumerate(ZFNET_CONVS, start=1):
      x = nn.relu(Conv(maps, (k, k), strides=(s, s), padding=((p, p), (p, p)), kernel_init=init, name=f'conv{i}')(x))
      self.sow('intermediates', f'conv{i}_out', x)
      if i <= 2:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((0, 1), (0, 1)))
        if self.lrn:
          x = local_response_norm(x)
      elif i == 5:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')
    self.sow('intermediates', 'features', x)      # 6×6×256 at 224×224: the adaptive pool is then the identity
    x = adaptive_avg_pool(x, (6, 6))
    return classifier(x, self.num_outputs, self.fc_width, self.dropout_rate, train)
