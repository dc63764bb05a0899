"""Built-in datasets: shapes, dtypes, sizes, determinism, and the laws they are drawn from."""
import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

# Stock sets need a download; synthesized ones a speech engine and a minute (tested small in test_speech_data.py).
BUILTIN = [e.name for e in DATASETS if not e.meta.get('stock') and not e.meta.get('synthesized')]


def arrays(ds, split):
  src = ds.source(split)
  return np.asarray(src.inputs), np.asarray(src.targets)


def fields(ds, split):
  """Every field of a split, fixed-shape (stacked arrays) or variable-length (a list per field)."""
  src = ds.source(split)
  if hasattr(src, 'fields'):   # jaxdl.data.buckets.RaggedSource
    return dict(src.fields)
  return {'inputs': np.asarray(src.inputs), 'targets': np.asarray(src.targets)}


def test_every_required_dataset_is_registered():
  for name in ('toy_regression', 'xor', 'two_moons', 'two_blobs', 'circles', 'spirals', 'digits', 'digits28',
               'mnist', 'fashion_mnist', 'cifar10', 'cifar100'):
    assert name in DATASETS
    assert DATASETS.meta(name).get('description')


def _check_record(name, info, src, r, vocab_size):
  ragged = getattr(src, 'ragged', ())
  x, y = np.asarray(r['inputs']), np.asarray(r['targets'])
  # Inputs: float32 features, or token ids (int32, or float32 holding integers) below the vocabulary size.
  assert x.dtype in (np.float32, np.int32)
  if 'inputs' in ragged:    # variable length: the first axis varies, the rest is info.input_shape's
    assert x.ndim == len(info.input_shape) and x.shape[1:] == info.input_shape[1:] and len(x) >= 1
  else:
    assert x.shape == info.input_shape
  assert np.isfinite(x).all()
  if x.dtype == np.int32:
    assert 0 <= x.min() and x.max() < vocab_size
  steps = info.input_shape[:1] if DATASETS.meta(name).get('per_step') else ()   # a target per time step
  if info.task == 'classification':
    assert y.dtype == np.int32 and y.min() >= 0 and y.max() < info.num_outputs
    if 'targets' in ragged:
      assert y.ndim == 1 and len(y) >= 1
    elif not (steps or y.shape == x.shape):   # per step, or one target per input token (next character)
      assert y.shape == ()
    else:
      assert y.shape == (steps or x.shape)
  else:
    assert y.dtype == np.float32 and y.shape == (*steps, info.num_outputs) and np.isfinite(y).all()


@pytest.mark.parametrize('name', BUILTIN)
def test_info_matches_the_records(name):
  ds = DATASETS.get(name)()
  info = ds.info
  vocab = getattr(ds, 'vocabulary', None)
  vocab_size = len(vocab) if vocab is not None else info.num_outputs
  assert info.name == name and info.task in ('classification', 'regression')
  assert 'train' in info.split_sizes and ({'test', 'validation'} & set(info.split_sizes))
  for split, size in info.split_sizes.items():
    src = ds.source(split)
    assert len(src) == size > 0
    for i in (0, size - 1):
      _check_record(name, info, src, src[i], vocab_size)
    refs = getattr(src, 'references', None)
    if refs is not None and vocab is not None:   # references are the targets' text
      assert vocab.decode(src[0]['targets']) == refs[0]
    b = src.get_batch(np.array([size - 1, 0]))
    last = np.asarray(src[size - 1]['inputs'])
    np.testing.assert_array_equal(b['inputs'][0][:len(last)], last)
  with pytest.raises(UserError, match='no split'):
    ds.source('no_such_split')


@pytest.mark.parametrize('name', BUILTIN)
def test_deterministic(name):
  a, b = DATASETS.get(name)(), DATASETS.get(name)()
  assert a.info == b.info
  for split in a.info.split_sizes:
    fa, fb = fields(a, split), fields(b, split)
    assert fa.keys() == fb.keys()
    for k in fa:
      for u, v in zip(fa[k], fb[k]):
        np.testing.assert_array_equal(u, v)


def test_records_are_read_only():
  x, _ = arrays(data.get_dataset({'name': 'digits'}), 'train')
  with pytest.raises(ValueError):
    x[0, 0, 0, 0] = 1.0


