"""Variable-length batching (jaxdl.data.buckets): padding, buckets, epoch plans, processes, resume, evaluation."""
import numpy as np
import pytest

from jaxdl import data as data_lib
from jaxdl.data import buckets
from jaxdl.errors import UserError


def _source(n=53, seed=0, max_len=30, bucket_sizes=(8, 16, 24, 32)):
  rng = np.random.default_rng(seed)
  lens = rng.integers(1, max_len + 1, n)
  seqs = [rng.integers(4, 20, size=L).astype(np.int32) for L in lens]
  feats = [rng.normal(size=(2 * L, 3)).astype(np.float32) for L in lens]   # e.g. audio frames: [T, F]
  labels = rng.integers(0, 5, n).astype(np.int32)
  return buckets.RaggedSource({'inputs': feats, 'targets': seqs, 'label': labels},
                              {'inputs': None, 'targets': bucket_sizes}, length_key='targets',
                              references=[f'ex{i}' for i in range(n)])


def test_bucket_length_and_default_buckets():
  assert buckets.bucket_length(1, (8, 16)) == 8
  assert buckets.bucket_length(8, (8, 16)) == 8
  assert buckets.bucket_length(9, (8, 16)) == 16
  with pytest.raises(ValueError):
    buckets.bucket_length(17, (8, 16))
  lens = np.random.default_rng(1).integers(1, 200, 500)
  b = buckets.default_buckets(lens, num_buckets=5, multiple=8)
  assert list(b) == sorted(set(b)) and all(x % 8 == 0 for x in b)
  assert b[-1] >= lens.max() and len(b) <= 5


def test_padded_batch_holds_each_example_and_marks_its_padding():
  src = _source()
  idx = np.array([3, 0, 17, 40])
  batch = src.get_batch(idx)
  want_t = buckets.bucket_length(max(len(src[i]['targets']) for i in idx), src.buckets['targets'])
  assert batch['targets'].shape == (4, want_t)
  assert batch['targets_paddings'].shape == (4, want_t)
  assert batch['inputs'].shape[0] == 4 and batch['inputs'].shape[2] == 3
  for row, i in enumerate(idx):
    ex = src[i]
    for k in ('inputs', 'targets'):
      L = len(ex[k])
      np.testing.assert_array_equal(batch[k][row, :L], ex[k])
      assert not batch[k][row, L:].any()                       # zeros (PAD = 0) past the end
      np.testing.assert_array_equal(batch[k + '_paddings'][row], (np.arange(batch[k].shape[1]) >= L))
    assert batch['label'][row] == ex['label']


def test_too_long_example_is_a_user_error():
  with pytest.raises(UserError, match='longer than the largest bucket'):
    buckets.RaggedSource({'x': [np.zeros(5), np.zeros(40)]}, {'x': (8, 16)})


def test_train_plan_covers_each_epoch_without_repeats_and_is_seeded():
  lens = np.random.default_rng(0).integers(1, 100, 103)
  for epoch in range(3):
    plan = buckets.train_plan(lens, 10, seed=5, epoch=epoch, window=3)
    assert plan.shape == (10, 10)
    assert len(np.unique(plan)) == 100                           # no example twice; 3 left over this epoch
    np.testing.assert_array_equal(plan, buckets.train_plan(lens, 10, seed=5, epoch=epoch, window=3))
  assert not np.array_equal(buckets.train_plan(lens, 10, 5, 0), buckets.train_plan(lens, 10, 5, 1))
  # Grouping: batches are more homogeneous in length than random batches would be.
  plan = buckets.train_plan(lens, 10, seed=5, epoch=1, window=5)
  spread = np.mean(lens[plan].max(1) - lens[plan].min(1))
  rand = np.random.default_rng(9).permutation(100).reshape(10, 10)
  assert spread < 0.5 * np.mean(lens[rand].max(1) - lens[rand].min(1))


def test_sorta_grad_orders_the_first_epoch_only():
  lens = np.random.default_rng(0).integers(1, 100, 64)
  plan0 = buckets.train_plan(lens, 8, seed=1, epoch=0, sorta_grad=True)
  assert np.all(np.diff(lens[plan0.ravel()]) >= 0)
  plan1 = buckets.train_plan(lens, 8, seed=1, epoch=1, sorta_grad=True)
  np.testing.assert_array_equal(plan1, buckets.train_plan(lens, 8, seed=1, epoch=1))


def _dataset(src):
  info = data_lib.DatasetInfo('ragged', 'classification', (1,), 20, {'train': len(src), 'test': len(src)})
  return data_lib.Dataset(info, {'train': src, 'test': src})


def test_processes_split_each_global_batch_and_agree_on_its_shape():
  ds = _dataset(_source())
  one = data_lib.train_iterator(ds, 'train', global_batch_size=8, seed=3)
  two = [data_lib.train_iterator(ds, 'train', global_batch_size=8, seed=3, process_index=p, process_count=2)
         for p in range(2)]
  shapes = set()
  for _ in range(12):   # past an epoch boundary (53 // 8 = 6 batches per epoch)
    full, parts = next(one), [next(it) for it in two]
    for k in full:
      np.testing.assert_array_equal(full[k], np.concatenate([p[k] for p in parts]))
    shapes.add(full['targets'].shape[1])
  assert shapes <= set(ds.source('train').buckets['targets'])
  for it in [one, *two]:
    it.close()


def test_resume_gives_the_same_batches():
  ds = _dataset(_source())
  it = data_lib.train_iterator(ds, 'train', global_batch_size=4, seed=2, sorta_grad=True)
  batches = [next(it) for _ in range(20)]
  state = it.get_state()
  assert state['sorta_grad'] is True
  again = data_lib.train_iterator(ds, 'train', global_batch_size=4, seed=2, sorta_grad=True)
  again.set_state(dict(state, step=7))
  for want in batches[7:]:
    got = next(again)
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])
  with pytest.raises(UserError, match='sorta_grad'):
    data_lib.train_iterator(ds, 'train', global_batch_size=4, seed=2).set_state(state)
  it.close()
  again.close()


@pytest.mark.parametrize('processes', [1, 3])
def test_evaluation_sees_every_example_once(processes):
  src = _source(n=31)
  ds = _dataset(src)
  seen = []
  for p in range(processes):
    for batch in data_lib.eval_batches(ds, 'test', global_batch_size=6, process_index=p, process_count=processes):
      assert batch['targets'].shape[1] in src.buckets['targets']
      for row, (i, m) in enumerate(zip(batch['index'], batch['mask'])):
        if m:
          seen.append(int(i))
          L = len(src[i]['targets'])
          np.testing.assert_array_equal(batch['targets'][row, :L], src[i]['targets'])
  assert sorted(seen) == list(range(31))
