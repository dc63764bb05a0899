"""Sequence datasets (jaxdl/data/sequences.py): the adding problem's law, Mackey–Glass against an independent
integration (method of steps with scipy's adaptive RK45), horizons, sequential digits, next characters, seeds."""
import numpy as np
import pytest

from jaxdl import data
from jaxdl.data import sequences
from jaxdl.errors import UserError


def arrays(ds, split):
  src = ds.source(split)
  return np.asarray(src.inputs), np.asarray(src.targets)


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
  ds = data.get_dataset({'name': 'adding_problem', 'length': 20, 'num_train': 500, 'num_test': 50, 'seed': 3})
  assert ds.info.input_shape == (20, 2) and ds.info.num_outputs == 1 and ds.info.task == 'regression'
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    values, marks = x[..., 0].astype(np.float64), x[..., 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks.sum(1) == 2).all()
    assert (marks[:, :10].sum(1) == 1).all() and (marks[:, 10:].sum(1) == 1).all()   # one mark in each half
    assert 0 <= values.min() and values.max() < 1
    np.testing.assert_allclose(y[:, 0], (values * marks).sum(1), rtol=1e-6)


def test_adding_problem_baseline_is_one_sixth():
  _, y = arrays(data.get_dataset({'name': 'adding_problem', 'length': 10, 'num_train': 20000, 'num_test': 10}), 'train')
  assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01          # Var(a + b) = 2/12 for a, b ~ U(0, 1)


@pytest.mark.parametrize('name,kw', [('adding_problem', {'length': 8, 'num_train': 50}),
                                     ('mackey_glass', {'window': 30, 'num_train': 5, 'num_test': 2}),
                                     ('next_char', {'length': 8, 'num_train': 50, 'num_test': 10})])
def test_seeds_are_deterministic_and_distinct(name, kw):
  build = lambda seed: sequences.__dict__[name](seed=seed, **kw)
  a, b, c = build(1), build(1), build(2)
  for split in ('train', 'test'):
    for u, v in zip(arrays(a, split), arrays(b, split)):
      np.testing.assert_array_equal(u, v)
  assert not np.array_equal(arrays(a, 'train')[0], arrays(c, 'train')[0])


def _mackey_glass_by_steps(t_end: float, tau=17.0, x0=1.2, beta=0.2, gamma=0.1, n=10.0):
  """Independent reference: the method of steps — on [kτ, (k+1)τ] the delayed term is the previous piece's dense
  output, so each piece is an ODE, solved by scipy's adaptive RK45 at tight tolerances."""
  from scipy.integrate import solve_ivp
  pieces = []

  def past(t):
    if t <= 0:
      return x0
    for lo, hi, sol in pieces:
      if lo <= t <= hi:
        return float(sol(t)[0])
    raise ValueError(t)
  lo, x = 0.0, x0
  while lo < t_end:
    hi = lo + tau
    f = lambda t, y: [beta * past(t - tau) / (1 + past(t - tau) ** n) - gamma * y[0]]
    sol = solve_ivp(f, (lo, hi), [x], dense_output=True, rtol=1e-10, atol=1e-12, max_step=0.05)
    pieces.append((lo, hi, sol.sol))
    lo, x = hi, float(sol.y[0, -1])
  return lambda t: np.array([past(s) for s in t])


def test_mackey_glass_matches_an_independent_integration():
  ours = sequences.mackey_glass_series(120, 17.0, transient=0.0)
  ref = _mackey_glass_by_steps(120.0)(np.arange(120.0))
  np.testing.assert_allclose(ours, ref, atol=2e-4)
  assert ours.flags.writeable is False


def test_mackey_glass_is_chaotic_in_range_and_windows_hold_the_horizons():
  s = sequences.mackey_glass_series(3000)
  assert 0.2 < s.min() < 0.5 and 1.2 < s.max() < 1.45                 # the τ = 17 attractor's range
  ds = data.get_dataset({'name': 'mackey_glass', 'window': 40, 'horizons': (1, 3), 'num_train': 6, 'num_test': 3})
  assert ds.info.input_shape == (40, 1) and ds.info.num_outputs == 2
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    assert y.shape == (len(x), 40, 2)
    np.testing.assert_array_equal(y[:, :-1, 0], x[:, 1:, 0])           # target h = 1 is the next input
    np.testing.assert_array_equal(y[:, :-3, 1], x[:, 3:, 0])           # target h = 3
  with pytest.raises(UserError, match='horizons'):
    data.get_dataset({'name': 'mackey_glass', 'horizons': (0,)})


def test_sequential_digits_are_the_digits_read_row_by_row_and_pixel_by_pixel():
  img = data.get_dataset({'name': 'digits'})
  rows = data.get_dataset({'name': 'sequential_digits', 'mode': 'rows'})
  pix = data.get_dataset({'name': 'sequential_digits', 'mode': 'pixels'})
  assert rows.info.input_shape == (8, 8) and pix.info.input_shape == (64, 1) and pix.info.num_outputs == 10
  for split in ('train', 'test'):
    (xi, yi), (xr, yr), (xp, yp) = arrays(img, split), arrays(rows, split), arrays(pix, split)
    np.testing.assert_array_equal(yi, yr)
    np.testing.assert_array_equal(yi, yp)
    np.testing.assert_array_equal(xr[:, 2, 5], xi[:, 2, 5, 0])         # step 2 = row 2
    np.testing.assert_array_equal(xp[:, 8 * 2 + 5, 0], xi[:, 2, 5, 0])  # step 21 = pixel (2, 5)
  assert data.get_dataset({'name': 'sequential_digits', 'size': 28}).info.input_shape == (28, 28)
  with pytest.raises(UserError, match='mode'):
    data.get_dataset({'name': 'sequential_digits', 'mode': 'columns'})


def test_next_char_targets_are_the_inputs_shifted():
  ds = data.get_dataset({'name': 'next_char', 'length': 16, 'num_train': 200, 'num_test': 20})
  text = sequences.stdlib_text()[:400000]
  vocab = sorted(set(text))
  assert ds.info.num_outputs == len(vocab) and ds.info.input_shape == (16,)
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:].astype(np.int32))
    window = ''.join(vocab[int(i)] for i in x[0]) + vocab[int(y[0, -1])]
    assert window in text
