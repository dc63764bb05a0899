"""CTC decoding: best path, prefix beam search with language-model shallow fusion, and a jit-compiled batched search.

Course chapter 5, "CTC decoding by combining the alternatives". The exact decision argmax_y p(y|x) is intractable;

- best path (greedy) decoding takes B(argmax_π p(π|x)), the collapse of the frame-wise argmax. It can be wrong when
  one spiky alignment beats a labelling that many alignments share (`crafted_best_path_vs_beam`);
- prefix beam search (Hannun, Maas, Jurafsky & Ng 2014, "First-pass large vocabulary continuous speech recognition
  using bi-directional recurrent DNNs", Alg. 1) keeps the `beam_width` best label PREFIXES, each with the
  probability of its alignments ending in a blank (p_b) and in a label (p_nb), merging alignments that collapse to
  the same prefix. With no pruning it is exact;
- shallow fusion adds a language model: argmax_y p(y|x) · p_LM(y)^α · wordcount(y)^β in the notes' notation, which
  every decoder implements in log space as

    score(y) = log p_CTC(y|x) + α · log p_LM(y) + β · |words(y)|      (natural logs; the word bonus per word).

  Mapping onto other decoders' knobs: pyctcdecode's `alpha`, `beta` are exactly these α and β (it converts KenLM's
  log10 scores to natural log with LOG_BASE_CHANGE_FACTOR and adds `beta` once per scored word). torchaudio's
  `ctc_decoder` / flashlight's `lm_weight` multiplies KenLM's raw log10 score, so α = lm_weight / ln 10
  (lm_weight = α · ln 10 ≈ 2.303 α) for a KenLM model (for a custom CTCDecoderLM, whatever base it returns);
  `word_score` is added once per completed word in the lexicon decoder, so β = word_score (the lexicon-free decoder
  has no per-word bonus; its `sil_score` is added per silence token), and its default `log_add=False` merges
  hypotheses with max instead of the sum used here. Both add the emissions as given: pass natural-log probabilities.

Word counting: |words(y)| is the number of maximal runs of non-separator labels (' '.join-style words); a word is
counted (and, for a word-level LM, scored) when the separator after it is emitted, and the last word at the end.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import UserError
from jaxdl.speech.ctc import collapse

Hypothesis = tuple[tuple[int, ...], float]
NEG_INF = -math.inf


@runtime_checkable
class LanguageModel(Protocol):
  """What the decoders need from a language model. All scores are natural-log probabilities."""
  unit: str                       # 'char' (score every character) or 'word' (score a word when it is complete)

  def begin(self) -> Any:         # state at the sentence start (after <s>)
    ...

  def score(self, state, token: str) -> tuple[float, Any]:   # natural-log p(token | state), next state
    ...

  def end(self, state) -> float:  # natural-log p(</s> | state)
    ...


class DenseCharLM:
  """A character n-gram LM from a dense table, exposed through the `LanguageModel` protocol.

  table: shape (K,)*(n-1) + (K,); table[c_1, ..., c_{n-1}, c] = natural-log p(c | c_1..c_{n-1}), where context id
  `blank` (0 by default) means "before the sentence start" (<s>) and column `blank` holds log p(</s> | context).
  alphabet[i] is the string of label i. The same table drives `batched_prefix_beam_search(lm_table=...)`.
  """
  unit = 'char'

  def __init__(self, table, alphabet: Sequence[str], blank: int = 0):
    self.table = np.asarray(table, np.float64)
    n = self.table.ndim
    k = self.table.shape[-1]
    if self.table.shape != (k,) * n:
      raise UserError(f'LM table of shape {self.table.shape} is not (K,)*n', 'a dense n-gram table (K, ..., K)',
                      'build it with one axis per context character plus one for the predicted character')
    if len(alphabet) != k:
      raise UserError(f'alphabet has {len(alphabet)} symbols but the LM table has K = {k}',
                      'one string per label id', 'pass the alphabet the table was built with')
    self.alphabet = list(alphabet)
    self.blank = blank
    self.order = n
    self._ids = {s: i for i, s in enumerate(self.alphabet) if i != blank}
    if len(self._ids) != k - 1:
      raise UserError('alphabet has repeated symbols', 'distinct strings per label id', 'fix the alphabet')

  def begin(self) -> tuple[int, ...]:
    return (self.blank,) * (self.order - 1)      # n-1 copies of <s>

  def score(self, state, token: str) -> tuple[float, tuple[int, ...]]:
    c = self._ids[token]
    return float(self.table[state + (c,)]), (state + (c,))[1:]

  def end(self, state) -> float:
    return float(self.table[state + (self.blank,)])


def crafted_best_path_vs_beam() -> np.ndarray:
  """A (2, 2) log-probability table (blank 0, one label 1) where best path and beam search disagree.

  Every frame has p(blank) = 0.6, p(a) = 0.4. Best path: alignment (blank, blank) -> "" with p = 0.36. But "a" has
  three alignments, aa, a-, -a: p("a") = 0.16 + 0.24 + 0.24 = 0.64 > p("") = 0.36, which a beam search finds.
  """
  return np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))


# ----------------------------------------------------------------------------------------------------------------
# Host decoders (one utterance, NumPy / Python floats, float64)
# ----------------------------------------------------------------------------------------------------------------

def _as_log_probs(log_probs, length: int | None) -> np.ndarray:
  lp = np.asarray(log_probs, np.float64)
  if lp.ndim != 2:
    raise ValueError(f'log_probs must be one utterance (T, K), got shape {lp.shape}')
  if length is not None:
    if not 0 <= int(length) <= lp.shape[0]:
      raise UserError(f'length {length} outside [0, {lp.shape[0]}]', 'the number of valid frames',
                      'pass the utterance length in frames')
    lp = lp[:int(length)]
  return lp


def _check_blank(blank: int, num_classes: int) -> None:
  if not 0 <= blank < num_classes:
    raise UserError(f'blank id {blank} outside [0, {num_classes})', 'a class id of the model output',
                    'pass blank= within the vocabulary')


def best_path(log_probs, *, blank: int = 0, length: int | None = None) -> list[Hypothesis]:
  """Greedy decoding B(argmax_π p(π|x)): [(labels, log p(π*))] — the best alignment's collapse and its log prob."""
  lp = _as_log_probs(log_probs, length)
  _check_blank(blank, lp.shape[1])
  path = np.argmax(lp, axis=1)
  return [(collapse(path, blank), float(lp[np.arange(lp.shape[0]), path].sum()))]


