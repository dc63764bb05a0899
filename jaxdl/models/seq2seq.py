"""Encoder–decoder models for sequence-to-sequence tasks (course chapter 4, seed 000 "Dealing with variable size
unaligned input/output sequences"; seed 002 §5.4 and seed 004 XII.1: attention, transformers).

`seq2seq` (Sutskever et al. 2014): a stacked LSTM encoder reads the (optionally reversed) source; its final states
start a stacked LSTM decoder trained with teacher forcing — the batch's `decoder_inputs` = BOS + targets shifted
right — that predicts `targets` = the target tokens + EOS:

  encoder     (h_S, c_S) per layer = LSTM^L(E_src x_1 … x_S)          (x reversed: x_S … x_1, Sutskever §3.3)
  decoder     s_t = LSTM^L(E_tgt y_{t−1}, s_{t−1}), s_0 = (h_S, c_S)
  no attention   p(y_t | y_<t, x) = softmax(W s_t + b)
  attention      α_tj = softmax_j(score(s_t, h_j)) over the VALID source positions j, c_t = Σ_j α_tj h_j,
                 s̃_t = tanh(W_c [c_t; s_t]),  p(y_t | ·) = softmax(W s̃_t + b)       (Luong et al. 2015, eq. 5-7)
                 score 'additive' = vᵀ tanh(W_q s_t + W_k h_j) (Bahdanau et al. 2015's MLP), 'dot' = s_tᵀ h_j,
                 'general' = s_tᵀ W h_j (Luong et al. 2015, eq. 8). The query is the CURRENT decoder state (Luong's
                 global attention without input feeding), so teacher-forced training runs the decoder over the
                 whole target at once (the fused LSTM kernels of jaxdl.nn.recurrent), not step by step.

`teacher_forcing` < 1: scheduled sampling (Bengio et al. 2015) with a constant probability ε of feeding the true
previous token, the two-pass approximation (Duckworth et al. 2019): a first teacher-forced pass (no gradient) gives
the model's own greedy tokens, which replace each true input with probability 1 − ε in the second pass.
`teacher_forcing_decay` 'linear' / 'exponential' / 'inverse_sigmoid': ε_i decays with the training step i (the
trainer passes it: `takes_step`) by jaxdl.text.sampling.teacher_forcing_probability(i, decay, k=decay_k,
c=decay_c, epsilon=teacher_forcing's floor ε for 'linear'): Bengio et al. 2015, §2.4.
`init_scale` = s > 0 draws EVERY parameter from U(−s, s) (Sutskever: 0.08); otherwise PyTorch's defaults.

`transformer_seq2seq` (Vaswani et al. 2017) wraps jaxdl.nn.transformer.Transformer (padding masks from the batch's
`inputs_paddings`, causal self-attention in the decoder) and decodes with its key/value cache.

Both declare `batch_keys = ('inputs_paddings', 'decoder_inputs')` (jaxdl.data.seq2seq provides them) and generate
by the decoding protocol (jaxdl.models.decoding.Decoder: `decode_start` here, `generate` greedy or beam search and
`beam` n-best there); `attention_weights(...)` gives the teacher-forced α [B, T, S] in the source's own order.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.models.decoding import Decoder, bound_step_fn
from jaxdl.nn import attention as attn_lib
from jaxdl.nn import recurrent
from jaxdl.nn.dense import Dense
from jaxdl.nn.transformer import Transformer, init_decode_state, make_step_fn
from jaxdl.registry import MODELS
from jaxdl.text import sampling
from jaxdl.text.vocab import BOS

ATTENTIONS = ('none', 'additive', 'dot', 'general')
Array = Any


def symmetric_uniform(scale: float):
  """U(−scale, scale) initializer (Sutskever et al. 2014: every parameter from U(−0.08, 0.08))."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


class UniformLSTMCell(recurrent.LSTMCell):
  """jaxdl's LSTM cell with every weight and bias drawn from U(−init_scale, init_scale)."""
  init_scale: float = 0.08

  def _kernel_init(self):
    return symmetric_uniform(self.init_scale)

  def _recurrent_init(self, gates: int):
    return symmetric_uniform(self.init_scale)

  def _bias_init(self, hh: bool = False):
    return symmetric_uniform(self.init_scale)


def _valid_and_lengths(inputs, inputs_paddings):
  if inputs_paddings is None:
    inputs_paddings = jnp.zeros(inputs.shape[:2], jnp.float32)
  valid = inputs_paddings == 0
  return valid, jnp.sum(valid, axis=1).astype(jnp.int32)


