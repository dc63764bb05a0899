"""Character-level language model (char-RNN; seed 000 "CHARACTER LEVEL LANGUAGE MODEL", claim R1).

The notes' network on "Les fabulistes": Embedding(64) -> 2 × LSTM(64) -> 2 × Linear-ReLU(128) -> Linear(vocab),
with PyTorch's two-bias LSTM (b_i· and b_h·, "for CuDNN compatibility") = 111,657 parameters at vocab 105:

  embedding  105·64                            =  6,720
  LSTM 1     4·64·(64 + 64) + 2·4·64           = 33,280     (torch_param_count('lstm', 64, 64))
  LSTM 2     the same                          = 33,280
  dense      64·128 + 128, 128·128 + 128       = 24,832
  head       128·105 + 105                     = 13,545

Trained many-to-many with teacher forcing (each step predicts the next character), sampled one-to-many
(`step`: one character in, the next character's logits out, the recurrent state carried; see
jaxdl.text.sampling.stream_sample and `jaxdl sample`). `cell='gru'` and `bidirectional=True` give the GRU and
bidirectional-LSTM variants the RNN speed benchmark times (a bidirectional model sees the answer: it is not a
language model and cannot be sampled; claim R6). The recurrent layers are jaxdl.nn.recurrent's (the plain LSTM/GRU
run its hand-derived fused kernels). Initialisation is PyTorch's, as the notes' model had: embedding N(0, 1),
recurrent weights and biases U(±1/√H), dense layers U(±1/√fan_in).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.nn import init as init_lib
from jaxdl.nn import recurrent
from jaxdl.nn.dense import Dense
from jaxdl.registry import MODELS

CELLS = ('lstm', 'gru')


@MODELS.register('char_rnn', example_input_shape=(6,), example_target_shape=(6,),
                 description='char-RNN (R1): Embedding(64), 2×LSTM(64), 2×Linear-ReLU(128), Linear(vocab); '
                 '111,657 params at vocab 105')
class CharRNN(nn.Module):
  """Token ids (B, T) -> next-token logits (B, T, num_outputs). `num_outputs` is the vocabulary size (in and out).

  `__call__(x, train, initial_state=None, return_state=False)`: with return_state, also the final recurrent state
  (one carry per layer: (h, c) for the LSTM, h for the GRU), which `step` feeds back one token at a time.
  """
  num_outputs: int = 105
  embed_dim: int = 64
  hidden_size: int = 64
  num_layers: int = 2
  cell: str = 'lstm'
  bidirectional: bool = False
  dense: Sequence[int] = (128, 128)
  two_bias: bool = True
  dropout: float = 0.0
  unroll: int = recurrent.PLAIN_UNROLL

  def __post_init__(self):
    super().__post_init__()
    if self.cell not in CELLS:
      raise UserError(f'config.model.cell={self.cell!r} for char_rnn', f'one of {CELLS}', 'fix --config.model.cell')

  def _cell(self) -> recurrent.RecurrentCell:
    if self.cell == 'lstm':
      return recurrent.LSTMCell(self.hidden_size, two_bias=self.two_bias)
    return recurrent.GRUCell(self.hidden_size, two_bias=self.two_bias)

  def _dense(self, width: int, fan_in: int, name: str) -> nn.Dense:
    return Dense(width, name=name, kernel_init=init_lib.get_initializer('torch_default', fan_in=fan_in),
                 bias_init=init_lib.get_initializer('torch_default', fan_in=fan_in, bias=True))

  @nn.compact
  def __call__(self, x, train: bool = False, initial_state=None, return_state: bool = False):
    ids = x.reshape(x.shape[0], -1).astype(jnp.int32)
    h = nn.Embed(self.num_outputs, self.embed_dim, embedding_init=nn.initializers.normal(1.0), name='embed')(
        ids)                                                                     # nn.Embedding's N(0, 1)
    h, state = recurrent.StackedRNN(self._cell(), num_layers=self.num_layers, bidirectional=self.bidirectional,
                                    dropout=self.dropout, unroll=self.unroll, name='rnn')(
                                        h, initial_carry=initial_state, train=train)
    for i, width in enumerate(self.dense):
      h = nn.relu(self._dense(width, h.shape[-1], f'dense{i}')(h))
    logits = self._dense(self.num_outputs, h.shape[-1], 'head')(h)
    return (logits, state) if return_state else logits

  def zero_state(self, batch_size: int, dtype=jnp.float32):
    """The initial recurrent state (zeros, as PyTorch's default h_0 = c_0 = 0), one carry per layer."""
    z = jnp.zeros((batch_size, self.hidden_size), dtype)
    return tuple((z, z) if self.cell == 'lstm' else z for _ in range(self.num_layers))

  def step(self, tokens, state):
    """One sampling step: tokens (B,) and the state -> (next-token logits (B, V), new state). Use with
    `model.apply(variables, tokens, state, method=CharRNN.step)`."""
    if self.bidirectional:
      raise UserError('a bidirectional char_rnn cannot be sampled', 'a unidirectional model (it would need the '
                      'future characters it is asked to predict)', 'train with model.bidirectional=False')
    logits, state = self(tokens[:, None], initial_state=state, return_state=True)
    return logits[:, 0], state


def expected_param_count(vocab: int, embed_dim: int = 64, hidden_size: int = 64, num_layers: int = 2,
                         dense: Sequence[int] = (128, 128), cell: str = 'lstm', bidirectional: bool = False) -> int:
  """The parameter count by PyTorch's formulas (nn.Embedding, nn.LSTM/nn.GRU, nn.Linear): 111,657 for R1."""
  total = vocab * embed_dim + recurrent.torch_param_count(cell, embed_dim, hidden_size, num_layers, bidirectional)
  width = hidden_size * (2 if bidirectional else 1)
  for w in (*dense, vocab):
    total += width * w + w
    width = w
  return total
