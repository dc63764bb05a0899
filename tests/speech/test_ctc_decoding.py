"""CTC decoding (S2): best path, prefix beam search vs exhaustive enumeration, LM shallow fusion, jit == host."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.speech import decoding

ALPHABET = ['-', 'a', 'b', ' ']   # blank 0, word separator 3


def log_softmax(x):
  x = np.asarray(x, np.float64)
  return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def exact_labellings(lp) -> dict[tuple[int, ...], float]:
  """Every labelling's exact log p(y|x): enumerate all K^T alignments, collapse (repeats, then blank 0), sum."""
  table: dict[tuple[int, ...], float] = {}
  for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
    y = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1]))
    table[y] = np.logaddexp(table.get(y, -math.inf), sum(lp[t, k] for t, k in enumerate(path)))
  return table


def full_width(num_frames: int, num_classes: int) -> int:
  """A beam that never prunes: the number of label sequences of length <= T."""
  return sum((num_classes - 1) ** n for n in range(num_frames + 1))


class BigramCharLM:
  """Reference character bigram LM over strings (independent of DenseCharLM): p(c | previous char)."""
  unit = 'char'

  def __init__(self, rng, chars, sharpen=1.0):
    self.logp = {}
    for prev in ['<s>'] + list(chars):
      row = log_softmax(rng.normal(size=len(chars) + 1) * sharpen)
      for nxt, v in zip(list(chars) + ['</s>'], row):
        self.logp[prev, nxt] = float(v)

  def begin(self):
    return '<s>'

  def score(self, state, token):
    return self.logp[state, token], token

  def end(self, state):
    return self.logp[state, '</s>']


class BigramWordLM:
  """Reference word bigram LM: known words get random log probs, unknown words a fixed penalty."""
  unit = 'word'

  def __init__(self, rng, words=('a', 'ab', 'ba', 'b'), oov=-7.0):
    self.words, self.oov = set(words), oov
    self.logp = {}
    for prev in ('<s>',) + tuple(words):
      row = log_softmax(rng.normal(size=len(words) + 1) * 2)
      for nxt, v in zip(tuple(words) + ('</s>',), row):
        self.logp[prev, nxt] = float(v)

  def begin(self):
    return '<s>'

  def score(self, state, token):
    if token not in self.words:
      return self.oov, '<s>'
    return self.logp[state, token], token

  def end(self, state):
    return self.logp[state, '</s>']


def fused_objective(y, log_p, lm, alpha, beta) -> float:
  """log p(y|x) + α·log p_LM(y) + β·|words(y)| straight from the definition, on the string of y."""
  s = ''.join(ALPHABET[i] for i in y)
  words = [w for w in s.split(' ') if w]
  lm_logp = 0.0
  if lm is not None:
    state = lm.begin()
    for token in (s if lm.unit == 'char' else words):
      v, state = lm.score(state, token)
      lm_logp += v
    lm_logp += lm.end(state)
  return log_p + alpha * lm_logp + beta * len(words)


def random_log_probs(rng, num_frames, num_classes, scale=1.5):
  return log_softmax(rng.normal(size=(num_frames, num_classes)) * scale)


@pytest.mark.parametrize('seed, num_frames, num_classes', [(0, 5, 3), (1, 6, 3), (2, 5, 4), (3, 4, 4)])
def test_full_width_beam_returns_every_labelling_with_its_exact_probability(seed, num_frames, num_classes):
  lp = random_log_probs(np.random.default_rng(seed), num_frames, num_classes)
  exact = exact_labellings(lp)
  got = decoding.prefix_beam_search(lp, full_width(num_frames, num_classes))
  assert len(got) == len(exact)
  scores = [s for _, s in got]
  assert scores == sorted(scores, reverse=True)
  for y, s in got:
    assert s == pytest.approx(exact[y], abs=1e-9)
  assert got[0][0] == max(exact, key=exact.get)          # the most probable LABELLING
  assert np.logaddexp.reduce(scores) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize('seed', range(4))
def test_best_path_is_the_collapse_of_the_most_probable_alignment(seed):
  lp = random_log_probs(np.random.default_rng(10 + seed), 5, 4)
  paths = list(itertools.product(range(4), repeat=5))
  scores = [sum(lp[t, k] for t, k in enumerate(p)) for p in paths]
  best = paths[int(np.argmax(scores))]
  [(y, s)] = decoding.best_path(lp)
  assert y == tuple(k for i, k in enumerate(best) if k != 0 and (i == 0 or k != best[i - 1]))
  assert s == pytest.approx(max(scores), abs=1e-12)
  [(_, s3)] = decoding.best_path(lp, length=3)
  assert s3 == pytest.approx(lp[:3].max(1).sum(), abs=1e-12)