def _logaddexp(a: float, b: float) -> float:
  if a == NEG_INF:
    return b
  if b == NEG_INF:
    return a
  hi, lo = (a, b) if a > b else (b, a)
  return hi + math.log1p(math.exp(lo - hi))


class _Beam:
  """One prefix of the host search: CTC log p_b / p_nb, LM state and log prob, words counted so far."""
  __slots__ = ('p_b', 'p_nb', 'lm_state', 'lm_logp', 'words', 'partial')

  def __init__(self, lm_state, lm_logp: float, words: int, partial: str):
    self.p_b = NEG_INF
    self.p_nb = NEG_INF
    self.lm_state = lm_state
    self.lm_logp = lm_logp
    self.words = words            # completed words (a separator followed them)
    self.partial = partial        # the current word's characters (word LMs; for other LMs just its non-emptiness)

  @property
  def ctc(self) -> float:
    return _logaddexp(self.p_b, self.p_nb)


def _weighted(weight: float, value: float) -> float:
  """weight · value with 0 · (−inf) = 0, so α = 0 switches an LM off even where it gives probability 0."""
  return 0.0 if weight == 0 else weight * value


def prefix_beam_search_with_scores(log_probs, beam_width: int, *, blank: int = 0, length: int | None = None,
                                   n_best: int | None = None, lm: LanguageModel | None = None,
                                   alphabet: Sequence[str] | None = None, alpha: float = 0.0, beta: float = 0.0,
                                   space_id: int | None = None, prune_log_prob: float | None = None
                                   ) -> list[tuple[tuple[int, ...], float, float, float, int]]:
  """`prefix_beam_search` returning (labels, fused score, log p_CTC, log p_LM (with </s>), |words|) per hypothesis.

  The fused score is log p_CTC + α·log p_LM + β·|words|; log p_CTC is the beam's (lower-bound) estimate of
  log p(y|x): exact when no alignment of y was pruned (always the case when the beam never overflows).
  """
  lp = _as_log_probs(log_probs, length)
  num_frames, num_classes = lp.shape
  _check_blank(blank, num_classes)
  if int(beam_width) < 1:
    raise UserError(f'beam_width {beam_width} < 1', 'a positive beam width', 'use beam_width >= 1')
  if n_best is not None and not 1 <= int(n_best):
    raise UserError(f'n_best {n_best} < 1', 'a positive number of hypotheses', 'use n_best >= 1 or None')
  if alphabet is not None and len(alphabet) != num_classes:
    raise UserError(f'alphabet has {len(alphabet)} symbols for K = {num_classes} classes', 'one string per class',
                    'pass the alphabet of the model output')
  if lm is not None and alphabet is None:
    raise UserError('a language model needs the alphabet', 'alphabet[i] = the string of label i',
                    'pass alphabet=')
  if lm is not None and lm.unit not in ('char', 'word'):
    raise UserError(f'language model unit {lm.unit!r}', "'char' or 'word'", 'fix the LM')
  if space_id is None and alphabet is not None and ' ' in alphabet:
    space_id = list(alphabet).index(' ')
  if space_id is not None and not 0 <= space_id < num_classes:
    raise UserError(f'space_id {space_id} outside [0, {num_classes})', 'the label id of the word separator',
                    'pass space_id= within the vocabulary')
  word_lm = lm is not None and lm.unit == 'word'
  char_lm = lm is not None and lm.unit == 'char'

  def extend(beam: _Beam, c: int) -> tuple[Any, float, int, str]:
    """LM state, LM log prob, words and partial word after emitting label c (Hannun et al. 2014, Alg. 1)."""
    state, lm_logp, words, partial = beam.lm_state, beam.lm_logp, beam.words, beam.partial
    if char_lm:
      s, state = lm.score(state, alphabet[c])
      lm_logp += s
    if c == space_id:
      if partial:                                   # a word is complete
        if word_lm:
          s, state = lm.score(state, partial)
          lm_logp += s
        words += 1
      partial = ''
    else:
      partial += alphabet[c] if word_lm else 'x'
    return state, lm_logp, words, partial

  def fused(beam: _Beam) -> float:   # the running score used for pruning: only what is known so far
    return beam.ctc + _weighted(alpha, beam.lm_logp) + beta * beam.words

  root = _Beam(lm.begin() if lm is not None else None, 0.0, 0, '')
  root.p_b = 0.0
  beams: dict[tuple[int, ...], _Beam] = {(): root}
  for t in range(num_frames):
    frame = lp[t]
    labels = range(num_classes)
    if prune_log_prob is not None:   # skip unlikely labels (keep at least the best one)
      labels = [c for c in labels if frame[c] >= prune_log_prob] or [int(np.argmax(frame))]
    new: dict[tuple[int, ...], _Beam] = {}

    def entry(prefix, parent: _Beam, c: int | None) -> _Beam:
      b = new.get(prefix)
      if b is None:
        if c is None:                                # same prefix: same LM state
          b = _Beam(parent.lm_state, parent.lm_logp, parent.words, parent.partial)
        else:
          b = _Beam(*extend(parent, c))
        new[prefix] = b
      return b

    for prefix, beam in beams.items():
      last = prefix[-1] if prefix else None
      for c in labels:
        p = float(frame[c])
        if c == blank:                               # blank: the prefix stays, now ending in blank
          b = entry(prefix, beam, None)
          b.p_b = _logaddexp(b.p_b, beam.ctc + p)
        elif c == last:
          b = entry(prefix, beam, None)              # repeat without a blank collapses into the same prefix
          b.p_nb = _logaddexp(b.p_nb, beam.p_nb + p)
          b = entry(prefix + (c,), beam, c)          # a repeated label only extends from p_b
          b.p_nb = _logaddexp(b.p_nb, beam.p_b + p)
        else:
          b = entry(prefix + (c,), beam, c)
          b.p_nb = _logaddexp(b.p_nb, beam.ctc + p)
    alive = [(k, b) for k, b in new.items() if b.ctc > NEG_INF]
    alive.sort(key=lambda kb: fused(kb[1]), reverse=True)
    beams = dict(alive[:beam_width])

  results = []
  for prefix, beam in beams.items():
    lm_logp, words, state = beam.lm_logp, beam.words, beam.lm_state
    if beam.partial:                                 # the last word is complete at the end
      if word_lm:
        s, state = lm.score(state, beam.partial)
        lm_logp += s
      words += 1
    if lm is not None:
      lm_logp += lm.end(state)                       # </s>
    score = beam.ctc + _weighted(alpha, lm_logp) + beta * words
    results.append((prefix, score, beam.ctc, lm_logp, words))
  results.sort(key=lambda r: r[1], reverse=True)
  return results[:n_best] if n_best is not None else results


