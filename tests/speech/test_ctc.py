"""CTC: collapse map, feasibility bound, alpha recursion vs brute force vs optax, and the safe training loss (S1)."""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl.errors import UserError
from jaxdl.speech import ctc

ALPHABET = '-abc'   # '-' is the blank (id 0)


def ids(s: str) -> list[int]:
  return [ALPHABET.index(ch) for ch in s]


def text(t) -> str:
  return ''.join(ALPHABET[i] for i in t)


def np_log_softmax(x):
  x = np.asarray(x, np.float64)
  m = x.max(-1, keepdims=True)
  return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def reference_log_prob(log_probs, labels) -> float:
  """Independent NumPy brute force: log Σ over every alignment whose collapse is `labels` (own collapse code)."""
  lp = np.asarray(log_probs, np.float64)
  target = tuple(labels)
  total = -math.inf
  for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    if tuple(k for k in merged if k != 0) == target:
      total = np.logaddexp(total, sum(lp[t, k] for t, k in enumerate(path)))
  return float(total)


collapse_padded = jax.jit(ctc.collapse_padded)   # one compilation for all the (T = 12) examples


@pytest.mark.parametrize('alignment, expected', [
    ('aa-ab--b', 'aabb'),    # the blank keeps the two a's apart; so does the one between the b's
    ('-a-a-', 'aa'),         # blank first, between and last
    ('aaaa', 'a'),           # repeats merge
    ('----', ''),
    ('', ''),
    ('ab-ba', 'abba'),
    ('abba', 'aba'),         # repeats are removed BEFORE blanks: no blank, so "bb" merges
    ('-aa--b-bbc', 'abbc'),
    ('c-cc--c', 'ccc'),
])
def test_collapse_examples(alignment, expected):
  assert text(ctc.collapse(ids(alignment))) == expected
  padded = ids(alignment) + [1, 1, 2, 2, 3, 3][:12 - len(alignment)] + [1] * 6   # garbage in the padding
  pads = [0.0] * len(alignment) + [1.0] * (12 - len(alignment))
  out, out_pad = collapse_padded(jnp.array(padded[:12]), jnp.array(pads))
  n = int(np.sum(np.asarray(out_pad) == 0))
  assert text(np.asarray(out)[:n]) == expected
  assert np.all(np.asarray(out)[n:] == 0)


def test_collapse_padded_matches_host_on_random_batches():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 4, size=(32, 9))
  x[:, ::3] = np.where(rng.random((32, 3)) < 0.5, x[:, 1::3], x[:, ::3])   # plenty of repeats
  lengths = rng.integers(0, 10, size=32)
  pads = (np.arange(9)[None] >= lengths[:, None]).astype(np.float32)
  out, out_pad = collapse_padded(jnp.array(x), jnp.array(pads))
  for b in range(32):
    want = ctc.collapse(x[b, :lengths[b]])
    assert int(np.sum(np.asarray(out_pad[b]) == 0)) == len(want)
    assert tuple(np.asarray(out[b, :len(want)]).tolist()) == want


def test_min_frames_is_the_shortest_feasible_length():
  # Brute force: the labellings reachable with T frames are the collapses of all 3^T alignments.
  reachable = {t: {ctc.collapse(p) for p in itertools.product(range(3), repeat=t)} for t in range(1, 8)}
  labels = [y for n in range(1, 5) for y in itertools.product((1, 2), repeat=n)]
  padded = np.array([list(y) + [1] * (4 - len(y)) for y in labels])
  pads = (np.arange(4)[None] >= np.array([len(y) for y in labels])[:, None]).astype(np.float32)
  batched = np.asarray(ctc.min_frames(jnp.array(padded), jnp.array(pads)))
  for y, m in zip(labels, batched):
    shortest = min(t for t in reachable if y in reachable[t])
    assert m == shortest == int(ctc.min_frames(jnp.array(y))), y


# Problems (T, labels): repeats, empty label, T = L exactly, T = min_frames exactly, infeasible ones.
PROBLEMS = [(5, (1, 2)), (5, (1, 1)), (4, ()), (3, (1, 2, 1)), (3, (1, 1)), (6, (2, 2, 2)), (2, (1, 1)),
            (1, (3,)), (6, (1, 2, 3, 1)), (4, (3, 3)), (2, (1, 2, 3)), (1, ())]
T_MAX, N_MAX, K = 6, 4, 4


def _batch(rng):
  logits = rng.normal(size=(len(PROBLEMS), T_MAX, K)).astype(np.float32) * 1.5
  labels = rng.integers(1, K, size=(len(PROBLEMS), N_MAX))               # random padding values
  lpad = np.ones((len(PROBLEMS), N_MAX), np.float32)
  fpad = np.ones((len(PROBLEMS), T_MAX), np.float32)
  for b, (t, y) in enumerate(PROBLEMS):
    labels[b, :len(y)] = y
    lpad[b, :len(y)] = 0
    fpad[b, :t] = 0
  return logits, fpad, labels, lpad


