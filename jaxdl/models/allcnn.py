"""The all-convolutional nets of Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for simplicity"
(seed 000 "10 years of CNN revolution"): CIFAR-10 model C and its variants, Tables 1 and 2.

  Model C (base)        Strided-CNN-C               ConvPool-CNN-C           All-CNN-C
  input 32×32 RGB
  3×3 conv 96           3×3 conv 96                 3×3 conv 96              3×3 conv 96
  3×3 conv 96           3×3 conv 96, stride 2       3×3 conv 96              3×3 conv 96
                                                    3×3 conv 96              3×3 conv 96, stride 2
  3×3 max-pool /2                                   3×3 max-pool /2
  3×3 conv 192          3×3 conv 192                3×3 conv 192             3×3 conv 192
  3×3 conv 192          3×3 conv 192, stride 2      3×3 conv 192             3×3 conv 192
                                                    3×3 conv 192             3×3 conv 192, stride 2
  3×3 max-pool /2                                   3×3 max-pool /2
  3×3 conv 192 (valid: 8×8 → 6×6), 1×1 conv 192, 1×1 conv 10, global average over 6×6, softmax

Every convolution is followed by a ReLU, the last (1×1, 10 maps) included as in Table 1 (`final_relu`). Dropout
20% on the input and 50% after each pooling layer or the layer replacing it (§3.2.1). The other convolutions
are padded ('SAME'), so the maps are 32 → 16 → 8 → 6.

Parameters (exact, 10 classes): All-CNN-C and ConvPool-CNN-C 1,369,738; Model C and Strided-CNN-C 954,730.
The paper's Table 3 rounds All-CNN-C / ConvPool-CNN-C to ≈1.4M (the course: ≈1.3M; 1.37M either way).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

VARIANTS = ('base', 'strided', 'convpool', 'all')


class AllCNN(nn.Module):
  """Model C and its variants (module docstring). variant: 'base' | 'strided' | 'convpool' | 'all'.

  widths: the maps of the two stages (96, 192) — smaller for quick experiments. Layers conv1 … convN.
  """
  num_outputs: int = 10
  variant: str = 'all'
  widths: Sequence[int] = (96, 192)
  input_dropout_rate: float = 0.2
  dropout_rate: float = 0.5
  final_relu: bool = True

  def __post_init__(self):
    super().__post_init__()
    if self.variant not in VARIANTS:
      raise UserError(f'model.variant={self.variant!r}', 'one of: ' + ', '.join(VARIANTS), 'fix config.model.variant')
    if len(self.widths) != 2:
      raise UserError(f'model.widths={tuple(self.widths)}', 'two widths (stage 1, stage 2), e.g. (96, 192)',
                      'fix config.model.widths')

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    init = nn.initializers.he_normal()
    n = [0]

    def conv(x, maps, k=3, stride=1, padding='SAME', relu=True):
      n[0] += 1
      x = Conv(maps, (k, k), strides=(stride, stride), padding=padding, kernel_init=init, name=f'conv{n[0]}')(x)
      return nn.relu(x) if relu else x

    def dropout(x, rate):
      return nn.Dropout(rate, deterministic=not train)(x) if rate else x

    x = dropout(x, self.input_dropout_rate)
    for maps in self.widths:
      x = conv(x, maps)
      if self.variant == 'strided':
        x = conv(x, maps, stride=2)
      else:
        x = conv(x, maps)
        if self.variant == 'convpool':
          x = conv(x, maps)
        if self.variant == 'all':
          x = conv(x, maps, stride=2)
        else:
          x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
      x = dropout(x, self.dropout_rate)
    x = conv(x, self.widths[1], padding='VALID')
    x = conv(x, self.widths[1], k=1)
    x = conv(x, self.num_outputs, k=1, relu=self.final_relu)
    return jnp.mean(x, axis=(1, 2))


@MODELS.register('allcnn_c', example_input_shape=(32, 32, 3),
                 description='All-CNN-C (Springenberg et al. 2015): strided convolutions replace pooling; 1.37M')
class AllCNNC(AllCNN):
  """All-CNN-C: pooling replaced by a stride-2 3×3 convolution (see `AllCNN`)."""
  variant: str = 'all'


@MODELS.register('strided_cnn_c', example_input_shape=(32, 32, 3),
                 description='Strided-CNN-C (Springenberg et al. 2015): model C, pooling removed, stride 2; 0.95M')
class StridedCNNC(AllCNN):
  """Strided-CNN-C: the convolution before each pooling gets stride 2, the pooling goes (see `AllCNN`)."""
  variant: str = 'strided'


@MODELS.register('convpool_cnn_c', example_input_shape=(32, 32, 3),
                 description='ConvPool-CNN-C (Springenberg et al. 2015): model C + a conv before each pool; 1.37M')
class ConvPoolCNNC(AllCNN):
  """ConvPool-CNN-C: All-CNN-C's parameters with max pooling kept (see `AllCNN`)."""
  variant: str = 'convpool'
