"""Transformer layers and stacks (Vaswani et al. 2017; seed 002 §5.4, seed 004 XII.1), flax linen.

  positional encodings   sinusoidal PE(p, 2i) = sin(p/10000^(2i/d)), PE(p, 2i+1) = cos(p/10000^(2i/d))  (§3.5),
                         or learned (one d-vector per position)
  encoder layer          self-attention (padding mask) → FFN;  decoder layer: causal self-attention (causal +
                         padding masks) → cross-attention over the memory (source padding mask) → FFN   (§3.1)
  FFN                    max(0, x W₁ + b₁) W₂ + b₂ (§3.3), dropout on every sub-layer output (§5.4)
  post-norm (paper)      x ← LN(x + Sublayer(x));   pre-norm (Xiong et al. 2020): x ← x + Sublayer(LN(x)),
                         with a final LN after the stack
  embeddings             × √d_model (§3.4)
  warm-up schedule       lr = d^−0.5 · min(t^−0.5, t · w^−1.5) (§5.3), `transformer_schedule`

Layers follow torch.nn.TransformerEncoderLayer / TransformerDecoderLayer (batch_first) parameter for parameter;
`layer_params_from_torch` copies a torch layer's weights. Incremental decoding: a Decoder / Transformer built with
decode=True runs one target token per call and keeps past keys/values and the position in flax's 'cache'
collection (as flax's examples/wmt does); `init_decode_state` + `make_step_fn` turn a model into the
step_fn(last_tokens, state) -> (log_probs, state) that jaxdl.text.beam_search and jaxdl.text.sampling decode with.
Each attention layer sows its weights into 'intermediates' (self_attention / cross_attention) for figures.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxdl.errors import UserError
from jaxdl.nn.attention import MultiHeadAttention, causal_mask, combine_masks, from_torch_mha
from jaxdl.nn.dense import Dense

Array = Any
ACTIVATIONS = {'relu': nn.relu, 'gelu': lambda x: nn.gelu(x, approximate=False)}   # torch's gelu is the erf form


def sinusoidal_encoding(max_len: int, d_model: int) -> np.ndarray:
  """[max_len, d_model]: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)) (Vaswani §3.5)."""
  pos = np.arange(max_len, dtype=np.float64)[:, None]
  two_i = np.arange(0, d_model, 2, dtype=np.float64)[None, :]
  angle = pos / np.power(10000.0, two_i / d_model)
  pe = np.zeros((max_len, d_model))
  pe[:, 0::2] = np.sin(angle)
  pe[:, 1::2] = np.cos(angle[:, :d_model // 2])
  return pe.astype(np.float32)


def transformer_schedule(d_model: int, warmup_steps: int, scale: float = 1.0) -> optax.Schedule:
  """Vaswani et al. (2017, eq. 3): lr(t) = scale · d_model^−0.5 · min(t^−0.5, t · warmup^−1.5), t = count + 1
  (optax counts updates from 0, the paper's step_num from 1): linear warm-up, then ∝ 1/√t; peak at t = warmup."""
  if not (isinstance(d_model, (int, np.integer)) and d_model >= 1):
    raise UserError(f'transformer_schedule: d_model={d_model!r}', 'a positive integer', 'fix d_model')
  if not (warmup_steps >= 1):
    raise UserError(f'transformer_schedule: warmup_steps={warmup_steps!r}', 'a number >= 1', 'fix warmup_steps')

  def schedule(count):
    t = jnp.asarray(count, jnp.float32) + 1.0
    return scale * d_model ** -0.5 * jnp.minimum(lax.rsqrt(t), t * float(warmup_steps) ** -1.5)
  return schedule


class PositionalEncoding(nn.Module):
  """x + PE[:T] for x [B, T, d]: kind 'sinusoidal' (fixed) or 'learned' (param 'embedding' [max_len, d]).
  decode=True: after the cache-creating init, each call adds the next position's encoding (one step at a time)."""
  max_len: int
  kind: str = 'sinusoidal'
  decode: bool = False

  @nn.compact
  def __call__(self, x):
    t, d = x.shape[1], x.shape[2]
    if t > self.max_len:
      raise UserError(f'a sequence of length {t} is longer than the model\'s max_len {self.max_len}',
                      f'at most {self.max_len} positions', 'shorten the sequences or raise the model\'s max_len')
    if self.kind == 'sinusoidal':
      table = jnp.asarray(sinusoidal_encoding(self.max_len, d), x.dtype)
    elif self.kind == 'learned':
      table = self.param('embedding', nn.initializers.normal(0.02), (self.max_len, d))
    else:
      raise ValueError(f"unknown positional encoding {self.kind!r}: expected 'sinusoidal' or 'learned'")
    if self.decode:
      initialised = self.has_variable('cache', 'position')
      position = self.variable('cache', 'position', lambda: jnp.array(0, jnp.int32))
      if initialised:
        i = position.value
        position.value = i + 1
        return x + lax.dynamic_slice_in_dim(table, i, t)[None].astype(x.dtype)
    return x + table[None, :t].astype(x.dtype)


class FeedForward(nn.Module):
  """linear2(dropout(act(linear1(x)))) (Vaswani §3.3; torch's layer keeps this inner dropout)."""
  d_ff: int
  dropout_rate: float = 0.0
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x, *, deterministic: bool = True):
    y = ACTIVATIONS[self.activation](Dense(self.d_ff, name='linear1')(x))
    y = nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)
    return Dense(x.shape[-1], name='linear2')(y)


