"""Beam search: ONE jit-able implementation for every decoder (seq2seq, captioning, transformer), and a NumPy
reference (course chapter 4, seed 000 "Decoding with beam search"; GNMT scoring, Wu et al. 2016, §7).

A decoder is a step function `step_fn(last_tokens [B·W], state) -> (log_probs [B·W, V], new_state)`: every leaf
of `state` with a rank ≥ 1 has leading dim B·W (row b·W + w is beam w of example b; `tile_beams` builds it from a
per-example state), scalar leaves (e.g. a flax cache index) are shared by all beams and passed through. Log-probs
are re-normalised with log_softmax, so logits are accepted too.

A hypothesis y = y₁ … y_n is finished when y_n = EOS or n = max_len; its score is
  s(y) = log p(y) / lp(n),   lp(n) = ((5 + n)/6)^α          (GNMT length normalisation, Wu et al. 2016, eq. 14)
with n counting EOS; α = 0 ranks by log p(y). Each step (fixed shapes, `lax.while_loop`):
  1. the W live beams × V tokens give W·V candidates; keep the top 2W by log p (as flax's examples/wmt does);
  2. a candidate ending in EOS (or reaching max_len) goes to a separate FINISHED set of W hypotheses kept by score,
     if it ranks within the top W of the step (fairseq's rule: with α = 0, width 1 is exactly greedy decoding;
     with α > 0 a width-1 search may still prefer a longer hypothesis to greedy's first EOS);
  3. the W best candidates that do not end go on as live beams: at most W of the 2W end, so EOS never starves the
     beam; the decoder state follows each beam's parent (`gather_beams`);
  4. stop at max_len, or early once for every example the n-th best finished score beats the best score any live
     beam could still reach, log p_live / lp(max_len) (log-probs only fall and lp only grows, α ≥ 0).
Returns the n best finished hypotheses: sequences [B, n_best, max_len] (generated tokens, no BOS, EOS kept,
pad_id after), scores [B, n_best] (s(y), −inf in an unfilled slot) and lengths [B, n_best] (n, 0 if unfilled).

To compile once per shape, jit a function that builds the step_fn from traced arguments, e.g.
  jax.jit(lambda params, src: beam_search(make_step_fn(model, params), tile_beams(state_of(src), W), ...)).
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.errors import UserError

Array = Any
StepFn = Callable[[Array, Any], tuple[Array, Any]]


class BeamSearchResult(NamedTuple):
  sequences: Array   # [B, n_best, max_len] int32: y₁ … y_n (EOS included), pad_id after
  scores: Array      # [B, n_best] float32: log p(y) / lp(n), best first; −inf in unfilled slots
  lengths: Array     # [B, n_best] int32: n (EOS counted); 0 in unfilled slots


def length_penalty(length, alpha: float):
  """lp(n) = ((5 + n)/6)^α (Wu et al. 2016, eq. 14)."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def tile_beams(tree, beam_width: int):
  """Repeat every rank ≥ 1 leaf `beam_width` times along axis 0: [B, ...] -> [B·W, ...], row b·W + w = row b."""
  return jax.tree.map(lambda x: jnp.repeat(x, beam_width, axis=0) if jnp.ndim(x) else x, tree)


def gather_beams(tree, flat_indices):
  """Rows `flat_indices` [N] of every rank ≥ 1 leaf (scalar leaves pass through): reorders beams after a step."""
  return jax.tree.map(lambda x: x[flat_indices] if jnp.ndim(x) else x, tree)


