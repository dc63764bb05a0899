"""Corpus BLEU and exact-match rate for generated sequences (course chapter 4: machine translation, captioning —
show-attend-and-tell early-stops on BLEU; Papineni et al. 2002).

BLEU-4 = BP · exp(¼ Σ_{n=1..4} log p_n), p_n the corpus-level modified (clipped) n-gram precision and
BP = min(1, exp(1 − r/c)) the brevity penalty (c: hypothesis length, r: closest reference lengths), computed by
sacrebleu (Post 2018), the maintained reference implementation, on a 0-100 scale.

Hypotheses and references are strings or token sequences (lists of str or int ids, e.g. from
Vocabulary.decode_tokens). Token sequences are scored as given (tokenize='none'); strings go through sacrebleu's
tokenizer (default '13a', the WMT standard). Every hypothesis has one reference or a list of references (their
number may vary).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import sacrebleu

from jaxdl.errors import UserError


@dataclasses.dataclass(frozen=True)
class Bleu:
  score: float                  # BLEU on a 0-100 scale
  precisions: tuple             # p_1 … p_4 in percent
  brevity_penalty: float
  hyp_len: int                  # c
  ref_len: int                  # r
  signature: str                # sacrebleu's reproducibility signature


def _is_seq(x) -> bool:
  return isinstance(x, (list, tuple)) or (hasattr(x, 'ndim') and getattr(x, 'ndim') == 1)


def _as_text(x) -> tuple[str, bool]:
  """(a whitespace-joined string, whether x was a token sequence)."""
  if isinstance(x, str):
    return x, False
  if _is_seq(x):
    toks = [str(t) for t in (x.tolist() if hasattr(x, 'tolist') else x)]
    if any(not t or any(ch.isspace() for ch in t) for t in toks):
      raise UserError('a token is empty or contains whitespace', 'whitespace-free tokens', 'split such tokens')
    return ' '.join(toks), True
  raise UserError(f'a hypothesis/reference of type {type(x).__name__}', 'a string or a sequence of tokens',
                  'pass strings or token lists')


def _prepare(hypotheses, references):
  """([(text, is_tokens)] per hypothesis, [[(text, is_tokens)] per reference] per hypothesis).

  References mirror their hypothesis: for a string hypothesis, a string or a list of strings; for a token
  sequence, a token sequence or a list of token sequences.
  """
  hyps = list(hypotheses)
  if not hyps:
    raise UserError('no hypotheses to score', 'at least one hypothesis', 'check the decoded outputs')
  if len(references) != len(hyps):
    raise UserError(f'{len(hyps)} hypotheses but {len(references)} references', 'one reference entry per hypothesis',
                    'align the hypothesis and reference lists')
  hyp_text = [_as_text(h) for h in hyps]
  kinds = {is_tok for _, is_tok in hyp_text}
  if len(kinds) > 1:
    raise UserError('hypotheses mix strings and token sequences', 'all strings or all token sequences',
                    'convert them to one kind')
  tokens = kinds == {True}
  ref_text = []
  for r in references:
    if tokens:
      single = _is_seq(r) and (len(r) == 0 or not _is_seq(r[0]))
    else:
      single = isinstance(r, str)
    refs = [_as_text(x) for x in ([r] if single else list(r))]
    if not refs:
      raise UserError('a hypothesis has no reference', 'at least one reference per hypothesis', 'fix the references')
    if any(is_tok != tokens for _, is_tok in refs):
      raise UserError(f'references are {"strings" if tokens else "token sequences"} but hypotheses are not',
                      'references of the same kind as the hypotheses', 'convert them to one kind')
    ref_text.append(refs)
  return hyp_text, ref_text


def corpus_bleu(hypotheses: Sequence[Any], references: Sequence[Any], *, tokenize: str | None = None,
                lowercase: bool = False, smooth_method: str = 'exp') -> Bleu:
  """Corpus BLEU-4 (sacrebleu.metrics.BLEU). references[i]: one reference or a list of references of hypothesis
  i. tokenize: sacrebleu's tokenizer; default 'none' for token sequences, '13a' for strings."""
  hyp_text, ref_text = _prepare(hypotheses, references)
  if tokenize is None:
    tokenize = 'none' if hyp_text[0][1] else '13a'
  if tokenize not in sacrebleu.metrics.BLEU.TOKENIZERS:
    raise UserError(f'BLEU tokenizer {tokenize!r}', f'one of {sorted(sacrebleu.metrics.BLEU.TOKENIZERS)}',
                    'fix tokenize')
  if smooth_method not in sacrebleu.metrics.BLEU.SMOOTH_DEFAULTS:
    raise UserError(f'BLEU smoothing {smooth_method!r}', f'one of {sorted(sacrebleu.metrics.BLEU.SMOOTH_DEFAULTS)}',
                    'fix smooth_method')
  n_refs = max(len(r) for r in ref_text)
  streams = [[refs[j][0] if j < len(refs) else None for refs in ref_text] for j in range(n_refs)]
  metric = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method, force=True)
  s = metric.corpus_score([h for h, _ in hyp_text], streams)
  return Bleu(float(s.score), tuple(float(p) for p in s.precisions), float(s.bp), int(s.sys_len), int(s.ref_len),
              str(metric.get_signature()))


def exact_match(hypotheses: Sequence[Any], references: Sequence[Any]) -> float:
  """Fraction of hypotheses equal to one of their references (token sequences compared token by token,
  strings compared after stripping surrounding whitespace)."""
  hyp_text, ref_text = _prepare(hypotheses, references)
  hits = sum(h.strip() in {r.strip() for r, _ in refs} for (h, _), refs in zip(hyp_text, ref_text))
  return hits / len(hyp_text)
