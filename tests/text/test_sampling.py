"""Greedy decoding and sampling: greedy == a NumPy argmax chain, sampling at T → 0 == greedy, top-k never leaves
the top k, sample frequencies match softmax(logits/T) (and the top-k / nucleus renormalisations) by a chi-square
test, EOS handling, the streaming generator, UserErrors, and scheduled sampling's ε_i against Bengio et al.'s
formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.text import sampling as S

BOS, EOS, PAD = 1, 2, 0
MAX_LEN, VOCAB, BATCH = 8, 6, 5
RNG = np.random.default_rng(0)
TABLES = (RNG.normal(size=(BATCH, MAX_LEN + 1, VOCAB, VOCAB)) * 2).astype(np.float32)
TABLES[..., EOS] += np.linspace(-2, 1.5, BATCH)[:, None, None]            # some rows end early, some never


def step_fn(last, st):
  """Toy decoder: logits = TABLES[example, position, last token] (log-probs depend on the prefix)."""
  logits = jnp.asarray(TABLES)[st['example'], st['position'], last]
  return logits, {'example': st['example'], 'position': st['position'] + 1}


INIT = {'example': jnp.arange(BATCH), 'position': jnp.zeros(BATCH, jnp.int32)}
KW = dict(batch_size=BATCH, max_len=MAX_LEN, bos_id=BOS, eos_id=EOS)


def np_log_softmax(x):
  x = x.astype(np.float64)
  return x - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)) - x.max(-1, keepdims=True)


def np_greedy(b):
  last, seq, total = BOS, [], 0.0
  for pos in range(MAX_LEN):
    lp = np_log_softmax(TABLES[b, pos, last])
    tok = int(np.argmax(lp))
    seq.append(tok)
    total += lp[tok]
    last = tok
    if tok == EOS:
      break
  return seq, total


@pytest.fixture(scope='module')
def greedy():
  return [np.asarray(a) for a in jax.jit(lambda s: S.greedy_decode(step_fn, s, **KW))(INIT)]


def test_greedy_is_the_argmax_chain(greedy):
  seqs, lengths, logps = greedy
  ended = 0
  for b in range(BATCH):
    seq, total = np_greedy(b)
    assert list(seqs[b, :lengths[b]]) == seq
    assert np.all(seqs[b, lengths[b]:] == PAD)
    assert logps[b] == pytest.approx(total, abs=1e-4)
    ended += seq[-1] == EOS
  assert 0 < ended < BATCH                                            # both cases are exercised


def test_sampling_at_low_temperature_is_greedy(greedy):
  f = jax.jit(lambda s, k: S.sample_decode(step_fn, s, k, temperature=1e-4, **KW))
  for seed in range(3):
    seqs, lengths, logps = (np.asarray(a) for a in f(INIT, jax.random.key(seed)))
    np.testing.assert_array_equal(seqs, greedy[0])
    np.testing.assert_array_equal(lengths, greedy[1])
    np.testing.assert_allclose(logps, greedy[2], atol=1e-4)


def test_sampled_sequences_are_well_formed():
  seqs, lengths, logps = (np.asarray(a) for a in jax.jit(
      lambda s, k: S.sample_decode(step_fn, s, k, temperature=1.3, top_k=4, **KW))(INIT, jax.random.key(5)))
  for b in range(BATCH):
    seq = list(seqs[b, :lengths[b]])
    assert EOS not in seq[:-1] and (seq[-1] == EOS or len(seq) == MAX_LEN)
    assert np.all(seqs[b, lengths[b]:] == PAD)
    last, total = BOS, 0.0                                            # log_probs: the model's, untempered
    for pos, tok in enumerate(seq):
      total += np_log_softmax(TABLES[b, pos, last])[tok]
      last = tok
    assert logps[b] == pytest.approx(total, abs=1e-4)


N_DRAWS = 20_000
LOGITS = np.array([1.0, 0.2, -0.5, 2.0, 0.0, -1.5, 1.2, 0.7], np.float32)


def np_softmax(x):
  e = np.exp(x - x.max())
  return e / e.sum()


def np_expected(temperature, top_k=None, top_p=None):
  """softmax(logits/T), restricted to the top k and/or the smallest set of mass ≥ p, renormalised."""
  p = np_softmax(LOGITS.astype(np.float64) / temperature)
  order = np.argsort(-p)
  keep = np.zeros(len(p), bool)
  keep[order[:top_k or len(p)]] = True
  if top_p is not None:
    q = np.where(keep, p, 0) / np.where(keep, p, 0).sum()
    cum = 0.0
    nucleus = np.zeros(len(p), bool)
    for i in order:
      if keep[i] and cum < top_p:
        nucleus[i] = True
        cum += q[i]
    keep = nucleus
  p = np.where(keep, p, 0)
  return p / p.sum()


@pytest.mark.parametrize('temperature, top_k, top_p', [(1.0, None, None), (0.6, None, None), (2.0, 3, None),
                                                       (1.0, None, 0.8), (1.5, 5, 0.7)])
def test_sample_frequencies_match_the_distribution(temperature, top_k, top_p):
  chi2 = pytest.importorskip('scipy.stats').chi2
  logits = jnp.broadcast_to(jnp.asarray(LOGITS), (N_DRAWS, len(LOGITS)))
  draws = np.asarray(S.sample_logits(jax.random.key(42), logits, temperature=temperature, top_k=top_k, top_p=top_p))
  counts = np.bincount(draws, minlength=len(LOGITS))
  expected = np_expected(temperature, top_k, top_p) * N_DRAWS
  assert np.all(counts[expected == 0] == 0)                           # never outside the top-k / nucleus
  support = expected > 0
  stat = (((counts - expected) ** 2)[support] / expected[support]).sum()
  assert stat < chi2.ppf(0.999, support.sum() - 1), (counts, expected)


def test_top_k_never_leaves_the_top_k():
  logits = jnp.asarray(RNG.normal(size=(64, 20)).astype(np.float32))
  top3 = np.argsort(-np.asarray(logits), axis=1)[:, :3]
  for seed in range(5):
    draws = np.asarray(S.sample_logits(jax.random.key(seed), logits, temperature=3.0, top_k=3))
    assert all(d in row for d, row in zip(draws, top3))


def test_stream_sample_yields_the_greedy_continuation_of_a_prime():
  b = 0
  init = {'example': jnp.array([b]), 'position': jnp.zeros(1, jnp.int32)}
  prime = [4, 3]
  out = list(S.stream_sample(step_fn, init, jax.random.key(0), max_new_tokens=MAX_LEN - 3, prime=prime, bos_id=BOS,
                             eos_id=EOS, temperature=1e-4))
  last, want = prime[-1], []                        # BOS, 4, 3 are read at positions 0, 1, 2: the first sample
  for pos in range(2, 2 + MAX_LEN - 3):              # comes from position 2's distribution
    tok = int(np.argmax(TABLES[b, pos, last]))
    if tok == EOS:
      break
    want.append(tok)
    last = tok
  assert out == want
  gen = S.stream_sample(step_fn, init, jax.random.key(0), max_new_tokens=2, prime=prime, temperature=1.0)
  assert len(list(gen)) == 2 and hasattr(gen, '__next__')


def test_bad_sampling_options_are_user_errors():
  logits = jnp.zeros((1, 4))
  for kw in ({'temperature': 0.0}, {'temperature': -1.0}, {'top_k': 0}, {'top_p': 0.0}, {'top_p': 1.5}):
    with pytest.raises(UserError):
      S.sample_logits(jax.random.key(0), logits, **kw)
  with pytest.raises(UserError, match='temperature'):
    S.sample_decode(step_fn, INIT, jax.random.key(0), temperature=0, **KW)
  with pytest.raises(UserError):
    next(S.stream_sample(step_fn, INIT, jax.random.key(0), max_new_tokens=3))   # no prime and no BOS


def test_teacher_forcing_probability_formulas():
  """Bengio et al. 2015, §2.4: ε_i = max(ε, k − c·i); ε_i = k^i; ε_i = k/(k + exp(i/k))."""
  for i in (0, 1, 10, 500, 4000, 20_000):
    assert float(S.teacher_forcing_probability(i, 'linear', k=1.0, c=1e-4, epsilon=0.1)) == pytest.approx(
        max(0.1, 1.0 - 1e-4 * i), rel=1e-6)
    assert float(S.teacher_forcing_probability(i, 'exponential', k=0.999)) == pytest.approx(0.999 ** i, rel=1e-4)
    assert float(S.teacher_forcing_probability(i, 'inverse_sigmoid', k=500.0)) == pytest.approx(
        500 / (500 + math.exp(i / 500)), rel=1e-5)
  steps = jnp.arange(0, 5000, 100)
  for kind, kw in (('linear', dict(k=1.0, c=2e-4)), ('exponential', dict(k=0.999)), ('inverse_sigmoid', dict(k=300))):
    eps = np.asarray(jax.jit(lambda s: S.teacher_forcing_probability(s, kind, **kw))(steps))
    assert np.all(np.diff(eps) <= 0) and np.all((eps >= 0) & (eps <= 1))   # decays, stays a probability
  for kind, kw in (('linear', dict(k=1.0, c=-1.0)), ('linear', dict(k=1.0, c=1e-3, epsilon=1.0)),
                   ('exponential', dict(k=1.0)), ('inverse_sigmoid', dict(k=0.5)), ('cosine', dict(k=1.0))):
    with pytest.raises(UserError):
      S.teacher_forcing_probability(3, kind, **kw)
