"""`captioned_shapes`: generated images of one to three coloured shapes, each with a caption that describes the layout
(course chapter 4, seed 000 "Generating text descriptions from images": show and tell, show attend and tell).

No network, deterministic from `seed`. The rendering is jaxdl/data/shapes.py's (its `background` and `coverage`):
a textured grey-ish background (base grey, a colour gradient, a faint grating), objects drawn with 2×2
supersampling in a named colour (± a small jitter), pixel noise N(0, noise²). Objects do not overlap; a small one
has half-size r ~ U(0.09, 0.12)·size, a large one U(0.16, 0.21)·size.

Captions come from a small grammar, derived from the drawn layout:
  caption  = object (relation object)*          object = 'a' ['small'] colour shape
  relation = 'to the left of' | 'above'
Objects are mentioned in the order of cx + cy (centre column + row): along that order every pair of consecutive
objects is separated mostly horizontally (|dx| ≥ 1.5·|dy|, the first is then left of the second: 'to the left of')
or mostly vertically (|dy| ≥ 1.5·|dx|, the first is above: 'above'); layouts in between are redrawn, and so are
layouts where two objects' cx + cy differ by less than 3 pixels, so every image has exactly one caption, e.g.
"a red circle to the left of a small blue square above a green triangle". Only small objects get a size word.

Held-out compositions: `num_heldout` colour–shape pairs (colour i with shape π(i), π a seeded permutation, so every
colour and every shape still occurs in training) never occur in a training image; every test image contains at
least one of them. `num_heldout=0` draws test images like training ones.

Each split is a `RaggedSource` (jaxdl.data.buckets): `inputs` the images [S, S, 3] (all one shape), ragged
`targets` = caption word ids + EOS and `decoder_inputs` = BOS + caption word ids (teacher forcing), padded to
multiples of `bucket_width`; `references` are the caption strings (generating evaluation compares with them). The
word vocabulary (jaxdl.text.vocab.Vocabulary, PAD 0, BOS 1, EOS 2, UNK 3) holds every word the grammar can produce.
`captioned_shapes_annotations(split, **kwargs)` returns, per image and object slot (in caption order, −1 / False
past `num_objects`): boxes (row0, col0, row1, col1) inclusive of the pixels with coverage > 0, masks, shape and
colour indices, `small`, centres, and `word_positions`: the index t in `targets` of the word naming the object's
shape (what the attention check of show-attend-tell looks at).
"""
from __future__ import annotations

import functools

import numpy as np

from jaxdl.data import Dataset, DatasetInfo
from jaxdl.data.buckets import RaggedSource
from jaxdl.data.shapes import SHAPES, background, coverage
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.text.vocab import Vocabulary

# RGB of the named colours (saturated; the background base is grey in [0.3, 0.5], so each stays ≥ 0.45 away from it)
COLOURS = {'red': (0.92, 0.12, 0.10), 'green': (0.10, 0.78, 0.15), 'blue': (0.12, 0.30, 0.98),
           'yellow': (0.97, 0.88, 0.08), 'purple': (0.62, 0.12, 0.85), 'white': (0.97, 0.97, 0.97),
           'black': (0.02, 0.02, 0.02), 'orange': (1.0, 0.55, 0.0), 'cyan': (0.05, 0.9, 0.95)}
SHAPE_WORDS = {'plus': 'cross', 'half_disc': 'half-disc', 'ell': 'ell', 'tee': 'tee'}   # shapes.py name -> word
RELATIONS = ('to the left of', 'above')
SMALL, LARGE = (0.09, 0.12), (0.16, 0.21)              # half-size / size
_SPLITS = ('train', 'test')
_MAX_OBJECTS = 3


def shape_word(name: str) -> str:
  return SHAPE_WORDS.get(name, name)


def grammar_words(colours, shapes) -> list[str]:
  """Every word the grammar can produce, in a fixed order (the vocabulary does not depend on the drawn captions)."""
  rel = [w for r in RELATIONS for w in r.split()]
  return list(dict.fromkeys(['a', 'small', *colours, *(shape_word(s) for s in shapes), *rel]))


def _bad(key, value, expected):
  raise UserError(f'config.data.{key}={value!r} for dataset captioned_shapes', expected, f'fix --config.data.{key}')


