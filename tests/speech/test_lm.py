"""n-gram LMs (jaxdl.speech.lm): modified Kneser-Ney against a direct transcription of Chen & Goodman's formulas
and a hand-worked corpus, normalisation of every context, ARPA (our files and KenLM's format), the dense table."""
from __future__ import annotations

import itertools
import math
import random
import warnings
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.speech.lm import LanguageModel, NGramLM, dense_char_table

LN10 = math.log(10.0)
WORDS = ['the cat sat on the mat', 'the dog sat', 'a cat ran', 'the cat ran far away', 'a dog sat on a mat',
         'the mat', 'a cat sat on the dog']
CHARS = ['abc ab', 'ba', 'a b c', 'cab', 'abba', 'c', 'bca cab', 'aab']


def train(sentences, order, unit, **kw):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')         # discount fallbacks on toy corpora
    return NGramLM.train(sentences, order, unit, **kw)


# --------------------------------------------------------------------------------------------------------------
# An independent reference: the formulas, transcribed directly over Counters of token tuples
# --------------------------------------------------------------------------------------------------------------

class ReferenceKN:
  """Interpolated modified Kneser-Ney, word for word from Chen & Goodman 1998 (with KenLM's single <s> padding)."""

  def __init__(self, sentences, order, unit, vocab=None):
    toks = [list(s) if unit == 'char' else s.split() for s in sentences]
    known = set(vocab) if vocab is not None else {t for s in toks for t in s}
    toks = [[t if t in known else '<unk>' for t in s] for s in toks]
    self.order = order
    self.vocab = sorted(known | {'</s>', '<unk>'})          # what p(.|h) ranges over (not <s>)
    raw = {n: Counter() for n in range(1, order + 1)}
    for s in toks:
      padded = ['<s>'] + s + ['</s>']
      for n in range(1, order + 1):
        for i in range(len(padded) - n + 1):
          g = tuple(padded[i:i + n])
          if g != ('<s>',):
            raw[n][g] += 1
    self.a = {}
    for n in range(1, order + 1):
      if n == order:
        self.a[n] = dict(raw[n])
      else:                                  # continuation count: distinct left neighbours, raw if it starts <s>
        self.a[n] = {g: (c if g[0] == '<s>' else len({h[0] for h in raw[n + 1] if h[1:] == g}))
                     for g, c in raw[n].items()}
    self.d = {n: self.discounts(self.a[n]) for n in range(1, order + 1)}

  @staticmethod
  def discounts(a):
    t = [sum(1 for v in a.values() if v == k) for k in range(5)]
    if not (t[1] and t[2] and t[3]):
      return (0.5, 1.0, 1.5)
    y = t[1] / (t[1] + 2 * t[2])
    d = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
    return d if all(0 <= d[k - 1] <= k for k in (1, 2, 3)) else (0.5, 1.0, 1.5)

  def disc(self, n, count):
    return 0.0 if count == 0 else self.d[n][min(count, 3) - 1]

  def prob(self, h, w):
    h = tuple(h)[-(self.order - 1):] if self.order > 1 else ()
    n = len(h) + 1
    followers = {g[-1]: c for g, c in self.a[n].items() if g[:-1] == h}
    total = sum(followers.values())
    if total == 0:                                           # never a context: back off entirely
      return self.prob(h[1:], w)
    c = followers.get(w, 0)
    gamma = sum(self.disc(n, v) for v in followers.values()) / total
    lower = 1.0 / len(self.vocab) if n == 1 else self.prob(h[1:], w)
    return (c - self.disc(n, c)) / total + gamma * lower


def all_contexts(tokens, order):
  """Every history a model of this order can see: up to n-1 tokens, after <s> or not."""
  for length in range(order):
    for ctx in itertools.product(tokens, repeat=length):
      yield ctx
      if length < order - 1:
        yield ('<s>',) + ctx