class _Layer(nn.Module):
  """Shared hyper-parameters of the encoder and decoder layers (torch's names and defaults, eps 1e-5)."""
  d_model: int
  num_heads: int
  d_ff: int
  dropout_rate: float = 0.1
  attention_dropout_rate: float | None = None      # None: dropout_rate (torch uses one rate for both)
  norm_first: bool = False
  activation: str = 'relu'
  layer_norm_eps: float = 1e-5

  def _attention(self, name, decode=False):
    rate = self.dropout_rate if self.attention_dropout_rate is None else self.attention_dropout_rate
    return MultiHeadAttention(self.num_heads, qkv_features=self.d_model, dropout_rate=rate, decode=decode, name=name)

  def _norm(self, name):
    return nn.LayerNorm(epsilon=self.layer_norm_eps, name=name)

  def _residual(self, x, sublayer, norm, deterministic):
    """Post-norm LN(x + Dropout(F(x))) or pre-norm x + Dropout(F(LN(x)))."""
    drop = nn.Dropout(self.dropout_rate)
    if self.norm_first:
      return x + drop(sublayer(norm(x)), deterministic=deterministic)
    return norm(x + drop(sublayer(x), deterministic=deterministic))


class EncoderLayer(_Layer):
  """x [B, T, d], mask (True = attend; e.g. padding_mask [B, 1, T]) -> [B, T, d]."""

  @nn.compact
  def __call__(self, x, mask=None, *, deterministic: bool = True):
    attn = self._attention('self_attn')
    ff = FeedForward(self.d_ff, self.dropout_rate, self.activation, name='ff')

    def self_attention(y):
      out, w = attn(y, mask=mask, deterministic=deterministic)
      self.sow('intermediates', 'self_attention', w)
      return out
    x = self._residual(x, self_attention, self._norm('norm1'), deterministic)
    return self._residual(x, lambda y: ff(y, deterministic=deterministic), self._norm('norm2'), deterministic)


class DecoderLayer(_Layer):
  """x [B, T, d], memory [B, S, d] or None (decoder-only: no cross-attention), self_mask (causal ∧ padding),
  memory_mask (source padding [B, 1, S]) -> [B, T, d]. decode=True caches the self-attention's keys/values."""
  decode: bool = False

  @nn.compact
  def __call__(self, x, memory=None, self_mask=None, memory_mask=None, *, deterministic: bool = True):
    self_attn, cross_attn = self._attention('self_attn', self.decode), self._attention('cross_attn')
    ff = FeedForward(self.d_ff, self.dropout_rate, self.activation, name='ff')

    def self_attention(y):
      out, w = self_attn(y, mask=self_mask, deterministic=deterministic)
      self.sow('intermediates', 'self_attention', w)
      return out

    def cross_attention(y):
      out, w = cross_attn(y, memory, mask=memory_mask, deterministic=deterministic)
      self.sow('intermediates', 'cross_attention', w)
      return out
    x = self._residual(x, self_attention, self._norm('norm1'), deterministic)
    if memory is not None:
      x = self._residual(x, cross_attention, self._norm('norm2'), deterministic)
    return self._residual(x, lambda y: ff(y, deterministic=deterministic), self._norm('norm3'), deterministic)


