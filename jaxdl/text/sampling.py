"""Greedy decoding, sampling and scheduled sampling (course chapter 4: char-RNN sampling, seq2seq, captioning;
seed 000 "Show and tell": scheduled sampling).

Decoders share beam search's step function `step_fn(last_tokens [B], state) -> (log_probs or logits [B, V],
new_state)` (see jaxdl.text.beam_search).

  greedy_decode    y_t = argmax_v p(v | y_<t), a `lax.while_loop` that stops when every sequence has emitted EOS
  sample_decode    y_t ~ softmax(logits / T), optionally restricted to the k most likely tokens (top-k, Fan et al.
                   2018) and/or to the smallest set of tokens whose probability reaches p (top-p / nucleus,
                   Holtzman et al. 2020)
  stream_sample    the same sampling on the host, one jitted step per token, yielding tokens as they come
                   (interactive char-RNN sampling), after feeding a prime sequence
  teacher_forcing_probability   scheduled sampling's ε_i, the probability of feeding the TRUE previous token at
                   training iteration i (Bengio et al. 2015, §2.4): linear max(ε, k − c·i), exponential k^i,
                   inverse sigmoid k/(k + exp(i/k))

Returned sequences hold the generated tokens (EOS included, pad_id after), lengths count EOS, log_probs sum the
model's (untempered, unfiltered) log-probabilities of the emitted tokens.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.errors import UserError

Array = Any
StepFn = Callable[[Array, Any], tuple[Array, Any]]


class DecodeResult(NamedTuple):
  sequences: Array   # [B, max_len] int32: y₁ … y_n (EOS included), pad_id after
  lengths: Array     # [B] int32: n (EOS counted)
  log_probs: Array   # [B] float32: Σ_t log p(y_t | y_<t) under the model


def check_sampling(temperature: float, top_k: int | None = None, top_p: float | None = None) -> None:
  """UserError unless temperature > 0, top_k ≥ 1 (or None) and 0 < top_p ≤ 1 (or None)."""
  if not (isinstance(temperature, (int, float, np.floating, np.integer)) and temperature > 0):
    raise UserError(f'sampling temperature {temperature!r}', 'a number > 0 (1 samples the model as is, '
                    'towards 0 approaches greedy decoding)', 'use a positive temperature, or greedy decoding')
  if top_k is not None and not (isinstance(top_k, (int, np.integer)) and top_k >= 1):
    raise UserError(f'top_k={top_k!r}', 'an integer >= 1 (or none to sample from every token)', 'fix top_k')
  if top_p is not None and not (isinstance(top_p, (int, float, np.floating)) and 0 < top_p <= 1):
    raise UserError(f'top_p={top_p!r}', 'a number in (0, 1] (or none)', 'fix top_p')


def sample_logits(key, logits, *, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Array:
  """One token per row of `logits` [N, V] from softmax(logits / T), restricted to the top-k tokens and/or the
  nucleus of probability top_p (within the top k if both; the most likely token is always kept)."""
  check_sampling(temperature, top_k, top_p)
  logits = jnp.asarray(logits, jnp.float32) / temperature
  v = logits.shape[-1]
  if top_k is None and top_p is None:
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
  vals, idx = lax.top_k(logits, v if top_k is None else min(top_k, v))     # sorted, best first
  if top_p is not None:                                                    # Holtzman et al. 2020, eq. 2
    probs = jax.nn.softmax(vals, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    vals = jnp.where(mass_before < top_p, vals, -jnp.inf)
  choice = jax.random.categorical(key, vals, axis=-1)
  return jnp.take_along_axis(idx, choice[..., None], axis=-1)[..., 0].astype(jnp.int32)


def _decode(step_fn, init_state, key, choose, *, batch_size, max_len, bos_id, eos_id, pad_id) -> DecodeResult:
  if not (isinstance(max_len, (int, np.integer)) and max_len >= 1):
    raise UserError(f'decoding max_len={max_len!r}', 'a positive integer', 'fix max_len')
  b, n = batch_size, max_len

  def cond(c):
    return (c['t'] < n) & ~jnp.all(c['done'])

  def body(c):
    logp, state = step_fn(c['last'], c['state'])
    logp = jax.nn.log_softmax(jnp.asarray(logp, jnp.float32), axis=-1)
    key, sub = jax.random.split(c['key'])
    tok = jnp.where(c['done'], pad_id, choose(sub, logp)).astype(jnp.int32)
    picked = jnp.take_along_axis(logp, tok[:, None], axis=-1)[:, 0]
    done = c['done'] if eos_id is None else c['done'] | (tok == eos_id)
    return dict(t=c['t'] + 1, key=key, last=tok, state=state, seqs=c['seqs'].at[:, c['t']].set(tok),
                lengths=jnp.where(c['done'], c['lengths'], c['t'] + 1),
                log_probs=c['log_probs'] + jnp.where(c['done'], 0.0, picked), done=done)

  carry = dict(t=jnp.array(0, jnp.int32), key=key, last=jnp.full((b,), bos_id, jnp.int32), state=init_state,
               seqs=jnp.full((b, n), pad_id, jnp.int32), lengths=jnp.zeros((b,), jnp.int32),
               log_probs=jnp.zeros((b,), jnp.float32), done=jnp.zeros((b,), bool))
  out = lax.while_loop(cond, body, carry)
  return DecodeResult(out['seqs'], out['lengths'], out['log_probs'])


def greedy_decode(step_fn: StepFn, init_state, *, batch_size: int, max_len: int, bos_id: int,
                  eos_id: int | None, pad_id: int = 0) -> DecodeResult:
  """y_t = argmax p(· | y_<t) until EOS (eos_id=None: always max_len tokens); traceable, jit it."""
  return _decode(step_fn, init_state, jax.random.key(0), lambda _, logp: jnp.argmax(logp, axis=-1),
                 batch_size=batch_size, max_len=max_len, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)


def sample_decode(step_fn: StepFn, init_state, key, *, batch_size: int, max_len: int, bos_id: int,
                  eos_id: int | None, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, pad_id: int = 0) -> DecodeResult:
  """y_t ~ softmax(logits/T) (top-k / top-p filtered) until EOS; one key split per step; traceable, jit it."""
  check_sampling(temperature, top_k, top_p)
  choose = lambda k, logp: sample_logits(k, logp, temperature=temperature, top_k=top_k, top_p=top_p)
  return _decode(step_fn, init_state, key, choose, batch_size=batch_size, max_len=max_len, bos_id=bos_id,
                 eos_id=eos_id, pad_id=pad_id)


def stream_sample(step_fn: StepFn, init_state, key, *, max_new_tokens: int, prime: Sequence[int] = (),
                  bos_id: int | None = None, eos_id: int | None = None, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None) -> Iterator[int]:
  """Yield sampled token ids one at a time (host loop; one jitted step + sample per token; batch of 1).

  The inputs [bos_id] + prime (bos_id=None: prime alone) are fed first to condition the state; then up to
  `max_new_tokens` tokens are sampled, each fed back; EOS ends the stream (and is not yielded).
  init_state: leaves with leading dim 1.
  """
  check_sampling(temperature, top_k, top_p)
  feed = ([] if bos_id is None else [int(bos_id)]) + [int(t) for t in prime]
  if not feed:
    raise UserError('nothing to condition the sampling on', 'a non-empty prime or a BOS token',
                    'give a prime text or use a vocabulary with BOS')

  @jax.jit
  def step(token, state, key):
    logits, state = step_fn(jnp.reshape(token, (1,)), state)
    return sample_logits(key, logits, temperature=temperature, top_k=top_k, top_p=top_p)[0], state

  state = init_state
  for tok in feed:
    key, sub = jax.random.split(key)
    nxt, state = step(jnp.int32(tok), state, sub)
  for i in range(max_new_tokens):
    tok = int(nxt)
    if eos_id is not None and tok == eos_id:
      return
    yield tok
    if i + 1 < max_new_tokens:
      key, sub = jax.random.split(key)
      nxt, state = step(jnp.int32(tok), state, sub)


def check_teacher_forcing(kind: str, *, k: float, c: float | None = None, epsilon: float = 0.0) -> None:
  """The options of `teacher_forcing_probability` (UserError when they define no schedule); pure Python."""
  if kind == 'linear':
    if not (0 <= epsilon < 1 and 0 < k <= 1 and c is not None and c > 0):
      raise UserError(f'linear teacher-forcing decay with epsilon={epsilon}, k={k}, c={c}',
                      '0 <= epsilon < 1, 0 < k <= 1 and a slope c > 0', 'fix the scheduled-sampling options')
  elif kind == 'exponential':
    if not 0 < k < 1:
      raise UserError(f'exponential teacher-forcing decay with k={k}', '0 < k < 1', 'fix k')
  elif kind == 'inverse_sigmoid':
    if not k >= 1:
      raise UserError(f'inverse-sigmoid teacher-forcing decay with k={k}', 'k >= 1', 'fix k')
  else:
    raise UserError(f'unknown teacher-forcing decay {kind!r}', "'linear', 'exponential' or 'inverse_sigmoid'",
                    'fix the scheduled-sampling kind')


def teacher_forcing_probability(step, kind: str = 'linear', *, k: float, c: float | None = None,
                                epsilon: float = 0.0):
  """Scheduled sampling's ε_i at training iteration i = `step` (Bengio et al. 2015, §2.4), the probability of
  feeding the true previous token (else the model's own sample):

    linear           ε_i = max(ε, k − c·i)      0 ≤ ε < 1 (epsilon), offset 0 < k ≤ 1, slope c > 0
    exponential      ε_i = k^i                  0 < k < 1
    inverse_sigmoid  ε_i = k / (k + exp(i/k))   k ≥ 1
  """
  check_teacher_forcing(kind, k=k, c=c, epsilon=epsilon)
  i = jnp.asarray(step, jnp.float32)
  if kind == 'linear':
    return jnp.maximum(epsilon, k - c * i)
  if kind == 'exponential':
    return jnp.power(jnp.float32(k), i)
  return k / (k + jnp.exp(i / k))
