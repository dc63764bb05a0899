"""n-gram language models for CTC decoding with shallow fusion (course chapter 5, "CTC decoding": Hannun et al.
2014, argmax_y p(y|x)·p_LM(y)^α·wordcount(y)^β; claims S2, S8).

`NGramLM` is a character- or word-level n-gram model with interpolated MODIFIED Kneser-Ney smoothing (Chen &
Goodman 1998, §3-4; estimated as KenLM's lmplz does, Heafield et al. 2013), read from and written to ARPA files,
and exposed through the decoders' `LanguageModel` protocol (begin / score / end, natural-log probabilities).

Estimation, for an order-N model over sentences padded as <s> w_1 ... w_L </s> (one <s>, as KenLM and SRILM do):
  adjusted counts  a(w_1^n) = c(w_1^n) for n = N or when w_1 = <s> (nothing extends it to the left),
                   a(w_1^n) = N1+(• w_1^n) = #{v : c(v w_1^n) > 0} otherwise (continuation counts);
  discounts        Y = t_1 / (t_1 + 2 t_2),  D_k = k − (k+1)·Y·t_{k+1}/t_k  (k = 1, 2, 3; D_3 is D3+), where
                   t_k = #{n-grams of order n with a = k}                     (Chen & Goodman 1998, eq. 26);
  interpolation    p(w|h) = (a(hw) − D(a(hw))) / Σ_x a(hx) + γ(h)·p(w|h'),   h' = h without its first token,
                   γ(h) = (D_1·N_1(h•) + D_2·N_2(h•) + D_3+·N_3+(h•)) / Σ_x a(hx),   N_k(h•) = #{x : a(hx) = k}
                   (or 3+); a context never seen backs off fully (p(w|h) = p(w|h')); the unigram level
                   interpolates with the uniform 1/|V| over the vocabulary with <unk> and </s>, without <s>.
Such a model is exactly a backoff model: p*(hw) = p(w|h) for every seen n-gram and bow(h) = γ(h), which is what
the ARPA file stores (log10). Every model, trained or loaded, scores with the ARPA backoff rule
  p(w|h) = p*(hw) if hw is listed, else bow(h)·p(w|h')   (bow(h) = 1 when h is not listed).

`dense_char_table` turns a character model into the dense (K,)*n table that the accelerator decoder indexes.
"""
from __future__ import annotations

import gzip
import math
import os
import warnings
from typing import Any, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from jaxdl.errors import UserError

BOS, EOS, UNK = '<s>', '</s>', '<unk>'
SPECIALS = (BOS, EOS, UNK)
UNITS = ('char', 'word')
ARPA_BOS_LOG10 = -99.0            # what SRILM and KenLM write for p(<s>), which is never predicted
DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)   # KenLM's --discount_fallback
DENSE_TABLE_MAX_BYTES = 256 * 2 ** 20
_LN10 = math.log(10.0)
_SPACE = '<space>'                # a char model's ' ' in ARPA files, whose fields are whitespace-separated


@runtime_checkable
class LanguageModel(Protocol):
  """What the CTC decoders need from a language model. All scores are natural-log probabilities."""
  unit: str                       # 'char' or 'word'

  def begin(self) -> Any:         # state at the sentence start (after <s>)
    ...

  def score(self, state, token: str) -> tuple[float, Any]:   # natural-log p(token | state), next state
    ...

  def end(self, state) -> float:  # natural-log p(</s> | state)
    ...