def prefix_beam_search(log_probs, beam_width: int, *, blank: int = 0, length: int | None = None,
                       n_best: int | None = None, lm: LanguageModel | None = None,
                       alphabet: Sequence[str] | None = None, alpha: float = 0.0, beta: float = 0.0,
                       space_id: int | None = None, prune_log_prob: float | None = None) -> list[Hypothesis]:
  """CTC prefix beam search (Hannun et al. 2014, Alg. 1) with optional LM shallow fusion, on the host.

  Args:
    log_probs: (T, K) natural-log probabilities of one utterance (NumPy or JAX). length: valid frames (default T).
    beam_width: prefixes kept after each frame (ranked by the running fused score).
    n_best: how many hypotheses to return (default: every prefix left in the final beam).
    lm: a `LanguageModel` ('char': every emitted label is scored; 'word': a word is scored when the separator
      after it is emitted; at the end the last word and </s>). alphabet: alphabet[i] = string of label i.
    alpha, beta: LM weight and per-word bonus (see the module docstring for other decoders' names for them).
    space_id: the word separator's label (default: alphabet.index(' ') when present; None = no separator).
    prune_log_prob: labels with log p below it at a frame are not tried there (speed; exactness is lost).

  Returns [(labels, score)], best first, where score = log p_CTC(y|x) + α·log p_LM(y) + β·|words(y)| (just the
  CTC log prob when there is no LM and β = 0). `prefix_beam_search_with_scores` also returns the parts.
  """
  out = prefix_beam_search_with_scores(log_probs, beam_width, blank=blank, length=length, n_best=n_best, lm=lm,
                                       alphabet=alphabet, alpha=alpha, beta=beta, space_id=space_id,
                                       prune_log_prob=prune_log_prob)
  return [(r[0], r[1]) for r in out]


