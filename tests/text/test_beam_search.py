"""Beam search: at full width it returns exactly the n best hypotheses found by ENUMERATING every sequence (with
and without GNMT length normalisation), width 1 is greedy decoding, the jit search equals the eager NumPy
reference (also with pruning and early stopping), early stopping changes nothing, beam helpers, argument errors."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.text import beam_search as bs

BOS, EOS = 1, 2


def toy(rng, max_len, vocab, scale=1.5, eos_bias=0.0):
  """A random table [L, V, V]: log p(y_t | prefix) = log_softmax(table[t, y_{t-1}]) (prefix-dependent)."""
  table = rng.normal(size=(max_len, vocab, vocab)) * scale
  table[:, :, EOS] += eos_bias
  return table.astype(np.float32)


def np_logp(table):
  t = table.astype(np.float64)
  return t - np.log(np.exp(t).sum(-1, keepdims=True))


def enumerate_hypotheses(table, max_len, alpha):
  """Every finished hypothesis (ends in EOS, or has max_len tokens without EOS), scored
  log p(y) / ((5 + |y|)/6)^α, best first."""
  lp = np_logp(table)
  vocab = table.shape[-1]
  out = []
  for n in range(1, max_len + 1):
    for seq in itertools.product(range(vocab), repeat=n):
      if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
        continue
      last, total = BOS, 0.0
      for pos, tok in enumerate(seq):
        total, last = total + lp[pos, last, tok], tok
      out.append((total / ((5 + n) / 6) ** alpha, seq))
  return sorted(out, key=lambda h: -h[0])


def state(batch, width):
  return bs.tile_beams({'position': jnp.zeros(batch, jnp.int32)}, width)


def run(tables, width, max_len, alpha=0.0, n_best=1, early_stop=True):
  """jit beam search over a batch of toy tables (example b uses table b: position state carries b)."""
  b = len(tables)
  stacked = jnp.asarray(np.stack(tables))                           # [B, L, V, V]

  def step_fn(last, st):
    logits = stacked[st['example'], st['position'], last]
    return jax.nn.log_softmax(logits), {'example': st['example'], 'position': st['position'] + 1}
  init = bs.tile_beams({'example': jnp.arange(b), 'position': jnp.zeros(b, jnp.int32)}, width)
  f = jax.jit(lambda s: bs.beam_search(step_fn, s, batch_size=b, beam_width=width, max_len=max_len, bos_id=BOS,
                                       eos_id=EOS, length_penalty_alpha=alpha, n_best=n_best, early_stop=early_stop))
  return [np.asarray(a) for a in f(init)]


@pytest.mark.parametrize('alpha', [0.0, 0.7])
def test_full_width_equals_enumeration_n_best(alpha):
  vocab, max_len, n_best = 4, 3, 6
  width = vocab * (vocab - 1) ** (max_len - 1)                       # every candidate of every step is kept
  rng = np.random.default_rng(1)
  tables = [toy(rng, max_len, vocab), toy(rng, max_len, vocab, eos_bias=1.5)]
  seqs, scores, lengths = run(tables, width, max_len, alpha, n_best)
  for b, table in enumerate(tables):
    want = enumerate_hypotheses(table, max_len, alpha)[:n_best]
    got = [tuple(seqs[b, j, :lengths[b, j]]) for j in range(n_best)]
    assert got == [seq for _, seq in want]
    np.testing.assert_allclose(scores[b], [s for s, _ in want], rtol=1e-5)
    assert np.all(seqs[b][np.arange(max_len)[None] >= lengths[b][:, None]] == 0)   # pad after the end


def np_greedy(table, max_len):
  lp, last, seq, total = np_logp(table), BOS, [], 0.0
  for pos in range(max_len):
    tok = int(np.argmax(lp[pos, last]))
    seq.append(tok)
    total += lp[pos, last, tok]
    last = tok
    if tok == EOS:
      break
  return seq, total


def test_width_one_is_greedy():
  rng = np.random.default_rng(2)
  max_len, vocab = 8, 6
  tables = [toy(rng, max_len, vocab, eos_bias=b) for b in (-1.0, 0.5, 1.0, 1.5, 2.0)]
  seqs, scores, lengths = run(tables, 1, max_len)
  for b, table in enumerate(tables):
    seq, total = np_greedy(table, max_len)
    assert list(seqs[b, 0, :lengths[b, 0]]) == seq
    assert scores[b, 0] == pytest.approx(total, abs=1e-5)


@pytest.mark.parametrize('alpha', [0.0, 0.6])
def test_jit_equals_eager_reference_with_pruning(alpha):
  rng = np.random.default_rng(3)
  max_len, vocab, width = 7, 6, 3
  tables = [toy(rng, max_len, vocab, eos_bias=b) for b in (0.0, 1.0, 3.0)]
  seqs, scores, lengths = run(tables, width, max_len, alpha, n_best=2)
  for b, table in enumerate(tables):
    ref = bs.beam_search_reference(bs.table_step_fn(table), {'position': np.zeros(width, np.int32)}, batch_size=1,
                                   beam_width=width, max_len=max_len, bos_id=BOS, eos_id=EOS,
                                   length_penalty_alpha=alpha, n_best=2)
    np.testing.assert_array_equal(seqs[b], ref.sequences[0])
    np.testing.assert_array_equal(lengths[b], ref.lengths[0])
    np.testing.assert_allclose(scores[b], ref.scores[0], rtol=1e-5)
  # early stopping never changes the answer
  seqs2, scores2, lengths2 = run(tables, width, max_len, alpha, n_best=2, early_stop=False)
  np.testing.assert_array_equal(seqs2, seqs)
  np.testing.assert_allclose(scores2, scores, rtol=1e-6)


def test_reference_stops_early_and_matches_enumeration():
  """With EOS very likely the search ends long before max_len (counted step_fn calls) and still finds the best."""
  rng = np.random.default_rng(4)
  max_len, vocab = 5, 3
  table = toy(rng, max_len, vocab, eos_bias=4.0)
  calls = []
  step = bs.table_step_fn(table)

  def counting(last, st):
    calls.append(1)
    return step(last, st)
  res = bs.beam_search_reference(counting, {'position': np.zeros(2, np.int32)}, batch_size=1, beam_width=2,
                                 max_len=max_len, bos_id=BOS, eos_id=EOS, n_best=1)
  best = enumerate_hypotheses(table, max_len, 0.0)[0]
  assert tuple(res.sequences[0, 0, :res.lengths[0, 0]]) == best[1]
  assert len(calls) < max_len


def test_length_normalisation_lets_a_longer_hypothesis_win_despite_early_stopping():
  """EOS first has p = .55 (score log .55 = −0.598); 0 0 0 EOS has log p = log .45 + 3 log .99 = −0.829 but
  scores −0.829 / ((5+4)/6) = −0.553 with α = 1: the search must not stop after step 1 (the live bound is
  log .45 / lp(max_len), not log .45)."""
  lp = np.log(np.full((4, 3, 3), 1 / 3))
  lp[0, BOS] = np.log([0.45, 1e-6, 0.55])
  lp[1:3, 0] = np.log([0.99, 1e-6, 0.01])
  lp[3, 0] = np.log([0.01, 1e-6, 0.99])
  table = lp.astype(np.float32)
  want = enumerate_hypotheses(table, 4, 1.0)[0]
  assert want[1] == (0, 0, 0, EOS)
  seqs, scores, lengths = run([table], 2, 4, alpha=1.0)
  assert tuple(seqs[0, 0, :lengths[0, 0]]) == want[1] and scores[0, 0] == pytest.approx(want[0], abs=1e-5)


def test_tile_and_gather_beams():
  tree = {'h': jnp.arange(6).reshape(2, 3), 'index': jnp.array(7)}
  tiled = bs.tile_beams(tree, 2)
  np.testing.assert_array_equal(np.asarray(tiled['h']), [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]])
  assert int(tiled['index']) == 7                                    # scalars are shared, not tiled
  g = bs.gather_beams({'h': jnp.arange(8).reshape(4, 2), 'index': jnp.array(7)}, jnp.array([1, 1, 3, 0]))
  np.testing.assert_array_equal(np.asarray(g['h']), [[2, 3], [2, 3], [6, 7], [0, 1]])
  assert int(g['index']) == 7
  np.testing.assert_allclose(float(bs.length_penalty(4, 0.6)), (9 / 6) ** 0.6)


def test_reorder_beams_is_the_flat_gather_within_each_example():
  rng = np.random.default_rng(0)
  b, w = 3, 4
  tree = {'h': jnp.asarray(rng.standard_normal((b * w, 5))), 'cache': jnp.asarray(rng.standard_normal((b * w, 2, 3))),
          'index': jnp.array(7)}
  parent = rng.integers(0, w, (b, w))
  want = bs.gather_beams(tree, jnp.asarray((np.arange(b)[:, None] * w + parent).reshape(-1)))
  got = bs.reorder_beams(tree, jnp.asarray(parent))
  for k in ('h', 'cache'):
    np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))
  assert int(got['index']) == 7


def test_bad_arguments_are_user_errors():
  step = bs.table_step_fn(np.zeros((3, 4, 4), np.float32))
  kw = dict(batch_size=1, max_len=3, bos_id=BOS, eos_id=EOS)
  with pytest.raises(UserError, match='n_best'):
    bs.beam_search(step, state(1, 2), beam_width=2, n_best=3, **kw)
  with pytest.raises(UserError, match='length_penalty_alpha'):
    bs.beam_search(step, state(1, 2), beam_width=2, length_penalty_alpha=-0.5, **kw)
  with pytest.raises(UserError, match='beam_width'):
    bs.beam_search(step, state(1, 2), beam_width=0, **kw)


@pytest.mark.slow
def test_jit_vs_eager_throughput():
  r = bs.benchmark_toy(batch_size=64, beam_width=4, max_len=30, vocab_size=32, repeats=2)
  print(r)
  assert r['same_result'] and r['speedup'] > 1