# --------------------------------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('unit, sentences, order', [('word', WORDS, 1), ('word', WORDS, 3), ('char', CHARS, 2),
                                                    ('char', CHARS, 4)])
def test_matches_reference_kneser_ney_and_sums_to_one_for_every_context(unit, sentences, order):
  lm = train(sentences, order, unit)
  ref = ReferenceKN(sentences, order, unit)
  for n in range(1, order + 1):
    assert lm.discounts[n - 1] == pytest.approx(ref.d[n], abs=1e-12)
    assert lm.adjusted_counts(n) == ref.a[n]
  targets = [t for t in lm.vocab if t != '<s>']
  assert sorted(targets) == ref.vocab
  unseen = 'zebra' if unit == 'word' else 'z'
  context_tokens = [t for t in ref.vocab if t != '</s>'] + [unseen]
  if order > 3:
    context_tokens = ['a', 'b', ' ', unseen]                 # keep the enumeration small at order 4
  contexts = list(all_contexts(context_tokens, order))
  assert len(contexts) == sum(len(context_tokens) ** n for n in range(order)) * 2 - len(context_tokens) ** (order - 1)
  for ctx in contexts:
    lp = np.array([lm.log_prob(ctx, w) for w in targets])
    assert math.fsum(np.exp(lp)) == pytest.approx(1.0, abs=1e-12), ctx
    want = [ref.prob(['<unk>' if t == unseen else t for t in ctx], w) for w in targets]
    np.testing.assert_allclose(lp, np.log(want), rtol=0, atol=1e-12, err_msg=str(ctx))


def test_hand_worked_bigram_discounts_continuation_counts_and_probabilities():
  # <s> b a </s> | <s> a a </s> | <s> a </s> | <s> b </s>
  lm = NGramLM.train(['b a', 'a a', 'a', 'b'], 2, 'word')
  # Bigram counts: (<s> b) 2, (b a) 1, (a </s>) 3, (<s> a) 2, (a a) 1, (b </s>) 1.
  bigrams = {('<s>', 'b'): 2, ('b', 'a'): 1, ('a', '</s>'): 3, ('<s>', 'a'): 2, ('a', 'a'): 1, ('b', '</s>'): 1}
  assert lm.adjusted_counts(2) == bigrams
  # Continuation counts N1+(• w): a after {<s>, b, a} = 3, b after {<s>} = 1, </s> after {a, b} = 2.
  assert lm.adjusted_counts(1) == {('a',): 3, ('b',): 1, ('</s>',): 2}
  F = Fraction
  # Order 2: t1..t4 = 3, 2, 1, 0 -> Y = 3/7, D1 = 1 - 2Y·2/3 = 3/7, D2 = 2 - 3Y·1/2 = 19/14, D3+ = 3 - 4Y·0 = 3.
  d2 = (F(3, 7), F(19, 14), F(3))
  # Order 1: t1..t4 = 1, 1, 1, 0 -> Y = 1/3, D1 = 1/3, D2 = 1, D3+ = 3.
  d1 = (F(1, 3), F(1), F(3))
  for got, want in zip(lm.discounts, (d1, d2)):
    assert got == pytest.approx([float(x) for x in want], abs=1e-12)
  # Unigrams: Σa = 6, γ = (D1 + D2 + D3)/6 = 13/18, uniform over {a, b, </s>, <unk>}.
  g0 = (d1[0] + d1[1] + d1[2]) / 6
  p1 = {'a': (3 - d1[2]) / 6 + g0 / 4, 'b': (1 - d1[0]) / 6 + g0 / 4, '</s>': (2 - d1[1]) / 6 + g0 / 4,
        '<unk>': g0 / 4}
  assert p1['b'] == F(21, 72) and sum(p1.values()) == 1
  # p(a | b): followers a (1), </s> (1); γ(b) = 2·D1/2.  p(w | <s>): followers b (2), a (2); γ(<s>) = 2·D2/4.
  p_a_b = (1 - d2[0]) / 2 + d2[0] * p1['a']
  p_end_bos = (2 * d2[1] / 4) * p1['</s>']
  p_a_bos = (2 - d2[1]) / 4 + (2 * d2[1] / 4) * p1['a']
  assert p_a_b == F(183, 504)
  for ctx, w, p in [((), 'a', p1['a']), ((), '<unk>', p1['<unk>']), (('b',), 'a', p_a_b),
                    (('<s>',), '</s>', p_end_bos), (('<s>',), 'a', p_a_bos), (('b',), 'b', (2 * d2[0] / 2) * p1['b']),
                    (('b',), 'zebra', (2 * d2[0] / 2) * p1['<unk>'])]:
    assert lm.log_prob(ctx, w) == pytest.approx(math.log(p), abs=1e-12), (ctx, w)