def row_top_k(x, k: int):
  """lax.top_k over the last axis of x [B, N], row by row. Inside a computation traced under an abstract mesh with
  a 'data' axis that divides B (the trainer's generate step), it runs per device on its rows (shard_map): GSPMD
  has no batch-partitioning rule for XLA's TopK, so a plain top_k on a batch-sharded array all-gathers it (per
  decoding step: for the Sutskever preset's 12 beams × 80k words, a 500-row batch is 1.9 GB)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or 'data' not in mesh.axis_names or mesh.shape['data'] == 1 or x.shape[0] % mesh.shape['data']:
    return lax.top_k(x, k)
  spec = jax.sharding.PartitionSpec('data')
  return jax.shard_map(lambda rows: lax.top_k(rows, k), mesh=mesh, in_specs=spec, out_specs=spec)(x)


def reorder_beams(tree, parent):
  """`gather_beams` with the flat index b·W + parent[b, w] for row b·W + w, parent [B, W]: each example picks among
  its own beams. Done per example ([B·W, ...] viewed as [B, W, ...]) rather than as one gather of flat rows, so a
  batch sharded over a ('data',) mesh stays sharded: a flat gather makes GSPMD all-gather every state each step."""
  b, w = parent.shape

  def pick(x):
    if not jnp.ndim(x):
      return x
    rows = x.reshape(b, w, *x.shape[1:])
    idx = parent.reshape(b, w, *([1] * (x.ndim - 1)))
    return jnp.take_along_axis(rows, idx, axis=1).reshape(x.shape)
  return jax.tree.map(pick, tree)


def _check(batch_size, beam_width, max_len, n_best, alpha):
  for name, v in (('batch_size', batch_size), ('beam_width', beam_width), ('max_len', max_len)):
    if not (isinstance(v, (int, np.integer)) and v >= 1):
      raise UserError(f'beam search: {name}={v!r}', 'a positive integer', f'fix {name}')
  if not (isinstance(n_best, (int, np.integer)) and 1 <= n_best <= beam_width):
    raise UserError(f'beam search: n_best={n_best!r} with beam_width={beam_width}', 'an integer in [1, beam_width]',
                    'lower n_best or widen the beam')
  if not alpha >= 0:
    raise UserError(f'beam search: length_penalty_alpha={alpha!r}', 'a number >= 0 (GNMT uses 0.6-0.7)',
                    'fix length_penalty_alpha')


def beam_search(step_fn: StepFn, init_state, *, batch_size: int, beam_width: int, max_len: int, bos_id: int,
                eos_id: int, length_penalty_alpha: float = 0.0, n_best: int = 1, pad_id: int = 0,
                early_stop: bool = True) -> BeamSearchResult:
  """Beam search over `step_fn` (see the module docstring); traceable: call it under jax.jit.

  init_state: the decoder state for the first step, leaves [B·W, ...] (use `tile_beams`); the first input token of
  every beam is `bos_id`. early_stop=False runs all max_len steps (same result, for timing comparisons).
  """
  _check(batch_size, beam_width, max_len, n_best, length_penalty_alpha)
  b, w, n = batch_size, beam_width, max_len
  alpha = float(length_penalty_alpha)
  lp_max = length_penalty(n, alpha)
  neg_inf = jnp.array(-jnp.inf, jnp.float32)

  def best_live_bound(c):
    return jnp.max(c['live_logp'], axis=1) / lp_max                        # best score still reachable

  def cond(c):
    going = c['t'] < n
    if early_stop:
      best = best_live_bound(c)
      done = (best == -jnp.inf) | (c['fin_scores'][:, n_best - 1] > best)
      going = going & ~jnp.all(done)
    return going

  def body(c):
    t = c['t']
    logp, state = step_fn(c['last'].reshape(b * w), c['state'])
    v = logp.shape[-1]
    if v < 2:
      raise ValueError(f'step_fn returned {v} log-probs per beam; beam search needs a vocabulary of >= 2 tokens')
    logp = jax.nn.log_softmax(logp.astype(jnp.float32), axis=-1).reshape(b, w, v)
    cand = (c['live_logp'][:, :, None] + logp).reshape(b, w * v)           # log p(prefix · token)
    top_logp, top_idx = row_top_k(cand, 2 * w)                             # [B, 2W], best first
    parent, token = top_idx // v, (top_idx % v).astype(jnp.int32)
    seqs = jnp.take_along_axis(c['live_seqs'], parent[:, :, None], axis=1)  # [B, 2W, L]
    seqs = jnp.where(jnp.arange(n) == t, token[:, :, None], seqs)
    length = t + 1
    ends = (token == eos_id) | (length == n)
    # finished set: ending candidates ranked within the top W of this step (fairseq), scored s(y) (Wu et al. eq. 14)
    admit = ends & (jnp.arange(2 * w) < w)[None] & jnp.isfinite(top_logp)
    new_scores = jnp.where(admit, top_logp / length_penalty(length, alpha), neg_inf)
    all_scores = jnp.concatenate([c['fin_scores'], new_scores], axis=1)
    fin_scores, keep = row_top_k(all_scores, w)
    fin_seqs = jnp.take_along_axis(jnp.concatenate([c['fin_seqs'], seqs], 1), keep[:, :, None], axis=1)
    fin_lens = jnp.take_along_axis(jnp.concatenate([c['fin_lens'], jnp.where(admit, length, 0)], 1), keep, axis=1)
    # live set: the W best candidates that go on (≥ W of the 2W do: each beam has one EOS candidate)
    live_logp, pick = row_top_k(jnp.where(ends, neg_inf, top_logp), w)
    parent = jnp.take_along_axis(parent, pick, axis=1)
    return dict(t=length, live_logp=live_logp, live_seqs=jnp.take_along_axis(seqs, pick[:, :, None], axis=1),
                last=jnp.take_along_axis(token, pick, axis=1),
                state=reorder_beams(state, parent),
                fin_scores=fin_scores, fin_seqs=fin_seqs, fin_lens=fin_lens)

  carry = dict(t=jnp.array(0, jnp.int32),
               live_logp=jnp.tile(jnp.where(jnp.arange(w) == 0, 0.0, neg_inf), (b, 1)),   # one real beam at t = 0
               live_seqs=jnp.full((b, w, n), pad_id, jnp.int32), last=jnp.full((b, w), bos_id, jnp.int32),
               state=init_state, fin_scores=jnp.full((b, w), neg_inf), fin_seqs=jnp.full((b, w, n), pad_id, jnp.int32),
               fin_lens=jnp.zeros((b, w), jnp.int32))
  out = lax.while_loop(cond, body, carry)
  return BeamSearchResult(out['fin_seqs'][:, :n_best], out['fin_scores'][:, :n_best], out['fin_lens'][:, :n_best])


# ---------------------------------------------------------------------------------------- NumPy host reference
def beam_search_reference(step_fn: StepFn, init_state, *, batch_size: int, beam_width: int, max_len: int,
                          bos_id: int, eos_id: int, length_penalty_alpha: float = 0.0, n_best: int = 1,
                          pad_id: int = 0) -> BeamSearchResult:
  """The same search, eagerly on the host: Python lists of hypotheses per example, one step_fn call per step on
  all B·W beams (outputs converted with np.asarray). For tests and the jit-vs-eager benchmark."""
  _check(batch_size, beam_width, max_len, n_best, length_penalty_alpha)
  b, w, n, alpha = batch_size, beam_width, max_len, float(length_penalty_alpha)
  lp = lambda k: ((5.0 + k) / 6.0) ** alpha
  live = [[(0.0, [])] + [(-np.inf, [])] * (w - 1) for _ in range(b)]      # (log p, tokens) per beam
  finished = [[] for _ in range(b)]                                      # (score, tokens)
  last = np.full(b * w, bos_id, np.int32)
  state = init_state
  for t in range(n):
    bound = [max(lp_ for lp_, _ in beams) / lp(n) for beams in live]
    if all(bd == -np.inf or (len(f) >= n_best and f[n_best - 1][0] > bd) for bd, f in zip(bound, finished)):
      break
    logp, state = step_fn(last, state)
    logp = np.asarray(logp, np.float64)
    logp = logp - np.max(logp, -1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    v = logp.shape[-1]
    parents = np.zeros(b * w, np.int64)
    for i in range(b):
      cands = [(live[i][k][0] + logp[i * w + k, tok], k, tok) for k in range(w) for tok in range(v)]
      cands.sort(key=lambda c: -c[0])                                    # stable: ties keep (beam, token) order
      new_live = []
      for rank, (score, k, tok) in enumerate(cands[:2 * w]):
        seq = live[i][k][1] + [tok]
        if tok == eos_id or t + 1 == n:
          if rank < w and np.isfinite(score):
            finished[i].append((score / lp(t + 1), seq))
        elif len(new_live) < w:
          new_live.append((score, seq, k))
      finished[i] = sorted(finished[i], key=lambda f: -f[0])[:w]
      live[i] = [(s, seq) for s, seq, _ in new_live]
      for j, (_, seq, k) in enumerate(new_live):
        parents[i * w + j] = i * w + k
        last[i * w + j] = seq[-1]
    state = jax.tree.map(lambda x: np.asarray(x)[parents] if np.ndim(x) else x, state)
  seqs = np.full((b, n_best, n), pad_id, np.int32)
  scores = np.full((b, n_best), -np.inf, np.float32)
  lengths = np.zeros((b, n_best), np.int32)
  for i in range(b):
    for j, (s, seq) in enumerate(finished[i][:n_best]):
      seqs[i, j, :len(seq)], scores[i, j], lengths[i, j] = seq, s, len(seq)
  return BeamSearchResult(seqs, scores, lengths)


# ------------------------------------------------------------------------------------------- toy decoder, speed
def table_step_fn(table) -> StepFn:
  """A toy decoder whose next-token log-probs depend on the prefix through (last token, position):
  log_softmax(table[position, last_token]) with table [max_len, V, V] and state {'position': [N] int32}."""
  table = jnp.asarray(table, jnp.float32)

  def step_fn(last_tokens, state):
    pos = jnp.asarray(state['position'])
    return jax.nn.log_softmax(table[pos, jnp.asarray(last_tokens)], axis=-1), {'position': pos + 1}
  return step_fn


def benchmark_toy(*, batch_size: int = 64, beam_width: int = 4, max_len: int = 30, vocab_size: int = 32,
                  repeats: int = 3, seed: int = 0, bos_id: int = 1, eos_id: int = 2) -> dict:
  """Decode throughput (sequences/s) of the jit `beam_search` and the eager `beam_search_reference` on the
  `table_step_fn` toy decoder (random N(0, 1) table), best of `repeats`; also the compile time and whether the
  two returned the same best sequences; `jit_times_s` / `eager_times_s` list every repeat's seconds (the two
  alternate; `jaxdl bench beam_search` reports their medians)."""
  table = np.random.default_rng(seed).normal(size=(max_len, vocab_size, vocab_size)).astype(np.float32)
  step_fn = table_step_fn(table)
  state = tile_beams({'position': jnp.zeros(batch_size, jnp.int32)}, beam_width)
  kw = dict(batch_size=batch_size, beam_width=beam_width, max_len=max_len, bos_id=bos_id, eos_id=eos_id)
  run = jax.jit(lambda s: beam_search(step_fn, s, **kw))
  t0 = time.perf_counter()
  jit_out = jax.block_until_ready(run(state))
  compile_s = time.perf_counter() - t0
  jit_times, eager_times = [], []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(run(state))
    jit_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    eager_out = beam_search_reference(step_fn, {'position': np.zeros(batch_size * beam_width, np.int32)}, **kw)
    eager_times.append(time.perf_counter() - t0)
  jit_s, eager_s = min(jit_times), min(eager_times)
  return {'jit_sequences_per_s': batch_size / jit_s, 'eager_sequences_per_s': batch_size / eager_s,
          'speedup': eager_s / jit_s, 'compile_s': compile_s, 'jit_times_s': jit_times, 'eager_times_s': eager_times,
          'same_result': bool(np.array_equal(np.asarray(jit_out.sequences), eager_out.sequences))}