class NGramLM:
  """A backoff n-gram LM (trained with interpolated modified Kneser-Ney, or read from ARPA).

  Tokens: unit 'char' makes every character of a sentence a token (' ' included); unit 'word' splits sentences on
  whitespace. A token outside `vocab` is scored as <unk>. States are tuples of the last n-1 tokens (with <s> at the
  sentence start, out-of-vocabulary tokens as <unk>): hashable and cheap; histories that end alike share a state.
  """

  def __init__(self, entries: dict[tuple[str, ...], tuple[float, float]], order: int, unit: str, *,
               discounts: tuple[tuple[float, float, float], ...] | None = None, kn_stats: Any = None):
    """Low-level: `entries` maps each listed n-gram to (natural-log p*, natural-log bow). Use `train`/`from_arpa`."""
    if unit not in UNITS:
      raise ValueError(f'unit must be one of {UNITS}, got {unit!r}')
    self.unit = unit
    self.order = int(order)
    self.discounts = discounts          # (D1, D2, D3+) per order, for a trained model
    self._entries = entries
    self._kn_stats = kn_stats
    words = {g[0] for g in entries if len(g) == 1}
    self._known = frozenset(words | {EOS})
    self._vocab = tuple(s for s in SPECIALS if s in words or s == EOS) + tuple(sorted(words - set(SPECIALS)))
    self._counts = tuple(sum(1 for g in entries if len(g) == n) for n in range(1, self.order + 1))

  # ------------------------------------------------------------------------------------------------------------
  # Training
  # ------------------------------------------------------------------------------------------------------------

  @classmethod
  def train(cls, sentences: Iterable[str], order: int, unit: str = 'char', *, vocab: Iterable[str] | None = None,
            discount_fallback: Sequence[float] | None = DISCOUNT_FALLBACK) -> NGramLM:
    """Interpolated modified Kneser-Ney (Chen & Goodman 1998) of the given order from sentences (strings).

    vocab: if given, the model's vocabulary (all of it is kept, seen or not); other tokens become <unk>. By default
      the vocabulary is every token of the training text.
    discount_fallback: (D1, D2, D3+) used, with a warning, at an order whose count-of-counts give no valid
      discounts (small or artificial data; KenLM's --discount_fallback); None raises a UserError instead.
    """
    if unit not in UNITS:
      raise UserError(f'LM unit {unit!r}', f'one of {UNITS}', "train with unit='char' or unit='word'")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
      raise UserError(f'LM order {order!r}', 'an integer >= 1', 'pass e.g. order=3')
    if isinstance(sentences, str):
      raise TypeError('sentences must be a sequence of strings, not one string')
    sentences = list(sentences)
    if not sentences:
      raise UserError('no training sentences for the n-gram LM', 'at least one sentence', 'pass training text')
    tokens, seq, lengths = _encode(sentences, unit, vocab)
    order = int(order)
    grams = _count(seq, lengths, order, len(tokens))
    discounts = [_discounts(g['adjusted'][g['listed']], n, discount_fallback) for n, g in enumerate(grams, 1)]
    entries = _interpolate(grams, tokens, discounts)
    stats = [dict(prefix=g['prefix'], word=g['word'], adjusted=g['adjusted'], listed=g['listed']) for g in grams]
    return cls(entries, order, unit, discounts=tuple(discounts), kn_stats=(tokens, stats))

  def adjusted_counts(self, n: int) -> dict[tuple[str, ...], int]:
    """The modified-KN adjusted counts a(·) of the listed n-grams of order n (a trained model only)."""
    if self._kn_stats is None:
      raise ValueError('adjusted counts exist for a trained model only, not one read from ARPA')
    if not 1 <= n <= self.order:
      raise ValueError(f'order {n} outside [1, {self.order}]')
    tokens, stats = self._kn_stats
    names = [(t,) for t in tokens]
    for m in range(2, n + 1):
      s = stats[m - 1]
      names = [names[p] + (tokens[w],) for p, w in zip(s['prefix'].tolist(), s['word'].tolist())]
    s = stats[n - 1]
    return {names[i]: int(s['adjusted'][i]) for i in np.nonzero(s['listed'])[0].tolist()}

  # ------------------------------------------------------------------------------------------------------------
  # Scoring
  # ------------------------------------------------------------------------------------------------------------

  @property
  def vocab(self) -> tuple[str, ...]:
    """The model's tokens: <s>, </s>, <unk> (when the model has it), then the others sorted."""
    return self._vocab

  @property
  def ngram_counts(self) -> tuple[int, ...]:
    """Number of listed n-grams per order (the ARPA header's `ngram n=` values)."""
    return self._counts

  def _canon(self, token: str) -> str:
    if not isinstance(token, str):
      raise TypeError(f'tokens are strings, got {type(token).__name__}')
    if token in self._known:
      return token
    if token == BOS:
      return BOS
    if self.unit == 'char' and len(token) != 1 and token != UNK:
      raise ValueError(f'a char LM scores one character at a time, got {token!r}')
    if self.unit == 'word' and (not token or token != token.strip() or len(token.split()) != 1):
      raise ValueError(f'a word LM scores one word (no whitespace) at a time, got {token!r}')
    return UNK

  def _backoff(self, context: tuple[str, ...], token: str) -> float:
    """ARPA backoff: p*(hw) if listed, else bow(h) + log p(w|h'), over canonical tokens (natural log)."""
    acc = 0.0
    entries = self._entries
    for k in range(len(context) + 1):
      h = context[k:]
      e = entries.get(h + (token,))
      if e is not None:
        return acc + e[0]
      if h:
        b = entries.get(h)
        if b is not None:
          acc += b[1]
    return -math.inf          # only an unlisted unigram (an ARPA file without <unk>)

  def _context(self, context: Sequence[str]) -> tuple[str, ...]:
    ctx = tuple(self._canon(t) for t in context)
    if EOS in ctx:
      raise ValueError('</s> cannot be in a context (nothing follows the sentence end)')
    if BOS in ctx:        # everything before a sentence start is irrelevant
      ctx = ctx[len(ctx) - 1 - ctx[::-1].index(BOS):]
    return ctx[max(0, len(ctx) - self.order + 1):] if self.order > 1 else ()

  def log_prob(self, context: Sequence[str], token: str) -> float:
    """Natural-log p(token | context); context is a tuple of tokens (may start with <s>); token may be </s>."""
    tok = self._canon(token)
    if tok == BOS:
      raise ValueError('<s> is never predicted; the sentence start is a context (begin())')
    return self._backoff(self._context(context), tok)

  def begin(self) -> tuple[str, ...]:
    """The state at the sentence start: (<s>,) (the empty tuple for a unigram model)."""
    return (BOS,) if self.order > 1 else ()

  def score(self, state: tuple[str, ...], token: str) -> tuple[float, tuple[str, ...]]:
    """(natural-log p(token | state), next state); the sentence end is scored by `end`."""
    tok = self._canon(token)
    if tok in (BOS, EOS):
      raise ValueError(f'score() takes a real token, got {token!r}: the sentence start is begin(), the end end()')
    lp = self._backoff(state, tok)
    nxt = (state + (tok,))[max(0, len(state) + 2 - self.order):] if self.order > 1 else ()
    return lp, nxt

  def end(self, state: tuple[str, ...]) -> float:
    """Natural-log p(</s> | state)."""
    return self._backoff(state, EOS)

  def tokenize(self, sentence: str) -> list[str]:
    """The sentence's tokens as the model sees them (characters, or whitespace-separated words)."""
    if not isinstance(sentence, str):
      raise TypeError(f'a sentence is a string, got {type(sentence).__name__}')
    toks = list(sentence) if self.unit == 'char' else sentence.split()
    if self.unit == 'word' and (BOS in toks or EOS in toks):
      raise UserError(f'sentence {sentence[:40]!r} contains {BOS} or {EOS}', 'plain text (the LM adds them)',
                      'remove the markers from the text')
    return toks

  def sentence_log_prob(self, sentence: str) -> float:
    """Natural-log p(w_1 .. w_L </s> | <s>) of one sentence (the chain rule over `score` and `end`)."""
    return self._sentence(sentence)[0]

  def _sentence(self, sentence: str) -> tuple[float, float, int, int]:
    """(log p of every token and </s>, the same without OOV tokens, number of tokens with </s>, OOV tokens)."""
    state, total, known, n, oov = self.begin(), 0.0, 0.0, 1, 0
    for t in self.tokenize(sentence):
      lp, state = self.score(state, t)
      total, n = total + lp, n + 1
      if t in self._known:
        known += lp
      else:
        oov += 1
    end = self.end(state)
    return total + end, known + end, n, oov

  def perplexity(self, sentences: Iterable[str], *, include_oov: bool = True) -> float:
    """Per-token perplexity exp(−Σ log p / N), N counting every token and one </s> per sentence.

    include_oov=True (KenLM's "perplexity including OOVs"): an out-of-vocabulary token is scored as p(<unk>|h)
    and counted. include_oov=False (SRILM's `ppl`): OOV tokens are left out of both the sum and N (they still
    stand as <unk> in the following tokens' contexts).
    """
    if isinstance(sentences, str):
      raise TypeError('sentences must be a sequence of strings, not one string')
    total, count = 0.0, 0
    for s in sentences:
      lp_all, lp_known, n, oov = self._sentence(s)
      total += lp_all if include_oov else lp_known
      count += n if include_oov else n - oov
    if count == 0:
      raise UserError('no tokens to compute a perplexity on', 'at least one sentence', 'pass evaluation text')
    return math.exp(-total / count)

  # ------------------------------------------------------------------------------------------------------------
  # ARPA
  # ------------------------------------------------------------------------------------------------------------

  def to_arpa(self, path: str | os.PathLike) -> None:
    """Writes the model as an ARPA file (log10; KenLM's layout: backoff omitted where it is 0; '.gz' compresses).

    A char model writes ' ' as <space> and other whitespace characters as <U+XXXX> (ARPA fields are
    whitespace-separated); `from_arpa(..., unit='char')` reads them back.
    """
    by_order: list[list[tuple[tuple[str, ...], tuple[float, float]]]] = [[] for _ in range(self.order)]
    for g, e in self._entries.items():
      by_order[len(g) - 1].append((g, e))
    lines = ['\\data\\'] + [f'ngram {n}={len(by_order[n - 1])}' for n in range(1, self.order + 1)] + ['']
    for n in range(1, self.order + 1):
      lines.append(f'\\{n}-grams:')
      for g, (lp, bow) in by_order[n - 1]:
        p10 = ARPA_BOS_LOG10 if g == (BOS,) else min(0.0, lp / _LN10)
        words = ' '.join(_arpa_word(t, self.unit) for t in g)
        line = f'{_fmt(p10)}\t{words}'
        if n < self.order and bow != 0.0:
          line += f'\t{_fmt(bow / _LN10)}'
        lines.append(line)
      lines.append('')
    lines.append('\\end\\')
    text = '\n'.join(lines) + '\n'
    opener = gzip.open if str(path).endswith('.gz') else open
    with opener(path, 'wt', encoding='utf-8') as f:
      f.write(text)

  @classmethod
  def from_arpa(cls, path: str | os.PathLike, unit: str = 'word') -> NGramLM:
    """Reads an ARPA file (from KenLM's lmplz, SRILM, or `to_arpa`; '.gz' too) as a backoff model.

    unit: 'word' (the usual) or 'char' (each token one character; <space> and <U+XXXX> decode to whitespace).
    Without <unk> in the file, an out-of-vocabulary token has probability 0 (log −inf).
    """
    if unit not in UNITS:
      raise UserError(f'LM unit {unit!r}', f'one of {UNITS}', "pass unit='word' or unit='char'")
    name = os.fspath(path)
    if not os.path.isfile(name):
      raise UserError(f'ARPA file {name} not found', 'an existing ARPA language model file', 'check the path')
    try:
      opener = gzip.open if name.endswith('.gz') else open
      with opener(name, 'rt', encoding='utf-8') as f:
        lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as e:
      raise UserError(f'cannot read ARPA file {name} ({type(e).__name__}: {e})', 'a UTF-8 ARPA text file',
                      'check the file (or its .gz compression)') from e
    entries, order = _parse_arpa(lines, name, unit)
    return cls(entries, order, unit)