class _Stack(nn.Module):
  """Shared hyper-parameters of the encoder and decoder stacks."""
  num_layers: int
  d_model: int
  num_heads: int
  d_ff: int
  vocab_size: int | None = None
  dropout_rate: float = 0.1
  attention_dropout_rate: float | None = None
  norm_first: bool = False
  activation: str = 'relu'
  max_len: int = 512
  positional: str = 'sinusoidal'
  layer_norm_eps: float = 1e-5

  def _layer_kwargs(self):
    return dict(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff, dropout_rate=self.dropout_rate,
                attention_dropout_rate=self.attention_dropout_rate, norm_first=self.norm_first,
                activation=self.activation, layer_norm_eps=self.layer_norm_eps)

  def _embed(self, inputs, deterministic, decode=False):
    """Token ids (vocab_size given) → Embed × √d (§3.4); features → Dense(d); then + PE and dropout."""
    if jnp.issubdtype(inputs.dtype, jnp.integer):
      if self.vocab_size is None:
        raise ValueError('integer inputs need vocab_size (features are float arrays [B, T, F])')
      x = nn.Embed(self.vocab_size, self.d_model, embedding_init=nn.initializers.normal(1.0),
                   name='embed')(inputs) * math.sqrt(self.d_model)  # a Python float: keeps the dtype
    else:
      x = Dense(self.d_model, name='input_proj')(inputs)
    x = PositionalEncoding(self.max_len, self.positional, decode=decode, name='position')(x)
    return nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)

  def _final_norm(self, x):
    return nn.LayerNorm(epsilon=self.layer_norm_eps, name='final_norm')(x) if self.norm_first else x


class Encoder(_Stack):
  """inputs: token ids [B, S] (vocab_size) or features [B, S, F]; valid [B, S] (True at real positions)
  -> memory [B, S, d]. Outputs at padded positions are computed but carry no meaning."""

  @nn.compact
  def __call__(self, inputs, valid=None, *, deterministic: bool = True):
    x = self._embed(inputs, deterministic)
    mask = None if valid is None else jnp.asarray(valid, bool)[:, None, :]
    for i in range(self.num_layers):
      x = EncoderLayer(**self._layer_kwargs(), name=f'layer_{i}')(x, mask, deterministic=deterministic)
    return self._final_norm(x)


class Decoder(_Stack):
  """tokens [B, T] (teacher-forced inputs: BOS y₁ … y_{T−1}), memory [B, S, d] or None, memory_valid [B, S],
  valid [B, T] -> logits [B, T, vocab_size]. decode=True: one token per call, causal masking by the cache."""
  decode: bool = False

  @nn.compact
  def __call__(self, tokens, memory=None, memory_valid=None, valid=None, *, deterministic: bool = True):
    x = self._embed(tokens, deterministic, decode=self.decode)
    if self.decode:
      self_mask = None                                       # the cache admits keys 0..t only
    else:
      self_mask = combine_masks(causal_mask(tokens.shape[1]),
                                None if valid is None else jnp.asarray(valid, bool)[:, None, :])
    memory_mask = None if memory_valid is None else jnp.asarray(memory_valid, bool)[:, None, :]
    for i in range(self.num_layers):
      x = DecoderLayer(**self._layer_kwargs(), decode=self.decode, name=f'layer_{i}')(
          x, memory, self_mask, memory_mask, deterministic=deterministic)
    return Dense(self.vocab_size, name='logits')(self._final_norm(x))


