"""Character-level corpora for the char-RNN (seed 000 "TRAINING AND SAMPLING FROM THE CHARACTER RNN", claim R1).

`char_corpus` cuts a text into non-overlapping chunks of `seq_len` characters (the notes: chunks of 60) for
next-character prediction with teacher forcing: inputs = c[t], targets = c[t+1] (one target per step, [T]):

  inputs   c[k·T], …, c[k·T + T − 1]        targets   c[k·T + 1], …, c[k·T + T]

The text, by `source` / `path`:
  pydoc             (default) the standard library's documentation topics (`pydoc_data.topics`, ≈ 465k characters
                    of English prose and Python code in CPython 3.11; present in every Python install, so training
                    needs no download — the text varies slightly between Python versions)
  path=FILE         any UTF-8 text file (the notes trained on "Les fabulistes": `--config.data.path=fables.txt`)
  tiny_shakespeare  TFDS's tiny_shakespeare (stock data, read TF-free through tfds.data_source like
                    jaxdl.data.stock; prepare it once, else a one-line error gives the command)

Splits: 'train' and 'validation' (the last `validation_fraction` of the text, contiguous, so that no validation
chunk is a neighbour of a training chunk); tiny_shakespeare has its own train/validation/test. The vocabulary
(jaxdl.text.vocab.Vocabulary, level 'char': the specials PAD/BOS/EOS/UNK at ids 0-3, then the text's distinct
characters sorted by code point, like the notes' {'\\t': 0, '\\n': 1, ' ': 2, …}) is a deterministic function of
the data config, so a run's vocabulary is rebuilt from its config.json (`jaxdl sample`); `corpus_vocabulary`
returns it. The specials never occur in the text.
"""
from __future__ import annotations

import pathlib

import numpy as np

from jaxdl.data import ArraySource, Dataset, DatasetInfo
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.text.vocab import Vocabulary

SOURCES = ('pydoc', 'tiny_shakespeare')


class TextDataset(Dataset):
  """A Dataset of (inputs, targets) character chunks that also carries its `vocabulary` and a `description`."""

  def __init__(self, info: DatasetInfo, sources, vocabulary: Vocabulary, description: str, text_length: int):
    super().__init__(info, sources)
    self.vocabulary = vocabulary
    self.description = description
    self.text_length = text_length


def pydoc_text() -> str:
  """The standard library's documentation topics (the text of `help('TOPIC')`), concatenated in sorted order."""
  try:
    from pydoc_data import topics  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # a stripped-down Python without pydoc_data
    raise UserError('this Python has no pydoc_data module (the built-in char-RNN corpus)', 'a standard CPython '
                    'install', 'point --config.data.path at any UTF-8 text file instead') from e
  return ''.join(topics.topics[k] for k in sorted(topics.topics))


def read_text_file(path: str) -> str:
  """The text of a UTF-8 file; a missing, unreadable, non-UTF-8 or empty file is a UserError."""
  p = pathlib.Path(path).expanduser()
  fix = 'point --config.data.path at a UTF-8 text file'
  if not p.exists():
    raise UserError(f'text file {str(p)!r} does not exist', 'an existing UTF-8 text file', fix)
  if not p.is_file():
    raise UserError(f'{str(p)!r} is not a file', 'a UTF-8 text file', fix)
  try:
    raw = p.read_bytes()
  except OSError as e:
    raise UserError(f'text file {str(p)!r} is unreadable ({e.strerror or e})', 'a readable UTF-8 text file', fix) from e
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    raise UserError(f'text file {str(p)!r} is not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})',
                    'UTF-8 text', 're-encode it, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`') from e
  text = text.removeprefix('\ufeff')                       # a byte-order mark is not text
  if not text.strip():
    raise UserError(f'text file {str(p)!r} is empty', 'some text to learn from', fix)
  return text


def tiny_shakespeare_texts(data_dir: str = '') -> dict[str, str]:
  """{split: text} of TFDS's tiny_shakespeare (each split is one record holding the whole text)."""
  try:
    from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
    out = {}
    for split in ('train', 'validation', 'test'):
      src = stock.load_split('tiny_shakespeare', split, data_dir, cache=False)
      records = src.records(np.arange(len(src)))
      out[split] = ''.join(_as_str(r['text']) for r in records)
    return out
  except ImportError as e:
    raise UserError('tensorflow_datasets is not installed (needed to read tiny_shakespeare)', 'pip install -e .',
                    'install jaxdl\'s dependencies, or use the built-in corpus') from e


