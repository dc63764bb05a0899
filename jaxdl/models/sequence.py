"""Sequence models (seed 000 "DEALING WITH SEQUENTIAL DATA": many-to-one and many-to-many RNNs; seed 004 §XI).

`rnn_many_to_one`: a (stacked, optionally bidirectional) RNN read out from the LAST VALID step, h(T) -> Dense —
sequence classification or regression (the adding problem, sequential digits). `rnn_many_to_many`: the same RNN
with a Dense on every step's output (next-step prediction; with `bidirectional=True` it is the notes' "cheating"
bidirectional language model). `esn`: an echo-state network whose per-step linear readout is trained by the
trainer (the closed-form ridge readout is `jaxdl.nn.recurrent.fit_readout`); its fixed reservoir is the model's
'reservoir' collection, which the trainer carries next to 'params' as model state (never optimised).

Cells by `cell`: 'elman' (h = tanh(W_in x + W_h h + b), Elman 1990), 'irnn' (ReLU Elman with W_h = I and zero biases,
input weights N(0, irnn_input_std²) — 0.1 by default: with 0.001 it learned nothing on the adding problem in 3,000
Adam steps here — Le et al. 2015), 'lstm' (forget-gate bias `forget_bias`, Gers et al. 2000) and
'gru' (Cho et al. 2014) — all from jaxdl.nn.recurrent, PyTorch's parameterisation and initialisation otherwise.

Inputs: (B, T, D) sequences; (B, T) scalars per step (a feature axis is added) or, with `vocab_size`, token ids
(one-hot, or an nn.Embed of `embed_dim`); images (B, H, W, C) are read row by row as (B, H, W·C). `lengths` [B]
(right padding) is honoured: padded steps produce zeros and the many-to-one readout takes each sequence's own last
valid step (the backward direction's state after reading the whole valid part, i.e. its output at step 0).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.nn import recurrent
from jaxdl.nn.dense import Dense
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

CELLS = ('elman', 'irnn', 'lstm', 'gru')


class IRNNCell(recurrent.ElmanCell):
  """Le et al. 2015: ReLU Elman cell, recurrent weights the identity, biases zero (set by `SequenceRNN`)."""

  def _bias_init(self, hh: bool = False):
    return nn.initializers.zeros


def make_cell(kind: str, features: int, *, forget_bias: float = 1.0, irnn_input_std: float = 0.1,
              recurrent_init: str = 'default', recurrent_gain: float = 1.0) -> recurrent.RecurrentCell:
  """The cell named `kind` (one of CELLS) with `features` hidden units. recurrent_init / recurrent_gain:
  jaxdl.nn.recurrent's W_h init per gate block ('default' = PyTorch's; 'orthogonal' × gain has spectral radius
  gain); the IRNN's is always the identity."""
  rec = dict(recurrent_init=recurrent_init, recurrent_gain=recurrent_gain)
  if kind == 'elman':
    return recurrent.ElmanCell(features, **rec)
  if kind == 'irnn':
    return IRNNCell(features, activation='relu', recurrent_init='identity', recurrent_gain=recurrent_gain,
                    kernel_init=nn.initializers.normal(irnn_input_std))
  if kind == 'lstm':
    return recurrent.LSTMCell(features, forget_bias=forget_bias, **rec)
  if kind == 'gru':
    return recurrent.GRUCell(features, **rec)
  raise UserError(f'config.model.cell={kind!r}', f'one of {CELLS}', 'fix --config.model.cell')