def dense_char_table(lm: NGramLM, alphabet: Sequence[str], blank: int = 0) -> np.ndarray:
  """The float32 table T of shape (K,)*(n-1) + (K,) with T[c_1, ..., c_{n-1}, c] = natural-log p(alphabet[c] |
  alphabet[c_1..c_{n-1}]) for a char LM of order n over K = len(alphabet) labels.

  Label `blank` (the CTC blank) stands for <s> in a context — all of the context up to its last blank is before the
  sentence start, so (0, 0, x) means "<s> x" for n = 4 — and column `blank` holds log p(</s> | context). Alphabet
  characters the LM does not know score as <unk> (several may share it). Built order by order with the backoff rule
  T_m[h, w] = p*(hw) if listed else bow(h) + T_{m-1}[h', w], so it equals `lm.log_prob` on every entry.
  """
  if not isinstance(lm, NGramLM) or lm.unit != 'char':
    raise ValueError('dense_char_table needs a character-level NGramLM')
  k, n = len(alphabet), lm.order
  if not 0 <= blank < k:
    raise ValueError(f'blank id {blank} outside [0, {k})')
  if k ** n * 4 > DENSE_TABLE_MAX_BYTES:
    raise ValueError(f'a dense order-{n} table over {k} labels needs {k ** n * 4 / 2 ** 20:.0f} MiB '
                     f'(> {DENSE_TABLE_MAX_BYTES // 2 ** 20} MiB): use a lower order or a smaller alphabet')
  index: dict[str, list[int]] = {}           # LM token -> the labels that stand for it
  seen: set[str] = set()
  for c, ch in enumerate(alphabet):
    if c == blank:
      continue
    if not isinstance(ch, str) or len(ch) != 1:
      raise ValueError(f'alphabet[{c}] = {ch!r} is not one character')
    if ch in seen:
      raise ValueError(f'alphabet repeats {ch!r}')
    seen.add(ch)
    index.setdefault(ch if ch in lm._known else UNK, []).append(c)

  def ctx_ids(tok: str, first: bool) -> list[int]:   # <s> only opens a context; </s> never is one
    if tok == BOS:
      return [blank] if first else []
    return [] if tok == EOS else index.get(tok, [])

  def col_ids(tok: str) -> list[int]:                # column `blank` is </s>; <s> is never predicted
    if tok == EOS:
      return [blank]
    return [] if tok == BOS else index.get(tok, [])

  by_order: list[list[tuple[tuple[str, ...], tuple[float, float]]]] = [[] for _ in range(n)]
  for g, e in lm._entries.items():
    by_order[len(g) - 1].append((g, e))
  table = np.full((k,), -np.inf, np.float32)                  # unigrams; unlisted (no <unk> in an ARPA): −inf
  for (tok,), (lp, _) in by_order[0]:
    table[col_ids(tok)] = lp
  for m in range(2, n + 1):
    bow = np.zeros((k,) * (m - 1), np.float32)                # bow(h) = 1 for an unlisted context
    for g, (_, b) in by_order[m - 2]:
      ids = [ctx_ids(t, i == 0) for i, t in enumerate(g)]
      if b != 0.0 and all(ids):
        bow[np.ix_(*ids)] = b
    table = bow[..., None] + table[None]                      # T_m[h, w] = bow(h) + T_{m-1}[h', w]
    for g, (lp, _) in by_order[m - 1]:
      ids = [ctx_ids(t, i == 0) for i, t in enumerate(g[:-1])] + [col_ids(g[-1])]
      if all(ids):
        table[np.ix_(*ids)] = lp                              # listed: T_m[h, w] = p*(hw)
  return table


