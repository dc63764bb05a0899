"""Token vocabularies for character- and word-level models (course chapter 4: char-RNN, seq2seq, captioning).

Ids 0-3 are always the specials PAD = 0 (so zero-padded batches need no mask arithmetic), BOS = 1, EOS = 2 and
UNK = 3; ordinary tokens follow, most frequent first (ties in first-seen order) when built from a corpus.
A 'char' vocabulary splits text into characters and joins them back with ''; a 'word' vocabulary splits on
whitespace and joins with ' '. Unknown tokens encode to UNK, or raise a UserError naming them with strict=True
(e.g. a char-RNN prime containing characters the model never saw). `to_json` / `from_json` save a vocabulary with
a run so that a checkpoint decodes with the ids it was trained on.
"""
from __future__ import annotations

import collections
import json
import pathlib
from typing import Iterable, Sequence

import numpy as np

from jaxdl.errors import UserError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ('<pad>', '<bos>', '<eos>', '<unk>')
LEVELS = ('char', 'word')
FORMAT = 'jaxdl.vocabulary'


class Vocabulary:
  """id ↔ token maps with the specials first: `Vocabulary(tokens, level)`, or `from_corpus` / `from_tokens`."""

  pad_id, bos_id, eos_id, unk_id = PAD, BOS, EOS, UNK

  def __init__(self, tokens: Sequence[str], level: str = 'char'):
    if level not in LEVELS:
      raise UserError(f'vocabulary level {level!r}', f'one of {LEVELS}', 'use level="char" or level="word"')
    tokens = list(tokens)
    bad = [t for t in tokens if not isinstance(t, str) or t == '']
    if bad:
      raise UserError(f'vocabulary tokens {bad[:5]!r} are not non-empty strings', 'non-empty str tokens',
                      'clean the token list')
    clash = sorted(set(tokens) & set(SPECIALS))
    if clash:
      raise UserError(f'vocabulary tokens {clash} collide with the special tokens', f'none of {SPECIALS}',
                      'remove them from the token list (the specials are added automatically)')
    dupes = sorted(t for t, n in collections.Counter(tokens).items() if n > 1)
    if dupes:
      raise UserError(f'duplicate vocabulary tokens {dupes[:10]!r}', 'each token once', 'deduplicate the list')
    if level == 'word' and any(any(ch.isspace() for ch in t) for t in tokens):
      raise UserError('a word-level vocabulary token contains whitespace', 'whitespace-free words',
                      'split the tokens on whitespace')
    self.level = level
    self._itos = list(SPECIALS) + tokens
    self._stoi = {t: i for i, t in enumerate(self._itos)}

  # ----------------------------------------------------------------------------------------------- construction
  @classmethod
  def from_tokens(cls, tokens: Sequence[str], level: str = 'char') -> 'Vocabulary':
    """The given tokens, in order, after the specials."""
    return cls(tokens, level)

  @classmethod
  def from_corpus(cls, texts: Iterable[str] | str, level: str = 'char', *, min_count: int = 1,
                  max_size: int | None = None) -> 'Vocabulary':
    """Tokens of `texts` seen at least `min_count` times, most frequent first (ties: first seen first), at most
    `max_size` ids in all (the 4 specials included)."""
    if not (isinstance(min_count, (int, np.integer)) and min_count >= 1):
      raise UserError(f'vocabulary min_count={min_count!r}', 'an integer >= 1', 'fix min_count')
    if max_size is not None and not (isinstance(max_size, (int, np.integer)) and max_size >= len(SPECIALS)):
      raise UserError(f'vocabulary max_size={max_size!r}', f'an integer >= {len(SPECIALS)} (the specials count)',
                      'raise max_size')
    if isinstance(texts, str):
      texts = [texts]
    counts: collections.Counter = collections.Counter()
    for text in texts:
      counts.update(split(text, level))
    counts = collections.Counter({t: n for t, n in counts.items() if t not in SPECIALS})
    order = [t for t, n in counts.most_common() if n >= min_count]   # most_common keeps first-seen order on ties
    if max_size is not None:
      order = order[:max_size - len(SPECIALS)]
    return cls(order, level)

  # ------------------------------------------------------------------------------------------------- encoding
  def __len__(self) -> int:
    return len(self._itos)

  def __contains__(self, token) -> bool:
    return token in self._stoi

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self.level == other.level and self._itos == other._itos

  def __repr__(self) -> str:
    return f'Vocabulary(level={self.level!r}, size={len(self)})'

  @property
  def tokens(self) -> list[str]:
    """All tokens by id, specials first."""
    return list(self._itos)

  def token_to_id(self, token: str) -> int:
    return self._stoi.get(token, UNK)

  def id_to_token(self, i: int) -> str:
    return self._itos[int(i)]

  def unknown(self, text: str | Sequence[str]) -> list[str]:
    """The distinct tokens of `text` outside the vocabulary, in first-seen order."""
    toks = split(text, self.level) if isinstance(text, str) else list(text)
    return list(dict.fromkeys(t for t in toks if t not in self._stoi))

  def encode(self, text: str | Sequence[str], add_bos: bool = False, add_eos: bool = False, *,
             strict: bool = False) -> np.ndarray:
    """int32 ids of `text` (a string, split by the level, or a list of tokens); unknown tokens → UNK, or a
    UserError naming them when strict."""
    toks = split(text, self.level) if isinstance(text, str) else list(text)
    if strict:
      missing = self.unknown(toks)
      if missing:
        shown = ', '.join(repr(t) for t in missing[:20]) + (' …' if len(missing) > 20 else '')
        raise UserError(f'{len(missing)} {self.level}(s) not in the vocabulary: {shown}',
                        f'only the {len(self) - len(SPECIALS)} {self.level}s the model was trained on',
                        'remove or replace them')
    ids = [self._stoi.get(t, UNK) for t in toks]
    return np.asarray(([BOS] if add_bos else []) + ids + ([EOS] if add_eos else []), np.int32)

  def decode_tokens(self, ids, *, strip_specials: bool = True, stop_at_eos: bool = True) -> list[str]:
    """Tokens of `ids` (1-D): cut at the first EOS if stop_at_eos, PAD/BOS/EOS dropped if strip_specials (UNK is
    kept as '<unk>', it stands for a real token)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
      raise ValueError(f'decode takes one sequence of ids (1-D), got shape {ids.shape}')
    if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
      raise ValueError(f'ids outside [0, {len(self)}): min {ids.min()}, max {ids.max()}')
    out = []
    for i in ids.tolist():
      if stop_at_eos and i == EOS:
        break
      if strip_specials and i in (PAD, BOS, EOS):
        continue
      out.append(self._itos[i])
    return out

  def decode(self, ids, *, strip_specials: bool = True, stop_at_eos: bool = True) -> str:
    """The text of `ids`: tokens joined with '' (char) or ' ' (word); see `decode_tokens`."""
    return ('' if self.level == 'char' else ' ').join(
        self.decode_tokens(ids, strip_specials=strip_specials, stop_at_eos=stop_at_eos))

  # ------------------------------------------------------------------------------------------------ save/load
  def to_json(self) -> str:
    return json.dumps({'format': FORMAT, 'version': 1, 'level': self.level, 'specials': list(SPECIALS),
                       'tokens': self._itos[len(SPECIALS):]}, ensure_ascii=False)

  @classmethod
  def from_json(cls, text: str) -> 'Vocabulary':
    try:
      d = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
      raise UserError(f'the vocabulary is not valid JSON ({e})', 'the output of Vocabulary.to_json',
                      'point to the vocab.json saved with the run') from None
    if not isinstance(d, dict) or d.get('format') != FORMAT or not isinstance(d.get('tokens'), list):
      raise UserError('the JSON is not a jaxdl vocabulary', f'an object with format {FORMAT!r} and a token list',
                      'point to the vocab.json saved with the run')
    if list(d.get('specials', SPECIALS)) != list(SPECIALS):
      raise UserError(f'the vocabulary\'s special tokens {d.get("specials")} differ from {list(SPECIALS)}',
                      'PAD, BOS, EOS, UNK at ids 0-3', 'rebuild the vocabulary with this version of jaxdl')
    return cls(d['tokens'], d.get('level', 'char'))

  def save(self, path) -> None:
    pathlib.Path(path).write_text(self.to_json(), encoding='utf-8')

  @classmethod
  def load(cls, path) -> 'Vocabulary':
    p = pathlib.Path(path)
    if not p.is_file():
      raise UserError(f'no vocabulary file at {p}', 'a vocab.json written by Vocabulary.save',
                      'check the run directory')
    return cls.from_json(p.read_text(encoding='utf-8'))


def split(text: str, level: str) -> list[str]:
  """Tokens of `text`: its characters ('char') or its whitespace-separated words ('word')."""
  if level == 'char':
    return list(text)
  if level == 'word':
    return text.split()
  raise UserError(f'vocabulary level {level!r}', f'one of {LEVELS}', 'use level="char" or level="word"')
