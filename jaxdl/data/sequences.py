"""Built-in sequence datasets (chapter 4, recurrent networks): generated with fixed seeds or from bundled data.

* `adding_problem` (Hochreiter & Schmidhuber 1997, exp. 4; the form of Le et al. 2015): T steps of two inputs, a
  value U(0, 1) and a marker; exactly two steps are marked, one in each half; the target is the sum of the two
  marked values. Always answering 1 (the mean) has MSE Var(a + b) = 2/12 ≈ 0.167.
* `sequential_digits`: scikit-learn's 8×8 digits (the `digits` split) read row by row (8 steps of 8 pixels) or
  pixel by pixel (64 steps of 1); `size=28` reads the 28×28 `digits28` images (28 or 784 steps).
* `mackey_glass`: the Mackey–Glass delay equation dx/dt = β x(t−τ)/(1 + x(t−τ)ⁿ) − γ x(t) (Mackey & Glass 1977;
  β = 0.2, γ = 0.1, n = 10, τ = 17: chaotic), integrated by RK4 with step dt = 0.1 (the delayed value at the half
  step interpolated linearly), sampled every `sample_every` = 1 time unit after a transient; windows of the series
  with targets x(t + h) for several horizons h (multi-step-ahead prediction). `mackey_glass_series` is the series.
* `next_char`: next-character prediction on a text every Python install has (the standard library's pydoc topics,
  `pydoc_data.topics`): inputs are windows of character ids, targets the same windows shifted by one.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxdl.data import Dataset, from_arrays
from jaxdl.data.builtin import _check, _digits_split, _resize
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS


# ------------------------------------------------------------------------------------------- adding problem
def adding_examples(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """n sequences (n, length, 2) [value, marker] and targets (n,): the sum of the two marked values."""
  values = rng.uniform(0.0, 1.0, (n, length)).astype(np.float32)
  half = length // 2
  first = rng.integers(0, half, n)
  second = rng.integers(half, length, n)
  markers = np.zeros((n, length), np.float32)
  markers[np.arange(n), first] = 1.0
  markers[np.arange(n), second] = 1.0
  targets = values[np.arange(n), first] + values[np.arange(n), second]
  return np.stack([values, markers], -1), targets


@DATASETS.register('adding_problem', source='Hochreiter & Schmidhuber 1997; seed 000 (why training RNNs is hard)',
                   description='T steps of (value, marker); target = sum of the two marked values; baseline MSE 0.167')
def adding_problem(*, length: int = 100, num_train: int = 10000, num_test: int = 1000, seed: int = 0) -> Dataset:
  _check('adding_problem', length=(length, 2), num_train=(num_train, 1), num_test=(num_test, 1))
  rng = np.random.default_rng(seed)
  train = adding_examples(num_train, length, rng)
  test = adding_examples(num_test, length, rng)
  return from_arrays('adding_problem', 'regression', {'train': train, 'test': test})


# ------------------------------------------------------------------------------------------- sequential digits
MODES = ('rows', 'pixels')


@DATASETS.register('sequential_digits', source="scikit-learn's digits; Le et al. 2015 (pixel-by-pixel MNIST)",
                   description='the digits as sequences: rows (8 steps × 8) or pixels (64 × 1); size 28: digits28')
def sequential_digits(*, mode: str = 'rows', size: int = 8) -> Dataset:
  if mode not in MODES:
    raise UserError(f'config.data.mode={mode!r} for dataset sequential_digits', f'one of {MODES}',
                    'fix --config.data.mode')
  if size not in (8, 28):
    raise UserError(f'config.data.size={size} for dataset sequential_digits', '8 (the digits) or 28 (digits28)',
                    'fix --config.data.size')
  xtr, xte, ytr, yte = _digits_split()
  if size == 28:
    xtr, xte = _resize(xtr, 28), _resize(xte, 28)
  shape = (size, size) if mode == 'rows' else (size * size, 1)
  return from_arrays('sequential_digits', 'classification',
                     {'train': (xtr.reshape(-1, *shape), ytr), 'test': (xte.reshape(-1, *shape), yte)}, num_outputs=10)


# ------------------------------------------------------------------------------------------- Mackey-Glass
def _mg_rate(x, x_tau, beta, gamma, n):
  return beta * x_tau / (1.0 + x_tau ** n) - gamma * x


@functools.lru_cache(maxsize=8)
def mackey_glass_series(num_samples: int, tau: float = 17.0, *, dt: float = 0.1, sample_every: float = 1.0,
                        transient: float = 500.0, x0: float = 1.2, beta: float = 0.2, gamma: float = 0.1,
                        n: float = 10.0) -> np.ndarray:
  """x(t) at t = transient + k·sample_every, k = 0..num_samples−1 (float64, read-only), from the constant history
  x(t ≤ 0) = x0. RK4 with step dt; τ/dt must be an integer (delayed values are grid points; the half-step delayed
  value is the mean of its two neighbours)."""
  lag = round(tau / dt)
  stride = round(sample_every / dt)
  if abs(lag * dt - tau) > 1e-9 or abs(stride * dt - sample_every) > 1e-9:
    raise ValueError(f'tau={tau} and sample_every={sample_every} must be multiples of dt={dt}')
  skip = round(transient / dt)
  steps = skip + (num_samples - 1) * stride
  x = np.empty(lag + steps + 1)
  x[:lag + 1] = x0                      # history x(−τ..0); x[lag + k] = x(k·dt)
  for k in range(steps):
    i = lag + k
    d0, d1 = x[i - lag], x[i - lag + 1]           # x(t − τ), x(t − τ + dt)
    dh = 0.5 * (d0 + d1)                          # x(t − τ + dt/2)
    xi = x[i]
    k1 = _mg_rate(xi, d0, beta, gamma, n)
    k2 = _mg_rate(xi + 0.5 * dt * k1, dh, beta, gamma, n)
    k3 = _mg_rate(xi + 0.5 * dt * k2, dh, beta, gamma, n)
    k4 = _mg_rate(xi + dt * k3, d1, beta, gamma, n)
    x[i + 1] = xi + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
  out = x[lag + skip::stride][:num_samples].copy()
  out.setflags(write=False)
  return out


def horizon_targets(series: np.ndarray, horizons: tuple[int, ...], length: int) -> np.ndarray:
  """(length, len(horizons)): column j at row t is series[t + horizons[j]]."""
  return np.stack([series[h:h + length] for h in horizons], -1)


@DATASETS.register('mackey_glass', per_step=True,
                   source='Mackey & Glass 1977; Jaeger 2001 (ESN); seed 000 (echo-state networks)',
                   description='Mackey-Glass τ=17 series windows; targets x(t+h) for each horizon h (multi-step)')
def mackey_glass(*, window: int = 200, horizons: tuple = (1, 5, 10), num_train: int = 100, num_test: int = 20,
                 tau: int = 17, seed: int = 0) -> Dataset:
  """Windows of `window` samples (inputs (window, 1) = x(t) − 1, centred) with targets (window, len(horizons)) =
  x(t + h) − 1; train windows from the first 70% of the series, test windows from the rest (disjoint). The series
  (sampled every time unit) starts from the history x0 = 1.2 + 0.1·(seed draw), so seeds give other trajectories."""
  _check('mackey_glass', window=(window, 2), num_train=(num_train, 1), num_test=(num_test, 1), tau=(tau, 1))
  horizons = tuple(int(h) for h in horizons)
  if not horizons or min(horizons) < 1:
    raise UserError(f'config.data.horizons={horizons!r}', 'positive prediction horizons, e.g. (1, 5, 10)',
                    'fix --config.data.horizons')
  rng = np.random.default_rng(seed)
  x0 = 1.2 + 0.1 * float(rng.uniform(-1, 1))
  span = window + max(horizons)
  series = mackey_glass_series(max(3000, 4 * span), float(tau), x0=round(x0, 6)) - 1.0
  cut = int(0.7 * len(series))

  def windows(lo, hi, count):
    starts = np.linspace(lo, hi - span, count).astype(int)
    xs = np.stack([series[s:s + window, None] for s in starts])
    ys = np.stack([horizon_targets(series[s:], horizons, window) for s in starts])
    return xs, ys
  return from_arrays('mackey_glass', 'regression',
                     {'train': windows(0, cut, num_train), 'test': windows(cut, len(series), num_test)},
                     num_outputs=len(horizons))


# ------------------------------------------------------------------------------------------- next character
@functools.lru_cache(maxsize=1)
def stdlib_text() -> str:
  """The standard library's pydoc topics (pydoc_data.topics), in sorted topic order, as one ASCII string."""
  from pydoc_data.topics import topics  # pylint: disable=g-import-not-at-top
  text = '\n'.join(topics[k] for k in sorted(topics))
  return text.encode('ascii', 'replace').decode('ascii')