def test_vocab_restriction_maps_other_tokens_to_unk():
  vocab = ['the', 'cat', 'dog', 'sat', 'a']
  lm = train(WORDS, 2, 'word', vocab=vocab)
  ref = ReferenceKN(WORDS, 2, 'word', vocab=vocab)
  assert set(lm.vocab) == set(vocab) | {'<s>', '</s>', '<unk>'}
  assert lm.adjusted_counts(1)[('<unk>',)] == ref.a[1][('<unk>',)] > 0
  for ctx in all_contexts(['the', 'cat', '<unk>', 'mat'], 2):
    for w in ['the', 'cat', 'mat', '<unk>', '</s>']:
      want = ref.prob(['<unk>' if t not in vocab + ['<s>'] else t for t in ctx], '<unk>' if w == 'mat' else w)
      assert lm.log_prob(ctx, w) == pytest.approx(math.log(want), abs=1e-12)


def test_discount_fallback_warns_or_raises():
  with pytest.warns(UserWarning, match='fallback'):
    lm = NGramLM.train(['a b'], 2, 'word')
  assert lm.discounts[1] == (0.5, 1.0, 1.5)
  with pytest.raises(UserError, match='count-of-counts'):
    NGramLM.train(['a b'], 2, 'word', discount_fallback=None)


@pytest.mark.parametrize('kwargs', [dict(order=0), dict(order=2, unit='phone'), dict(order=2.5)])
def test_bad_training_arguments(kwargs):
  with pytest.raises(UserError):
    NGramLM.train(WORDS, **kwargs)
  with pytest.raises(UserError, match='<s>'):
    NGramLM.train(['a <s> b'], 2, 'word')
  with pytest.raises(UserError, match='no training sentences'):
    NGramLM.train([], 2, 'word')


# --------------------------------------------------------------------------------------------------------------
# The decoders' protocol, sentences, perplexity
# --------------------------------------------------------------------------------------------------------------

def test_protocol_states_and_sentence_scores():
  lm = train(CHARS, 3, 'char')
  assert isinstance(lm, LanguageModel) and lm.unit == 'char'
  state = lm.begin()
  assert state == ('<s>',)
  total, history = 0.0, ['<s>']
  for ch in 'cab a':
    lp, state = lm.score(state, ch)
    assert lp == lm.log_prob(tuple(history), ch)
    history.append(ch)
    total += lp
    assert state == tuple(history[-2:]) and hash(state) is not None
  total += lm.end(state)
  assert total == pytest.approx(lm.sentence_log_prob('cab a'), abs=1e-12)
  assert lm.end(state) == lm.log_prob(state, '</s>')
  # The same two last tokens give the same state (and distribution), whatever came before.
  assert lm.score(lm.score(lm.score(lm.begin(), 'a')[1], 'b')[1], 'c')[1] == lm.score(lm.score(
      lm.score(lm.begin(), 'c')[1], 'b')[1], 'c')[1]
  assert lm.log_prob(('a', '<s>', 'b'), 'c') == lm.log_prob(('<s>', 'b'), 'c')   # nothing before <s> counts
  assert lm.log_prob(('c', 'a', 'b'), 'c') == lm.log_prob(('a', 'b'), 'c')        # n-1 = 2 tokens of context
  with pytest.raises(ValueError):
    lm.score(state, '</s>')
  with pytest.raises(ValueError):
    lm.score(state, 'ab')
  with pytest.raises(ValueError):
    lm.log_prob(('a',), '<s>')