@pytest.mark.parametrize('seed', range(6))
def test_beam_and_best_path_relations(seed):
  rng = np.random.default_rng(20 + seed)
  lp = random_log_probs(rng, 6, 3, scale=2.0)
  exact = exact_labellings(lp)
  [(y_bp, s_bp)] = decoding.best_path(lp)
  y_b1, s_b1 = decoding.prefix_beam_search(lp, 1)[0]
  top_y, top_s = decoding.prefix_beam_search(lp, full_width(6, 3), n_best=1)[0]
  # A path is one alignment of its labelling; a beam's score sums a subset of its labelling's alignments.
  assert s_bp <= exact[y_bp] + 1e-12
  assert s_b1 <= exact[y_b1] + 1e-12
  assert top_s == pytest.approx(max(exact.values()), abs=1e-9) and top_s >= exact[y_bp] - 1e-12
  # One frame: beam 1 and best path coincide exactly.
  [(y1, s1)] = decoding.best_path(lp[:1])
  assert decoding.prefix_beam_search(lp[:1], 1) == [(y1, pytest.approx(s1, abs=1e-12))]
  # Peaky outputs (argmax prob 0.96 per frame, 0.96^6 > 0.78): the best path carries most of the mass, and
  # beam 1, best path and the exact decision agree.
  peaky = np.full((6, 4), 0.04 / 3)
  peaky[np.arange(6), rng.integers(0, 4, size=6)] = 0.96
  peaky = np.log(peaky)
  [(y_p, _)] = decoding.best_path(peaky)
  assert decoding.prefix_beam_search(peaky, 1)[0][0] == y_p
  assert max(exact_labellings(peaky).items(), key=lambda kv: kv[1])[0] == y_p


def test_crafted_example_best_path_differs_from_beam_search():
  lp = decoding.crafted_best_path_vs_beam()
  exact = exact_labellings(lp)
  [(y_bp, s_bp)] = decoding.best_path(lp)
  beam = decoding.prefix_beam_search(lp, 2)
  assert y_bp == () and s_bp == pytest.approx(math.log(0.36))
  assert beam[0][0] == (1,) and beam[0][1] == pytest.approx(math.log(0.64))
  assert exact[(1,)] > exact[()] and beam[0][1] == pytest.approx(exact[(1,)])


@pytest.mark.parametrize('make_lm', ['char', 'word'])
def test_lm_fusion_changes_the_decision_and_matches_brute_force(make_lm):
  rng = np.random.default_rng(30)
  lp = random_log_probs(rng, 5, 4, scale=1.0)
  exact = exact_labellings(lp)
  y0 = max(exact, key=exact.get)
  lm = BigramCharLM(rng, 'ab ') if make_lm == 'char' else BigramWordLM(rng)
  # Make the acoustic favourite implausible to the LM, so fusion must change the decision.
  if make_lm == 'char':
    first = ALPHABET[y0[0]] if y0 else '</s>'
    lm.logp['<s>', first] -= 6.0
  else:
    lm.words.discard(''.join(ALPHABET[i] for i in y0).split(' ')[0])
  alpha, beta = 1.0, 0.7
  fused = {y: fused_objective(y, v, lm, alpha, beta) for y, v in exact.items()}
  y_fused = max(fused, key=fused.get)
  assert y_fused != y0
  got = decoding.prefix_beam_search(lp, full_width(5, 4), lm=lm, alphabet=ALPHABET, alpha=alpha, beta=beta)
  assert got[0][0] == y_fused
  assert len(got) == len(fused)
  for y, s in got:
    assert s == pytest.approx(fused[y], abs=1e-9)
  parts = decoding.prefix_beam_search_with_scores(lp, full_width(5, 4), lm=lm, alphabet=ALPHABET, alpha=alpha,
                                                  beta=beta, n_best=3)
  for y, s, ctc_logp, lm_logp, words in parts:
    assert ctc_logp == pytest.approx(exact[y], abs=1e-9)
    assert s == pytest.approx(ctc_logp + alpha * lm_logp + beta * words, abs=1e-12)


def dense_table(lm: BigramCharLM) -> np.ndarray:
  """The reference bigram as a DenseCharLM table: index 0 = <s> as context and </s> as prediction."""
  table = np.zeros((4, 4))
  for i, prev in enumerate(['<s>'] + ALPHABET[1:]):
    for j, nxt in enumerate(['</s>'] + ALPHABET[1:]):
      table[i, j] = lm.logp[prev, nxt]
  return table


