"""Built-in datasets: generated with fixed seeds, or bundled with scikit-learn. No network, ever.

Binary classification sets use labels {0, 1} (the `perceptron` loss reads them as {−1, +1}).
"""
from __future__ import annotations

import functools

import numpy as np

from jaxdl.data import Dataset, from_arrays
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS


def _check(name: str, **values) -> None:
  """Sizes must be >= 1 (>= 2 for two-class sets, see callers); noise >= 0."""
  for key, (value, low) in values.items():
    if value < low:
      raise UserError(f'config.data.{key}={value} for dataset {name!r} is too small', f'>= {low}',
                      f'fix --config.data.{key}')


# ------------------------------------------------------------------------------------------- regression
@DATASETS.register('toy_regression', source='seed 000, "Example regression problem"',
                   description='N=30, y = 3x + 2 + U(-0.1, 0.1), x ~ U(0, 1)')
def toy_regression(*, num_examples: int = 30, num_test: int = 100, seed: int = 0) -> Dataset:
  """The notes' toy set (seed 000, "Example regression problem": N = 30, y = 3x + 2 + U(−0.1, 0.1)).

  The notes do not give the range of x; we draw x ~ U(0, 1). Train: the N points; test: fresh points of the same law.
  """
  _check('toy_regression', num_examples=(num_examples, 1), num_test=(num_test, 1))
  rng = np.random.default_rng(seed)
  def draw(n):
    x = rng.uniform(0.0, 1.0, size=(n, 1))
    return x, 3.0 * x[:, 0] + 2.0 + rng.uniform(-0.1, 0.1, size=n)
  return from_arrays('toy_regression', 'regression', {'train': draw(num_examples), 'test': draw(num_test)})


@DATASETS.register('noisy_function', source='seed 002, course 1 (polynomial regression); seed 000 (RBF)',
                   description='1-D smooth function + Gaussian noise; held-out test points')
def noisy_function(*, function: str = 'sin', num_examples: int = 20, num_test: int = 200, noise: float = 0.1,
                   seed: int = 0) -> Dataset:
  """y = f(x) + N(0, noise²), x ~ U(−1, 1); f ∈ {sin: sin(πx), runge: 1/(1 + 25x²), cubic: x³ − x/2,
  wavy: 3(x³ − 0.6x) + cos 3x}. The test split is fresh draws of the same law, for held-out error."""
  fns = {'sin': lambda x: np.sin(np.pi * x), 'runge': lambda x: 1.0 / (1.0 + 25.0 * x ** 2),
         'cubic': lambda x: x ** 3 - 0.5 * x, 'wavy': lambda x: 3 * (x ** 3 - 0.6 * x) + np.cos(3 * x)}
  _check('noisy_function', num_examples=(num_examples, 1), num_test=(num_test, 1), noise=(noise, 0))
  if function not in fns:
    raise UserError(f'unknown config.data.function {function!r}', 'one of: ' + ', '.join(fns), 'fix it')
  rng = np.random.default_rng(seed)
  f = fns[function]
  def draw(n):
    x = np.sort(rng.uniform(-1.0, 1.0, size=n))
    return x[:, None], f(x) + noise * rng.normal(size=n)
  return from_arrays('noisy_function', 'regression', {'train': draw(num_examples), 'test': draw(num_test)})


# ---------------------------------------------------------------------------------- 2-D classification
def _logic(name, labels):
  x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
  y = np.array(labels)
  return from_arrays(name, 'classification', {'train': (x, y), 'test': (x, y)}, num_outputs=2)


@DATASETS.register('xor', source='seed 000, 001 (Minsky & Papert)', description='the 4 XOR points')
def xor() -> Dataset:
  return _logic('xor', [0, 1, 1, 0])


@DATASETS.register('logic_and', source='seed 001', description='the 4 AND points')
def logic_and() -> Dataset:
  return _logic('logic_and', [0, 0, 0, 1])


@DATASETS.register('logic_or', source='seed 001', description='the 4 OR points')
def logic_or() -> Dataset:
  return _logic('logic_or', [0, 1, 1, 1])


def _two_d(name, gen, num_examples, num_test, seed, noise):
  _check(name, num_examples=(num_examples, 2), num_test=(num_test, 2), noise=(noise, 0))
  rng = np.random.default_rng(seed)
  return from_arrays(name, 'classification', {'train': gen(rng, num_examples), 'test': gen(rng, num_test)},
                     num_outputs=2)


@DATASETS.register('two_blobs', description='two Gaussian blobs at (±1.5, 0), linearly separable (by x₁ = 0)')
def two_blobs(*, num_examples: int = 100, num_test: int = 400, noise: float = 0.5, seed: int = 0) -> Dataset:
  """Class 1 around (1.5, 0), class 0 around (−1.5, 0), N(0, noise²) each. A point that lands on the wrong side
  of x₁ = 0 is drawn again (the perceptron convergence theorem needs a separable set)."""
  def gen(rng, n):
    y = np.arange(n) % 2
    centre = np.stack([np.where(y == 1, 1.5, -1.5), np.zeros(n)], 1)
    x = centre + noise * rng.normal(size=(n, 2))
    for _ in range(1000):
      bad = (x[:, 0] > 0) != (y == 1)
      if not bad.any():
        break
      x[bad] = centre[bad] + noise * rng.normal(size=(int(bad.sum()), 2))
    else:
      raise UserError(f'config.data.noise={noise} is too large for two separable blobs', 'noise <= about 2',
                      'lower --config.data.noise')
    return x, y
  return _two_d('two_blobs', gen, num_examples, num_test, seed, noise)


