"""`shapes`: a generated image-classification set of coloured geometric shapes on textured backgrounds.

No network, deterministic from `seed`: each image (size×size×3, in [0, 1]) holds ONE object of class k — circle,
square, triangle, plus, ring, bar, diamond, x, frame, half-disc, L, T (the first `num_classes` of SHAPES) — drawn
at a random centre, half-size r ~ U(min_scale, max_scale)·size, in a random colour, over a background made of a
random base colour, a linear colour gradient and a faint sinusoidal grating, plus pixel noise N(0, noise²).
Shapes are rendered with 2×2 supersampling (anti-aliased edges: coverage α ∈ {0, ¼, ½, ¾, 1}); the image is
(1 − α)·background + α·colour + noise, clipped to [0, 1].

Labels are exactly balanced (example i has class i mod K, then shuffled). The object's tight bounding box (the
pixels with α > 0) and its mask are kept: `shapes_annotations(split, **kwargs)` -> {'boxes': (N, 4) int32
(row0, col0, row1, col1), inclusive, 'masks': (N, H, W) bool, 'labels': (N,)} for the same kwargs as the dataset,
and `shapes_boxes(...)` the boxes alone. Used by the cnn_visualisation experiment (does Grad-CAM / saliency peak
on the object?) and as the offline stand-in for CIFAR in the chapter-3 experiments. Train and test are drawn
from independent streams (seed, 0) and (seed, 1), so the test set does not depend on `num_train`.
The renderers `background(...)` and `coverage(...)` are shared with `captioned_shapes` (jaxdl/data/captions.py).
"""
from __future__ import annotations

import functools

import numpy as np

from jaxdl.data import Dataset, from_arrays
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

SHAPES = ('circle', 'square', 'triangle', 'plus', 'ring', 'bar', 'diamond', 'x', 'frame', 'half_disc', 'ell',
          'tee')
_SPLITS = ('train', 'test')
_SS = 2  # supersampling factor per axis