def test_dense_char_lm_adapter_equals_the_reference_lm():
  rng = np.random.default_rng(40)
  ref = BigramCharLM(rng, 'ab ')
  dense = decoding.DenseCharLM(dense_table(ref), ALPHABET)
  assert isinstance(dense, decoding.LanguageModel)
  lp = random_log_probs(rng, 5, 4)
  a = decoding.prefix_beam_search(lp, 6, lm=ref, alphabet=ALPHABET, alpha=0.8, beta=0.4)
  b = decoding.prefix_beam_search(lp, 6, lm=dense, alphabet=ALPHABET, alpha=0.8, beta=0.4)
  assert [y for y, _ in a] == [y for y, _ in b]
  np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-12)


def test_pruning_threshold():
  lp = random_log_probs(np.random.default_rng(50), 6, 4)
  plain = decoding.prefix_beam_search(lp, 5)
  assert decoding.prefix_beam_search(lp, 5, prune_log_prob=-1e9) == plain
  pruned = decoding.prefix_beam_search(lp, 5, prune_log_prob=math.log(0.2))
  exact = exact_labellings(lp)
  assert all(s <= exact[y] + 1e-12 for y, s in pruned)


def _host_results(lp, lengths, beam, n_best, table, alpha, beta, space_id):
  out = []
  for b in range(lp.shape[0]):
    lm = decoding.DenseCharLM(table, ALPHABET + ['c']) if table is not None else None
    out.append(decoding.prefix_beam_search(lp[b], beam, length=int(lengths[b]), n_best=n_best, lm=lm,
                                           alphabet=ALPHABET + ['c'], alpha=alpha, beta=beta, space_id=space_id))
  return out


@pytest.mark.parametrize('order', [None, 2, 3])
def test_batched_jit_search_equals_host_search(order):
  rng = np.random.default_rng(60 + (order or 0))
  batch, num_frames, num_classes, beam, n_best = 5, 7, 5, 3, 2
  lp = random_log_probs(rng, batch * num_frames, num_classes, scale=2.0).reshape(batch, num_frames, num_classes)
  lp = lp.astype(np.float32)
  lengths = np.array([7, 4, 7, 1, 6])
  table = None if order is None else log_softmax(rng.normal(size=(num_classes,) * order) * 1.5)
  alpha, beta = (0.0, 0.5) if order is None else (0.8, 0.6)
  ids, lens, scores = decoding.batched_prefix_beam_search(lp, lengths, beam_width=beam, lm_table=table, alpha=alpha,
                                                          beta=beta, space_id=3, n_best=n_best)
  assert ids.shape == (batch, n_best, num_frames) and lens.shape == scores.shape == (batch, n_best)
  host = _host_results(lp, lengths, beam, n_best, table, alpha, beta, 3)
  for b in range(batch):
    for i, (y, s) in enumerate(host[b]):
      assert tuple(np.asarray(ids[b, i, :lens[b, i]]).tolist()) == y
      assert float(scores[b, i]) == pytest.approx(s, abs=1e-4)
      assert np.all(np.asarray(ids[b, i, lens[b, i]:]) == 0)
    assert all(float(scores[b, i]) == -np.inf for i in range(len(host[b]), n_best))


def test_batched_jit_search_with_full_beam_is_exact():
  rng = np.random.default_rng(70)
  lp = random_log_probs(rng, 8, 3, scale=1.5).reshape(2, 4, 3).astype(np.float32)
  ids, lens, scores = decoding.batched_prefix_beam_search(lp, np.array([4, 3]), beam_width=full_width(4, 3),
                                                          n_best=6)
  for b, t in enumerate((4, 3)):
    exact = sorted(exact_labellings(lp[b, :t].astype(np.float64)).items(), key=lambda kv: -kv[1])[:6]
    for i, (y, v) in enumerate(exact):
      assert float(scores[b, i]) == pytest.approx(v, abs=1e-5)
      assert tuple(np.asarray(ids[b, i, :lens[b, i]]).tolist()) == y


def test_bad_arguments_raise_user_errors():
  lp = random_log_probs(np.random.default_rng(0), 3, 4)
  with pytest.raises(UserError, match='beam_width'):
    decoding.prefix_beam_search(lp, 0)
  with pytest.raises(UserError, match='alphabet'):
    decoding.prefix_beam_search(lp, 2, lm=BigramCharLM(np.random.default_rng(0), 'ab '))
  with pytest.raises(UserError, match='length'):
    decoding.best_path(lp, length=9)
  with pytest.raises(UserError, match='n_best'):
    decoding.batched_prefix_beam_search(lp[None], np.array([3]), beam_width=2, n_best=3)
  with pytest.raises(UserError, match='table'):
    decoding.DenseCharLM(np.zeros((4, 3)), ALPHABET)
  with pytest.raises(ValueError):
    decoding.best_path(lp[None])