@DATASETS.register('two_moons', source='the kernel-perceptron example of seed 000 (ML-Recipes moons)',
                   description='two interleaved half circles + N(0, noise²)')
def two_moons(*, num_examples: int = 100, num_test: int = 1000, noise: float = 0.25, seed: int = 0) -> Dataset:
  """Class +1: (−½ + cos t, sin t), t ∈ [0, π]; class 0: (½ + cos t, sin t), t ∈ [π, 2π]; evenly spaced t."""
  def gen(rng, n):
    h = n // 2
    t1, t0 = np.linspace(0, np.pi, h), np.linspace(np.pi, 2 * np.pi, n - h)
    x = np.concatenate([np.c_[-0.5 + np.cos(t1), np.sin(t1)], np.c_[0.5 + np.cos(t0), np.sin(t0)]])
    return x + rng.normal(0.0, noise, size=x.shape), np.r_[np.ones(h, int), np.zeros(n - h, int)]
  return _two_d('two_moons', gen, num_examples, num_test, seed, noise)


@DATASETS.register('circles', description='two concentric noisy circles')
def circles(*, num_examples: int = 200, num_test: int = 1000, noise: float = 0.08, seed: int = 0) -> Dataset:
  def gen(rng, n):
    y = np.arange(n) % 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 1, 0.5, 1.0)
    return np.c_[r * np.cos(t), r * np.sin(t)] + noise * rng.normal(size=(n, 2)), y
  return _two_d('circles', gen, num_examples, num_test, seed, noise)


@DATASETS.register('spirals', description='two interleaved spirals')
def spirals(*, num_examples: int = 400, num_test: int = 1000, noise: float = 0.05, seed: int = 0) -> Dataset:
  def gen(rng, n):
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    sgn = np.where(y == 1, 1.0, -1.0)
    x = sgn[:, None] * np.c_[t * np.cos(t), t * np.sin(t)] / (3 * np.pi)
    return x + noise * rng.normal(size=(n, 2)), y
  return _two_d('spirals', gen, num_examples, num_test, seed, noise)


# -------------------------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def _digits_split():
  """Stratified 1,437 / 360 (80/20) split with a fixed seed: the same on every machine."""
  from sklearn.datasets import load_digits  # bundled with scikit-learn: no download  pylint: disable=g-import-not-at-top
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top
  d = load_digits()
  x = (d.images / 16.0).astype(np.float32)[..., None]   # (1797, 8, 8, 1) in [0, 1]
  out = train_test_split(x, d.target, test_size=360, random_state=0, stratify=d.target)
  for a in out:
    a.setflags(write=False)  # cached: shared by digits and digits28
  return tuple(out)


def _select(xtr, xte, ytr, yte, classes: tuple, train_examples: int, name: str):
  """Keeps `classes` (relabelled 0..k−1 in the given order; () = all ten) and the first `train_examples` training
  examples (0 = all; the split is already shuffled and stratified): a source/target pair for transfer learning."""
  classes = tuple(classes)
  if classes:
    if len(set(classes)) != len(classes) or not all(isinstance(c, int) and 0 <= c <= 9 for c in classes):
      raise UserError(f'config.data.classes={classes!r} for dataset {name!r}', 'distinct digits 0..9, e.g. (5, 6, 7)',
                      'fix --config.data.classes')
    lut = np.full(10, -1, np.int32)
    lut[list(classes)] = np.arange(len(classes))
    keep_tr, keep_te = lut[ytr] >= 0, lut[yte] >= 0
    xtr, ytr, xte, yte = xtr[keep_tr], lut[ytr[keep_tr]], xte[keep_te], lut[yte[keep_te]]
  if train_examples < 0:
    raise UserError(f'config.data.train_examples={train_examples}', 'an integer >= 0 (0: all)',
                    'fix --config.data.train_examples')
  if train_examples:
    xtr, ytr = xtr[:train_examples], ytr[:train_examples]
  return xtr, xte, ytr, yte, len(classes) or 10


@DATASETS.register('digits', source="scikit-learn's bundled UCI 8×8 digits",
                   description='1,797 8×8 grey digits; stratified 1,437 / 360 train/test split')
def digits(*, classes: tuple = (), train_examples: int = 0) -> Dataset:
  xtr, xte, ytr, yte, k = _select(*_digits_split(), classes, train_examples, 'digits')
  return from_arrays('digits', 'classification', {'train': (xtr, ytr), 'test': (xte, yte)}, num_outputs=k)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of (N, h, w, 1) images to (N, size, size, 1), pixel-centre aligned (deterministic)."""
  n, h, w, _ = x.shape
  def axis(src, dst):
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (pos - lo).astype(np.float32)
  (r0, r1, fr), (c0, c1, fc) = axis(h, size), axis(w, size)
  img = x[..., 0]
  rows = img[:, r0] * (1 - fr)[None, :, None] + img[:, r1] * fr[None, :, None]
  out = rows[:, :, c0] * (1 - fc)[None, None, :] + rows[:, :, c1] * fc[None, None, :]
  return out[..., None].astype(np.float32)


@DATASETS.register('digits28', source="scikit-learn's digits, resized", description='the digits at 28×28×1 (MNIST-sized)')
def digits28(*, classes: tuple = (), train_examples: int = 0) -> Dataset:
  xtr, xte, ytr, yte, k = _select(*_digits_split(), classes, train_examples, 'digits28')
  return from_arrays('digits28', 'classification', {'train': (_resize(xtr, 28), ytr), 'test': (_resize(xte, 28), yte)},
                     num_outputs=k)
