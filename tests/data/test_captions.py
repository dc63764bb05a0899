"""captioned_shapes: captions agree with the rendered pixels (checked independently of the generator), held-out
compositions, determinism, the variable-length batches, bad input."""
import numpy as np
import pytest
from scipy import ndimage

from jaxdl import data as data_lib
from jaxdl.data import captions
from jaxdl.errors import UserError
from jaxdl.text.vocab import BOS, EOS

KW = dict(num_train=120, num_test=40, seed=3)
SHAPE_OF_WORD = {captions.shape_word(s): s for s in captions._DEFAULTS['shapes']}


def _parse(text):
  """An independent reader of the grammar: [(colour, shape word, small)], [relations]."""
  words, objs, rels, i = text.split(), [], [], 0
  while i < len(words):
    if words[i] != 'a':
      rel = ' '.join(words[i:i + (4 if words[i] == 'to' else 1)])
      rels.append(rel)
      i += len(rel.split())
      continue
    small = words[i + 1] == 'small'
    j = i + 1 + small
    objs.append((words[j], words[j + 1], small))
    i = j + 2
  return objs, rels


@pytest.fixture(scope='module')
def ds():
  return data_lib.get_dataset({'name': 'captioned_shapes', **KW})


@pytest.mark.parametrize('split', ['train', 'test'])
def test_captions_agree_with_the_pixels(ds, split):
  src = ds.source(split)
  ann = captions.captioned_shapes_annotations(split, **KW)
  palette = {k: np.asarray(v) for k, v in captions.COLOURS.items() if k in captions._DEFAULTS['colours']}
  for i in range(len(src)):
    image, text = src[i]['inputs'], src.references[i]
    objs, rels = _parse(text)
    k = int(ann['num_objects'][i])
    # as many objects as connected blobs of object pixels (objects never touch)
    union = ann['masks'][i, :k].any(0)
    assert ndimage.label(union)[1] == len(objs) == k, text
    centres = []
    for j, (colour, word, _) in enumerate(objs):
      mask = ann['masks'][i, j]
      inner = ndimage.binary_erosion(mask)                  # fully covered pixels, away from the edge
      rgb = np.median(image[inner if inner.any() else mask], axis=0)
      nearest = min(palette, key=lambda c: np.linalg.norm(palette[c] - rgb))
      assert nearest == colour, (text, j, rgb)
      rows, cols = np.nonzero(mask)
      box = np.array([rows.min(), cols.min(), rows.max(), cols.max()])
      np.testing.assert_array_equal(box, ann['boxes'][i, j])
      fill = mask.sum() / ((box[2] - box[0] + 1) * (box[3] - box[1] + 1))
      shape = SHAPE_OF_WORD[word]
      lo, hi = {'circle': (0.6, 0.95), 'square': (0.9, 1.01)}.get(shape, (0.3, 0.8))
      assert lo < fill < hi, (text, j, fill)
      # vertical centroid vs the box's centre, in box heights: the apex-up triangle's sits low (≈ 1/6 of the
      # height), the other shapes are symmetric top / bottom (up to pixelisation)
      offset = (rows.mean() - (box[0] + box[2]) / 2) / (box[2] - box[0] + 1)
      assert (offset > 0.075) == (shape == 'triangle') and abs(offset) < 0.2, (text, j, offset)
      if shape in ('diamond', 'plus'):                        # box corners empty
        assert not mask[box[0], box[1]] and not mask[box[2], box[3]], (text, j)
      centres.append(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
      assert text.split()[ann['word_positions'][i, j]] == word
      assert src[i]['targets'][ann['word_positions'][i, j]] == ds.vocabulary.token_to_id(word)
    for (y0, x0), (y1, x1), rel in zip(centres, centres[1:], rels):
      dy, dx = y1 - y0, x1 - x0
      if rel == 'to the left of':
        assert dx > 0 and abs(dx) > abs(dy), (text, dy, dx)
      else:
        assert rel == 'above' and dy > 0 and abs(dy) > abs(dx), (text, dy, dx)


def test_heldout_pairs_only_in_test_and_in_every_test_image(ds):
  cfg = captions._DEFAULTS
  held = {(cfg['colours'][c], captions.shape_word(cfg['shapes'][s]))
          for c, s in captions.heldout_pairs(cfg['colours'], cfg['shapes'], cfg['num_heldout'], KW['seed'])}
  assert len(held) == cfg['num_heldout']
  pairs = lambda text: {(c, w) for c, w, _ in _parse(text)[0]}
  train = set().union(*map(pairs, ds.source('train').references))
  assert not train & held
  assert all(pairs(t) & held for t in ds.source('test').references)
  # every colour and every shape still occurs in training
  assert {c for c, _ in train} == set(cfg['colours'])
  assert {w for _, w in train} == {captions.shape_word(s) for s in cfg['shapes']}


def test_deterministic_by_seed():
  gen = captions._generate.__wrapped__
  args = lambda seed: (20, 10, 32, captions._DEFAULTS['colours'], captions._DEFAULTS['shapes'], 3, 2, 0.03, seed)
  a, b, c = gen(*args(1)), gen(*args(1)), gen(*args(2))
  np.testing.assert_array_equal(a['train'][0], b['train'][0])
  assert a['test'][1] == b['test'][1]
  assert a['train'][1] != c['train'][1]


def test_batches_carry_teacher_forcing_and_paddings(ds):
  batch = next(iter(data_lib.eval_batches(ds, 'test', global_batch_size=16)))
  assert batch['inputs'].shape == (16, 32, 32, 3)
  t, d, pads = batch['targets'], batch['decoder_inputs'], batch['targets_paddings']
  assert t.shape == d.shape and t.shape[1] in (8, 16, 24)
  np.testing.assert_array_equal(d[:, 0], BOS)
  np.testing.assert_array_equal(d[:, 1:] * (1 - pads[:, 1:]), t[:, :-1] * (1 - pads[:, 1:]))
  n = (1 - pads).sum(1).astype(int)
  assert all(t[r, n[r] - 1] == EOS for r in range(16))
  refs = ds.source('test').references
  for r in range(16):
    if batch['mask'][r]:
      assert ds.vocabulary.decode(t[r]) == refs[int(batch['index'][r])]


@pytest.mark.parametrize('kw', [dict(colours=('red', 'mauve')), dict(shapes=('circle',)), dict(max_objects=4),
                                dict(num_heldout=5), dict(size=16), dict(num_train=0)])
def test_bad_config_is_a_user_error(kw):
  with pytest.raises(UserError):
    data_lib.get_dataset({'name': 'captioned_shapes', 'num_test': 5, **kw})


def test_bad_caption_parts_are_user_errors():
  assert captions.caption([('red', 'circle', True), ('blue', 'plus', False)], ['above'])[0] == \
      'a small red circle above a blue cross'
  with pytest.raises(UserError):
    captions.caption([('mauve', 'circle', False)], [])
  with pytest.raises(UserError):
    captions.caption([('red', 'blob', False)], [])
  with pytest.raises(UserError):
    captions.captioned_shapes_annotations('validation')