# --------------------------------------------------------------------------------------------------------------
# Estimation (NumPy over token ids; an n-gram of order m is (index of its (m-1)-gram prefix, last token))
# --------------------------------------------------------------------------------------------------------------

def _encode(sentences: list[str], unit: str, vocab: Iterable[str] | None):
  """Token strings (ids 0, 1, 2 = <s>, </s>, <unk>), the padded id sequence <s> w.. </s> per sentence, lengths."""
  for s in sentences:
    if not isinstance(s, str):
      raise TypeError(f'sentences are strings, got {type(s).__name__}')
  split = [list(s) for s in sentences] if unit == 'char' else [s.split() for s in sentences]
  if unit == 'word':
    for s, toks in zip(sentences, split):
      if BOS in toks or EOS in toks:
        raise UserError(f'training sentence {s[:40]!r} contains {BOS} or {EOS}', 'plain text (the LM adds them)',
                        'remove the markers from the text')
  if vocab is not None:
    if isinstance(vocab, str) and unit == 'word':
      raise TypeError('vocab must be a collection of words, not one string')
    known = set(vocab) - set(SPECIALS)
    if unit == 'char' and any(len(t) != 1 for t in known):
      raise UserError('a char LM vocabulary entry is not one character', 'single characters',
                      'pass the alphabet as vocab')
  else:
    known = {t for toks in split for t in toks} - set(SPECIALS)
  tokens = list(SPECIALS) + sorted(known)
  ids = {t: i for i, t in enumerate(tokens)}
  unk = ids[UNK]
  lengths = np.array([len(t) for t in split], np.int64)
  seq = np.empty(int(lengths.sum()) + 2 * len(split), np.int64)
  body = np.fromiter((ids.get(t, unk) for toks in split for t in toks), np.int64, count=int(lengths.sum()))
  starts = np.concatenate([[0], np.cumsum(lengths + 2)[:-1]])
  sent = np.repeat(np.arange(len(split)), lengths)
  seq[np.arange(len(body)) + 1 + 2 * sent] = body
  seq[starts] = ids[BOS]
  seq[starts + lengths + 1] = ids[EOS]
  return tokens, seq, lengths