def _as_str(value) -> str:
  value = value.item() if isinstance(value, np.ndarray) else value
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def chunk(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
  """Non-overlapping chunks of a 1-D id stream: (inputs [N, T], targets [N, T]) with targets = inputs shifted by
  one character (the next one); N = (len − 1) // T. The stream's tail that fills no chunk is dropped."""
  n = (len(ids) - 1) // seq_len
  if n < 1:
    return np.zeros((0, seq_len), np.int32), np.zeros((0, seq_len), np.int32)
  ids = np.asarray(ids, np.int32)
  return ids[:n * seq_len].reshape(n, seq_len), ids[1:n * seq_len + 1].reshape(n, seq_len)


def _check(seq_len: int, validation_fraction: float, max_chars: int) -> None:
  if seq_len < 1:
    raise UserError(f'config.data.seq_len={seq_len}', 'a positive chunk length (the notes: 60)',
                    'fix --config.data.seq_len')
  if not 0.0 < validation_fraction < 1.0:
    raise UserError(f'config.data.validation_fraction={validation_fraction}', 'a fraction in (0, 1)',
                    'fix --config.data.validation_fraction')
  if max_chars < 0:
    raise UserError(f'config.data.max_chars={max_chars}', '0 (the whole text) or a positive number of characters',
                    'fix --config.data.max_chars')


def _source(split_texts: dict[str, str], vocab: Vocabulary, seq_len: int, what: str) -> dict[str, ArraySource]:
  out = {}
  for split, text in split_texts.items():
    x, y = chunk(vocab.encode(text), seq_len)
    if len(x) == 0:
      raise UserError(f'{what}: the {split} split has {len(text)} characters, too few for one chunk of '
                      f'{seq_len} + 1', f'at least {seq_len + 1} characters per split',
                      'use a longer text, a smaller --config.data.seq_len or another validation_fraction')
    for a in (x, y):
      a.setflags(write=False)
    out[split] = ArraySource(x, y)
  return out


@DATASETS.register('char_corpus', source='seed 000, "Training and sampling from the character RNN"',
                   description='a text as chunks of 60 characters -> next characters (default: pydoc topics; '
                   'data.path=FILE; tiny_shakespeare)')
def char_corpus(*, source: str = 'pydoc', path: str = '', seq_len: int = 60, validation_fraction: float = 0.1,
                max_chars: int = 0, data_dir: str = '') -> TextDataset:
  """source: 'pydoc' | 'tiny_shakespeare' (ignored when `path` names a UTF-8 text file); seq_len: characters per
  chunk; validation_fraction: the text's tail kept for validation (not for tiny_shakespeare, which has splits);
  max_chars: use only the first max_chars characters (0: all; each tiny_shakespeare split is cut likewise);
  data_dir: the TFDS data dir for tiny_shakespeare."""
  _check(seq_len, validation_fraction, max_chars)
  cut = (lambda t: t[:max_chars]) if max_chars else (lambda t: t)
  if path:
    text, what = cut(read_text_file(path)), f'text file {path!r}'
  elif source == 'pydoc':
    text, what = cut(pydoc_text()), 'pydoc_data.topics (the standard library\'s documentation)'
  elif source == 'tiny_shakespeare':
    texts = {k: cut(v) for k, v in tiny_shakespeare_texts(data_dir).items()}
    text, what = ''.join(texts.values()), 'TFDS tiny_shakespeare'
  else:
    raise UserError(f'config.data.source={source!r} for char_corpus', f'one of {SOURCES} (or data.path=FILE)',
                    'fix --config.data.source')
  vocab = Vocabulary.from_tokens(sorted(set(text)), 'char')
  if not path and source == 'tiny_shakespeare':
    splits = texts
  else:
    at = int(round(len(text) * (1.0 - validation_fraction)))
    splits = {'train': text[:at], 'validation': text[at:]}
  sources = _source(splits, vocab, seq_len, what)
  info = DatasetInfo('char_corpus', 'classification', (seq_len,), len(vocab), {k: len(v) for k, v in sources.items()})
  return TextDataset(info, sources, vocab, what, len(text))


def corpus_vocabulary(data_config) -> Vocabulary:
  """The vocabulary of the text dataset a config names (rebuilt deterministically from the config)."""
  from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
  ds = data_lib.get_dataset(data_config)
  vocab = getattr(ds, 'vocabulary', None)
  if vocab is None:
    raise UserError(f'dataset {ds.info.name!r} has no character vocabulary', 'a text dataset such as char_corpus',
                    'use a run trained on char_corpus')
  return vocab