def test_toy_regression_follows_the_course_law():
  # Seed 000, "Example regression problem": N = 30, y = 3x + 2 + U(-0.1, 0.1).
  ds = data.get_dataset({'name': 'toy_regression'})
  assert ds.info.split_sizes == {'train': 30, 'test': 100}
  assert (ds.info.task, ds.info.input_shape, ds.info.num_outputs) == ('regression', (1,), 1)
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    noise = y[:, 0].astype(np.float64) - 3 * x[:, 0].astype(np.float64) - 2
    assert np.abs(noise).max() <= 0.1 + 1e-6
    assert np.abs(noise).max() > 0.05          # the noise is really there
    assert 0 <= x.min() and x.max() <= 1
  x_tr, _ = arrays(ds, 'train')
  x_te, _ = arrays(ds, 'test')
  assert not np.isin(x_te, x_tr).any()          # a separate draw
  other = data.get_dataset({'name': 'toy_regression', 'seed': 1, 'num_examples': 50})
  assert other.info.split_sizes['train'] == 50
  assert not np.array_equal(arrays(other, 'train')[0][:30], x_tr)


def test_xor():
  ds = data.get_dataset({'name': 'xor'})
  x, y = arrays(ds, 'train')
  np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
  np.testing.assert_array_equal(y, [0, 1, 1, 0])
  assert ds.info.num_outputs == 2
  for u, v in zip(arrays(ds, 'test'), (x, y)):
    np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize('seed', range(5))
def test_two_blobs_is_linearly_separable(seed):
  ds = data.get_dataset({'name': 'two_blobs', 'seed': seed})
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    np.testing.assert_array_equal(x[:, 0] > 0, y == 1)
    assert abs(int(y.sum()) - len(y) / 2) <= 1


@pytest.mark.parametrize('name', ['two_moons', 'two_blobs', 'circles', 'spirals'])
def test_2d_sets_take_their_kwargs(name):
  ds = data.get_dataset({'name': name, 'num_examples': 64, 'noise': 0.1, 'seed': 3})
  x, y = arrays(ds, 'train')
  assert x.shape == (64, 2) and ds.info.num_outputs == 2 and set(np.unique(y)) == {0, 1}
  for other in ({'seed': 4}, {'noise': 0.2}):
    x2, _ = arrays(data.get_dataset({'name': name, 'num_examples': 64, 'noise': 0.1, 'seed': 3, **other}), 'train')
    assert not np.array_equal(x, x2)
  with pytest.raises(UserError, match='num_examples'):
    data.get_dataset({'name': name, 'num_examples': 1})
  with pytest.raises(UserError, match='noise'):
    data.get_dataset({'name': name, 'noise': -1.0})


def test_digits_split_is_deterministic_and_stratified():
  from sklearn.datasets import load_digits
  ds = data.get_dataset({'name': 'digits'})
  assert ds.info.split_sizes == {'train': 1437, 'test': 360}
  assert (ds.info.input_shape, ds.info.num_outputs) == ((8, 8, 1), 10)
  full = np.bincount(load_digits().target, minlength=10)
  counts = {}
  for split in ('train', 'test'):
    x, y = arrays(ds, split)
    assert x.min() == 0 and x.max() == 1
    counts[split] = np.bincount(y, minlength=10)
    # Stratified: each class's share of the split equals its share of the whole set (to one example).
    np.testing.assert_allclose(counts[split], full * len(y) / full.sum(), atol=1)
  np.testing.assert_array_equal(counts['train'] + counts['test'], full)
  # The same split as a fresh stratified 80/20 split with the fixed seed (independent of our cache).
  again = data.builtin.digits()
  for split in ('train', 'test'):
    for u, v in zip(arrays(ds, split), arrays(again, split)):
      np.testing.assert_array_equal(u, v)
  # Images are the sklearn ones / 16.
  d = load_digits()
  x, y = arrays(ds, 'test')
  hit = np.flatnonzero((d.images / 16.0 == x[0, ..., 0]).all(axis=(1, 2)))
  assert len(hit) >= 1 and d.target[hit[0]] == y[0]


def test_digits28_is_the_digits_resized():
  small, big = data.get_dataset({'name': 'digits'}), data.get_dataset({'name': 'digits28'})
  assert big.info.input_shape == (28, 28, 1) and big.info.split_sizes == small.info.split_sizes
  for split in ('train', 'test'):
    (xs, ys), (xb, yb) = arrays(small, split), arrays(big, split)
    np.testing.assert_array_equal(ys, yb)
    assert xb.min() >= 0 and xb.max() <= 1
    np.testing.assert_allclose(xb.mean(axis=(1, 2, 3)), xs.mean(axis=(1, 2, 3)), atol=0.03)
  # Bilinear: a constant image stays constant; a linear ramp stays monotone.
  const = data.builtin._resize(np.full((1, 8, 8, 1), 0.25, np.float32), 28)
  np.testing.assert_allclose(const, 0.25, rtol=1e-6)
  ramp = data.builtin._resize(np.tile(np.arange(8, dtype=np.float32), (1, 8, 1))[..., None], 28)
  assert (np.diff(ramp[0, 0, :, 0]) >= 0).all() and ramp[0, 0, 0, 0] == 0 and ramp[0, 0, -1, 0] == 7
