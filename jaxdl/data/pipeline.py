"""One Grain pipeline for every dataset, built-in or stock.

A *source* is random access: `len(src)` and `src[i] -> {'inputs', 'targets'}` (Grain's protocol); a source may
also have `get_batch(indices)`, one gather for a whole batch (in-memory arrays, TFDS `__getitems__`).

Training: an endless stream of example indices, epoch after epoch, each epoch a permutation seeded by
(seed, epoch) (SGD samples without replacement, reshuffled every epoch). Global batch s is
stream[s·B:(s+1)·B] (a batch may straddle two epochs; no example is dropped); process p of P reads its
contiguous slice of it. So the global batch at every step is the same whatever the number of processes, and
the position in the data is one integer, the step: `get_state() == {'step': s, ...}`, saved with every
checkpoint. Grain's `MapDataset.range(∞).map(step -> batch)` makes the batches; its `to_iter_dataset`
prefetches them in background threads (TFDS sources; an in-memory batch is one gather, read in the caller's thread).
Evaluation: one ordered pass, every example once across processes, the last batch padded (mask 0).
Variable-length examples (jaxdl.data.buckets) follow the same contract with length-bucketed batches.
"""
from __future__ import annotations

import threading
from typing import Any, Iterator

import grain
import numpy as np

from jaxdl.data import buckets
from jaxdl.errors import UserError

_ENDLESS = 2 ** 40   # steps: a MapDataset is lazy, so an "infinite" range costs nothing


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
  """The example order of one epoch: a permutation of range(n), a pure function of (seed, epoch)."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def read_batch(source, idx: np.ndarray) -> dict[str, np.ndarray]:
  """source[idx] for an array of indices: `get_batch` when the source has it, else one record at a time."""
  get_batch = getattr(source, 'get_batch', None)
  if get_batch is not None:
    return get_batch(idx)
  records = [source[int(i)] for i in idx]
  return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}


def _read_options(source, prefetch: int | None) -> grain.ReadOptions:
  """prefetch = batches read ahead by background threads; 0 reads in the caller's thread.

  None: 0 for in-memory sources (a batch is one numpy gather, ~20 µs; threads would only add GIL hand-offs and CPU
  time), 2 for the others (TFDS records are read and decoded one by one).
  """
  if prefetch is None:
    prefetch = 0 if getattr(source, 'in_memory', False) else 2
  prefetch = max(0, int(prefetch))
  return grain.ReadOptions(num_threads=min(prefetch, 2), prefetch_buffer_size=prefetch)


class _TrainBatches:
  """step -> this process's slice of global batch `step` (stateless apart from a cache; Grain calls it from threads)."""

  def __init__(self, source, n: int, global_batch: int, seed: int, process_index: int, process_count: int,
               shuffle: bool):
    self.source, self.n, self.b, self.seed, self.shuffle = source, n, global_batch, seed, shuffle
    local = global_batch // process_count
    self.lo, self.hi = process_index * local, (process_index + 1) * local
    self._perms: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __getstate__(self):  # picklable (Grain may ship the map function to worker processes)
    return {k: v for k, v in self.__dict__.items() if k not in ('_perms', '_lock')}

  def __setstate__(self, d):
    self.__dict__.update(d, _perms={}, _lock=threading.Lock())

  def perm(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return np.arange(self.n)
    p = self._perms.get(epoch)
    if p is None:  # a few epochs are live at once (threads, batches straddling epochs): keep the last 4
      p = epoch_permutation(self.n, self.seed, epoch)
      with self._lock:
        self._perms[epoch] = p
        while len(self._perms) > 4:
          self._perms.pop(min(self._perms))
    return p

  def indices(self, step: int) -> np.ndarray:
    start, stop = step * self.b + self.lo, step * self.b + self.hi
    e0, o0 = divmod(start, self.n)
    if o0 + (stop - start) <= self.n:            # the usual case: inside one epoch
      return self.perm(e0)[o0:o0 + stop - start]
    pos = np.arange(start, stop)
    epochs, offsets = np.divmod(pos, self.n)
    out = np.empty_like(pos)
    for e in range(int(epochs[0]), int(epochs[-1]) + 1):
      sel = epochs == e
      out[sel] = self.perm(e)[offsets[sel]]
    return out

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    return read_batch(self.source, self.indices(int(step)))


def _check_split(dataset, split: str, global_batch_size: int, process_count: int, what: str, fix: str):
  source = dataset.source(split)
  n = len(source)
  if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, (int, np.integer)):
    raise UserError(f'{what} batch size {global_batch_size!r} is not an integer', 'a positive integer', fix)
  if process_count < 1:
    raise ValueError(f'process_count must be >= 1, not {process_count}')
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise UserError(f'{what} batch size {global_batch_size} does not divide across {process_count} processes',
                    f'a positive multiple of {process_count}', fix)
  if n == 0:
    raise UserError(f'split {split!r} of dataset {dataset.info.name!r} is empty', 'at least one example',
                    'choose another split')
  return source, n