@MODELS.register('seq2seq', example_input_shape=(7,), example_target_shape=(5,),
                 description='encoder–decoder (Sutskever et al. 2014): stacked LSTMs, optional reversed source, '
                 'optional Bahdanau/Luong attention; greedy or beam-search generate')
class Seq2Seq(Decoder, nn.Module):
  """Token ids [B, S] (+ inputs_paddings, decoder_inputs [B, T]) -> next-token logits [B, T, num_outputs].

  `num_outputs` is the target vocabulary; `src_vocab_size` the source's (None: the same). Without decoder_inputs
  the decoder runs one BOS step (enough to build every parameter, e.g. for `jaxdl summary`).
  """
  num_outputs: int = 64
  src_vocab_size: int | None = None
  embed_dim: int = 64
  hidden_size: int = 128
  num_layers: int = 1
  reverse_source: bool = False
  attention: str = 'none'
  attention_features: int | None = None     # additive score's hidden size (None: hidden_size)
  init_scale: float | None = None           # U(−s, s) for every parameter (Sutskever: 0.08); None: PyTorch's
  dropout: float = 0.0                      # between stacked LSTM layers
  teacher_forcing: float = 1.0              # scheduled sampling's ε (1: plain teacher forcing); floor if 'linear'
  teacher_forcing_decay: str = 'none'       # 'none' (constant ε), 'linear', 'exponential', 'inverse_sigmoid'
  decay_k: float = 1.0                      # the decay's k (Bengio et al. 2015, §2.4)
  decay_c: float = 0.0                      # the linear decay's slope c
  max_decode_length: int = 32               # generate's limit when config.decode.max_length = 0
  two_bias: bool = False

  batch_keys = ('inputs_paddings', 'decoder_inputs')
  takes_step = True                          # the trainer passes `step` (scheduled sampling's decay)

  def __post_init__(self):
    super().__post_init__()
    if self.teacher_forcing_decay != 'none':   # the schedule's options, checked at build time
      sampling.check_teacher_forcing(self.teacher_forcing_decay, k=self.decay_k, c=self.decay_c or None,
                                     epsilon=self._floor())
    if self.attention not in ATTENTIONS:
      raise UserError(f'config.model.attention={self.attention!r} for seq2seq', f'one of {ATTENTIONS}',
                      'fix --config.model.attention')
    if not 0.0 < self.teacher_forcing <= 1.0:
      raise UserError(f'config.model.teacher_forcing={self.teacher_forcing!r}', 'a probability in (0, 1]',
                      'fix --config.model.teacher_forcing')
    if self.init_scale is not None and not self.init_scale > 0:
      raise UserError(f'config.model.init_scale={self.init_scale!r}', 'a positive number, or None for defaults',
                      'fix --config.model.init_scale')

  def _cell(self):
    if self.init_scale is not None:
      return UniformLSTMCell(self.hidden_size, two_bias=self.two_bias, init_scale=self.init_scale, parent=None)
    return recurrent.LSTMCell(self.hidden_size, two_bias=self.two_bias, parent=None)

  def _dense(self, features, fan_in, name, use_bias=True):
    if self.init_scale is not None:
      u = symmetric_uniform(self.init_scale)
      return Dense(features, use_bias=use_bias, kernel_init=u, bias_init=u, name=name)
    from jaxdl.nn import init as init_lib  # pylint: disable=g-import-not-at-top
    return Dense(features, use_bias=use_bias, name=name,
                 kernel_init=init_lib.get_initializer('torch_default', fan_in=fan_in),
                 bias_init=init_lib.get_initializer('torch_default', fan_in=fan_in, bias=True))

  def setup(self):
    emb = symmetric_uniform(self.init_scale) if self.init_scale is not None else nn.initializers.normal(1.0)
    self.src_embed = nn.Embed(self.src_vocab_size or self.num_outputs, self.embed_dim, embedding_init=emb)
    self.tgt_embed = nn.Embed(self.num_outputs, self.embed_dim, embedding_init=emb)
    self.encoder = recurrent.StackedRNN(self._cell(), num_layers=self.num_layers, dropout=self.dropout)
    self.decoder = recurrent.StackedRNN(self._cell(), num_layers=self.num_layers, dropout=self.dropout)
    if self.attention == 'additive':
      self.attend = attn_lib.AdditiveAttention(self.attention_features or self.hidden_size)
    elif self.attention in ('dot', 'general'):
      self.attend = attn_lib.MultiplicativeAttention(self.attention)
    if self.attention != 'none':
      self.combine = self._dense(self.hidden_size, 2 * self.hidden_size, 'combine', use_bias=False)   # W_c
    self.head = self._dense(self.num_outputs, self.hidden_size, 'head')

  # ---- pieces
  def encode(self, inputs, inputs_paddings=None, train: bool = False):
    """(encoder states [B, S, H] (in reading order), final carries per layer, valid [B, S] in reading order)."""
    ids = inputs.reshape(inputs.shape[0], -1).astype(jnp.int32)
    valid, lengths = _valid_and_lengths(ids, inputs_paddings)
    x = self.src_embed(ids)
    if self.reverse_source:
      x = recurrent.flip_valid(x, lengths)                       # x_S … x_1, then the padding
    states, carries = self.encoder(x, lengths, train=train)
    return states, carries, valid

  def _output(self, s, memory, valid):
    """Logits [B, T, V] (and α [B, T, S] or None) from decoder states s [B, T, H]."""
    if self.attention == 'none':
      return self.head(s), None
    context, weights = self.attend(s, memory, memory, mask=valid)
    return self.head(jnp.tanh(self.combine(jnp.concatenate([context, s], -1)))), weights

  def _decode(self, decoder_inputs, carries, memory, valid, train=False):
    s, carries = self.decoder(self.tgt_embed(decoder_inputs.astype(jnp.int32)), initial_carry=carries, train=train)
    logits, weights = self._output(s, memory, valid)
    return logits, weights, carries

  def _teacher_forcing(self, step):
    """ε at training step `step`: the probability of feeding the true previous token."""
    if self.teacher_forcing_decay == 'none':
      return self.teacher_forcing
    return sampling.teacher_forcing_probability(step, self.teacher_forcing_decay, k=self.decay_k,
                                                c=self.decay_c or None, epsilon=self._floor())

  def _floor(self) -> float:
    """The linear decay's floor ε: `teacher_forcing` when below 1, else 0."""
    return self.teacher_forcing if self.teacher_forcing < 1.0 else 0.0

  def __call__(self, inputs, inputs_paddings=None, decoder_inputs=None, train: bool = False, step=None):
    memory, carries, valid = self.encode(inputs, inputs_paddings, train)
    if decoder_inputs is None:
      decoder_inputs = jnp.full((memory.shape[0], 1), BOS, jnp.int32)
    decoder_inputs = decoder_inputs.astype(jnp.int32)
    decays = self.teacher_forcing_decay != 'none'
    if train and (self.teacher_forcing < 1.0 or decays):
      if decays and step is None:
        raise ValueError('a decaying teacher-forcing probability needs the training step (step=...)')
      # scheduled sampling, two passes (Duckworth et al. 2019): the model's own greedy tokens replace the true
      # previous tokens with probability 1 − ε (never the BOS at t = 0)
      first, _, _ = self._decode(decoder_inputs, carries, memory, valid, train)
      own = jnp.argmax(jax.lax.stop_gradient(first), -1).astype(jnp.int32)
      own = jnp.concatenate([decoder_inputs[:, :1], own[:, :-1]], 1)
      keep = jax.random.bernoulli(self.make_rng('dropout'), self._teacher_forcing(step), decoder_inputs.shape)
      keep = keep | (jnp.arange(decoder_inputs.shape[1]) == 0)[None]
      decoder_inputs = jnp.where(keep, decoder_inputs, own)
    logits, _, _ = self._decode(decoder_inputs, carries, memory, valid, train)
    return logits

  def attention_weights(self, inputs, inputs_paddings=None, decoder_inputs=None):
    """Teacher-forced α [B, T, S] over the source positions in their ORIGINAL order (None without attention)."""
    memory, carries, valid = self.encode(inputs, inputs_paddings)
    _, weights, _ = self._decode(decoder_inputs, carries, memory, valid)
    if weights is None or not self.reverse_source:
      return weights
    lengths = jnp.sum(valid, 1).astype(jnp.int32)
    return jnp.swapaxes(recurrent.flip_valid(jnp.swapaxes(weights, 1, 2), lengths), 1, 2)

  def _step(self, tokens, state):
    """One decoder step: tokens [N] and state -> (log-probs [N, V], new state) (decode_start's step_fn)."""
    logits, _, carries = self._decode(tokens[:, None], state['carry'], state['memory'], state['valid'])
    return jax.nn.log_softmax(logits[:, 0].astype(jnp.float32)), {**state, 'carry': carries}

  def decode_start(self, inputs, inputs_paddings=None, max_len: int = 0):
    """The decoding protocol's hook (jaxdl.models.decoding): (step_fn, the decoder state after the encoder)."""
    del max_len
    memory, carries, valid = self.encode(inputs, inputs_paddings)
    return bound_step_fn(self, Seq2Seq._step), {'carry': carries, 'memory': memory, 'valid': valid}


