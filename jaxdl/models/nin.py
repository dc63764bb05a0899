"""Network in Network (Lin, Chen & Yan 2014), the CIFAR-10 model: three "mlpconv" layers and global average pooling.

An mlpconv layer is a k×k convolution followed by two 1×1 convolutions ("cascaded cross channel parametric
pooling", cccp: a small MLP slid over the image), every one with a ReLU. The CIFAR-10 network of the authors'
released Caffe model:

  conv1 5×5 192, cccp1 1×1 160, cccp2 1×1 96,  3×3/2 max pool, dropout 0.5      32 → 16
  conv2 5×5 192, cccp3 1×1 192, cccp4 1×1 192, 3×3/2 average pool, dropout 0.5  16 → 8
  conv3 3×3 192, cccp5 1×1 192, cccp6 1×1 10,  global average pool → softmax

No fully connected layer: the 10 maps of cccp6 ARE the class confidence maps. Parameters: 966,986 (10 classes).
Pooling is 'SAME' (Caffe's ceil mode: 32 → 16 → 8); the average pool ignores the padding.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.nn.conv import Conv
from jaxdl.nn.pooling import avg_pool
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

# (name, maps, kernel) per mlpconv layer; None maps = num_outputs.
NIN_CIFAR = ((('conv1', 192, 5), ('cccp1', 160, 1), ('cccp2', 96, 1)),
             (('conv2', 192, 5), ('cccp3', 192, 1), ('cccp4', 192, 1)),
             (('conv3', 192, 3), ('cccp5', 192, 1), ('cccp6', None, 1)))


@MODELS.register('nin', example_input_shape=(32, 32, 3),
                 description='Network in Network (Lin et al. 2014), CIFAR-10: 3 mlpconv layers + global avg pool')
class NIN(nn.Module):
  """Network in Network for 32×32 inputs (module docstring). Layers conv1, cccp1, …, cccp6."""
  num_outputs: int = 10
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = as_float(x)
    init = nn.initializers.he_normal()
    for b, block in enumerate(NIN_CIFAR):
      for name, maps, k in block:
        x = Conv(maps or self.num_outputs, (k, k), padding='SAME', kernel_init=init, name=name)(x)
        x = nn.relu(x)
      if b == 0:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
      elif b == 1:
        x = avg_pool(x, (3, 3), strides=(2, 2), padding='SAME', count_include_pad=False)
      if b < 2 and self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return jnp.mean(x, axis=(1, 2))