class SequenceRNN(nn.Module):
  """Inputs -> StackedRNN(cell) -> readout. Subclasses choose the readout with the class attribute `per_step`."""
  cell: str = 'lstm'
  hidden_size: int = 32
  num_layers: int = 1
  bidirectional: bool = False
  num_outputs: int = 10
  dropout: float = 0.0
  vocab_size: int | None = None
  embed_dim: int | None = None
  forget_bias: float = 1.0
  irnn_input_std: float = 0.1
  recurrent_init: str = 'default'
  recurrent_gain: float = 1.0
  unroll: int | None = None

  per_step = False

  def __post_init__(self):
    super().__post_init__()
    if self.cell not in CELLS:
      raise UserError(f'config.model.cell={self.cell!r}', f'one of {CELLS}', 'fix --config.model.cell')
    if self.recurrent_init not in recurrent.RECURRENT_INITS:
      raise UserError(f'config.model.recurrent_init={self.recurrent_init!r}', f'one of {recurrent.RECURRENT_INITS}',
                      'fix --config.model.recurrent_init')
    if self.embed_dim is not None and self.vocab_size is None:
      raise UserError('config.model.embed_dim without vocab_size', 'vocab_size (the number of token ids) as well',
                      'set --config.model.vocab_size')

  def _inputs(self, x):
    if self.vocab_size is not None:                       # token ids (B, T)
      ids = x.reshape(x.shape[0], -1).astype(jnp.int32)
      if self.embed_dim is None:
        return jax.nn.one_hot(ids, self.vocab_size, dtype=as_float(x).dtype)
      return nn.Embed(self.vocab_size, self.embed_dim, name='embed')(ids)
    if x.ndim == 2:
      return x[..., None]
    if x.ndim == 4:                                       # image: row by row
      return x.reshape(x.shape[0], x.shape[1], -1)
    if x.ndim != 3:
      raise UserError(f'sequence model input of shape {x.shape}', '(batch, time[, features]) or images (B, H, W, C)',
                      'fix the dataset or the model')
    return x

  @nn.compact
  def __call__(self, x, lengths=None, train: bool = False):
    xs = as_float(self._inputs(x))                        # floating inputs keep their dtype (mixed precision)
    cell = make_cell(self.cell, self.hidden_size, forget_bias=self.forget_bias, irnn_input_std=self.irnn_input_std,
                     recurrent_init=self.recurrent_init, recurrent_gain=self.recurrent_gain)
    ys, _ = recurrent.StackedRNN(cell, num_layers=self.num_layers, bidirectional=self.bidirectional,
                                 dropout=self.dropout, unroll=self.unroll, name='rnn')(xs, lengths, train=train)
    if not self.per_step:
      ys = last_valid(ys, lengths, self.hidden_size if self.bidirectional else None)
    return Dense(self.num_outputs, name='head')(ys)


def last_valid(ys, lengths=None, backward_from: int | None = None):
  """(B, T, F) outputs -> (B, F): the output at each sequence's last valid step (T − 1 without lengths); with
  `backward_from` = H, features [H:] are a backward direction's, taken at step 0 (it has read the whole sequence)."""
  B, T, _ = ys.shape
  last = jnp.full((B,), T - 1, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32) - 1
  fwd = jnp.take_along_axis(ys, last[:, None, None], axis=1)[:, 0]
  if backward_from is None:
    return fwd
  return jnp.concatenate([fwd[:, :backward_from], ys[:, 0, backward_from:]], axis=-1)


@MODELS.register('rnn_many_to_one', example_input_shape=(5, 3),
                 description='many-to-one RNN (elman | irnn | lstm | gru; stacked, bidirectional): last valid state '
                 '-> Dense')
class RNNManyToOne(SequenceRNN):
  """Sequence classification/regression from the last valid hidden state (seed 000, "many-to-one")."""


@MODELS.register('rnn_many_to_many', example_input_shape=(5, 3), example_target_shape=(5,),
                 description='many-to-many RNN: a Dense on every step (next-step prediction; bidirectional cheats)')
class RNNManyToMany(SequenceRNN):
  """One output per step (seed 000, "many-to-many"): (B, T, num_outputs)."""
  per_step = True


@MODELS.register('esn', example_input_shape=(6, 1), example_target_shape=(6,),
                 description='echo-state network: fixed reservoir (\'reservoir\' collection) + a trained linear '
                 'readout per step')
class ESN(nn.Module):
  """EchoStateNetwork with a Dense readout of [u(t); x(t)] at every step, trained by the trainer (Jaeger 2001).

  The reservoir (W_in, W_h, b) is drawn at init in the 'reservoir' collection; only the readout is in 'params'.
  """
  reservoir_size: int = 100
  spectral_radius: float = 0.9
  input_scaling: float = 1.0
  bias_scaling: float = 0.0
  leak_rate: float = 1.0
  sparsity: float = 0.0
  num_outputs: int = 1

  @nn.compact
  def __call__(self, u, lengths=None, train: bool = False):
    del train
    u = as_float(u)
    if u.ndim == 2:
      u = u[..., None]
    states, _ = recurrent.EchoStateNetwork(self.reservoir_size, spectral_radius=self.spectral_radius,
                                           input_scaling=self.input_scaling, bias_scaling=self.bias_scaling,
                                           leak_rate=self.leak_rate, sparsity=self.sparsity, name='reservoir')(
                                               u.astype(jnp.float32), lengths)
    # the fixed reservoir runs in float32; the trained readout in the inputs' dtype (mixed precision)
    return Dense(self.num_outputs, name='readout')(jnp.concatenate([u, states.astype(u.dtype)], -1))