def _count(seq: np.ndarray, lengths: np.ndarray, order: int, vocab_size: int) -> list[dict]:
  """Raw and adjusted counts of every order (KenLM's adjust_counts: continuation counts below the top order,
  raw counts at the top order and for n-grams that start with <s>)."""
  total = len(seq)
  end = np.repeat(np.cumsum(lengths + 2), lengths + 2)           # exclusive end of each position's sentence
  pos_idx = seq.copy()                                           # order-1 index of the gram starting at i = its id
  raw1 = np.bincount(seq, minlength=vocab_size)
  grams = [dict(prefix=np.full(vocab_size, -1), word=np.arange(vocab_size), raw=raw1, first=np.arange(vocab_size),
                suffix=None)]
  for m in range(2, order + 1):
    pos = np.nonzero(np.arange(total) + m <= end)[0]
    key = pos_idx[pos] * vocab_size + seq[pos + m - 1]
    uniq, first_at, inv, cnt = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    prev = grams[-1]
    prefix = uniq // vocab_size
    grams.append(dict(prefix=prefix, word=uniq % vocab_size, raw=cnt, first=prev['first'][prefix],
                      suffix=pos_idx[pos[first_at] + 1]))              # index of w_2..w_m at order m-1
    new_idx = np.full(total, -1, np.int64)
    new_idx[pos] = inv
    pos_idx = new_idx
  for m, g in enumerate(grams, 1):
    if m == order:
      adjusted = g['raw'].copy()
    else:                                                        # N1+(• w_1^m) = distinct left extensions
      adjusted = np.bincount(grams[m]['suffix'], minlength=len(g['raw']))
      from_bos = g['first'] == 0
      adjusted[from_bos] = g['raw'][from_bos]
    listed = g['raw'] > 0
    if m == 1:
      adjusted[0] = 0                                            # <s> is never predicted
      listed = listed.copy()
      listed[0] = False
    g['adjusted'] = adjusted
    g['listed'] = listed
  return grams