class TrainIterator:
  """Endless iterator of this process's local training batches, resumable exactly.

  `get_state()` -> {'step', 'seed', 'global_batch_size', 'num_examples', 'shuffle'} (JSON-safe ints/bools);
  `set_state(state)` moves to `state['step']` (the next batch is global batch `step`). The state is the same on
  every process and does not depend on the process count.
  """

  def __init__(self, source, n: int, *, global_batch_size: int, seed: int, process_index: int, process_count: int,
               prefetch: int | None, shuffle: bool, start_step: int, sorta_grad: bool = False):
    self._fingerprint = {'seed': int(seed), 'global_batch_size': int(global_batch_size), 'num_examples': int(n),
                         'shuffle': bool(shuffle)}
    if hasattr(source, 'pad_lengths'):   # variable-length examples: length-bucketed batches (jaxdl.data.buckets)
      self._fn = buckets.BucketedTrainBatches(source, global_batch_size, seed, process_index, process_count, shuffle,
                                              sorta_grad)
      self._fingerprint['sorta_grad'] = bool(sorta_grad)
    else:
      self._fn = _TrainBatches(source, n, global_batch_size, seed, process_index, process_count, shuffle)
    ds = grain.MapDataset.range(_ENDLESS).map(self._fn)
    self._it = ds.to_iter_dataset(_read_options(source, prefetch)).__iter__()
    self._step = 0
    if start_step:
      self._seek(int(start_step))

  @property
  def step(self) -> int:
    """How many batches were consumed: the index of the next global batch."""
    return self._step

  def _seek(self, step: int) -> None:
    if step < 0:
      raise ValueError(f'step must be >= 0, not {step}')
    self._it.set_state({'next_index': step})  # Grain's PrefetchDatasetIterator: drops read-ahead, seeks
    self._step = step

  def __iter__(self) -> 'TrainIterator':
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._it)
    self._step += 1
    return batch

  def get_state(self) -> dict[str, Any]:
    return {'step': self._step, **self._fingerprint}

  def set_state(self, state: dict[str, Any]) -> None:
    state = dict(state)
    step = state.get('step', state.get('next_index'))  # 'next_index': Grain's own iterator state (older checkpoints)
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
      raise UserError(f'the data-iterator state {state!r} has no valid step', "{'step': N, ...} from get_state()",
                      'restore a checkpoint written by jaxdl or start a new --workdir')
    diff = [f'{k}={state[k]!r} (now {v!r})' for k, v in self._fingerprint.items() if k in state and state[k] != v]
    if diff:
      raise UserError('the data position was saved for another data pipeline: ' + ', '.join(diff),
                      'the same dataset, train.batch_size and train.seed as the saved run',
                      'restore the original config or start a new --workdir')
    self._seek(int(step))

  def close(self) -> None:
    close = getattr(self._it, 'close', None)
    if close is not None:
      close()


def train_iterator(dataset, split: str, *, global_batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1, prefetch: int | None = None, shuffle: bool = True,
                   start_step: int = 0, sorta_grad: bool = False) -> TrainIterator:
  """Endless, seeded iterator of this process's local batches {'inputs', 'targets'} [B/P, ...] of `split`.

  Every global batch is the same whatever `process_count` is; `start_step=k` (or `set_state`) starts at batch k
  at no cost (the data are random access). `prefetch`: batches read ahead in background threads (None: auto).
  A variable-length source (jaxdl.data.buckets.RaggedSource) gives length-bucketed, padded batches instead
  (`sorta_grad`: its first epoch ordered by length).
  """
  source, n = _check_split(dataset, split, global_batch_size, process_count, 'train',
                           'change --config.train.batch_size')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is not in [0, {process_count})')
  if global_batch_size > n:
    raise UserError(f'batch size {global_batch_size} is larger than the {n} examples of split {split!r}',
                    f'at most {n}', 'lower --config.train.batch_size')
  return TrainIterator(source, n, global_batch_size=int(global_batch_size), seed=int(seed),
                       process_index=int(process_index), process_count=int(process_count), prefetch=prefetch,
                       shuffle=shuffle, start_step=start_step, sorta_grad=bool(sorta_grad))


class _EvalBatches:
  """i -> this process's slice of eval batch i, padded past the end (mask 0) so every batch has one shape."""

  def __init__(self, source, n: int, global_batch: int, process_index: int, process_count: int):
    self.source, self.n, self.b = source, n, global_batch
    local = global_batch // process_count
    self.lo, self.hi = process_index * local, (process_index + 1) * local

  def __call__(self, i: int) -> dict[str, np.ndarray]:
    pos = np.arange(int(i) * self.b + self.lo, int(i) * self.b + self.hi)
    batch = dict(read_batch(self.source, np.minimum(pos, self.n - 1)))  # padding repeats the last example
    batch['mask'] = (pos < self.n).astype(np.float32)
    return batch


def eval_batches(dataset, split: str, *, global_batch_size: int, process_index: int = 0, process_count: int = 1,
                 prefetch: int | None = None) -> Iterator[dict[str, Any]]:
  """One ordered pass over `split`: local batches with 'mask' (1 real, 0 padding), all of the same shape."""
  source, n = _check_split(dataset, split, global_batch_size, process_count, 'eval',
                           'change --config.train.eval_batch_size')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is not in [0, {process_count})')
  if hasattr(source, 'pad_lengths'):   # variable-length examples: sorted by length, padded per bucket
    fn = buckets.BucketedEvalBatches(source, int(global_batch_size), int(process_index), int(process_count))
  else:
    fn = _EvalBatches(source, n, int(global_batch_size), int(process_index), int(process_count))
  num_batches = -(-n // int(global_batch_size))
  return iter(grain.MapDataset.range(num_batches).map(fn).to_iter_dataset(_read_options(source, prefetch)))