def _check(num_train, num_test, size, colours, shapes, max_objects, num_heldout, noise, bucket_width):
  for key, v, lo in (('num_train', num_train, 1), ('num_test', num_test, 1), ('bucket_width', bucket_width, 1)):
    if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo):
      _bad(key, v, f'an integer >= {lo}')
  if not (isinstance(size, (int, np.integer)) and 24 <= size <= 256):
    _bad('size', size, 'an integer in [24, 256] (pixels; three objects must fit)')
  unknown = [c for c in colours if c not in COLOURS]
  if unknown or len(set(colours)) != len(colours) or len(colours) < 2:
    _bad('colours', tuple(colours), f'>= 2 distinct names from: {", ".join(COLOURS)}')
  unknown = [s for s in shapes if s not in SHAPES]
  if unknown or len(set(shapes)) != len(shapes) or len(shapes) < 2:
    _bad('shapes', tuple(shapes), f'>= 2 distinct names from: {", ".join(SHAPES)}')
  if not (isinstance(max_objects, (int, np.integer)) and 1 <= max_objects <= _MAX_OBJECTS):
    _bad('max_objects', max_objects, f'an integer in [1, {_MAX_OBJECTS}]')
  if not (isinstance(num_heldout, (int, np.integer)) and 0 <= num_heldout < min(len(colours), len(shapes))):
    _bad('num_heldout', num_heldout, f'an integer in [0, {min(len(colours), len(shapes)) - 1}] (fewer than the '
         'colours and the shapes, so each still occurs in training)')
  if not noise >= 0:
    _bad('noise', noise, '>= 0')