def _mask(k: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Shape k in normalised coordinates u (columns), v (rows), both in units of the half-size r (v down)."""
  a, b = np.abs(u), np.abs(v)
  d = np.sqrt(u * u + v * v)
  name = SHAPES[k]
  if name == 'circle':
    return d <= 1.0
  if name == 'square':
    return np.maximum(a, b) <= 0.8
  if name == 'triangle':      # apex up at v = −1, base at v = 0.8
    return (v <= 0.8) & (a <= (v + 1.0) / 1.8)
  if name == 'plus':
    return ((a <= 0.3) & (b <= 1.0)) | ((b <= 0.3) & (a <= 1.0))
  if name == 'ring':
    return (d <= 1.0) & (d >= 0.55)
  if name == 'bar':           # horizontal
    return (a <= 1.0) & (b <= 0.35)
  if name == 'diamond':
    return a + b <= 1.0
  if name == 'x':
    p, q = np.abs(u + v) / np.sqrt(2.0), np.abs(u - v) / np.sqrt(2.0)
    return ((p <= 0.25) & (q <= 1.0)) | ((q <= 0.25) & (p <= 1.0))
  if name == 'frame':
    m = np.maximum(a, b)
    return (m <= 0.85) & (m >= 0.5)
  if name == 'half_disc':     # the lower half of a disc
    return (d <= 1.0) & (v >= -0.1)
  if name == 'ell':
    return ((u >= -0.85) & (u <= -0.35) & (b <= 0.9)) | ((v >= 0.4) & (v <= 0.9) & (a <= 0.85))
  if name == 'tee':
    return ((v >= -0.9) & (v <= -0.4) & (a <= 0.9)) | ((a <= 0.25) & (v >= -0.9) & (v <= 0.9))
  raise ValueError(k)


def background(base, grad, freq, phase, amp, size: int) -> np.ndarray:
  """(n, S, S, 3) float32 textured backgrounds: base colour (n, 3) + a linear gradient grad (n, 2, 3) across rows /
  columns + a sinusoidal grating amp·sin(2π(f_y·row + f_x·col) + phase), freq (n, 2)."""
  f32 = lambda a: np.asarray(a, np.float32)
  base, grad, freq, phase, amp = map(f32, (base, grad, freq, phase, amp))
  pos = (np.arange(size, dtype=np.float32) / size - 0.5)[None, :, None]           # (1, S, 1)
  col_y = base[:, None, :] + grad[:, 0][:, None, :] * pos                          # (n, S, 3): rows
  col_x = grad[:, 1][:, None, :] * pos                                              # (n, S, 3): columns
  ar = np.arange(size, dtype=np.float32)
  two_pi = np.float32(2 * np.pi)
  wave = (two_pi * freq[:, 0, None, None] * ar[None, :, None] + two_pi * freq[:, 1, None, None] * ar[None, None, :]
          + phase[:, None, None])                                                   # the grating's phase (n, S, S)
  return col_y[:, :, None, :] + col_x[:, None, :, :] + (amp[:, None, None] * np.sin(wave))[..., None]


def coverage(labels, r, cy, cx, size: int) -> np.ndarray:
  """(n, S, S) float32 coverage α ∈ {0, ¼, ½, ¾, 1} of shape SHAPES[labels[i]] with half-size r[i] centred at
  (cy[i], cx[i]) (pixels), by 2×2 supersampling: sub-pixel centres at offsets (j + ½)/SS − ½ around each pixel."""
  f32 = lambda a: np.asarray(a, np.float32)
  labels, r, cy, cx = np.asarray(labels), np.asarray(r), np.asarray(cy), np.asarray(cx)
  sub = (np.arange(size * _SS, dtype=np.float32) + 0.5) / _SS - 0.5
  sy, sx = np.meshgrid(sub, sub, indexing='ij')
  alpha = np.zeros((len(labels), size, size), np.float32)
  for k in np.unique(labels):
    idx = np.flatnonzero(labels == k)
    for chunk in np.array_split(idx, max(1, len(idx) // 256)):
      if not len(chunk):
        continue
      inv = f32(1.0 / r[chunk])[:, None, None]
      u = (sx[None] - f32(cx[chunk])[:, None, None]) * inv
      v = (sy[None] - f32(cy[chunk])[:, None, None]) * inv
      m = _mask(int(k), u, v).reshape(len(chunk), size, _SS, size, _SS)
      alpha[chunk] = m.sum(axis=(2, 4), dtype=np.float32) * np.float32(1.0 / _SS ** 2)
  return alpha


def _draw(rng: np.random.Generator, n: int, size: int, num_classes: int, min_scale: float, max_scale: float,
          noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(images (n, S, S, 3) float32, labels (n,), boxes (n, 4), masks (n, S, S) bool) of one split."""
  labels = rng.permutation(np.arange(n) % num_classes)
  r = rng.uniform(min_scale, max_scale, n) * size                      # half-size in pixels
  cy = rng.uniform(0.0, 1.0, n) * (size - 2 * r) + r - 0.5               # object fully inside [−0.5, S − 0.5]
  cx = rng.uniform(0.0, 1.0, n) * (size - 2 * r) + r - 0.5
  base = rng.uniform(0.1, 0.9, (n, 3))
  grad = rng.uniform(-0.25, 0.25, (n, 2, 3))                            # colour change across rows / columns
  freq = rng.uniform(0.1, 0.4, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
  phase = rng.uniform(0.0, 2 * np.pi, n)
  amp = rng.uniform(0.02, 0.1, n)
  colour = rng.uniform(0.0, 1.0, (n, 3))
  # The object colour differs from the background's base colour by at least 0.45 (Euclidean, RGB in [0, 1]);
  # where it does not, it is pushed away from the base colour along their difference (or to the complement).
  diff = colour - base
  dist = np.linalg.norm(diff, axis=1, keepdims=True)
  far = np.clip(base + diff / np.maximum(dist, 1e-6) * 0.6, 0.0, 1.0)
  colour = np.where(dist < 0.45, far, colour)
  still = np.linalg.norm(colour - base, axis=1) < 0.45
  colour[still] = np.round(1.0 - base[still])

  colour = np.asarray(colour, np.float32)
  bg = background(base, grad, freq, phase, amp, size)
  alpha = coverage(labels, r, cy, cx, size)
  a = alpha[..., None]
  images = bg + a * (colour[:, None, None, :] - bg)
  images += np.float32(noise) * rng.standard_normal((n, size, size, 3), dtype=np.float32)
  np.clip(images, 0.0, 1.0, out=images)

  masks = alpha > 0
  rows, cols = masks.any(axis=2), masks.any(axis=1)
  boxes = np.stack([rows.argmax(1), cols.argmax(1), size - 1 - rows[:, ::-1].argmax(1),
                    size - 1 - cols[:, ::-1].argmax(1)], axis=1).astype(np.int32)
  return images, labels.astype(np.int32), boxes, masks


def _check(num_train, num_test, size, num_classes, min_scale, max_scale, noise):
  def bad(key, value, expected):
    raise UserError(f'config.data.{key}={value!r} for dataset shapes', expected, f'fix --config.data.{key}')
  if num_train < 1:
    bad('num_train', num_train, '>= 1')
  if num_test < 1:
    bad('num_test', num_test, '>= 1')
  if size < 8:
    bad('size', size, '>= 8 (pixels)')
  if not 2 <= num_classes <= len(SHAPES):
    bad('num_classes', num_classes, f'2 .. {len(SHAPES)} ({", ".join(SHAPES)})')
  if not 0.05 <= min_scale <= max_scale <= 0.5:
    bad('min_scale/max_scale', (min_scale, max_scale), '0.05 <= min_scale <= max_scale <= 0.5 (half-size / size)')
  if min_scale * size < 2:
    bad('min_scale', min_scale, f'>= {2 / size:.3g} at size {size}: objects at least 4 pixels across')
  if noise < 0:
    bad('noise', noise, '>= 0')


@functools.lru_cache(maxsize=4)
def _generate(num_train: int, num_test: int, size: int, num_classes: int, min_scale: float, max_scale: float,
              noise: float, seed: int) -> dict[str, tuple[np.ndarray, ...]]:
  _check(num_train, num_test, size, num_classes, min_scale, max_scale, noise)
  out = {}
  for i, (split, n) in enumerate(zip(_SPLITS, (num_train, num_test))):
    arrays = _draw(np.random.default_rng([seed, i]), n, size, num_classes, min_scale, max_scale, noise)
    for arr in arrays:
      arr.setflags(write=False)   # cached: shared by the dataset and the annotations
    out[split] = arrays
  return out


_DEFAULTS = dict(num_train=5000, num_test=1000, size=32, num_classes=10, min_scale=0.15, max_scale=0.3,
                 noise=0.05, seed=0)


@DATASETS.register('shapes', source='generated (jaxdl/data/shapes.py)',
                   description='32×32×3 coloured geometric shapes (10 classes) on textured backgrounds, with '
                               'bounding boxes; 5,000 / 1,000')
def shapes(*, num_train: int = 5000, num_test: int = 1000, size: int = 32, num_classes: int = 10,
           min_scale: float = 0.15, max_scale: float = 0.3, noise: float = 0.05, seed: int = 0) -> Dataset:
  """Coloured shapes (classes SHAPES[:num_classes]) at random positions, scales and colours on textured,
  noisy backgrounds; half-size r ~ U(min_scale, max_scale)·size. Boxes and masks: `shapes_annotations`."""
  g = _generate(int(num_train), int(num_test), int(size), int(num_classes), float(min_scale), float(max_scale),
                float(noise), int(seed))
  return from_arrays('shapes', 'classification', {s: g[s][:2] for s in _SPLITS}, num_outputs=int(num_classes))


def shapes_annotations(split: str = 'test', **kwargs) -> dict[str, np.ndarray]:
  """{'boxes': (N, 4) int32 (row0, col0, row1, col1) inclusive, 'masks': (N, H, W) bool (coverage > 0),
  'labels': (N,) int32} of a split of `shapes(**kwargs)`, in the dataset's order."""
  unknown = set(kwargs) - set(_DEFAULTS)
  if unknown:
    raise UserError(f'unknown shapes kwargs {sorted(unknown)}', 'one of: ' + ', '.join(_DEFAULTS), 'fix them')
  if split not in _SPLITS:
    raise UserError(f'dataset shapes has no split {split!r}', 'one of: ' + ', '.join(_SPLITS), 'fix the split')
  cfg = {**_DEFAULTS, **kwargs}
  g = _generate(int(cfg['num_train']), int(cfg['num_test']), int(cfg['size']), int(cfg['num_classes']),
                float(cfg['min_scale']), float(cfg['max_scale']), float(cfg['noise']), int(cfg['seed']))
  _, labels, boxes, masks = g[split]
  return {'boxes': boxes, 'masks': masks, 'labels': labels}


def shapes_boxes(split: str = 'test', **kwargs) -> np.ndarray:
  """(N, 4) int32 bounding boxes (row0, col0, row1, col1), inclusive, of a split of `shapes(**kwargs)`."""
  return shapes_annotations(split, **kwargs)['boxes']