def _discounts(adjusted: np.ndarray, n: int, fallback: Sequence[float] | None) -> tuple[float, float, float]:
  """Chen & Goodman 1998, eq. 26, from the count-of-counts t_1..t_4 of the order's adjusted counts."""
  t = [int(np.sum(adjusted == k)) for k in range(5)]
  ok = t[1] > 0 and t[2] > 0 and t[3] > 0
  if ok:
    y = t[1] / (t[1] + 2.0 * t[2])
    d = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
    ok = all(0.0 <= d[k - 1] <= k for k in (1, 2, 3))
  if ok:
    return d
  what = f'{n}-gram count-of-counts t1..t4 = {t[1:]} give no valid modified Kneser-Ney discounts'
  if fallback is None:
    raise UserError(what, 't1, t2, t3 > 0 and 0 <= D_k <= k (more training text)',
                    'train on more text, lower the order, or pass discount_fallback=(0.5, 1.0, 1.5)')
  fallback = tuple(float(x) for x in fallback)
  if len(fallback) != 3:
    raise ValueError(f'discount_fallback needs 3 values (D1, D2, D3+), got {fallback}')
  warnings.warn(f'{what}; using the fallback discounts {fallback}', stacklevel=3)
  return fallback


def _interpolate(grams: list[dict], tokens: list[str], discounts: list[tuple[float, float, float]]):
  """Interpolated modified KN probabilities of every listed n-gram, as backoff entries (natural logs)."""
  vocab_size = len(tokens)
  probs, bows = [], []
  for m, (g, d) in enumerate(zip(grams, discounts), 1):
    a = g['adjusted'].astype(np.float64)
    disc = np.select([a >= 3, a == 2, a == 1], [d[2], d[1], d[0]], 0.0)
    if m == 1:
      keep = np.arange(vocab_size) != 0                          # all but <s>
      denom = a[keep].sum()
      gamma = float(np.sum(disc[keep])) / denom
      p = np.where(keep, (a - disc) / denom + gamma / (vocab_size - 1), 0.0)   # uniform over |V| without <s>
    else:
      n_ctx = len(grams[m - 2]['raw'])
      denom = np.bincount(g['prefix'], weights=a, minlength=n_ctx)
      mass = np.bincount(g['prefix'], weights=disc, minlength=n_ctx)        # Σ_k D_k N_k(h•)
      gamma_ctx = np.divide(mass, denom, out=np.zeros(n_ctx), where=denom > 0)
      bows[-1] = np.where(denom > 0, gamma_ctx, 1.0)                        # bow(h) = γ(h); 1 if never a context
      p = (a - disc) / denom[g['prefix']] + gamma_ctx[g['prefix']] * probs[-1][g['suffix']]
    probs.append(p)
    bows.append(np.ones(len(p)))
  entries: dict[tuple[str, ...], tuple[float, float]] = {}
  names: list[tuple[str, ...]] = [(t,) for t in tokens]
  for m, g in enumerate(grams, 1):
    if m > 1:
      names = [names[p] + (tokens[w],) for p, w in zip(g['prefix'].tolist(), g['word'].tolist())]
    with np.errstate(divide='ignore'):
      lp, lb = np.log(probs[m - 1]), np.log(bows[m - 1])
    if m == 1:
      lp[0] = ARPA_BOS_LOG10 * _LN10
      listed = np.ones(vocab_size, bool)                         # the whole vocabulary (and <s>) is listed
    else:
      listed = g['listed']
    for i in np.nonzero(listed)[0].tolist():
      entries[names[i]] = (float(lp[i]), float(lb[i]))
  return entries