def _layout(rng: np.random.Generator, k: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """k non-overlapping objects whose caption is unambiguous: (half-sizes r, small, cy, cx) in caption order."""
  for _ in range(10000):
    small = rng.random(k) < 0.5
    r = np.where(small, rng.uniform(*SMALL, k), rng.uniform(*LARGE, k)) * size
    cy = rng.uniform(0.0, 1.0, k) * (size - 2 * r) + r - 0.5
    cx = rng.uniform(0.0, 1.0, k) * (size - 2 * r) + r - 0.5
    order = np.argsort(cx + cy, kind='stable')
    r, small, cy, cx = r[order], small[order], cy[order], cx[order]
    s = cx + cy
    ok = True
    for i in range(k):
      for j in range(i + 1, k):     # apart: bounding circles (a square's corner is at 1.13 r) plus a pixel
        ok &= bool(np.hypot(cy[i] - cy[j], cx[i] - cx[j]) >= 1.15 * (r[i] + r[j]) + 1.0)
    for i in range(k - 1):
      dy, dx = cy[i + 1] - cy[i], cx[i + 1] - cx[i]
      ok &= bool(s[i + 1] - s[i] >= 3.0 and (abs(dx) >= 1.5 * abs(dy) or abs(dy) >= 1.5 * abs(dx)))
    if ok:
      return r, small, cy, cx
  raise ValueError(f'no layout of {k} objects found at size {size}')


def relation(cy0, cx0, cy1, cx1) -> str:
  """The grammar's relation of object 0 to the next object 1 (mentioned in cx + cy order)."""
  return RELATIONS[0] if abs(cx1 - cx0) >= abs(cy1 - cy0) else RELATIONS[1]


def caption(objects: list[tuple[str, str, bool]], relations: list[str]) -> tuple[str, list[int]]:
  """(caption, word index of each object's shape noun) from (colour, shape, small) objects and the relations
  between consecutive objects; raises UserError for a colour or shape the grammar does not know."""
  if len(relations) != len(objects) - 1:
    raise ValueError(f'{len(objects)} objects need {len(objects) - 1} relations, got {len(relations)}')
  words, pos = [], []
  for i, (colour, shape, small) in enumerate(objects):
    if colour not in COLOURS:
      raise UserError(f'unknown colour {colour!r}', f'one of: {", ".join(COLOURS)}', 'fix the colour name')
    if shape not in SHAPES:
      raise UserError(f'unknown shape {shape!r}', f'one of: {", ".join(SHAPES)}', 'fix the shape name')
    if i:
      if relations[i - 1] not in RELATIONS:
        raise UserError(f'unknown relation {relations[i - 1]!r}', f'one of: {RELATIONS}', 'fix the relation')
      words += relations[i - 1].split()
    words += ['a'] + (['small'] if small else []) + [colour]
    pos.append(len(words))
    words.append(shape_word(shape))
  return ' '.join(words), pos


def heldout_pairs(colours, shapes, num_heldout: int, seed: int) -> set[tuple[int, int]]:
  """The held-out (colour index, shape index) pairs: colour i with shape π(i), i < num_heldout (π seeded)."""
  rng = np.random.default_rng([seed, 404])
  ci, si = rng.permutation(len(colours)), rng.permutation(len(shapes))
  return {(int(ci[i]), int(si[i])) for i in range(num_heldout)}


def _draw(rng, n, size, colours, shapes, max_objects, held, test, noise):
  """One split: images (n, S, S, 3) float32, captions, and the per-object annotations."""
  m = _MAX_OBJECTS
  ann = {'num_objects': np.zeros(n, np.int32), 'shapes': np.full((n, m), -1, np.int32),
         'colours': np.full((n, m), -1, np.int32), 'small': np.zeros((n, m), bool),
         'centres': np.full((n, m, 2), -1.0, np.float32), 'word_positions': np.full((n, m), -1, np.int32),
         'boxes': np.full((n, m, 4), -1, np.int32), 'masks': np.zeros((n, m, size, size), bool)}
  radii = np.zeros((n, m))
  pairs = [(c, s) for c in range(len(colours)) for s in range(len(shapes))]
  free = [p for p in pairs if p not in held]
  captions = []
  for i in range(n):
    k = int(rng.integers(1, max_objects + 1))
    r, small, cy, cx = _layout(rng, k, size)
    pick = [free[j] for j in rng.integers(0, len(free), k)]
    if test and held:                          # at least one held-out composition in every test image
      pick[int(rng.integers(0, k))] = sorted(held)[int(rng.integers(0, len(held)))]
    objs = [(colours[c], shapes[s], bool(sm)) for (c, s), sm in zip(pick, small)]
    rels = [relation(cy[j], cx[j], cy[j + 1], cx[j + 1]) for j in range(k - 1)]
    text, pos = caption(objs, rels)
    captions.append(text)
    ann['num_objects'][i] = k
    ann['colours'][i, :k], ann['shapes'][i, :k] = [p[0] for p in pick], [p[1] for p in pick]
    ann['small'][i, :k], ann['word_positions'][i, :k] = small, pos
    ann['centres'][i, :k] = np.stack([cy, cx], 1)
    radii[i, :k] = r
  base = rng.uniform(0.3, 0.5, (n, 1)) + rng.uniform(-0.04, 0.04, (n, 3))      # grey, slightly tinted
  grad = rng.uniform(-0.12, 0.12, (n, 2, 3))
  freq = rng.uniform(0.1, 0.4, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
  phase = rng.uniform(0.0, 2 * np.pi, n)
  amp = rng.uniform(0.02, 0.06, n)
  jitter = rng.uniform(-0.05, 0.05, (n, m, 3))
  images = background(base, grad, freq, phase, amp, size)
  palette = np.asarray([COLOURS[c] for c in colours], np.float32)
  for j in range(m):
    rows = np.flatnonzero(ann['num_objects'] > j)
    if not len(rows):
      continue
    labels = np.asarray([SHAPES.index(shapes[s]) for s in ann['shapes'][rows, j]])
    alpha = coverage(labels, radii[rows, j], ann['centres'][rows, j, 0], ann['centres'][rows, j, 1], size)
    colour = np.clip(palette[ann['colours'][rows, j]] + jitter[rows, j], 0.0, 1.0).astype(np.float32)
    images[rows] += alpha[..., None] * (colour[:, None, None, :] - images[rows])
    mask = alpha > 0
    rr, cc = mask.any(axis=2), mask.any(axis=1)
    ann['boxes'][rows, j] = np.stack([rr.argmax(1), cc.argmax(1), size - 1 - rr[:, ::-1].argmax(1),
                                      size - 1 - cc[:, ::-1].argmax(1)], axis=1)
    ann['masks'][rows, j] = mask
  images += np.float32(noise) * rng.standard_normal(images.shape, dtype=np.float32)
  np.clip(images, 0.0, 1.0, out=images)
  return images.astype(np.float32), captions, ann


@functools.lru_cache(maxsize=4)
def _generate(num_train, num_test, size, colours, shapes, max_objects, num_heldout, noise, seed):
  held = heldout_pairs(colours, shapes, num_heldout, seed)
  out = {}
  for i, (split, n) in enumerate(zip(_SPLITS, (num_train, num_test))):
    images, captions, ann = _draw(np.random.default_rng([seed, i]), n, size, colours, shapes, max_objects, held,
                                  split == 'test', noise)
    for a in (images, *ann.values()):
      a.setflags(write=False)      # cached: shared by the dataset and the annotations
    out[split] = (images, captions, ann)
  return out


_DEFAULTS = dict(num_train=4000, num_test=500, size=32, colours=('red', 'green', 'blue', 'yellow', 'purple'),
                 shapes=('circle', 'square', 'triangle', 'diamond', 'plus'), max_objects=3, num_heldout=3,
                 noise=0.03, bucket_width=8, seed=0)


def _args(cfg):
  _check(cfg['num_train'], cfg['num_test'], cfg['size'], tuple(cfg['colours']), tuple(cfg['shapes']),
         cfg['max_objects'], cfg['num_heldout'], cfg['noise'], cfg['bucket_width'])
  return (int(cfg['num_train']), int(cfg['num_test']), int(cfg['size']), tuple(cfg['colours']),
          tuple(cfg['shapes']), int(cfg['max_objects']), int(cfg['num_heldout']), float(cfg['noise']),
          int(cfg['seed']))


@DATASETS.register('captioned_shapes', source='generated (jaxdl/data/captions.py)',
                   description='32×32×3 images of 1-3 coloured shapes with layout captions ("a red circle to the '
                               'left of a small blue square"); held-out colour–shape pairs in test; 4,000 / 500')
def captioned_shapes(*, num_train: int = 4000, num_test: int = 500, size: int = 32,
                     colours: tuple = _DEFAULTS['colours'], shapes: tuple = _DEFAULTS['shapes'], max_objects: int = 3,
                     num_heldout: int = 3, noise: float = 0.03, bucket_width: int = 8, seed: int = 0) -> Dataset:
  """Images of 1..max_objects shapes with their captions (module docstring); word-level vocabulary."""
  cfg = dict(num_train=num_train, num_test=num_test, size=size, colours=colours, shapes=shapes,
             max_objects=max_objects, num_heldout=num_heldout, noise=noise, bucket_width=bucket_width, seed=seed)
  g = _generate(*_args(cfg))
  vocab = Vocabulary(grammar_words(tuple(colours), tuple(shapes)), level='word')
  longest = 4 * max_objects + 4 * (max_objects - 1) + 1          # 'a small colour shape' ×k, relations, EOS
  up = lambda v: int(-(-v // bucket_width) * bucket_width)
  buckets = tuple(range(bucket_width, up(longest) + 1, bucket_width))
  sources = {}
  for split, (images, captions, _) in g.items():
    words = [vocab.encode(c, strict=True) for c in captions]
    sources[split] = RaggedSource(
        {'inputs': list(images), 'targets': [np.append(w, vocab.eos_id).astype(np.int32) for w in words],
         'decoder_inputs': [np.insert(w, 0, vocab.bos_id).astype(np.int32) for w in words]},
        {'targets': buckets, 'decoder_inputs': buckets}, references=captions, name=f'captioned_shapes {split}')
  info = DatasetInfo('captioned_shapes', 'classification', (int(size), int(size), 3), len(vocab),
                     {k: len(v) for k, v in sources.items()})
  return Dataset(info, sources, vocabulary=vocab)


def captioned_shapes_annotations(split: str = 'test', **kwargs) -> dict[str, np.ndarray]:
  """Per image of a split of `captioned_shapes(**kwargs)`, in the dataset's order: 'num_objects' (N,), and per
  object slot in caption order (N, 3, ...): 'boxes' (row0, col0, row1, col1) inclusive, 'masks' (coverage > 0),
  'shapes' / 'colours' (indices into the kwargs' tuples), 'small', 'centres' (row, col), 'word_positions' (index in
  `targets` of the shape's word); −1 / False in unused slots. Also 'captions' (the references)."""
  unknown = set(kwargs) - set(_DEFAULTS)
  if unknown:
    raise UserError(f'unknown captioned_shapes kwargs {sorted(unknown)}', 'one of: ' + ', '.join(_DEFAULTS),
                    'fix them')
  if split not in _SPLITS:
    raise UserError(f'dataset captioned_shapes has no split {split!r}', 'one of: ' + ', '.join(_SPLITS),
                    'fix the split')
  _, captions, ann = _generate(*_args({**_DEFAULTS, **kwargs}))[split]
  return {**ann, 'captions': list(captions)}