@DATASETS.register('next_char', per_step=True,
                   source="the standard library's pydoc topics text; seed 000 (bidirectional remark)",
                   description='windows of character ids; targets: the next character at every step')
def next_char(*, length: int = 32, num_train: int = 20000, num_test: int = 2000, max_chars: int = 400000,
              seed: int = 0) -> Dataset:
  """Inputs (length,) character ids (as floats) c_t..c_{t+L−1}, targets (length,) c_{t+1}..c_{t+L}. The vocabulary
  is the characters of the first `max_chars` characters (sorted); train windows start in the first 90% of them,
  test windows in the last 10% (disjoint), at positions drawn with `seed`."""
  _check('next_char', length=(length, 1), num_train=(num_train, 1), num_test=(num_test, 1), max_chars=(max_chars, 100))
  text = stdlib_text()[:max_chars]
  codes = np.frombuffer(text.encode('ascii'), np.uint8)
  vocab = np.flatnonzero(np.bincount(codes, minlength=128))              # the characters present, sorted
  ids = np.searchsorted(vocab, codes).astype(np.int32)
  cut = int(0.9 * len(ids))
  if cut - length - 1 < 1 or len(ids) - cut - length - 1 < 1:
    raise UserError(f'config.data.length={length} with max_chars={max_chars}', 'windows shorter than a tenth of '
                    'the text', 'reduce --config.data.length or raise --config.data.max_chars')
  rng = np.random.default_rng(seed)

  def windows(lo, hi, count):
    starts = rng.integers(lo, hi - length - 1, count)
    idx = starts[:, None] + np.arange(length + 1)[None]
    w = ids[idx]
    return w[:, :-1], w[:, 1:]
  return from_arrays('next_char', 'classification',
                     {'train': windows(0, cut, num_train), 'test': windows(cut, len(ids), num_test)},
                     num_outputs=len(vocab))
