"""Word and character error rates of a speech recogniser (course chapter 5: CTC on speech; claims S6, S8).

  WER = Σ_u (S_u + D_u + I_u) / Σ_u N_u      over utterances u, N_u = reference words
  CER = the same over characters (spaces included)

S, D, I are the substitutions, deletions and insertions of a minimum-edit (Levenshtein) alignment of hypothesis to
reference, computed by jiwer (process_words / process_characters). The corpus rate is the ratio of sums, as
sclite, Kaldi's compute-wer and jiwer report it, not the mean of per-utterance rates (which would weigh a
two-word utterance as much as a fifty-word one).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jiwer

from jaxdl.errors import UserError

# jiwer 4.x transforms, spelled out: words split on any whitespace; characters of the stripped string.
_WORDS = jiwer.Compose([jiwer.RemoveWhiteSpace(replace_by_space=True), jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                        jiwer.ReduceToListOfListOfWords()])
_CHARS = jiwer.Compose([jiwer.Strip(), jiwer.ReduceToListOfListOfChars()])


@dataclasses.dataclass(frozen=True)
class ErrorRate:
  """Corpus-level edit counts and their rate (errors / reference_length)."""
  rate: float
  errors: int                 # substitutions + deletions + insertions
  substitutions: int
  deletions: int
  insertions: int
  hits: int
  reference_length: int       # hits + substitutions + deletions = Σ reference tokens
  utterances: int

  def __float__(self) -> float:
    return self.rate


def wer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> ErrorRate:
  """Corpus word error rate Σ(S+D+I) / Σ N over whitespace-separated words (one string = one utterance)."""
  return _error_rate(references, hypotheses, 'word')


def cer(references: Sequence[str] | str, hypotheses: Sequence[str] | str) -> ErrorRate:
  """Corpus character error rate Σ(S+D+I) / Σ N over characters, spaces included (ends stripped)."""
  return _error_rate(references, hypotheses, 'char')


def _error_rate(references, hypotheses, unit: str) -> ErrorRate:
  refs = [references] if isinstance(references, str) else list(references)
  hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
  for name, seq in (('reference', refs), ('hypothesis', hyps)):
    for s in seq:
      if not isinstance(s, str):
        raise TypeError(f'each {name} is a string, got {type(s).__name__}')
  if len(refs) != len(hyps):
    raise UserError(f'{len(refs)} references but {len(hyps)} hypotheses', 'one hypothesis per reference',
                    'pair every utterance with its transcript')
  if not refs:
    raise UserError('no utterances to score', 'at least one reference', 'pass the test set transcripts')
  empty = [i for i, r in enumerate(refs) if not r.split()]
  if empty:   # its rate is undefined and jiwer would count it as 0 reference tokens: a data error
    raise UserError(f'{len(empty)} empty reference transcript(s), first at index {empty[0]}',
                    'every reference to contain text', 'drop or fix those utterances in the test set')
  if unit == 'word':
    out = jiwer.process_words(refs, hyps, reference_transform=_WORDS, hypothesis_transform=_WORDS)
  else:
    out = jiwer.process_characters(refs, hyps, reference_transform=_CHARS, hypothesis_transform=_CHARS)
  s, d, i, h = out.substitutions, out.deletions, out.insertions, out.hits
  n = h + s + d
  return ErrorRate(rate=(s + d + i) / n, errors=s + d + i, substitutions=s, deletions=d, insertions=i, hits=h,
                   reference_length=n, utterances=len(refs))
