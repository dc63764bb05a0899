"""The Grain pipeline: seeded endless training batches (sharded over processes, exactly resumable) and padded
one-pass evaluation."""
import json
import time

import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError


def indexed(n, name='indexed'):
  """A dataset whose example i has inputs [i] (so batches show which examples they hold)."""
  x = np.arange(n, dtype=np.float32)[:, None]
  return data.from_arrays(name, 'classification', {'train': (x, np.arange(n) % 3), 'test': (x, np.arange(n) % 3)})


class RecordSource:
  """A plain Grain-style source (len, [i]) with no get_batch: the per-record path, prefetched in threads."""

  def __init__(self, src):
    self.src = src

  def __len__(self):
    return len(self.src)

  def __getitem__(self, i):
    return self.src[i]


def record_dataset(n):
  ds = indexed(n)
  return data.Dataset(ds.info, {s: RecordSource(ds.source(s)) for s in ('train', 'test')})


def ids(batch):
  return batch['inputs'][:, 0].astype(int)


def take(it, k):
  return [next(it) for _ in range(k)]


def test_batches_have_the_local_shape_and_dtypes():
  ds = data.get_dataset({'name': 'digits'})
  b = next(data.train_iterator(ds, 'train', global_batch_size=32, seed=0, process_index=1, process_count=2))
  assert b['inputs'].shape == (16, 8, 8, 1) and b['inputs'].dtype == np.float32
  assert b['targets'].shape == (16,) and b['targets'].dtype == np.int32
  r = next(data.train_iterator(data.get_dataset({'name': 'toy_regression'}), 'train', global_batch_size=8, seed=0))
  assert r['targets'].shape == (8, 1) and r['targets'].dtype == np.float32


@pytest.mark.parametrize('make', [indexed, record_dataset])
def test_deterministic_for_a_seed_and_different_across_seeds(make):
  ds = make(50)
  a = take(data.train_iterator(ds, 'train', global_batch_size=10, seed=7), 12)
  b = take(data.train_iterator(ds, 'train', global_batch_size=10, seed=7), 12)
  c = take(data.train_iterator(ds, 'train', global_batch_size=10, seed=8), 12)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u['inputs'], v['inputs'])
    np.testing.assert_array_equal(u['targets'], v['targets'])
  assert any(not np.array_equal(ids(u), ids(w)) for u, w in zip(a, c))


