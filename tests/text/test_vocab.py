"""Vocabulary: fixed special ids, corpus construction (frequency order, min count, max size) against counts made
by hand, encode/decode round trips, unknown tokens (UNK or a UserError naming them), JSON and file round trips."""
import json

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.text.vocab import BOS, EOS, PAD, UNK, Vocabulary


def test_specials_are_fixed():
  v = Vocabulary(['a', 'b'])
  assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
  assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
  assert v.tokens == ['<pad>', '<bos>', '<eos>', '<unk>', 'a', 'b'] and len(v) == 6
  assert 'a' in v and 'z' not in v and '<eos>' in v


def test_char_corpus_order_min_count_and_max_size():
  corpus = ['abracadabra', 'cab']                  # a:6, b:3, r:2, c:2, d:1 (c after r: r is seen first)
  v = Vocabulary.from_corpus(corpus, 'char')
  assert v.tokens[4:] == ['a', 'b', 'r', 'c', 'd']
  assert Vocabulary.from_corpus(corpus, 'char', min_count=2).tokens[4:] == ['a', 'b', 'r', 'c']
  small = Vocabulary.from_corpus(corpus, 'char', max_size=6)
  assert len(small) == 6 and small.tokens[4:] == ['a', 'b']
  np.testing.assert_array_equal(small.encode('bad'), [5, 4, UNK])
  with pytest.raises(UserError):
    Vocabulary.from_corpus(corpus, 'char', max_size=3)
  with pytest.raises(UserError):
    Vocabulary.from_corpus(corpus, 'char', min_count=0)


def test_char_round_trip_with_specials():
  text = 'hello, world\n'
  v = Vocabulary.from_corpus(text)
  ids = v.encode(text, add_bos=True, add_eos=True)
  assert ids.dtype == np.int32 and ids[0] == BOS and ids[-1] == EOS and len(ids) == len(text) + 2
  assert [v.id_to_token(i) for i in ids[1:-1]] == list(text)
  assert v.decode(ids) == text
  padded = np.concatenate([ids, [PAD, PAD]])
  assert v.decode(padded) == text
  # stop at EOS vs keep going; strip specials vs show them
  tail = np.concatenate([ids, v.encode('he')])
  assert v.decode(tail) == text
  assert v.decode(tail, stop_at_eos=False) == text + 'he'
  assert v.decode(ids, strip_specials=False) == '<bos>' + text
  assert v.decode(ids, strip_specials=False, stop_at_eos=False) == '<bos>' + text + '<eos>'


def test_word_level():
  v = Vocabulary.from_corpus(['the cat sat', 'the dog  sat down'], 'word')
  assert v.tokens[4:] == ['the', 'sat', 'cat', 'dog', 'down']
  ids = v.encode('the  dog sat', add_eos=True)
  np.testing.assert_array_equal(ids, [4, 7, 5, EOS])
  assert v.decode(ids) == 'the dog sat'
  assert v.decode_tokens(ids) == ['the', 'dog', 'sat']
  np.testing.assert_array_equal(v.encode(['cat', 'down']), [6, 8])   # pre-tokenised input


def test_unknowns_map_to_unk_or_raise_naming_them():
  v = Vocabulary.from_corpus('abc')
  np.testing.assert_array_equal(v.encode('axbyx'), [4, UNK, 5, UNK, UNK])
  assert v.decode(v.encode('axb')) == 'a<unk>b'                       # UNK stands for a real token: kept
  assert v.unknown('axbyx') == ['x', 'y']
  with pytest.raises(UserError) as e:
    v.encode('axbyx', strict=True)
  msg = str(e.value)
  assert "'x'" in msg and "'y'" in msg and '\n' not in msg and msg.count("'x'") == 1


def test_json_and_file_round_trip(tmp_path):
  v = Vocabulary.from_corpus(['naïve café', 'über'], 'char')
  s = v.to_json()
  assert json.loads(s)['tokens'] == v.tokens[4:]
  w = Vocabulary.from_json(s)
  assert w == v and w.level == 'char'
  np.testing.assert_array_equal(w.encode('café'), v.encode('café'))
  v.save(tmp_path / 'vocab.json')
  assert Vocabulary.load(tmp_path / 'vocab.json') == v
  words = Vocabulary.from_tokens(['x', 'y'], 'word')
  assert Vocabulary.from_json(words.to_json()) == words and words != Vocabulary.from_tokens(['x', 'y'], 'char')


def test_bad_input_is_a_user_error(tmp_path):
  with pytest.raises(UserError):
    Vocabulary.load(tmp_path / 'missing.json')
  for text in ('not json', '{"tokens": ["a"]}', '[1, 2]'):
    with pytest.raises(UserError):
      Vocabulary.from_json(text)
  for tokens in (['a', 'a'], ['<pad>'], ['']):
    with pytest.raises(UserError):
      Vocabulary.from_tokens(tokens)
  with pytest.raises(UserError):
    Vocabulary.from_tokens(['a b'], 'word')
  with pytest.raises(UserError):
    Vocabulary(['a'], level='byte')
  with pytest.raises(ValueError):
    Vocabulary(['a']).decode([0, 9])