def test_alpha_recursion_equals_brute_force_and_optax():
  logits, fpad, labels, lpad = _batch(np.random.default_rng(1))
  log_probs = jax.nn.log_softmax(jnp.asarray(logits), -1)
  log_p, table = ctc.ctc_alpha_batch(log_probs, jnp.asarray(fpad), jnp.asarray(labels), jnp.asarray(lpad))
  optax_loss = np.asarray(jax.jit(optax.ctc_loss)(jnp.asarray(logits), jnp.asarray(fpad), jnp.asarray(labels),
                                         jnp.asarray(lpad)))
  ours = evaluate(logits, fpad, labels, lpad)['none']
  for b, (t, y) in enumerate(PROBLEMS):
    ref = reference_log_prob(np_log_softmax(logits[b, :t]), y)
    assert ctc.ctc_brute_force_log_prob(np_log_softmax(logits[b, :t]), y) == pytest.approx(ref, abs=1e-12)
    if ref == -math.inf:
      assert float(log_p[b]) == -np.inf
      assert float(ours['feasible'][b]) == 0.0 and float(ours['loss'][b]) == 0.0
      assert optax_loss[b] > 1e4          # optax's −log_epsilon stand-in for +inf
    else:
      assert float(log_p[b]) == pytest.approx(ref, abs=2e-5)
      assert -optax_loss[b] == pytest.approx(ref, abs=2e-5)
      assert float(ours['loss'][b]) == pytest.approx(-ref, abs=2e-5)
      assert float(ours['feasible'][b]) == 1.0
  assert float(ours['num_infeasible']) == sum(t < len(y) + sum(a == b for a, b in zip(y, y[1:]))
                                              for t, y in PROBLEMS)


def test_alpha_table_entries_are_prefix_probabilities():
  """α_t(2l) + α_t(2l−1) = p(y_{1:l} | x_{1:t}) and the final α split by last symbol, all by brute force."""
  rng = np.random.default_rng(2)
  lp = np_log_softmax(rng.normal(size=(5, 3)) * 2)
  y = (1, 1, 2)
  log_p, alpha = ctc.ctc_alpha(jnp.asarray(lp, jnp.float32), jnp.array(y))
  alpha = np.asarray(alpha, np.float64)
  assert alpha.shape == (5, 7)
  assert float(log_p) == pytest.approx(reference_log_prob(lp, y), abs=2e-5)
  for t in range(1, 6):
    for n in range(len(y) + 1):
      got = alpha[t - 1, 2 * n] if n == 0 else np.logaddexp(alpha[t - 1, 2 * n], alpha[t - 1, 2 * n - 1])
      want = reference_log_prob(lp[:t], y[:n])
      assert (got == want == -np.inf) or got == pytest.approx(want, abs=2e-5), (t, n)
  # α_T(|y'|) sums the alignments ending in blank, α_T(|y'| − 1) those ending in the last label.
  ends = {0: -np.inf, 2: -np.inf}
  for path in itertools.product(range(3), repeat=5):
    if ctc.collapse(path) == y:
      ends[path[-1]] = np.logaddexp(ends[path[-1]], lp[np.arange(5), list(path)].sum())
  assert alpha[-1, 6] == pytest.approx(ends[0], abs=2e-5)
  assert alpha[-1, 5] == pytest.approx(ends[2], abs=2e-5)


def test_brute_force_refuses_large_problems():
  with pytest.raises(ValueError, match='alignments'):
    ctc.ctc_brute_force_log_prob(np.zeros((30, 5)), (1,))


@pytest.fixture
def x64():
  previous = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', previous)


def test_gradient_matches_central_differences(x64):
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(2, 4, 3))
  fpad = np.array([[0, 0, 0, 0], [0, 0, 0, 1.0]])
  labels = np.array([[1, 1], [2, 0]])
  lpad = np.array([[0, 0], [0, 1.0]])
  f = jax.jit(lambda x: ctc.ctc_loss(x, fpad, labels, lpad, reduction='per_token')['reduced'])
  grad = np.asarray(jax.grad(f)(jnp.asarray(logits)))
  assert grad.dtype == np.float64
  h = 1e-6
  fd = np.zeros_like(logits)
  for i in np.ndindex(logits.shape):
    e = np.zeros_like(logits)
    e[i] = h
    fd[i] = (float(f(logits + e)) - float(f(logits - e))) / (2 * h)
  np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
  assert np.all(grad[1, 3] == 0)          # the padded frame has no influence


REDUCED = ('mean', 'sum', 'per_token')


@jax.jit
def evaluate(logits, fpad, labels, lpad):
  """ctc_loss's outputs ('none') and value_and_grad of every scalar reduction, in one compiled program."""
  out = {r: jax.value_and_grad(lambda x, r=r: ctc.ctc_loss(x, fpad, labels, lpad, reduction=r)['reduced'])(logits)
         for r in REDUCED}
  out['none'] = ctc.ctc_loss(logits, fpad, labels, lpad, reduction='none')
  return out