@pytest.mark.parametrize('n,batch', [(12, 4), (10, 4), (7, 7), (9, 2)])
def test_every_example_once_per_epoch_and_epochs_reshuffled(n, batch):
  epochs = 4
  it = data.train_iterator(indexed(n), 'train', global_batch_size=batch, seed=0)
  stream = np.concatenate([ids(b) for b in take(it, -(-epochs * n // batch))])[:epochs * n]
  orders = stream.reshape(epochs, n)
  for order in orders:
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
  assert len({tuple(o) for o in orders}) > 1       # reshuffled


def test_no_shuffle_reads_in_order():
  it = data.train_iterator(indexed(6), 'train', global_batch_size=4, seed=0, shuffle=False)
  np.testing.assert_array_equal(np.concatenate([ids(b) for b in take(it, 3)]), [0, 1, 2, 3, 4, 5] * 2)


@pytest.mark.parametrize('processes', [2, 4])
def test_global_batches_do_not_depend_on_the_process_count(processes):
  ds = indexed(37)
  one = take(data.train_iterator(ds, 'train', global_batch_size=8, seed=3), 20)
  per = [take(data.train_iterator(ds, 'train', global_batch_size=8, seed=3, process_index=p, process_count=processes),
              20) for p in range(processes)]
  for step, whole in enumerate(one):
    parts = [per[p][step] for p in range(processes)]
    assert all(len(ids(b)) == 8 // processes for b in parts)
    glued = np.concatenate([ids(b) for b in parts])
    np.testing.assert_array_equal(glued, ids(whole))         # same examples, same order
    np.testing.assert_array_equal(np.concatenate([b['targets'] for b in parts]), whole['targets'])


@pytest.mark.parametrize('make,prefetch', [(indexed, None), (indexed, 3), (record_dataset, None), (record_dataset, 0)])
def test_state_resumes_exactly(make, prefetch):
  ds = make(23)
  kw = dict(global_batch_size=5, seed=11, prefetch=prefetch)
  reference = take(data.train_iterator(ds, 'train', **kw), 25)
  it = data.train_iterator(ds, 'train', **kw)
  take(it, 9)
  state = json.loads(json.dumps(it.get_state()))      # what a checkpoint stores
  assert state['step'] == 9 and it.step == 9
  take(it, 4)                                          # runs ahead (and prefetches) after the checkpoint
  restored = data.train_iterator(ds, 'train', **kw)
  restored.set_state(state)
  it.set_state(state)                                  # also rewinds a live iterator
  started = data.train_iterator(ds, 'train', start_step=9, **kw)
  for s in range(9, 25):
    for other in (restored, it, started):
      np.testing.assert_array_equal(ids(next(other)), ids(reference[s]))
  assert restored.get_state() == it.get_state() == started.get_state() == {**state, 'step': 25}


def test_state_is_the_same_on_every_process_and_portable_across_process_counts():
  ds = indexed(30)
  a = data.train_iterator(ds, 'train', global_batch_size=6, seed=0, process_index=0, process_count=2)
  b = data.train_iterator(ds, 'train', global_batch_size=6, seed=0, process_index=1, process_count=2)
  take(a, 7)
  take(b, 7)
  assert a.get_state() == b.get_state()
  single = data.train_iterator(ds, 'train', global_batch_size=6, seed=0)
  single.set_state(a.get_state())
  whole = next(single)
  np.testing.assert_array_equal(np.concatenate([ids(next(a)), ids(next(b))]), ids(whole))


def test_grain_style_state_is_accepted():
  ds = indexed(20)
  ref = take(data.train_iterator(ds, 'train', global_batch_size=4, seed=0), 6)
  it = data.train_iterator(ds, 'train', global_batch_size=4, seed=0)
  it.set_state({'next_index': 5})
  np.testing.assert_array_equal(ids(next(it)), ids(ref[5]))


@pytest.mark.parametrize('state,match', [
    ({'step': 3, 'seed': 1, 'global_batch_size': 4, 'num_examples': 20, 'shuffle': True}, 'seed=1'),
    ({'step': 3, 'seed': 0, 'global_batch_size': 8}, 'global_batch_size=8'),
    ({'step': 3, 'num_examples': 21}, 'num_examples=21'),
    ({}, 'no valid step'),
    ({'step': -1}, 'no valid step'),
])
def test_a_state_from_another_pipeline_is_a_user_error(state, match):
  it = data.train_iterator(indexed(20), 'train', global_batch_size=4, seed=0)
  with pytest.raises(UserError, match=match):
    it.set_state(state)


@pytest.mark.parametrize('batch,processes,match', [
    (0, 1, 'positive multiple'), (-4, 1, 'positive multiple'), (6, 4, 'does not divide'),
    (24, 1, 'larger than the 20 examples'), (2.0, 1, 'not an integer'),
])
def test_bad_batch_sizes_are_user_errors(batch, processes, match):
  with pytest.raises(UserError, match=match):
    data.train_iterator(indexed(20), 'train', global_batch_size=batch, seed=0, process_count=processes)


def test_unknown_split_is_a_user_error():
  with pytest.raises(UserError, match="no split 'valid'"):
    data.train_iterator(indexed(20), 'valid', global_batch_size=4, seed=0)


@pytest.mark.parametrize('make', [indexed, record_dataset])
@pytest.mark.parametrize('n,batch,processes', [(10, 4, 1), (10, 4, 2), (12, 4, 2), (3, 8, 4), (1, 2, 2)])
def test_eval_covers_every_example_once_with_fixed_shapes(make, n, batch, processes):
  ds = make(n)
  per = [list(data.eval_batches(ds, 'test', global_batch_size=batch, process_index=p, process_count=processes))
         for p in range(processes)]
  assert len({len(b) for b in per}) == 1 and len(per[0]) == -(-n // batch)
  seen = []
  for step in range(len(per[0])):
    for p in range(processes):
      b = per[p][step]
      assert b['inputs'].shape == (batch // processes, 1) and b['targets'].shape == (batch // processes,)
      assert b['mask'].dtype == np.float32 and set(np.unique(b['mask'])) <= {0.0, 1.0}
      seen.extend(ids(b)[b['mask'] > 0])
  np.testing.assert_array_equal(seen, np.arange(n))     # in order, each once


def test_split_arrays_reads_a_split_in_order():
  x, y = data.split_arrays(indexed(10), 'test')
  np.testing.assert_array_equal(x[:, 0], np.arange(10))
  np.testing.assert_array_equal(y, np.arange(10) % 3)
  x, _ = data.split_arrays(indexed(10), 'test', limit=4)
  np.testing.assert_array_equal(x[:, 0], np.arange(4))


def test_digits_batches_are_cheap():
  # The flagship reads ~3000 batches of 128 against a ~1 ms train step: the pipeline must stay far below that.
  it = data.train_iterator(data.get_dataset({'name': 'digits'}), 'train', global_batch_size=128, seed=0)
  take(it, 20)
  t = time.perf_counter()
  take(it, 500)
  per_batch = (time.perf_counter() - t) / 500
  assert per_batch < 1e-3, f'{per_batch * 1e3:.3f} ms per batch'