def test_perplexity_of_training_text_below_shuffled_text():
  text = ['the cat sat on the mat', 'a dog ran to the cat', 'the mat is on the cat']
  lm = train(text, 4, 'char')
  rng = random.Random(0)
  shuffled = [''.join(rng.sample(s, len(s))) for s in text]
  ppl_train, ppl_shuffled = lm.perplexity(text), lm.perplexity(shuffled)
  assert ppl_train < ppl_shuffled / 2
  # The definition: exp(-Σ log p / N), N = tokens + one </s> per sentence.
  n = sum(len(s) + 1 for s in text)
  assert ppl_train == pytest.approx(math.exp(-sum(lm.sentence_log_prob(s) for s in text) / n), rel=1e-12)
  words = train(text, 2, 'word')
  assert words.perplexity(text) < words.perplexity([' '.join(reversed(s.split())) for s in text])


def test_unknown_characters_score_as_unk_and_perplexity_counts_them_as_documented():
  lm = train(CHARS, 2, 'char')
  assert lm.log_prob(('a',), 'Z') == lm.log_prob(('a',), '<unk>') > -math.inf
  assert lm.log_prob(('Z',), 'a') == lm.log_prob(('<unk>',), 'a') == lm.log_prob((), 'a')   # unseen context
  lp_a = lm.log_prob(('<s>',), 'a')
  lp_z = lm.log_prob(('a',), '<unk>')
  lp_b = lm.log_prob(('<unk>',), 'b')
  lp_end = lm.log_prob(('b',), '</s>')
  assert lm.sentence_log_prob('aZb') == pytest.approx(lp_a + lp_z + lp_b + lp_end, abs=1e-12)
  assert lm.perplexity(['aZb']) == pytest.approx(math.exp(-(lp_a + lp_z + lp_b + lp_end) / 4), rel=1e-12)
  assert lm.perplexity(['aZb'], include_oov=False) == pytest.approx(math.exp(-(lp_a + lp_b + lp_end) / 3),
                                                                    rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# ARPA
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('unit, sentences, order, name', [('char', CHARS + ['a\tb'], 3, 'c.arpa'),
                                                          ('word', WORDS, 3, 'w.arpa.gz')])
def test_arpa_round_trip(tmp_path, unit, sentences, order, name):
  lm = train(sentences, order, unit)
  path = tmp_path / name
  lm.to_arpa(path)
  back = NGramLM.from_arpa(path, unit=unit)
  assert back.order == order and back.ngram_counts == lm.ngram_counts and back.vocab == lm.vocab
  targets = [t for t in lm.vocab if t != '<s>']
  tokens = [t for t in targets if t != '</s>'][:6] + (['z'] if unit == 'char' else ['zebra'])
  worst = 0.0
  for ctx in all_contexts(tokens, order):
    a = np.array([lm.log_prob(ctx, w) for w in targets])
    b = np.array([back.log_prob(ctx, w) for w in targets])
    worst = max(worst, float(np.max(np.abs(a - b))))
    assert math.fsum(np.exp(b)) == pytest.approx(1.0, abs=1e-5)
  assert worst < 1e-5
  if unit == 'char':
    text = path.read_text()
    assert text.startswith('\\data\\\nngram 1=') and '\t<space>' in text and '<U+0009>' in text


# A bigram model in KenLM lmplz's exact ARPA layout (tabs; no backoff field where it is 0; <s> at -99).
KENLM_ARPA = """\\data\\
ngram 1=5
ngram 2=4

\\1-grams:
-1.50515\t<unk>
-99\t<s>\t-0.30103
-0.60206\t</s>
-0.69897\tthe\t-0.15
-0.9\tcat\t-0.25

\\2-grams:
-0.2\t<s> the
-0.3\tthe cat
-0.1\tcat </s>
-1.2\t<s> cat

\\end\\
"""


@pytest.mark.parametrize('bos_prob', ['-99', '0'])
def test_kenlm_format_arpa_loads_and_scores_by_backoff(tmp_path, bos_prob):
  path = tmp_path / 'kenlm.arpa'
  path.write_text(KENLM_ARPA.replace('-99\t<s>', f'{bos_prob}\t<s>'))
  lm = NGramLM.from_arpa(path)
  assert lm.order == 2 and lm.unit == 'word' and lm.ngram_counts == (5, 4)
  assert set(lm.vocab) == {'<s>', '</s>', '<unk>', 'the', 'cat'}
  cases = [(('<s>',), 'the', -0.2),                       # listed
           (('the',), 'cat', -0.3),
           (('the',), '</s>', -0.15 + -0.60206),          # bow(the) · p(</s>)
           (('cat',), 'the', -0.25 + -0.69897),           # bow(cat) · p(the)
           (('the',), 'dog', -0.15 + -1.50515),           # OOV -> <unk>
           (('dog',), 'the', -0.69897),                   # <unk> has no backoff: bow 1
           (('<s>',), '</s>', -0.30103 + -0.60206),
           ((), 'cat', -0.9),
           (('x', 'y', 'the'), 'cat', -0.3)]              # a long context is cut to n-1 = 1 token
  for ctx, w, log10p in cases:
    assert lm.log_prob(ctx, w) == pytest.approx(log10p * LN10, abs=1e-9), (ctx, w)
  assert lm.sentence_log_prob('the cat') == pytest.approx((-0.2 - 0.3 - 0.1) * LN10, abs=1e-9)
  assert lm.perplexity(['the dog cat'], include_oov=False) == pytest.approx(
      10 ** ((0.2 + 0.9 + 0.1) / 3), rel=1e-9)      # the, [dog skipped], cat (<unk> has no bow), </s> (listed)
  no_unk = tmp_path / 'no_unk.arpa'
  no_unk.write_text(KENLM_ARPA.replace('ngram 1=5', 'ngram 1=4').replace('-1.50515\t<unk>\n', ''))
  closed = NGramLM.from_arpa(no_unk)
  assert closed.log_prob(('the',), 'dog') == -math.inf           # no <unk>: an OOV has probability 0
  assert closed.perplexity(['the dog cat'], include_oov=False) == pytest.approx(lm.perplexity(
      ['the dog cat'], include_oov=False), rel=1e-9)
  state = lm.begin()
  lp1, state = lm.score(state, 'cat')
  assert lp1 == pytest.approx(-1.2 * LN10) and lm.end(state) == pytest.approx(-0.1 * LN10)


def test_arpa_variants_verbose_header_space_separated_fields_no_blank_line(tmp_path):
  header = '# Input file: corpus.txt\n# Token count: 9\n# Smoothing: Modified Kneser-Ney\n'   # lmplz --verbose_header
  text = header + KENLM_ARPA.replace('-0.2\t<s> the', '-0.2 <s> the').replace('\n\n\\2-grams', '\n\\2-grams')
  path = tmp_path / 'x.arpa'
  path.write_text(text)
  lm = NGramLM.from_arpa(path)
  assert lm.ngram_counts == (5, 4)
  assert lm.log_prob(('<s>',), 'the') == pytest.approx(-0.2 * LN10)
  assert lm.log_prob(('cat',), 'cat') == pytest.approx((-0.25 - 0.9) * LN10)


def _malformed():
  yield 'not an arpa file\n'
  yield KENLM_ARPA.replace('\\end\\\n', '')                                   # truncated
  yield KENLM_ARPA.replace('ngram 2=4', 'ngram 2=5')                           # counts disagree
  yield KENLM_ARPA.replace('-0.3\tthe cat', 'oops\tthe cat')                   # not a number
  yield KENLM_ARPA.replace('-0.3\tthe cat', '-0.3\tthe')                       # wrong number of tokens
  yield KENLM_ARPA.replace('\\2-grams:', '\\3-grams:')                          # missing section
  yield KENLM_ARPA.replace('ngram 1=5', 'ngram one=5')


@pytest.mark.parametrize('text', list(_malformed()))
def test_malformed_arpa_is_a_one_line_user_error(tmp_path, text):
  path = tmp_path / 'bad.arpa'
  path.write_text(text)
  with pytest.raises(UserError) as e:
    NGramLM.from_arpa(path)
  assert '\n' not in str(e.value) and 'bad.arpa' in str(e.value)


def test_missing_or_unreadable_arpa_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match='not found') as e:
    NGramLM.from_arpa(tmp_path / 'nope.arpa')
  assert '\n' not in str(e.value)
  binary = tmp_path / 'b.arpa'
  binary.write_bytes(b'\xff\xfe\x00binary')
  with pytest.raises(UserError):
    NGramLM.from_arpa(binary)
  with pytest.raises(UserError):                     # a word token in a char LM
    (tmp_path / 'w.arpa').write_text(KENLM_ARPA)
    NGramLM.from_arpa(tmp_path / 'w.arpa', unit='char')