def test_infeasible_utterances_are_masked_with_finite_zero_gradients():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(4, 3, 4)).astype(np.float32)
  labels = np.array([[1, 2, 0, 0], [1, 1, 0, 0], [2, 3, 1, 2], [3, 0, 0, 0]])
  lpad = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 1, 1]], np.float32)
  fpad = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]], np.float32)
  # rows 1 (a repeat needs 3 frames, it has 2) and 2 (4 labels, 3 frames) are infeasible
  logits[2] = np.nan                       # nothing from a masked row may leak (double-where)
  keep = np.array([0, 3])
  full = evaluate(logits, fpad, labels, lpad)
  alone = evaluate(logits[keep], fpad[keep], labels[keep], lpad[keep])
  for r in REDUCED:
    (value, grad), (value_alone, grad_alone) = full[r], alone[r]
    grad = np.asarray(grad)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    assert np.all(grad[[1, 2]] == 0)
    assert float(value) == pytest.approx(float(value_alone), rel=1e-6)
    np.testing.assert_allclose(grad[keep], np.asarray(grad_alone), rtol=1e-6, atol=1e-7)
  out = full['none']
  np.testing.assert_array_equal(np.asarray(out['feasible']), [1, 0, 0, 1])
  assert float(out['num_infeasible']) == 2
  np.testing.assert_array_equal(np.asarray(out['loss'])[[1, 2]], 0)
  np.testing.assert_array_equal(np.asarray(out['num_tokens']), [2, 0, 0, 1])


def test_all_infeasible_batch_gives_zero_loss_and_zero_gradient():
  logits = np.random.default_rng(5).normal(size=(2, 2, 2)).astype(np.float32)
  labels = np.ones((2, 3), np.int32)                    # "aaa" needs 5 frames, "aa" 3; there are 2
  out = evaluate(logits, np.zeros((2, 2), np.float32), labels, np.array([[0, 0, 0], [0, 0, 1]], np.float32))
  assert float(out['none']['num_infeasible']) == 2
  for r in REDUCED:
    value, grad = out[r]
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0)


def test_reductions_against_brute_force():
  logits, fpad, labels, lpad = _batch(np.random.default_rng(6))
  nll, tokens, feasible = [], [], []
  for b, (t, y) in enumerate(PROBLEMS):
    ref = reference_log_prob(np_log_softmax(logits[b, :t]), y)
    feasible.append(ref > -math.inf)
    nll.append(-ref if feasible[-1] else 0.0)
    tokens.append(len(y) if feasible[-1] else 0)
  nll = np.array(nll)
  num_feasible = sum(feasible)
  want = {'none': nll, 'sum': nll.sum(), 'mean': nll.sum() / num_feasible, 'per_token': nll.sum() / sum(tokens)}
  out = evaluate(logits, fpad, labels, lpad)
  for reduction, value in want.items():
    got = np.asarray(out[reduction][0] if reduction != 'none' else out['none']['reduced'])
    np.testing.assert_allclose(got, value, rtol=1e-5, atol=2e-5)


def test_loss_is_clamped_at_zero_for_confident_alignments():
  # optax issue #1771: three alignments of "a" with p(blank) = sigmoid(-17) per frame; −log(1 − p²) ≈ 1.7e-15,
  # but float32 optax returns about −8e-8.
  logits = np.array([[[0.0, 17.0], [0.0, 17.0]], [[0.0, -17.0], [0.0, -17.0]]], np.float32)
  out = evaluate(logits, np.zeros((2, 2), np.float32), np.ones((2, 3), np.int32),
                 np.array([[0, 1, 1], [0, 1, 1]], np.float32))
  assert np.all(np.isfinite(np.asarray(out['sum'][1])))
  losses = out['none']['loss']
  assert 0.0 <= float(losses[0]) < 1e-6
  # Ordinary losses are untouched by the clamp.
  want = -reference_log_prob(np_log_softmax(logits[1]), (1,))
  assert float(losses[1]) == pytest.approx(want, rel=1e-5)
  assert float(out['sum'][0]) == pytest.approx(float(losses[0]) + want, rel=1e-5)


def test_bad_user_input_raises_user_error():
  logits = np.zeros((1, 4, 3), np.float32)
  fpad = np.zeros((1, 4), np.float32)
  with pytest.raises(UserError, match='blank'):
    ctc.ctc_loss(logits, fpad, np.array([[1, 0]]), np.zeros((1, 2)))
  with pytest.raises(UserError, match='right-padded'):
    ctc.ctc_loss(logits, fpad, np.array([[1, 2]]), np.array([[1.0, 0.0]]))
  with pytest.raises(UserError, match='outside'):
    ctc.ctc_loss(logits, fpad, np.array([[1, 5]]), np.zeros((1, 2)))
  with pytest.raises(UserError, match='reduction'):
    ctc.ctc_loss(logits, fpad, np.array([[1, 2]]), np.zeros((1, 2)), reduction='avg')
  with pytest.raises(ValueError):
    ctc.ctc_loss(logits, fpad, np.array([1, 2]), np.zeros((2,)))