class Transformer(nn.Module):
  """Encoder–decoder transformer (Vaswani §3): __call__(src, tgt_in, src_valid, tgt_valid) -> logits [B, T, V].

  src: token ids [B, S] (src_vocab_size) or features [B, S, F] (src_vocab_size=None); tgt_in: target ids
  shifted right (BOS first). `encode` and `decode_logits` split the two halves (decode once per source).
  """
  vocab_size: int
  src_vocab_size: int | None = None
  d_model: int = 512
  num_heads: int = 8
  d_ff: int = 2048
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  dropout_rate: float = 0.1
  attention_dropout_rate: float | None = None
  norm_first: bool = False
  activation: str = 'relu'
  max_len: int = 512
  positional: str = 'sinusoidal'
  layer_norm_eps: float = 1e-5
  decode: bool = False

  def setup(self):
    kw = dict(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff, dropout_rate=self.dropout_rate,
              attention_dropout_rate=self.attention_dropout_rate, norm_first=self.norm_first,
              activation=self.activation, max_len=self.max_len, positional=self.positional,
              layer_norm_eps=self.layer_norm_eps)
    self.encoder = Encoder(self.num_encoder_layers, vocab_size=self.src_vocab_size, **kw)
    self.decoder = Decoder(self.num_decoder_layers, vocab_size=self.vocab_size, decode=self.decode, **kw)

  def encode(self, src, src_valid=None, *, deterministic: bool = True):
    return self.encoder(src, src_valid, deterministic=deterministic)

  def decode_logits(self, tgt_in, memory, memory_valid=None, tgt_valid=None, *, deterministic: bool = True):
    return self.decoder(tgt_in, memory, memory_valid, tgt_valid, deterministic=deterministic)

  def __call__(self, src, tgt_in, src_valid=None, tgt_valid=None, *, deterministic: bool = True):
    memory = self.encode(src, src_valid, deterministic=deterministic)
    return self.decode_logits(tgt_in, memory, src_valid, tgt_valid, deterministic=deterministic)


# ------------------------------------------------------------------------------------------ incremental decoding
def _decoder_method(model):
  if isinstance(model, Transformer):
    return Transformer.decode_logits
  if isinstance(model, Decoder):
    return None
  raise TypeError(f'expected a Transformer or a Decoder, got {type(model).__name__}')


def init_decode_state(model, batch_size: int, max_len: int, memory=None, memory_valid=None) -> dict:
  """The decoding state for `make_step_fn`: {'cache': zeros for `max_len` steps, 'memory', 'memory_valid'}, every
  leaf (but the scalar cache indices) with leading dim `batch_size` (tile it with beam_search.tile_beams)."""
  method = _decoder_method(model)
  if memory is not None and memory_valid is None:
    memory_valid = jnp.ones(memory.shape[:2], bool)
  dec = model.clone(decode=True)
  shapes = jax.eval_shape(lambda: dec.init(jax.random.key(0), jnp.zeros((batch_size, max_len), jnp.int32), memory,
                                           memory_valid, method=method))
  state = {'cache': jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes['cache'])}
  if memory is not None:
    state.update(memory=memory, memory_valid=jnp.asarray(memory_valid, bool))
  return state


def make_step_fn(model, params):
  """step_fn(last_tokens [N], state) -> (log_probs [N, V], state): one cached decoder step of `model`
  (a Transformer or a Decoder, deterministic), with state from `init_decode_state`."""
  method = _decoder_method(model)
  dec = model.clone(decode=True)

  def step_fn(last_tokens, state):
    logits, mutated = dec.apply({'params': params, 'cache': state['cache']}, last_tokens[:, None],
                                state.get('memory'), state.get('memory_valid'), method=method, mutable=['cache'])
    return jax.nn.log_softmax(logits[:, 0].astype(jnp.float32)), {**state, 'cache': mutated['cache']}
  return step_fn


# ------------------------------------------------------------------------------------------------ torch weights
def layer_params_from_torch(state: Mapping[str, Any]) -> dict:
  """EncoderLayer / DecoderLayer params from a torch.nn.TransformerEncoderLayer / TransformerDecoderLayer
  state_dict (decoder: 'multihead_attn' becomes 'cross_attn')."""
  a = lambda n: np.asarray(state[n], np.float32)
  dense = lambda n: {'kernel': jnp.asarray(a(n + '.weight').T), 'bias': jnp.asarray(a(n + '.bias'))}
  norm = lambda n: {'scale': jnp.asarray(a(n + '.weight')), 'bias': jnp.asarray(a(n + '.bias'))}
  params = {'self_attn': from_torch_mha(state, 'self_attn.'), 'ff': {'linear1': dense('linear1'),
                                                                      'linear2': dense('linear2')}}
  for n in ('norm1', 'norm2', 'norm3'):
    if n + '.weight' in state:
      params[n] = norm(n)
  if 'multihead_attn.out_proj.weight' in state:
    params['cross_attn'] = from_torch_mha(state, 'multihead_attn.')
  return params