# ----------------------------------------------------------------------------------------------------------------
# Batched, jit-compiled prefix beam search
# ----------------------------------------------------------------------------------------------------------------

# Two rolling hashes of a prefix, h' = h·M + c + 1 (mod 2^32) with different M (a 64-bit key); merges are also
# verified exactly on the ids.
_HASH_MULTS = (1_000_003, 2_654_435_761)


def _search_one(log_probs, length, lm_table, alpha, beta, space_id, *, beam_width: int, blank: int, n_best: int):
  """Prefix beam search of one utterance with fixed shapes: W beams × K candidates per frame, top-W kept."""
  num_frames, num_classes = log_probs.shape
  w_ = beam_width
  order = lm_table.ndim
  dtype = log_probs.dtype
  neg_inf = jnp.array(-jnp.inf, dtype)
  positions = jnp.arange(num_frames)
  labels = jnp.arange(num_classes)
  is_blank = labels == blank

  def lm_rows(ctx):   # [W, K]: log p(c | the beam's last n-1 labels)
    return lm_table[tuple(ctx[:, j] for j in range(order - 1))] if order > 1 else jnp.broadcast_to(
        lm_table, (w_, num_classes))

  def weighted(x):    # α·x with 0·(−inf) = 0
    return jnp.where(alpha == 0, jnp.zeros_like(x), alpha * x)

  init = dict(
      prefix=jnp.full((w_, num_frames), blank, jnp.int32),
      plen=jnp.zeros((w_,), jnp.int32),
      last=jnp.full((w_,), -1, jnp.int32),               # −1: empty prefix (no label to repeat)
      hash=jnp.zeros((w_, 2), jnp.uint32),
      parent_hash=jnp.zeros((w_, 2), jnp.uint32),        # hash of the prefix without its last label
      p_b=jnp.full((w_,), neg_inf).at[0].set(0.0),       # only beam 0 (the empty prefix) is alive
      p_nb=jnp.full((w_,), neg_inf),
      lm=jnp.zeros((w_,), dtype),
      ctx=jnp.full((w_, max(order - 1, 1)), blank, jnp.int32),
      words=jnp.zeros((w_,), dtype),
      in_word=jnp.zeros((w_,), bool),
  )

  def step(state, inputs):
    lp, valid = inputs
    p_b, p_nb, last = state['p_b'], state['p_nb'], state['last']
    ctc = jnp.logaddexp(p_b, p_nb)
    alive = ctc > neg_inf
    # Candidates [W, K]: column `blank` = the beam's own prefix (stay), column c = the prefix extended by c.
    # Hannun et al. 2014, Alg. 1: stay via blank adds to p_b, stay via a repeated last label to p_nb; an extension
    # by the last label only comes from p_b (a blank must separate repeats).
    stay_b = ctc + lp[blank]
    stay_nb = jnp.where(last >= 0, p_nb + lp[jnp.maximum(last, 0)], neg_inf)
    repeat = labels[None, :] == last[:, None]
    ext_nb = jnp.where(repeat, p_b[:, None], ctc[:, None]) + lp[None, :]
    ext_nb = jnp.where(is_blank[None, :], neg_inf, ext_nb)

    # Merge: the only collisions are "beam j stays" == "beam i extended by last[j]" (prefixes in a beam are
    # distinct). Find i by hash, verify exactly, move the extension's mass into the stay candidate.
    match = ((state['parent_hash'][:, None] == state['hash'][None, :]).all(-1)
             & (state['plen'][:, None] == state['plen'][None, :] + 1) & alive[:, None] & alive[None, :])
    parent = jnp.argmax(match, axis=1)
    same = jnp.where(positions[None, :] < state['plen'][parent][:, None],
                     state['prefix'] == state['prefix'][parent], True).all(axis=1)
    merge = match.any(axis=1) & same                                    # [W]: beam j absorbs ext(parent[j], last[j])
    absorbed = ext_nb[parent, jnp.maximum(last, 0)]
    stay_nb = jnp.where(merge, jnp.logaddexp(stay_nb, absorbed), stay_nb)
    drop = jnp.zeros((w_, num_classes), bool).at[parent, jnp.maximum(last, 0)].max(merge)
    ext_nb = jnp.where(drop, neg_inf, ext_nb)

    # LM and word bonus of each candidate (only extensions change them).
    is_space = labels == space_id
    lm_ext = state['lm'][:, None] + lm_rows(state['ctx'])
    lm_cand = jnp.where(is_blank[None, :], state['lm'][:, None], lm_ext)
    words_cand = state['words'][:, None] + (is_space[None, :] & state['in_word'][:, None]).astype(dtype)
    words_cand = jnp.where(is_blank[None, :], state['words'][:, None], words_cand)
    cand_b = jnp.where(is_blank[None, :], stay_b[:, None], neg_inf)
    cand_nb = jnp.where(is_blank[None, :], stay_nb[:, None], ext_nb)
    cand_ctc = jnp.logaddexp(cand_b, cand_nb)
    score = cand_ctc + weighted(lm_cand) + beta * words_cand
    score = jnp.where(cand_ctc > neg_inf, score, neg_inf)

    _, flat = jax.lax.top_k(score.reshape(-1), w_)
    src, c = flat // num_classes, flat % num_classes
    ext = c != blank
    plen = state['plen'][src]
    new = dict(
        prefix=jnp.where(ext[:, None] & (positions[None, :] == plen[:, None]), c[:, None], state['prefix'][src]),
        plen=plen + ext,
        last=jnp.where(ext, c, last[src]),
        hash=jnp.where(ext[:, None], state['hash'][src] * jnp.array(_HASH_MULTS, jnp.uint32)
                       + (c + 1).astype(jnp.uint32)[:, None], state['hash'][src]),
        parent_hash=jnp.where(ext[:, None], state['hash'][src], state['parent_hash'][src]),
        p_b=cand_b[src, c],
        p_nb=cand_nb[src, c],
        lm=lm_cand[src, c],
        ctx=jnp.where(ext[:, None], jnp.concatenate([state['ctx'][src], c[:, None]], axis=1)[:, 1:],
                      state['ctx'][src]) if order > 1 else state['ctx'],
        words=words_cand[src, c],
        in_word=jnp.where(ext, c != space_id, state['in_word'][src]),
    )
    new = jax.tree.map(lambda a, b: jnp.where(valid, a, b), new, state)   # padded frames change nothing
    return new, None

  final, _ = jax.lax.scan(step, init, (log_probs, positions < length))
  ctc = jnp.logaddexp(final['p_b'], final['p_nb'])
  end = lm_rows(final['ctx'])[:, blank]                                  # log p(</s> | context)
  score = ctc + weighted(final['lm'] + end) + beta * (final['words'] + final['in_word'])
  score = jnp.where(ctc > neg_inf, score, neg_inf)
  best_scores, best = jax.lax.top_k(score, n_best)
  return final['prefix'][best], final['plen'][best], best_scores