def seq2seq_param_count(src_vocab: int, tgt_vocab: int, embed_dim: int, hidden: int, num_layers: int,
                        attention: str = 'none', attention_features: int | None = None, two_bias: bool = False) -> int:
  """Parameters of `seq2seq` by formula: embeddings V·E, LSTM layers 4H(D + H) + 4H (8H with two biases), the
  softmax H·V + V, attention's W_c 2H·H and its score (additive: H·F + F·H + F + F, general: H·H)."""
  lstm = lambda d: 4 * hidden * (d + hidden) + 4 * hidden * (2 if two_bias else 1)
  rnn = lstm(embed_dim) + (num_layers - 1) * lstm(hidden)
  total = (src_vocab + tgt_vocab) * embed_dim + 2 * rnn + hidden * tgt_vocab + tgt_vocab
  if attention != 'none':
    total += 2 * hidden * hidden
    f = attention_features or hidden
    total += {'additive': 2 * hidden * f + 2 * f, 'general': hidden * hidden, 'dot': 0}[attention]
  return total


@MODELS.register('transformer_seq2seq', example_input_shape=(7,), example_target_shape=(5,),
                 description='encoder–decoder transformer (Vaswani et al. 2017) with cached greedy/beam decoding')
class TransformerSeq2Seq(Decoder, nn.Module):
  """Token ids [B, S] (+ inputs_paddings, decoder_inputs [B, T]) -> logits [B, T, num_outputs] (see the module
  docstring); the hyper-parameters are jaxdl.nn.transformer.Transformer's."""
  num_outputs: int = 64
  src_vocab_size: int | None = None
  d_model: int = 32
  num_heads: int = 1
  d_ff: int = 64
  num_encoder_layers: int = 1
  num_decoder_layers: int = 1
  dropout_rate: float = 0.0
  norm_first: bool = False
  positional: str = 'sinusoidal'
  max_len: int = 128
  max_decode_length: int = 32

  batch_keys = ('inputs_paddings', 'decoder_inputs')

  def _net(self):
    """The wrapped Transformer, unbound (setup binds one as 'transformer'; decoding applies a clone)."""
    return Transformer(vocab_size=self.num_outputs, src_vocab_size=self.src_vocab_size or self.num_outputs,
                       d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff,
                       num_encoder_layers=self.num_encoder_layers, num_decoder_layers=self.num_decoder_layers,
                       dropout_rate=self.dropout_rate, norm_first=self.norm_first, positional=self.positional,
                       max_len=self.max_len, parent=None)

  def setup(self):
    self.transformer = self._net().clone(parent=self, name='transformer')

  def __call__(self, inputs, inputs_paddings=None, decoder_inputs=None, train: bool = False):
    ids = inputs.reshape(inputs.shape[0], -1).astype(jnp.int32)
    valid, _ = _valid_and_lengths(ids, inputs_paddings)
    if decoder_inputs is None:
      decoder_inputs = jnp.full((ids.shape[0], 1), BOS, jnp.int32)
    return self.transformer(ids, decoder_inputs.astype(jnp.int32), valid, None, deterministic=not train)

  def decode_start(self, inputs, inputs_paddings=None, max_len: int = 0):
    """The decoding protocol's hook (jaxdl.models.decoding): (the cached one-step decoder, its state after the
    encoder); the cache holds max_len positions, at most the model's max_len."""
    if max_len > self.max_len:
      raise UserError(f'decode max_length {max_len} exceeds the model\'s max_len {self.max_len}',
                      f'at most {self.max_len} positions', 'lower config.decode.max_length or raise model.max_len')
    ids = inputs.reshape(inputs.shape[0], -1).astype(jnp.int32)
    valid, _ = _valid_and_lengths(ids, inputs_paddings)
    memory = self.transformer.encode(ids, valid)
    net = self._net()
    state = init_decode_state(net, ids.shape[0], max_len, memory, valid)
    return make_step_fn(net, self.variables['params']['transformer']), state
