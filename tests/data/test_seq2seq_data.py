"""The built-in seq2seq tasks (jaxdl/data/seq2seq.py): dates → ISO and reverse, checked against independent
readings of the text; teacher-forcing fields aligned; held-out test examples never seen in training; bad input."""
import datetime
import re

import numpy as np
import pytest

from jaxdl import cli
from jaxdl import data as data_lib
from jaxdl.data import seq2seq
from jaxdl.errors import UserError
from jaxdl.text.vocab import BOS, EOS

MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october',
          'november', 'december']


def _read_date(text: str) -> datetime.date:
  """An independent reader of the human forms: numbers and month names, day first in numeric forms."""
  t = text.lower()
  nums = [int(n) for n in re.findall(r'\d+', t)]
  month = next((i + 1 for i, m in enumerate(MONTHS) if m[:3] in t), None)
  if month is None:                                       # dd/mm/yy, dd.mm.yyyy, d/m/yyyy
    day, month, year = nums
  else:
    day, year = nums
  if year < 100:
    year += 1900 if year >= 50 else 2000
  return datetime.date(year, month, day)


@pytest.fixture(scope='module')
def dates():
  return data_lib.get_dataset({'name': 'dates', 'num_train': 600, 'num_test': 200})


def test_dates_targets_are_the_iso_form_of_the_source(dates):
  for split in ('train', 'test'):
    src = dates.source(split)
    for i in range(len(src)):
      text, ref = dates.vocabulary.decode(src[i]['inputs']), src.references[i]
      assert _read_date(text).isoformat() == ref, (text, ref)
      weekday = next((w for w in seq2seq.WEEKDAYS if w[:3] in text.lower()), None)
      if weekday is not None:                             # a weekday, when written, is the right one
        assert seq2seq.WEEKDAYS.index(weekday) == _read_date(text).weekday(), text
  forms = {re.sub(r'[0-9]', '9', dates.vocabulary.decode(dates.source('train')[i]['inputs'])).split(' ')[0][:2]
           for i in range(len(dates.source('train')))}
  assert len(forms) >= 6                                  # many human forms


def test_teacher_forcing_fields_align(dates):
  src = dates.source('train')
  for i in range(20):
    ex = src[i]
    assert ex['decoder_inputs'][0] == BOS and ex['targets'][-1] == EOS
    np.testing.assert_array_equal(ex['decoder_inputs'][1:], ex['targets'][:-1])
    assert dates.vocabulary.decode(ex['targets']) == src.references[i]
  b = src.get_batch(np.arange(16))
  assert b['targets'].shape == b['decoder_inputs'].shape
  np.testing.assert_array_equal(b['targets_paddings'], b['decoder_inputs_paddings'])
  np.testing.assert_array_equal(b['inputs_paddings'].sum(1), b['inputs'].shape[1] - src.lengths[:16])


def test_dates_hold_out_dates_and_are_deterministic(dates):
  train = set(dates.source('train').references)
  test = set(dates.source('test').references)
  assert not train & test
  again = seq2seq.dates(num_train=600, num_test=200)
  assert again.source('test').references == dates.source('test').references
  other = seq2seq.dates(num_train=600, num_test=200, seed=1)
  assert other.source('test').references != dates.source('test').references
  assert dates.info.num_outputs == len(dates.vocabulary)


def test_reverse_targets_and_held_out():
  ds = data_lib.get_dataset({'name': 'reverse', 'num_train': 300, 'num_test': 100, 'min_length': 3,
                             'max_length': 9, 'num_symbols': 5})
  seen = set()
  for split in ('train', 'test'):
    src = ds.source(split)
    texts = [ds.vocabulary.decode(src[i]['inputs']) for i in range(len(src))]
    assert all(src.references[i] == t[::-1] for i, t in enumerate(texts))
    assert all(3 <= len(t) <= 9 and set(t) <= set('01234') for t in texts)
    assert not seen & set(texts)
    seen |= set(texts)


def test_bad_data_options_and_source_text():
  with pytest.raises(UserError, match='min_length'):
    seq2seq.reverse(min_length=0)
  with pytest.raises(UserError, match='distinct'):
    seq2seq.reverse(num_train=100, min_length=2, max_length=2, num_symbols=3)
  vocab = data_lib.get_dataset({'name': 'reverse', 'num_train': 20, 'num_test': 5}).vocabulary
  with pytest.raises(UserError, match='empty'):
    seq2seq.encode_source('', vocab)
  with pytest.raises(UserError, match="'x'"):
    seq2seq.encode_source('12x', vocab)
  np.testing.assert_array_equal(vocab.decode(seq2seq.encode_source('0912', vocab)), '0912')


@pytest.mark.parametrize('override, needle', [('--config.data.min_length=0', 'min_length'),
                                              ('--config.decode.beam_width=0', 'beam_width')])
def test_bad_input_is_one_line_exit_2(override, needle, capsys, tmp_path):
  from helpers import REPO  # pylint: disable=g-import-not-at-top
  code = cli.main(['train', f'--config={REPO / "experiments" / "transformer_reverse.py"}', override,
                   f'--workdir={tmp_path / "run"}', '--quiet'])
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1 and 'Traceback' not in err and needle in err, err


def test_translation_tfds_reads_word_pairs_from_records(monkeypatch):
  """TFDS translation records (bytes per language) -> word-level pairs; tfds itself is mocked (needs data here)."""
  from jaxdl.data import seq2seq as s2s
  from jaxdl.data import stock
  records = {'train': [{'en': b'The cat sat.', 'fr': 'Le chat, assis.'.encode()},
                       {'en': b'The dog sat.', 'fr': b'Le chien assis.'},
                       {'en': b'a b c d e f g h', 'fr': b'too long source'}],
             'test': [{'en': b'The bird sat.', 'fr': b'L oiseau assis.'}]}

  class Split:
    def __init__(self, recs):
      self._src = recs
  monkeypatch.setattr(stock, 'load_split', lambda name, split, data_dir='', cache=True: Split(records[split]))
  ds = s2s.translation_tfds(splits=('train', 'test'), src_vocab_size=3, tgt_vocab_size=2, max_length=5)
  v = ds.vocabulary
  assert v.level == 'word' and v.tokens[-5:] == ['The', 'sat', '.', 'Le', 'assis']
  assert len(v) == 4 + 3 + 2                       # the top 3 source and top 2 target words, joined
  train = ds.source('train')
  assert len(train) == 2 and train.references == ['Le chat , assis .', 'Le chien assis .']
  ex = train[0]
  assert list(ex['inputs']).count(3) == 1           # 'cat' is out of the vocabulary: UNK
  np.testing.assert_array_equal(ex['inputs'], v.encode('The cat sat .'))
  np.testing.assert_array_equal(ex['targets'], np.append(v.encode('Le chat , assis .'), v.eos_id))
  assert ds.source('test').references == ['L oiseau assis .']
  records['test'] = [{'de': b'x', 'en': b'y'}]
  with pytest.raises(UserError, match="languages 'en' and 'fr'"):
    s2s.translation_tfds(splits=('train', 'test'))