@functools.partial(jax.jit, static_argnames=('beam_width', 'blank', 'n_best'))
def _search_batch(log_probs, lengths, lm_table, alpha, beta, space_id, *, beam_width, blank, n_best):
  fn = functools.partial(_search_one, beam_width=beam_width, blank=blank, n_best=n_best)
  return jax.vmap(fn, in_axes=(0, 0, None, None, None, None))(log_probs, lengths, lm_table, alpha, beta, space_id)


def batched_prefix_beam_search(log_probs, lengths, *, beam_width: int, blank: int = 0, lm_table=None,
                               alpha: float = 0.0, beta: float = 0.0, space_id: int | None = None,
                               n_best: int = 1) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The prefix beam search of `prefix_beam_search`, jit-compiled and batched for the accelerator.

  log_probs: (B, T, K) natural-log probabilities; lengths: (B,) valid frames (later frames are skipped).
  lm_table: optional character n-gram table, shape (K,)*(n-1) + (K,), as in `DenseCharLM` (context id `blank` =
  <s>; column `blank` = log p(</s> | context), added at the end). alpha, beta, space_id: as in `prefix_beam_search`
  (space_id None: no word separator, so a non-empty labelling is one word).

  Fixed shapes: W = beam_width prefixes stored as (W, T) id arrays + lengths; per frame all W·K candidates are
  scored at once (stay = column blank, extensions = the other columns), merged (a rolling hash of each prefix and
  of its parent finds the one possible collision per beam, checked exactly on the ids), and the top W kept with
  `lax.top_k`. Agrees with the host search up to float32 rounding and the order of exact ties.

  Returns (ids [B, n_best, T] padded with `blank`, lengths [B, n_best], scores [B, n_best]) best first; the
  scores are the fused scores (CTC log prob when there is no LM and β = 0); hypotheses that do not exist (fewer
  than n_best prefixes survive) have score −inf.
  """
  log_probs = jnp.asarray(log_probs)
  if log_probs.ndim != 3:
    raise ValueError(f'log_probs must be (B, T, K), got {log_probs.shape}')
  batch, _, num_classes = log_probs.shape
  lengths = jnp.asarray(lengths, jnp.int32).reshape(-1)
  if lengths.shape != (batch,):
    raise ValueError(f'lengths must be (B,) = ({batch},), got {lengths.shape}')
  _check_blank(blank, num_classes)
  if int(beam_width) < 1 or not 1 <= int(n_best) <= int(beam_width):
    raise UserError(f'beam_width {beam_width}, n_best {n_best}', '1 <= n_best <= beam_width',
                    'use a positive beam width at least n_best')
  if space_id is not None and not 0 <= space_id < num_classes:
    raise UserError(f'space_id {space_id} outside [0, {num_classes})', 'the label id of the word separator',
                    'pass space_id= within the vocabulary')
  if lm_table is None:
    lm_table = jnp.zeros((num_classes,), log_probs.dtype)     # a flat unigram with α = 0: no LM
    alpha = 0.0
  lm_table = jnp.asarray(lm_table, log_probs.dtype)
  if lm_table.shape != (num_classes,) * lm_table.ndim:
    raise UserError(f'lm_table of shape {lm_table.shape} for K = {num_classes}', 'shape (K,)*(n-1) + (K,)',
                    'build the n-gram table over the model vocabulary')
  return _search_batch(log_probs, lengths, lm_table, jnp.asarray(alpha, log_probs.dtype),
                       jnp.asarray(beta, log_probs.dtype), jnp.asarray(-1 if space_id is None else space_id),
                       beam_width=int(beam_width), blank=int(blank), n_best=int(n_best))
