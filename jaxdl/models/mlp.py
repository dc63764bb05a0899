"""Multilayer perceptron (feedforward network): activations, initialisers and normalisation chosen by name."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxdl.nn import activations, init, norms
from jaxdl.errors import UserError
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS


@MODELS.register('mlp', example_input_shape=(8, 8, 1), description='fully connected network: hidden layers + linear head')
class MLP(nn.Module):
  """x -> [Dense -> (norm) -> activation -> (Dropout)] * len(hidden) -> Dense(num_outputs).

  activation: a name of jaxdl.nn.activations (fixed or learned: prelu; maxout makes each Dense maxout_pieces× wider).
  kernel_init / bias_init (+ _scale): names of jaxdl.nn.init, used by every Dense (hidden and head); 'default' is
  flax's. norm: none | batch | layer | group (instance needs spatial axes); BN/LN/GN sit after the Dense, before
  the activation (Ioffe & Szegedy 2015); with batch norm the Dense has no bias (β replaces it).
  `batch_norm=True` is the older spelling of norm='batch'.

  Diagnostics: `apply(..., mutable=['intermediates'])` returns per hidden layer i 'pre{i}' (the activation's
  input, after the norm) and 'act{i}' (its output); with 'perturbations' mutable as well, the gradient of a loss
  w.r.t. the perturbations is ∂L/∂pre{i} (see jaxdl.inspect.diagnostics). Nothing is recorded during init or training.
  """
  hidden: Sequence[int] = (128,)
  num_outputs: int = 10
  activation: str = 'relu'
  dropout_rate: float = 0.0
  input_dropout_rate: float = 0.0
  batch_norm: bool = False
  output_bias: bool = True
  norm: str = 'none'
  group_norm_groups: int = 4
  kernel_init: str = 'default'
  kernel_init_scale: float = 1.0
  bias_init: str = 'zeros'
  bias_init_scale: float = 1.0
  leaky_relu_slope: float = 0.01
  prelu_init: float = 0.25
  maxout_pieces: int = 2

  def __post_init__(self):
    super().__post_init__()
    # Reject bad names when the model is built (before any array exists).
    activations.check_name(self.activation)
    if self.batch_norm and self.norm not in ('none', 'batch'):
      raise UserError(f'model.batch_norm=True and model.norm={self.norm!r}', 'one normalisation',
                      "use model.norm alone (batch_norm=True means norm='batch')")
    for w in self.hidden:
      norms.check(self._norm, w * self._mult, self.group_norm_groups)
    if self._norm == 'instance':
      norms.make_norm('instance', 2)   # raises: degenerate on (N, C)
    init.get_initializer(self.kernel_init, self.kernel_init_scale, fan_in=1)
    init.get_initializer(self.bias_init, self.bias_init_scale, fan_in=1, bias=True, where='bias_init')
    if self.maxout_pieces < 1:
      raise UserError(f'model.maxout_pieces={self.maxout_pieces}', 'a positive integer', 'fix config.model.maxout_pieces')

  @property
  def _norm(self) -> str:
    return 'batch' if self.batch_norm else self.norm

  @property
  def _mult(self) -> int:
    return activations.width_multiplier(self.activation, self.maxout_pieces)

  def _dense(self, width: int, fan_in: int, use_bias: bool, name: str) -> nn.Dense:
    return nn.Dense(width, use_bias=use_bias, name=name,
                    kernel_init=init.get_initializer(self.kernel_init, self.kernel_init_scale, fan_in=fan_in),
                    bias_init=init.get_initializer(self.bias_init, self.bias_init_scale, fan_in=fan_in, bias=True,
                                                   where='bias_init'))

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = self._norm
    record = not self.is_initializing()
    x = as_float(x.reshape((x.shape[0], -1)))
    if self.input_dropout_rate:
      x = nn.Dropout(self.input_dropout_rate, deterministic=not train)(x)
    for i, width in enumerate(self.hidden):
      x = self._dense(width * self._mult, x.shape[-1], norm != 'batch', f'dense{i}')(x)
      if norm != 'none':
        x = norms.make_norm(norm, x.ndim, train=train, groups=self.group_norm_groups,
                            name=f'{norms.PREFIX[norm]}{i}')(x)
      if record:
        x = self.perturb(f'pre{i}', x)
        self.sow('intermediates', f'pre{i}', x)
      x = activations.Activation(self.activation, slope=self.leaky_relu_slope, pieces=self.maxout_pieces,
                                 prelu_init=self.prelu_init, name=f'prelu{i}' if self.activation == 'prelu' else None)(x)
      if record:
        self.sow('intermediates', f'act{i}', x)
      if self.dropout_rate:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return self._dense(self.num_outputs, x.shape[-1], self.output_bias, 'head')(x)