# --------------------------------------------------------------------------------------------------------------
# ARPA text
# --------------------------------------------------------------------------------------------------------------

def _fmt(x: float) -> str:
  s = f'{x:.7f}'.rstrip('0').rstrip('.')
  return '0' if s in ('-0', '') else s


def _arpa_word(tok: str, unit: str) -> str:
  if unit == 'char' and tok not in SPECIALS and tok.isspace():
    return _SPACE if tok == ' ' else f'<U+{ord(tok):04X}>'
  return tok


def _from_arpa_word(word: str, unit: str) -> str | None:
  if unit != 'char' or word in SPECIALS or len(word) == 1:
    return word
  if word == _SPACE:
    return ' '
  if word.startswith('<U+') and word.endswith('>'):
    try:
      return chr(int(word[3:-1], 16))
    except ValueError:
      return None
  return None


def _parse_arpa(lines: list[str], name: str, unit: str):
  """ARPA text -> (entries, order); any deviation is a one-line UserError naming the file and line."""
  def bad(lineno: int, what: str, expected: str):
    return UserError(f'malformed ARPA file {name}, line {lineno}: {what}', expected,
                     'regenerate the file (e.g. with KenLM lmplz) or fix that line')

  i = 0
  while i < len(lines) and lines[i].strip() != '\\data\\':
    i += 1
  if i == len(lines):
    raise UserError(f'malformed ARPA file {name}: no \\data\\ header', 'an ARPA language model file',
                    'pass an ARPA file (e.g. from KenLM lmplz)')
  i += 1
  declared: dict[int, int] = {}
  while i < len(lines) and not lines[i].strip().startswith('\\'):
    line = lines[i].strip()
    if line:
      head, _, num = line.partition('=')
      parts = head.split()
      if len(parts) != 2 or parts[0] != 'ngram' or not parts[1].isdigit() or not num.strip().isdigit():
        raise bad(i + 1, repr(line[:60]), "'ngram N=COUNT' lines after \\data\\")
      declared[int(parts[1])] = int(num)
    i += 1
  order = max(declared, default=0)
  if order < 1 or sorted(declared) != list(range(1, order + 1)):
    raise bad(i + 1, f'n-gram orders declared {sorted(declared)}', 'ngram 1=.. up to ngram N=.., no gaps')
  entries: dict[tuple[str, ...], tuple[float, float]] = {}
  for n in range(1, order + 1):
    while i < len(lines) and not lines[i].strip():
      i += 1
    if i == len(lines) or lines[i].strip() != f'\\{n}-grams:':
      raise bad(min(i, len(lines) - 1) + 1, f'{lines[i].strip()[:40]!r}' if i < len(lines) else 'end of file',
                f'the \\{n}-grams: section')
    i += 1
    seen = 0
    while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith('\\'):
      fields = lines[i].split()              # logprob w_1 .. w_n [backoff], tab- or space-separated
      if len(fields) not in (n + 1, n + 2):
        raise bad(i + 1, f'{lines[i][:60]!r}', f'log10 prob, {n} token(s) and an optional backoff')
      try:
        lp = float(fields[0]) * _LN10
        lb = float(fields[n + 1]) * _LN10 if len(fields) == n + 2 else 0.0
      except ValueError:
        raise bad(i + 1, f'{lines[i][:60]!r}', 'numeric log10 probability and backoff') from None
      if math.isnan(lp) or math.isnan(lb) or lp > 1e-4:
        raise bad(i + 1, f'{lines[i][:60]!r}', 'log10 probabilities <= 0')
      words = fields[1:n + 1]
      toks = tuple(_from_arpa_word(w, unit) for w in words)
      if None in toks:
        raise bad(i + 1, f'token {words[toks.index(None)]!r} in a char LM', 'single characters, <space> or <U+XXXX>')
      entries[toks] = (min(lp, 0.0), lb)
      seen += 1
      i += 1
    if seen != declared[n]:
      raise bad(i + 1, f'{seen} {n}-grams listed but the header declares {declared[n]}', 'matching counts')
  while i < len(lines) and not lines[i].strip():
    i += 1
  if i == len(lines) or lines[i].strip() != '\\end\\':
    raise bad(min(i, len(lines) - 1) + 1, 'no \\end\\ after the last section (truncated file?)', '\\end\\')
  return entries, order
