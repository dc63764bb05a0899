"""WER / CER (jaxdl.speech.error_rates) against an independent NumPy Levenshtein distance."""
from __future__ import annotations

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.speech.error_rates import ErrorRate, cer, wer


def levenshtein(ref: list, hyp: list) -> int:
  """Edit distance by the textbook dynamic programme, one row at a time (NumPy)."""
  prev = np.arange(len(hyp) + 1)
  for i, r in enumerate(ref, 1):
    cur = np.empty_like(prev)
    cur[0] = i
    for j, h in enumerate(hyp, 1):
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
    prev = cur
  return int(prev[-1])


def random_text(rng, alphabet: str, max_len: int, min_len: int = 0) -> str:
  return ''.join(rng.choice(list(alphabet), size=rng.integers(min_len, max_len + 1)))


def check_counts(out: ErrorRate, refs: list[list], hyps: list[list]):
  dist = sum(levenshtein(r, h) for r, h in zip(refs, hyps))
  n_ref, n_hyp = sum(map(len, refs)), sum(map(len, hyps))
  assert out.errors == out.substitutions + out.deletions + out.insertions == dist
  assert out.reference_length == out.hits + out.substitutions + out.deletions == n_ref
  assert out.hits + out.substitutions + out.insertions == n_hyp     # every hypothesis token is aligned once
  assert out.rate == pytest.approx(dist / n_ref, rel=1e-12)
  assert float(out) == out.rate


def test_cer_matches_numpy_levenshtein_on_random_strings():
  rng = np.random.default_rng(0)
  for _ in range(20):
    refs = [random_text(rng, 'abc d', 12, 1).strip() or 'a' for _ in range(rng.integers(1, 5))]
    hyps = [random_text(rng, 'abcd ', 12).strip() for _ in refs]
    out = cer(refs, hyps)
    check_counts(out, [list(r) for r in refs], [list(h) for h in hyps])
    assert out.utterances == len(refs)


def test_wer_matches_numpy_levenshtein_on_random_word_strings():
  rng = np.random.default_rng(1)
  words = ['the', 'cat', 'sat', 'on', 'a', 'mat']
  for _ in range(20):
    refs = [' '.join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(rng.integers(1, 5))]
    hyps = [' '.join(rng.choice(words, size=rng.integers(0, 8))) for _ in refs]
    check_counts(wer(refs, hyps), [r.split() for r in refs], [h.split() for h in hyps])


def test_corpus_rate_is_ratio_of_sums_not_mean_of_rates():
  refs = ['a b', 'c d e f g h i j']
  hyps = ['x b', 'c d e f g h i j']            # 1 error in 2 words, 0 in 8
  out = wer(refs, hyps)
  assert out.rate == pytest.approx(1 / 10)
  mean_of_rates = np.mean([wer(r, h).rate for r, h in zip(refs, hyps)])
  assert mean_of_rates == pytest.approx(0.25)
  assert out.rate != pytest.approx(mean_of_rates)
  c = cer(refs, hyps)
  assert c.rate == pytest.approx(1 / (3 + 15))   # characters with spaces: 'a b' has 3, the other 15


def test_empty_hypothesis_counts_every_reference_token_as_deleted():
  out = wer(['one two three', 'four'], ['', 'four'])
  assert (out.deletions, out.substitutions, out.insertions, out.reference_length) == (3, 0, 0, 4)
  assert out.rate == pytest.approx(3 / 4)
  assert cer('abc', '').rate == 1.0
  assert wer('a', 'b c d').rate == 3.0          # insertions can push a rate above 1


def test_whitespace_handling():
  assert wer('a\tb  c', ' a b c ').errors == 0   # words split on any whitespace
  assert cer(' ab ', 'ab').errors == 0          # ends stripped
  assert cer('a b', 'ab').deletions == 1        # inner spaces are characters


@pytest.mark.parametrize('refs, hyps', [(['a', ''], ['a', 'b']), (['  '], ['x']), ([], [])])
def test_empty_references_are_a_user_error(refs, hyps):
  with pytest.raises(UserError) as e:
    wer(refs, hyps)
  assert '\n' not in str(e.value)
  with pytest.raises(UserError):
    cer(refs, hyps)


def test_mismatched_lengths_and_types():
  with pytest.raises(UserError, match='2 references but 1 hypotheses'):
    wer(['a', 'b'], ['a'])
  with pytest.raises(TypeError):
    cer(['a'], [None])
