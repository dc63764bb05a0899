"""Small convolutional networks: the course's "vanilla CNN" and the modern LeNet-5.

* `simple_cnn` — [conv k×k → (BN) → activation]* → pool → flatten → (dropout) → [dense → activation → (dropout)]*
  → dense. Defaults are the classic MNIST CNN (Keras `mnist_cnn`, the bench's small CNN): conv3×3 32 → ReLU →
  conv3×3 64 → ReLU → max-pool 2 → dense 128 → ReLU → dense 10 on 28×28×1 (1,199,882 parameters with 10 classes).
* `lenet_modern` — LeNet-5 as most courses and torchvision-style tutorials write it today: conv5×5 6 → tanh →
  avg-pool 2 → conv5×5 16 → tanh → avg-pool 2 → dense 120 → tanh → dense 84 → tanh → dense num_outputs, on
  32×32×1, every connection full (61,706 parameters with 10 classes). LeCun et al. 1998's original (partial C3
  table, RBF output) is `lenet5` in jaxdl/models/lenet.py.

Convolutions are `jaxdl.nn.conv.Conv` (flax's nn.Conv, faster on CPU); pooling is `jaxdl.nn.pooling.max_pool /
avg_pool`.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxdl.nn import activations
from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.pooling import avg_pool, max_pool
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

POOLS = ('max', 'avg', 'none')


@MODELS.register('simple_cnn', example_input_shape=(28, 28, 1),
                 description='vanilla CNN: conv3×3 32 → conv3×3 64 → max-pool → dense 128 → dense (configurable)')
class SimpleCNN(nn.Module):
  """A plain CNN. `pool_every=0`: one pooling after the last conv; k > 0: after every k-th conv.
  With `batch_norm` each conv has no bias and is followed by BN (before the activation). Layers are named conv{i},
  bn{i}, dense{i} and head (for transfer learning: `train.init_from_exclude=('head',)`, `optimizer.freeze`)."""
  channels: Sequence[int] = (32, 64)
  kernel_size: int = 3
  padding: str = 'VALID'
  strides: int = 1
  pool: str = 'max'
  pool_size: int = 2
  pool_every: int = 0
  dense: Sequence[int] = (128,)
  activation: str = 'relu'
  dropout_rate: float = 0.0
  batch_norm: bool = False
  num_outputs: int = 10

  def __post_init__(self):
    super().__post_init__()
    activations.check_name(self.activation)
    if self.pool not in POOLS:
      raise UserError(f'model.pool={self.pool!r}', 'one of: ' + ', '.join(POOLS), 'fix config.model.pool')
    if self.padding not in ('VALID', 'SAME'):
      raise UserError(f'model.padding={self.padding!r}', "'VALID' or 'SAME'", 'fix config.model.padding')

  def _pool(self, x):
    if self.pool == 'none':
      return x
    p = (self.pool_size, self.pool_size)
    return (max_pool if self.pool == 'max' else avg_pool)(x, p, strides=p)

  @nn.compact
  def __call__(self, x, train: bool = False, feature_map: bool = False):
    """Logits; `feature_map=True`: the last conv block's maps [B, H, W, C] instead (a trunk, e.g. for captioning)."""
    def act(h):
      if self.activation in activations.LEARNED:  # e.g. prelu: its own parameters per layer
        return activations.Activation(self.activation)(h)
      return activations.get_activation(self.activation)(h)

    x = as_float(x)
    if x.ndim == 3:
      x = x[..., None]
    n = len(self.channels)
    for i, c in enumerate(self.channels):
      x = Conv(c, (self.kernel_size, self.kernel_size), strides=self.strides, padding=self.padding,
               use_bias=not self.batch_norm, name=f'conv{i}')(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f'bn{i}')(x)
      x = act(x)
      if (self.pool_every and (i + 1) % self.pool_every == 0) or (not self.pool_every and i == n - 1):
        x = self._pool(x)
    if feature_map:
      return x
    x = x.reshape((x.shape[0], -1))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for i, w in enumerate(self.dense):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(act(nn.Dense(w, name=f'dense{i}')(x)))
    return nn.Dense(self.num_outputs, name='head')(x)


@MODELS.register('lenet_modern', example_input_shape=(32, 32, 1),
                 description='LeNet-5, modern form: tanh, avg-pool, 6/16 maps 5×5, 120-84-10 (61,706 params)')
class LeNetModern(nn.Module):
  """conv5×5 6 → tanh → avgpool 2 → conv5×5 16 → tanh → avgpool 2 → 120 → tanh → 84 → tanh → num_outputs."""
  num_outputs: int = 10
  activation: str = 'tanh'

  def __post_init__(self):
    super().__post_init__()
    activations.check_name(self.activation)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    act = activations.get_activation(self.activation)
    x = as_float(x)
    if x.ndim == 3:
      x = x[..., None]
    x = avg_pool(act(Conv(6, (5, 5), padding='VALID', name='c1')(x)), (2, 2), strides=(2, 2))
    x = avg_pool(act(Conv(16, (5, 5), padding='VALID', name='c3')(x)), (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = act(nn.Dense(120, name='f5')(x))
    x = act(nn.Dense(84, name='f6')(x))
    return nn.Dense(self.num_outputs, name='out')(x)
