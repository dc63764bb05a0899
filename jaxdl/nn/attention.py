"""Attention over padded sequences (course chapter 4: show-attend-and-tell, seq2seq with attention, transformers).

Seed 000 "Show attend and tell" (Xu et al. 2016), seed 002 §5.4 and seed 004 XII.1 (attention, transformers):

  additive        e_ij = vᵀ tanh(W_q q_i + W_k k_j)                 Bahdanau et al. 2015, eq. 6 / App. A.1.2
  dot             e_ij = q_iᵀ k_j                                   Luong et al. 2015, eq. 8
  general         e_ij = q_iᵀ W k_j                                 "
  concat          e_ij = vᵀ tanh(W [q_i; k_j])                      "
  scaled dot      e_ij = q_iᵀ k_j / √d                              Vaswani et al. 2017, eq. 1
  multi-head      Concat(head_1..head_h) W_O, head = Attn(Q W_Q, K W_K, V W_V)   Vaswani et al. 2017, §3.2.2

α_ij = softmax_j(e_ij) over the VALID keys only, context_i = Σ_j α_ij v_j. Every layer returns (context, α): α for
figures (which image region / source word a word looks at).

Masks are boolean, True where a query MAY attend to a key, shaped to broadcast against scores [B, Tq, Tk] (a
[B, Tk] key mask is accepted and means [B, 1, Tk]); multi-head attention inserts the head axis itself. Build them
with `padding_mask` (from lengths or paddings), `causal_mask` and `combine_masks`. Weights are exactly 0 on masked
keys; a fully masked row gives all-zero weights and a zero context (never NaN).

`MultiHeadAttention` keeps its own query/key/value/output projections laid out as torch.nn.MultiheadAttention's
(`from_torch_mha` / `to_torch_mha` copy weights both ways) and, with `decode=True`, caches keys and values in
flax's 'cache' collection to decode one token at a time (as flax's examples/wmt does with its attention cache).
`doubly_stochastic_penalty` is show-attend-and-tell's regulariser λ Σ_i (1 − Σ_t α_ti)² (Xu et al. 2016, eq. 14).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.nn.dense import Dense

Array = Any


# ----------------------------------------------------------------------------------------------------------- masks
def padding_mask(lengths=None, max_len: int | None = None, *, paddings=None) -> Array:
  """Key mask [B, 1, T], True at valid positions, from `lengths` [B] (with `max_len` = T) or `paddings` [B, T]
  (nonzero / True at PADDED positions, the lingvo/praxis convention)."""
  if (lengths is None) == (paddings is None):
    raise ValueError('padding_mask takes exactly one of lengths or paddings')
  if paddings is not None:
    paddings = jnp.asarray(paddings)
    if paddings.ndim != 2:
      raise ValueError(f'paddings must be [B, T], got shape {paddings.shape}')
    return (paddings == 0)[:, None, :]
  if max_len is None:
    raise ValueError('padding_mask(lengths) needs max_len (the padded length T)')
  lengths = jnp.asarray(lengths)
  if lengths.ndim != 1:
    raise ValueError(f'lengths must be [B], got shape {lengths.shape}')
  return (jnp.arange(max_len)[None, :] < lengths[:, None])[:, None, :]


def causal_mask(length: int) -> Array:
  """[1, T, T], True where key j ≤ query i: position i sees the past and itself (Vaswani et al. 2017, §3.2.3)."""
  return jnp.tril(jnp.ones((length, length), bool))[None]


def combine_masks(*masks) -> Array | None:
  """Logical AND of the given masks (broadcast); None entries are skipped; None if all are None."""
  masks = [jnp.asarray(m, bool) for m in masks if m is not None]
  if not masks:
    return None
  out = masks[0]
  for m in masks[1:]:
    out = jnp.logical_and(out, m)
  return out


def _score_mask(mask, ndim: int):
  """`mask` shaped to broadcast against scores of rank `ndim` (a [B, Tk] key mask becomes [B, 1, Tk])."""
  if mask is None:
    return None
  mask = jnp.asarray(mask, bool)
  if mask.ndim == 2:
    mask = mask[:, None, :]
  while mask.ndim < ndim:                          # [B, Tq, Tk] -> [B, 1, Tq, Tk] (heads)
    mask = mask[:, None]
  return mask


# ------------------------------------------------------------------------------------------------------- functions
def masked_softmax(scores, mask=None, axis: int = -1):
  """softmax over `axis` restricted to mask=True entries: exactly 0 elsewhere, all-zero on a fully masked row."""
  if mask is None:
    return jax.nn.softmax(scores, axis=axis)
  mask = jnp.broadcast_to(mask, scores.shape)
  big_neg = jnp.finfo(scores.dtype).min
  w = jax.nn.softmax(jnp.where(mask, scores, big_neg), axis=axis)
  return jnp.where(mask, w, jnp.zeros((), w.dtype))


def dot_product_attention(query, key, value, mask=None, *, scale: float | None = None, dropout_rate: float = 0.0,
                          dropout_rng=None, deterministic: bool = True):
  """Scaled dot-product attention softmax(Q Kᵀ/√d) V (Vaswani et al. 2017, eq. 1).

  query [..., Tq, d], key [..., Tk, d], value [..., Tk, dv], mask broadcastable to [..., Tq, Tk] (True = attend).
  `scale` defaults to 1/√d (scale=1 gives Luong's dot score). Dropout (rate, rng) acts on the weights as in
  torch.nn.MultiheadAttention; the returned weights are the ones before dropout.
  Returns (context [..., Tq, dv], weights [..., Tq, Tk]).
  """
  d = query.shape[-1]
  scale = 1.0 / np.sqrt(d) if scale is None else scale
  scores = jnp.einsum('...qd,...kd->...qk', query, key) * jnp.asarray(scale, query.dtype)
  weights = masked_softmax(scores, mask)
  w = weights
  if dropout_rate > 0.0 and not deterministic:
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, w.shape)
    w = jnp.where(keep, w / (1.0 - dropout_rate), jnp.zeros((), w.dtype))
  return jnp.einsum('...qk,...kv->...qv', w, value), weights


def doubly_stochastic_penalty(weights, *, step_mask=None, location_mask=None, target: float = 1.0,
                              lam: float = 1.0):
  """λ Σ_i (τ − Σ_t α_ti)² per example [B] (Xu et al. 2016, eq. 14; τ = 1 in the paper and the notes).

  weights α [B, T, L]: decoder step t attending over L locations (each row sums to 1 by construction); the
  penalty pushes every location i to receive, summed over time, a total attention of τ. `step_mask` [B, T]
  drops padded decoder steps from Σ_t, `location_mask` [B, L] drops padded locations from Σ_i.
  """
  weights = jnp.asarray(weights)
  if weights.ndim != 3:
    raise ValueError(f'weights must be [B, T, L], got shape {weights.shape}')
  if step_mask is not None:
    weights = weights * jnp.asarray(step_mask, weights.dtype)[:, :, None]
  per_loc = (target - weights.sum(axis=1)) ** 2                  # [B, L]
  if location_mask is not None:
    per_loc = per_loc * jnp.asarray(location_mask, per_loc.dtype)
  return lam * per_loc.sum(axis=-1)


def _single_query(query, keys):
  """(query as [B, Tq, dq], whether it was a single [B, dq] query)."""
  single = query.ndim == keys.ndim - 1
  return (query[:, None, :] if single else query), single


def _squeeze(single, context, weights):
  return (context[:, 0], weights[:, 0]) if single else (context, weights)


# ---------------------------------------------------------------------------------------------------- flax layers
class AdditiveAttention(nn.Module):
  """Bahdanau attention e_ij = vᵀ tanh(W_q q_i + W_k k_j + b) (Bahdanau et al. 2015, eq. 6).

  __call__(query [B, dq] or [B, Tq, dq], keys [B, Tk, dk], values [B, Tk, dv] = keys, mask) -> (context, weights):
  context [B, dv] / [B, Tq, dv], weights [B, Tk] / [B, Tq, Tk].
  """
  features: int                     # size of the hidden layer of the alignment MLP
  use_bias: bool = True

  @nn.compact
  def __call__(self, query, keys, values=None, mask=None):
    values = keys if values is None else values
    q, single = _single_query(query, keys)
    wq = Dense(self.features, use_bias=False, name='query')(q)                     # [B, Tq, F]
    wk = Dense(self.features, use_bias=self.use_bias, name='key')(keys)            # [B, Tk, F]
    hidden = jnp.tanh(wq[:, :, None, :] + wk[:, None, :, :])                       # [B, Tq, Tk, F]
    scores = Dense(1, use_bias=False, name='energy')(hidden)[..., 0]              # vᵀ tanh(.)
    weights = masked_softmax(scores, _score_mask(mask, 3))
    return _squeeze(single, jnp.einsum('bqk,bkv->bqv', weights, values), weights)


class MultiplicativeAttention(nn.Module):
  """Luong attention (Luong et al. 2015, eq. 8) with score 'dot' (q·k), 'general' (qᵀ W k) or 'concat'
  (vᵀ tanh(W [q; k])); `features` is the hidden size of 'concat'. Same call and returns as AdditiveAttention."""
  score: str = 'general'
  features: int | None = None

  @nn.compact
  def __call__(self, query, keys, values=None, mask=None):
    values = keys if values is None else values
    q, single = _single_query(query, keys)
    if self.score == 'dot':
      if q.shape[-1] != keys.shape[-1]:
        raise ValueError(f"'dot' attention needs equal query and key sizes, got {q.shape[-1]} and {keys.shape[-1]}")
      scores = jnp.einsum('bqd,bkd->bqk', q, keys)
    elif self.score == 'general':
      wk = Dense(q.shape[-1], use_bias=False, name='W')(keys)                     # W k_j, [B, Tk, dq]
      scores = jnp.einsum('bqd,bkd->bqk', q, wk)
    elif self.score == 'concat':
      if self.features is None:
        raise ValueError("'concat' attention needs features (the size of W's output)")
      tq, tk = q.shape[1], keys.shape[1]
      cat = jnp.concatenate([jnp.broadcast_to(q[:, :, None], (q.shape[0], tq, tk, q.shape[-1])),
                             jnp.broadcast_to(keys[:, None], (keys.shape[0], tq, tk, keys.shape[-1]))], -1)
      hidden = jnp.tanh(Dense(self.features, use_bias=False, name='W')(cat))       # tanh(W [q_i; k_j])
      scores = Dense(1, use_bias=False, name='v')(hidden)[..., 0]
    else:
      raise ValueError(f"unknown Luong score {self.score!r}: expected 'dot', 'general' or 'concat'")
    weights = masked_softmax(scores, _score_mask(mask, 3))
    return _squeeze(single, jnp.einsum('bqk,bkv->bqv', weights, values), weights)


class MultiHeadAttention(nn.Module):
  """Multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2.2) over padded keys.

  __call__(inputs_q [B, Tq, dq], inputs_kv [B, Tk, dk] = inputs_q, mask, deterministic) -> (out [B, Tq, out],
  weights [B, H, Tq, Tk]). Projections 'query', 'key', 'value' (dq/dk → E = qkv_features, split into H heads of
  E/H as consecutive slices, like torch) and 'out' (E → out_features). Dropout acts on the attention weights.

  decode=True (incremental decoding, self-attention only): the first call (init, with the full-length input)
  creates 'cache' variables cached_key/cached_value [B, T_max, H, E/H] and cache_index; every later call takes
  ONE query position, writes its key/value at cache_index, attends over positions ≤ cache_index (and `mask`, if
  given, over the T_max cached positions) and advances the index.
  """
  num_heads: int
  qkv_features: int | None = None
  out_features: int | None = None
  use_bias: bool = True
  dropout_rate: float = 0.0
  decode: bool = False
  kernel_init: Callable = nn.initializers.xavier_uniform()     # torch's in_proj init
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, inputs_q, inputs_kv=None, mask=None, *, deterministic: bool = True):
    inputs_kv = inputs_q if inputs_kv is None else inputs_kv
    e = self.qkv_features or inputs_q.shape[-1]
    if e % self.num_heads:
      raise ValueError(f'qkv_features {e} is not divisible by num_heads {self.num_heads}')
    h, dh = self.num_heads, e // self.num_heads
    dense = lambda name: Dense(e, use_bias=self.use_bias, kernel_init=self.kernel_init,
                               bias_init=self.bias_init, name=name)
    split = lambda x: x.reshape(*x.shape[:-1], h, dh)                             # [B, T, H, Dh]
    q, k, v = split(dense('query')(inputs_q)), split(dense('key')(inputs_kv)), split(dense('value')(inputs_kv))
    mask = _score_mask(mask, 4)
    if self.decode:
      initialised = self.has_variable('cache', 'cached_key')
      cached_k = self.variable('cache', 'cached_key', jnp.zeros, k.shape, k.dtype)
      cached_v = self.variable('cache', 'cached_value', jnp.zeros, v.shape, v.dtype)
      index = self.variable('cache', 'cache_index', lambda: jnp.array(0, jnp.int32))
      if initialised:
        if q.shape[1] != 1:
          raise ValueError(f'decode=True takes one position per call, got {q.shape[1]}')
        i = index.value
        k = lax.dynamic_update_slice(cached_k.value, k, (0, i, 0, 0))
        v = lax.dynamic_update_slice(cached_v.value, v, (0, i, 0, 0))
        cached_k.value, cached_v.value, index.value = k, v, i + 1
        seen = (jnp.arange(k.shape[1]) <= i)[None, None, None, :]                  # keys 0..i only
        mask = seen if mask is None else jnp.logical_and(mask, seen)
    dropout_rng = self.make_rng('dropout') if (self.dropout_rate > 0.0 and not deterministic) else None
    ctx, weights = dot_product_attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3),
                                         mask, dropout_rate=self.dropout_rate, dropout_rng=dropout_rng,
                                         deterministic=deterministic)             # [B, H, Tq, Dh]
    ctx = ctx.transpose(0, 2, 1, 3).reshape(*inputs_q.shape[:-1], e)               # Concat(head_1..head_h)
    out = Dense(self.out_features or inputs_q.shape[-1], use_bias=self.use_bias, bias_init=self.bias_init,
                name='out')(ctx)
    return out, weights


# ------------------------------------------------------------------------------------- torch weight interchange
def from_torch_mha(state: Mapping[str, Any], prefix: str = '') -> dict:
  """MultiHeadAttention params from a torch.nn.MultiheadAttention state_dict (arrays or CPU tensors).

  Handles the packed `in_proj_weight` [3E, E] and the separate q/k/v_proj_weight (kdim/vdim ≠ E) layouts;
  torch Linear weights are [out, in], flax Dense kernels [in, out]. `prefix` selects a submodule's entries.
  """
  g = lambda name: np.asarray(state[prefix + name], np.float32)
  if prefix + 'in_proj_weight' in state and state[prefix + 'in_proj_weight'] is not None:
    wq, wk, wv = np.split(g('in_proj_weight'), 3, axis=0)
  else:
    wq, wk, wv = g('q_proj_weight'), g('k_proj_weight'), g('v_proj_weight')
  params = {n: {'kernel': jnp.asarray(w.T)} for n, w in (('query', wq), ('key', wk), ('value', wv))}
  params['out'] = {'kernel': jnp.asarray(g('out_proj.weight').T)}
  if state.get(prefix + 'in_proj_bias') is not None:
    for n, b in zip(('query', 'key', 'value'), np.split(g('in_proj_bias'), 3)):
      params[n]['bias'] = jnp.asarray(b)
    params['out']['bias'] = jnp.asarray(g('out_proj.bias'))
  return params


def to_torch_mha(params: Mapping[str, Any], prefix: str = '', packed: bool = True) -> dict:
  """A torch.nn.MultiheadAttention state_dict (NumPy arrays; wrap with torch.as_tensor) from MultiHeadAttention
  params: `packed` writes in_proj_weight (kdim = vdim = E), otherwise q/k/v_proj_weight."""
  t = lambda n: np.array(params[n]['kernel']).T
  out = {prefix + 'out_proj.weight': np.array(params['out']['kernel']).T}
  if packed:
    out[prefix + 'in_proj_weight'] = np.concatenate([t('query'), t('key'), t('value')], 0)
  else:
    out.update({prefix + f'{n}_proj_weight': t(m) for n, m in (('q', 'query'), ('k', 'key'), ('v', 'value'))})
  if 'bias' in params['query']:
    out[prefix + 'in_proj_bias'] = np.concatenate([np.array(params[n]['bias']) for n in ('query', 'key', 'value')])
    out[prefix + 'out_proj.bias'] = np.array(params['out']['bias'])
  return out
