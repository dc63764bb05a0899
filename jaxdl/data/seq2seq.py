"""Built-in sequence-to-sequence tasks (course chapter 4: "Dealing with variable size unaligned input/output
sequences"; Sutskever et al. 2014; Bahdanau et al. 2015), generated offline and deterministic by seed.

* `dates`: a date written in one of many human forms ("tuesday 3 march 1987", "03/03/87", "March 3rd, 1987",
  "the 3rd of march 1987", ...) -> its ISO form "1987-03-03", character level (the translation-like task of the
  seq2seq-with-attention tutorials). Dates run from 1950-01-01 to 2049-12-31; two-digit years mean 1950-2049, and
  slashed / dotted numeric forms are always day first, so every source has exactly one answer. The held-out split
  uses DATES never seen in training (a fixed, seeded fraction of the days), in any form.
* `reverse`: a sequence of `min_length`..`max_length` symbols over `num_symbols` digits -> the same symbols in
  reverse order (the UvA deep-learning tutorial 6 task at 16 tokens over 10 symbols; order matters at every
  position). Test sequences never occur in training.

* `translation_tfds` (stock, needs data): a TFDS translation set prepared as ArrayRecord (default
  `wmt14_translate/fr-en`, Sutskever et al. 2014's WMT'14 English→French), read TF-free with `tfds.data_source`;
  word level (punctuation split off), the `src_vocab_size` / `tgt_vocab_size` most frequent training words of each
  side (Sutskever: 160,000 / 80,000) joined into the one vocabulary, others UNK; pairs longer than `max_length`
  words dropped. BLEU is computed on the tokenized text (as Sutskever et al.'s tokenized BLEU).

Each split is a `RaggedSource` (jaxdl.data.buckets) with ragged fields
  inputs          source ids (no BOS/EOS)
  targets         target ids + EOS                  (what the decoder predicts)
  decoder_inputs  BOS + target ids                  (teacher forcing: the decoder's inputs, targets shifted right)
targets and decoder_inputs have equal lengths and the same buckets, so their padded batches align; `references`
are the target strings (what generating evaluation compares with). One shared character vocabulary (PAD 0, BOS 1,
EOS 2, UNK 3) encodes both sides; `DatasetInfo.num_outputs` is its size.
`encode_source(text, vocab)` checks user input for a trained model (empty text, characters out of vocabulary).
"""
from __future__ import annotations

import collections
import datetime
import re

import numpy as np

from jaxdl.data import Dataset, DatasetInfo
from jaxdl.data.buckets import RaggedSource
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.text.vocab import Vocabulary

MONTHS = ('january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october',
          'november', 'december')
WEEKDAYS = ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')
FIRST_DAY, NUM_DAYS = datetime.date(1950, 1, 1), 36524         # 1950-01-01 .. 2049-12-31


def _ordinal(n: int) -> str:
  suffix = 'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')
  return f'{n}{suffix}'


# Human forms of a date d (day first in every numeric form). Capitalised variants keep the task about reading.
DATE_FORMATS = (
    lambda d: f'{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}',      # tuesday 3 march 1987
    lambda d: f'{d.day:02d}/{d.month:02d}/{d.year % 100:02d}',                        # 03/03/87
    lambda d: f'{MONTHS[d.month - 1].capitalize()} {_ordinal(d.day)}, {d.year}',     # March 3rd, 1987
    lambda d: f'{d.day} {MONTHS[d.month - 1][:3]} {d.year}',                          # 3 mar 1987
    lambda d: f'{d.day:02d}.{d.month:02d}.{d.year}',                                  # 03.03.1987
    lambda d: f'the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}',             # the 3rd of march 1987
    lambda d: f'{WEEKDAYS[d.weekday()][:3]}, {MONTHS[d.month - 1][:3]} {d.day}, {d.year}',  # tue, mar 3, 1987
    lambda d: f'{d.day}/{d.month}/{d.year}',                                          # 3/3/1987
    lambda d: f'{MONTHS[d.month - 1].upper()} {d.day} {d.year}',                      # MARCH 3 1987
    lambda d: f'{d.day} {MONTHS[d.month - 1]} {d.year % 100:02d}',                    # 3 march 87
    lambda d: f'{WEEKDAYS[d.weekday()].capitalize()}, {d.day} {MONTHS[d.month - 1].capitalize()} {d.year}',
)