# --------------------------------------------------------------------------------------------------------------
# Dense table for the accelerator decoder
# --------------------------------------------------------------------------------------------------------------

def table_context(alphabet, blank, ids):
  """Label ids -> LM context: everything up to the last blank is before <s>."""
  if blank in ids:
    last = len(ids) - 1 - ids[::-1].index(blank)
    return ('<s>',) + tuple(alphabet[c] for c in ids[last + 1:])
  return tuple(alphabet[c] for c in ids)


@pytest.mark.parametrize('order, blank, vocab', [(3, 0, None), (4, 0, None), (3, 4, 'ab ')])
def test_dense_table_equals_log_prob_on_every_entry(tmp_path, order, blank, vocab):
  lm = train(CHARS, order, 'char', vocab=vocab)
  alphabet = ['a', 'b', ' ', 'z', 'c']               # 'z' is unknown to the LM (and 'c' too when vocab='ab ')
  alphabet[blank] = '_'
  table = dense_char_table(lm, alphabet, blank=blank)
  k = len(alphabet)
  assert table.shape == (k,) * order and table.dtype == np.float32
  for ids in itertools.product(range(k), repeat=order):
    ctx = table_context(alphabet, blank, list(ids[:-1]))
    tok = '</s>' if ids[-1] == blank else alphabet[ids[-1]]
    assert table[ids] == pytest.approx(lm.log_prob(ctx, tok), abs=2e-6), (ids, ctx, tok)
  if order == 4:
    assert table[0, 0, 1, 2] == pytest.approx(lm.log_prob(('<s>', 'b'), ' '), abs=2e-6)   # (0, 0, x) = <s> x
  path = tmp_path / 'lm.arpa'
  lm.to_arpa(path)
  np.testing.assert_allclose(dense_char_table(NGramLM.from_arpa(path, unit='char'), alphabet, blank), table,
                             atol=1e-5)


def test_dense_table_rejects_large_tables_and_word_models():
  lm = train(CHARS, 5, 'char')
  alphabet = ['_'] + [chr(ord('a') + i) for i in range(26)] + [chr(0x3b1 + i) for i in range(20)]
  with pytest.raises(ValueError, match='MiB'):
    dense_char_table(lm, alphabet * 1 + [str(i) for i in range(10)])   # 57^5 · 4 B ≈ 2.3 GB
  with pytest.raises(ValueError):
    dense_char_table(train(WORDS, 2, 'word'), ['_', 'a'])
  with pytest.raises(ValueError, match='repeats'):
    dense_char_table(train(CHARS, 2, 'char'), ['_', 'a', 'a'])
