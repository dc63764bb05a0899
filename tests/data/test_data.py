"""Datasets and the Grain pipeline: built-in sets, determinism, exact resume, process sharding, eval coverage."""
import json

import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

def test_toy_regression_follows_the_notes():
  x, y = data.split_arrays(data.get_dataset({'name': 'toy_regression'}), 'train')
  assert x.shape == (30, 1)
  assert np.all(np.abs(y[:, 0] - 3 * x[:, 0] - 2) <= 0.1 + 1e-6)


def test_digits_split_is_deterministic_and_stratified():
  ds = data.get_dataset({'name': 'digits'})
  assert ds.info.split_sizes == {'train': 1437, 'test': 360}
  _, y = data.split_arrays(ds, 'test')
  counts = np.bincount(y, minlength=10)
  assert counts.min() >= 35 and counts.max() <= 37
  x28, _ = data.split_arrays(data.get_dataset({'name': 'digits28'}), 'test')
  x8, _ = data.split_arrays(ds, 'test')
  assert x28.shape == (360, 28, 28, 1)
  np.testing.assert_allclose(x28.mean((1, 2, 3)), x8.mean((1, 2, 3)), atol=0.05)  # resizing keeps the ink


def _digits():
  return data.get_dataset({'name': 'digits'})


def test_train_iterator_epochs_are_permutations_and_reshuffled():
  ds = _digits()
  n = len(ds.source('train'))
  it = data.train_iterator(ds, 'train', global_batch_size=n // 3, seed=0)   # 1437 = 3 × 479
  ref = ds.source('train').inputs
  def ids(batch):
    flat = ref.reshape(n, -1)
    return [int(np.flatnonzero((flat == row).all(1))[0]) for row in batch['inputs'].reshape(len(batch['inputs']), -1)]
  e1 = sum((ids(next(it)) for _ in range(3)), [])
  e2 = sum((ids(next(it)) for _ in range(3)), [])
  assert sorted(set(e1)) == sorted(set(range(n)) & set(e1)) and len(e1) == n
  assert e1 != e2


def test_train_iterator_is_deterministic_and_seeded():
  ds = _digits()
  a = [next(data.train_iterator(ds, 'train', global_batch_size=32, seed=1))['targets'] for _ in range(2)]
  np.testing.assert_array_equal(a[0], a[1])
  b = next(data.train_iterator(ds, 'train', global_batch_size=32, seed=2))['targets']
  assert not np.array_equal(a[0], b)


def test_state_resumes_exactly():
  ds = _digits()
  it = data.train_iterator(ds, 'train', global_batch_size=100, seed=0)
  for _ in range(17):          # crosses an epoch boundary (1437 / 100)
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it)['targets'] for _ in range(3)]
  it2 = data.train_iterator(ds, 'train', global_batch_size=100, seed=0)
  it2.set_state(state)
  for e in expected:
    np.testing.assert_array_equal(next(it2)['targets'], e)


def test_processes_split_the_same_global_batch():
  ds = _digits()
  one = data.train_iterator(ds, 'train', global_batch_size=64, seed=3)
  p0 = data.train_iterator(ds, 'train', global_batch_size=64, seed=3, process_index=0, process_count=2)
  p1 = data.train_iterator(ds, 'train', global_batch_size=64, seed=3, process_index=1, process_count=2)
  for _ in range(25):
    g = next(one)
    a, b = next(p0), next(p1)
    assert a['inputs'].shape[0] == 32
    np.testing.assert_array_equal(np.concatenate([a['inputs'], b['inputs']]), g['inputs'])


def test_eval_batches_cover_every_example_once_with_fixed_shapes():
  ds = _digits()
  n = len(ds.source('test'))
  for pc in (1, 2):
    seen, shapes = 0, set()
    total = np.zeros(ds.info.input_shape)
    for pi in range(pc):
      for b in data.eval_batches(ds, 'test', global_batch_size=128, process_index=pi, process_count=pc):
        shapes.add(b['inputs'].shape)
        seen += int(b['mask'].sum())
        total += (b['inputs'] * b['mask'][:, None, None, None]).sum(0)
    assert seen == n and len(shapes) == 1
    np.testing.assert_allclose(total, ds.source('test').inputs.sum(0), rtol=1e-5)


def test_bad_batch_sizes_and_names_are_user_errors():
  ds = _digits()
  with pytest.raises(UserError, match='larger than'):
    data.train_iterator(ds, 'train', global_batch_size=5000, seed=0)
  with pytest.raises(UserError, match='divide across 3 processes'):
    data.train_iterator(ds, 'train', global_batch_size=64, seed=0, process_count=3)
  with pytest.raises(UserError, match='unknown dataset'):
    data.get_dataset({'name': 'imagenet'})
  with pytest.raises(UserError, match='config.data.noise'):
    data.get_dataset({'name': 'digits', 'noise': 0.1})
  with pytest.raises(UserError, match='no split'):
    ds.source('validation')
