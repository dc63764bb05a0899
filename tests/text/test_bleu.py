"""Corpus BLEU via sacrebleu against a plain-Python transcription of Papineni et al. (2002): clipped n-gram
precisions summed over the corpus, brevity penalty from the closest reference lengths; identical corpora score
100; token lists and strings agree; exact-match rate."""
import collections
import math

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.text import bleu


def papineni_bleu(hyps, refs, max_n=4):
  """BLEU = BP · exp(Σ_n (1/N) log p_n) (Papineni et al. 2002, §2.1-2.3), hyps: token lists, refs: lists of
  reference token lists. p_n = Σ_sent Σ_ngram min(count, max_ref count) / Σ_sent Σ_ngram count; r sums the
  reference length closest to each hypothesis length (the shorter on ties), c the hypothesis lengths."""
  def ngrams(toks, n):
    return collections.Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
  matches, totals = [0] * max_n, [0] * max_n
  c = r = 0
  for hyp, rs in zip(hyps, refs):
    c += len(hyp)
    r += min((abs(len(x) - len(hyp)), len(x)) for x in rs)[1]
    for n in range(1, max_n + 1):
      h = ngrams(hyp, n)
      max_ref = collections.Counter()
      for x in rs:
        for g, k in ngrams(x, n).items():
          max_ref[g] = max(max_ref[g], k)
      matches[n - 1] += sum(min(k, max_ref[g]) for g, k in h.items())
      totals[n - 1] += sum(h.values())
  precisions = [m / t for m, t in zip(matches, totals)]
  bp = 1.0 if c > r else math.exp(1 - r / c)
  return 100 * bp * math.exp(sum(math.log(p) for p in precisions) / max_n), precisions, bp


HYPS = [['the', 'cat', 'on', 'the', 'mat'],
        ['there', 'is', 'a', 'cat', 'on', 'the', 'mat'],
        ['a', 'dog', 'sat', 'on', 'the', 'log', 'today']]
REFS = [[['the', 'cat', 'is', 'on', 'the', 'mat', 'now']],
        [['there', 'is', 'a', 'cat', 'on', 'the', 'mat'], ['a', 'cat', 'is', 'on', 'the', 'mat']],
        [['the', 'dog', 'sat', 'on', 'the', 'log', 'today', 'again'], ['a', 'dog', 'sat', 'on', 'a', 'log']]]


def test_matches_papineni_transcription():
  want, want_p, want_bp = papineni_bleu(HYPS, REFS)
  assert want_bp < 1.0 and min(want_p) < 1.0                         # both effects are exercised
  got = bleu.corpus_bleu(HYPS, REFS)
  assert got.score == pytest.approx(want, abs=1e-6)
  np.testing.assert_allclose(got.precisions, [100 * p for p in want_p], atol=1e-6)
  assert got.brevity_penalty == pytest.approx(want_bp, abs=1e-9)
  assert got.hyp_len == sum(map(len, HYPS))
  assert 'tok:none' in got.signature
  # the same corpus as strings, whitespace-tokenised, and as integer ids
  as_str = bleu.corpus_bleu([' '.join(h) for h in HYPS], [[' '.join(x) for x in rs] for rs in REFS], tokenize='none')
  assert as_str.score == pytest.approx(want, abs=1e-6)
  ids = {w: i for i, w in enumerate(sorted({w for s in HYPS + [x for rs in REFS for x in rs] for w in s}))}
  as_ids = bleu.corpus_bleu([np.array([ids[w] for w in h]) for h in HYPS], [[[ids[w] for w in x] for x in rs]
                                                                           for rs in REFS])
  assert as_ids.score == pytest.approx(want, abs=1e-6)


def test_identical_corpus_scores_100_and_single_references():
  sents = ['a quick brown fox jumps', 'over the lazy dog .', 'hello there my friend']
  assert bleu.corpus_bleu(sents, sents).score == pytest.approx(100.0)
  toks = [s.split() for s in sents]
  assert bleu.corpus_bleu(toks, toks).score == pytest.approx(100.0)
  assert bleu.corpus_bleu(toks, [[t] for t in toks]).score == pytest.approx(100.0)


def test_exact_match_rate():
  assert bleu.exact_match([[1, 2], [3], [4, 5]], [[1, 2], [[9], [3]], [4]]) == pytest.approx(2 / 3)
  assert bleu.exact_match(['a b', 'c '], [['x', 'a b'], 'c']) == 1.0


def test_bad_input_is_a_user_error():
  with pytest.raises(UserError):
    bleu.corpus_bleu(['a b'], ['a b', 'c'])
  with pytest.raises(UserError):
    bleu.corpus_bleu([], [])
  with pytest.raises(UserError):
    bleu.corpus_bleu(['a b'], ['a b'], tokenize='nope')
  with pytest.raises(UserError):
    bleu.corpus_bleu(['a b', ['a', 'b']], ['a b', ['a', 'b']])
  with pytest.raises(UserError):
    bleu.corpus_bleu([['a', 'b']], ['a b'])
