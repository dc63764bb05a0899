"""char_corpus (claim R1's data): chunking (targets = inputs shifted by one character), the vocabulary round trip,
the splits, the built-in pydoc text, TFDS tiny_shakespeare (mocked) and bad text files -> one-line UserErrors."""
import numpy as np
import pytest

from jaxdl import cli, data
from jaxdl.data import text_corpus
from jaxdl.errors import UserError
from jaxdl.text.vocab import SPECIALS, Vocabulary

TEXT = ('LE CORBEAU ET LE RENARD\nMaître Corbeau, sur un arbre perché,\nTenait en son bec un fromage.\n'
        'Maître Renard, par l\'odeur alléché,\nLui tint à peu près ce langage :\n') * 3


def _get(**kw):
  data._CACHE.clear()
  return data.get_dataset({'name': 'char_corpus', **kw})


@pytest.fixture
def fables(tmp_path):
  path = tmp_path / 'fables.txt'
  path.write_text(TEXT, encoding='utf-8')
  return str(path)


@pytest.mark.parametrize('n, T', [(1, 3), (2, 3), (10, 3), (61, 60), (130, 60), (7, 1)])
def test_chunk_is_a_shift_by_one(n, T):
  ids = np.random.default_rng(n).integers(0, 50, n)
  x, y = text_corpus.chunk(ids, T)
  want = [(ids[k * T:(k + 1) * T], ids[k * T + 1:(k + 1) * T + 1]) for k in range(n) if (k + 1) * T + 1 <= n]
  assert x.shape == y.shape == (len(want), T) and x.dtype == np.int32
  for k, (a, b) in enumerate(want):
    np.testing.assert_array_equal(x[k], a)
    np.testing.assert_array_equal(y[k], b)


def test_file_corpus_chunks_splits_and_vocabulary(fables):
  ds = _get(path=fables, seq_len=10, validation_fraction=0.2)
  vocab = ds.vocabulary
  assert vocab.tokens[len(SPECIALS):] == sorted(set(TEXT))              # the text's characters, by code point
  assert ds.info.num_outputs == len(vocab) == len(set(TEXT)) + 4 and ds.info.input_shape == (10,)
  cut = int(round(len(TEXT) * 0.8))
  for split, part in (('train', TEXT[:cut]), ('validation', TEXT[cut:])):
    src = ds.source(split)
    assert len(src) == (len(part) - 1) // 10 == ds.info.split_sizes[split]
    x, y = src.inputs, src.targets
    assert x.dtype == y.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])                  # targets = inputs shifted by one ...
    np.testing.assert_array_equal(y[:-1, -1], x[1:, 0])                  # ... across chunk boundaries too
    assert ''.join(vocab.decode(row) for row in x) == part[:len(src) * 10]   # non-overlapping, in order
    assert vocab.decode(y[-1])[-1] == part[len(src) * 10]
    assert x.min() >= len(SPECIALS)                                      # the specials never occur


def test_vocabulary_round_trip_and_rebuild(fables):
  vocab = _get(path=fables, seq_len=10).vocabulary
  assert vocab.decode(vocab.encode(TEXT)) == TEXT
  assert Vocabulary.from_json(vocab.to_json()) == vocab
  again = text_corpus.corpus_vocabulary({'name': 'char_corpus', 'path': fables, 'seq_len': 10})   # from a config
  assert again == vocab


def test_max_chars_and_pydoc_default():
  text = text_corpus.pydoc_text()
  ds = _get(max_chars=6001)
  assert ds.text_length == 6001 and len(ds.vocabulary) == len(set(text[:6001])) + 4
  assert ds.info.split_sizes == {'train': (5401 - 1) // 60, 'validation': (600 - 1) // 60}
  assert 'pydoc' in ds.description


def test_tiny_shakespeare_mocked(monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')
  from jaxdl.data import stock
  monkeypatch.setattr(stock.TfdsSource, 'records', lambda self, idx: [self._src[int(i)] for i in idx])
  data._CACHE.clear()
  with tfds.testing.mock_data(num_examples=2, policy=tfds.testing.MockPolicy.USE_CODE):
    texts = text_corpus.tiny_shakespeare_texts()
    ds = _get(source='tiny_shakespeare', seq_len=4)
  assert set(ds.info.split_sizes) == {'train', 'validation', 'test'}
  for split, text in texts.items():
    assert ds.info.split_sizes[split] == (len(text) - 1) // 4
    assert ds.vocabulary.decode(ds.source(split).inputs[0]) == text[:4]
  data._CACHE.clear()


def test_tiny_shakespeare_unprepared_says_how_to_prepare(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(UserError) as e:
    _get(source='tiny_shakespeare', data_dir=str(tmp_path))
  assert 'download_and_prepare --datasets=tiny_shakespeare' in str(e.value) and '\n' not in str(e.value)


def _bad(tmp_path, kind):
  p = tmp_path / 'bad.txt'
  if kind == 'empty':
    p.write_bytes(b'')
  elif kind == 'blank':
    p.write_text(' \n\n  \n', encoding='utf-8')
  elif kind == 'latin1':
    p.write_bytes('Maître Corbeau, sur un arbre perché'.encode('latin-1'))
  elif kind == 'directory':
    p.mkdir()
  elif kind == 'short':
    p.write_text('abc', encoding='utf-8')
  return str(p) if kind != 'missing' else str(tmp_path / 'nope.txt')


@pytest.mark.parametrize('kind, words', [('empty', 'empty'), ('blank', 'empty'), ('latin1', 'not UTF-8'),
                                         ('directory', 'not a file'), ('missing', 'does not exist'),
                                         ('short', 'too few')])
def test_bad_text_files(tmp_path, kind, words):
  with pytest.raises(UserError) as e:
    _get(path=_bad(tmp_path, kind), seq_len=10)
  assert words in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('kw, words', [({'seq_len': 0}, 'seq_len'), ({'validation_fraction': 1.0}, 'fraction'),
                                       ({'max_chars': -1}, 'max_chars'), ({'source': 'fables'}, 'source')])
def test_bad_options(kw, words):
  with pytest.raises(UserError, match=words):
    _get(**kw)


def test_cli_bad_file_is_one_line_exit_2(tmp_path, capsys):
  code = cli.main(['train', '--config=experiments/char_rnn.py', f'--workdir={tmp_path / "run"}',
                   f'--config.data.path={_bad(tmp_path, "latin1")}'])
  err = capsys.readouterr().err.strip()
  assert code == 2 and err.startswith('jaxdl: error:') and 'not UTF-8' in err and len(err.splitlines()) == 1
  assert not (tmp_path / 'run').exists()
  data._CACHE.clear()