def date_pair(day: int, form: int) -> tuple[str, str]:
  """(human form `form` of day number `day` since 1950-01-01, its ISO form)."""
  d = FIRST_DAY + datetime.timedelta(days=int(day))
  return DATE_FORMATS[form](d), d.isoformat()


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
  if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo
          and (hi is None or value <= hi)):
    rng = f'an integer >= {lo}' if hi is None else f'an integer in [{lo}, {hi}]'
    raise UserError(f'config.data.{name}={value!r}', rng, f'fix --config.data.{name}')


def _pair_source(pairs: list[tuple[str, str]], vocab: Vocabulary, name: str, multiple: int = 4) -> RaggedSource:
  """RaggedSource of (source, target) text pairs: inputs, targets (+EOS), decoder_inputs (BOS+), references."""
  src = [np.asarray(vocab.encode(s), np.int32) for s, _ in pairs]
  tgt = [np.asarray(vocab.encode(t), np.int32) for _, t in pairs]
  targets = [np.append(t, vocab.eos_id).astype(np.int32) for t in tgt]
  dec_in = [np.insert(t, 0, vocab.bos_id).astype(np.int32) for t in tgt]
  up = lambda n: int(-(-n // multiple) * multiple)
  src_b = tuple(sorted({up(len(s)) for s in src} | {up(max(len(s) for s in src))}))
  tgt_b = tuple(sorted({up(len(t)) for t in targets}))
  return RaggedSource({'inputs': src, 'targets': targets, 'decoder_inputs': dec_in},
                      {'inputs': src_b, 'targets': tgt_b, 'decoder_inputs': tgt_b},
                      references=[t for _, t in pairs], name=name)


def _dataset(name: str, splits: dict[str, list[tuple[str, str]]], vocab: Vocabulary, multiple: int = 4) -> Dataset:
  sources = {k: _pair_source(v, vocab, f'{name} {k}', multiple) for k, v in splits.items()}
  first = sources['train']
  info = DatasetInfo(name, 'classification', (int(first.buckets['inputs'][-1]),), len(vocab),
                     {k: len(v) for k, v in sources.items()})
  return Dataset(info, sources, vocabulary=vocab)


def _vocab(texts) -> Vocabulary:
  return Vocabulary(sorted({ch for t in texts for ch in t}), level='char')


@DATASETS.register('dates', source='generated (jaxdl/data/seq2seq.py); seq2seq-with-attention tutorials')
def dates(*, num_train: int = 20000, num_test: int = 2000, test_fraction: float = 0.1, seed: int = 0) -> Dataset:
  """Human-readable dates -> ISO dates; test dates (a seeded `test_fraction` of all days) never occur in training."""
  _check_int('num_train', num_train, 1)
  _check_int('num_test', num_test, 1)
  if not 0.0 < test_fraction < 1.0:
    raise UserError(f'config.data.test_fraction={test_fraction!r}', 'a fraction in (0, 1)',
                    'fix --config.data.test_fraction')
  rng = np.random.default_rng([seed, 1987])
  days = rng.permutation(NUM_DAYS)
  n_test_days = int(round(test_fraction * NUM_DAYS))
  pools = {'test': days[:n_test_days], 'train': days[n_test_days:]}
  splits = {}
  for split, n in (('train', num_train), ('test', num_test)):
    pick = rng.choice(pools[split], n, replace=n > len(pools[split]))
    forms = rng.integers(0, len(DATE_FORMATS), n)
    splits[split] = [date_pair(d, f) for d, f in zip(pick, forms)]
  # every character any form can produce (not only those drawn), so the vocabulary does not depend on the sizes
  # (400 days cover every month, weekday and day of the month; the digits cover every year)
  alphabet = [date_pair(d, f)[i] for d in range(400) for f in range(len(DATE_FORMATS)) for i in (0, 1)] + ['0123456789']
  return _dataset('dates', splits, _vocab(alphabet))


@DATASETS.register('reverse', source='generated (jaxdl/data/seq2seq.py); UvA DL tutorial 6 (16 tokens, 10 symbols)')
def reverse(*, num_train: int = 50000, num_test: int = 2000, min_length: int = 16, max_length: int = 16,
            num_symbols: int = 10, bucket_width: int = 8, seed: int = 0) -> Dataset:
  """Sequences of min_length..max_length symbols ('0'..'9', then letters) -> reversed; test never in training.
  Padded lengths are multiples of `bucket_width` (each bucket compiles its own train step)."""
  _check_int('num_train', num_train, 1)
  _check_int('num_test', num_test, 1)
  _check_int('min_length', min_length, 1)
  _check_int('max_length', max_length, min_length)
  _check_int('num_symbols', num_symbols, 2, 36)
  _check_int('bucket_width', bucket_width, 1)
  symbols = '0123456789abcdefghijklmnopqrstuvwxyz'[:num_symbols]
  rng = np.random.default_rng([seed, 16])
  seen, splits = set(), {}
  for split, n in (('train', num_train), ('test', num_test)):
    pairs, tries = [], 0
    while len(pairs) < n:
      tries += 1
      if tries > 20 * n + 1000:
        raise UserError(f'reverse: cannot draw {n} distinct {split} sequences of {min_length}-{max_length} symbols '
                        f'over {num_symbols}', 'fewer examples than distinct sequences',
                        'lower num_train / num_test or raise max_length / num_symbols')
      length = int(rng.integers(min_length, max_length + 1))
      s = ''.join(symbols[i] for i in rng.integers(0, num_symbols, length))
      if s in seen:
        continue
      seen.add(s)
      pairs.append((s, s[::-1]))
    splits[split] = pairs
  return _dataset('reverse', splits, _vocab(symbols), multiple=1 if min_length == max_length else bucket_width)


_WORDS = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> str:
  """Words with punctuation split off, joined by single spaces ("Hello, world!" -> "Hello , world !")."""
  return ' '.join(_WORDS.findall(text))


def _top_words(texts, n: int) -> list[str]:
  counts = collections.Counter(w for t in texts for w in t.split())
  return [w for w, _ in counts.most_common(n)]


@DATASETS.register('translation_tfds', source='TFDS translation set (prepare once; see jaxdl/data/stock.py)',
                   stock=True, description='TFDS translation pairs via tfds.data_source (ArrayRecord), TF-free reads')
def translation_tfds(*, tfds_name: str = 'wmt14_translate/fr-en', source_language: str = 'en',
                     target_language: str = 'fr', splits: tuple = ('train', 'validation', 'test'), data_dir: str = '',
                     src_vocab_size: int = 160000, tgt_vocab_size: int = 80000, max_length: int = 50,
                     max_examples: int = 0) -> Dataset:
  """Word-level pairs of a TFDS translation set; `max_examples` > 0 reads only the first ones of each split.
  The first split is the training split (it makes the vocabulary and is exposed as 'train')."""
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  _check_int('src_vocab_size', src_vocab_size, 1)
  _check_int('tgt_vocab_size', tgt_vocab_size, 1)
  _check_int('max_length', max_length, 1)
  _check_int('max_examples', max_examples, 0)
  pairs = {}
  for split in splits:
    src = stock.load_split(tfds_name, split, data_dir, cache=False)._src
    n = len(src) if not max_examples else min(max_examples, len(src))
    out = []
    for i in range(n):
      rec = src[i]
      if source_language not in rec or target_language not in rec:
        raise UserError(f'{tfds_name} {split} record {i} has fields {sorted(rec)}',
                        f'the languages {source_language!r} and {target_language!r}',
                        'set --config.data.source_language / target_language to two of them')
      a, b = (word_tokens(rec[k].decode('utf-8') if isinstance(rec[k], bytes) else str(rec[k]))
              for k in (source_language, target_language))
      if a and b and len(a.split()) <= max_length and len(b.split()) <= max_length:
        out.append((a, b))
    if not out:
      raise UserError(f'{tfds_name} {split}: no pair of at most {max_length} words', 'non-empty pairs',
                      'raise --config.data.max_length (or check the prepared data)')
    pairs['train' if split == splits[0] else split] = out
  train = pairs['train']
  words = _top_words([a for a, _ in train], src_vocab_size)
  seen = set(words)
  words += [w for w in _top_words([b for _, b in train], tgt_vocab_size) if w not in seen]
  return _dataset('translation_tfds', pairs, Vocabulary.from_tokens(words, 'word'))


def encode_source(text: str, vocab: Vocabulary) -> np.ndarray:
  """A user's source text as ids for a trained model; empty text or characters out of vocabulary: UserError."""
  if not isinstance(text, str) or not text:
    raise UserError(f'source text {text!r} is empty', 'at least one character', 'give a non-empty source')
  missing = vocab.unknown(text)
  if missing:
    raise UserError(f'source text has characters out of the vocabulary: {", ".join(map(repr, missing[:10]))}',
                    f'only the {len(vocab) - 4} characters the model was trained on', 'remove or replace them')
  return np.asarray(vocab.encode(text, strict=True), np.int32)
