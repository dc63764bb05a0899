"""One Grain pipeline for every dataset, built-in or stock.

A *source* is random access: `len(src)` and `src.get_batch(indices) -> {'inputs', 'targets'}` (numpy).

Training: an endless stream of example indices, epoch after epoch, each epoch a permutation seeded by
(seed, epoch). Global batch s is stream[s·B:(s+1)·B]; process p of P reads its contiguous slice of it. So the
global batch at every step is the same whatever the number of processes, and the position in the data is one
integer: Grain's iterator state `{'next_index': s}`, saved with every checkpoint.
Evaluation: one ordered pass, every example once across processes, the last batch padded (mask 0).
"""
from __future__ import annotations

from typing import Any, Iterator

import grain
import numpy as np

from jaxdl.errors import UserError

_ENDLESS = 2 ** 40   # steps: a MapDataset is lazy, so an "infinite" range costs nothing


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(n)


class _TrainBatches:
  """step -> this process's slice of global batch `step` (picklable, stateless: Grain may call it from threads)."""

  def __init__(self, source, n: int, global_batch: int, seed: int, process_index: int, process_count: int,
               shuffle: bool):
    self.source, self.n, self.b, self.seed, self.shuffle = source, n, global_batch, seed, shuffle
    local = global_batch // process_count
    self.lo, self.hi = process_index * local, (process_index + 1) * local

  def indices(self, step: int) -> np.ndarray:
    pos = np.arange(step * self.b + self.lo, step * self.b + self.hi)
    epochs, offsets = np.divmod(pos, self.n)
    out = np.empty_like(pos)
    for e in np.unique(epochs):
      perm = epoch_permutation(self.n, self.seed, int(e)) if self.shuffle else np.arange(self.n)
      out[epochs == e] = perm[offsets[epochs == e]]
    return out

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    return self.source.get_batch(self.indices(int(step)))


def _check_batch(global_batch_size: int, process_count: int, n: int, split: str) -> None:
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise UserError(f'global batch size {global_batch_size} does not divide across {process_count} processes',
                    f'a positive multiple of {process_count}', 'change --config.train.batch_size')
  if global_batch_size > n:
    raise UserError(f'batch size {global_batch_size} is larger than the {n} examples of split {split!r}',
                    f'at most {n}', 'lower --config.train.batch_size')


def train_iterator(dataset, split: str, *, global_batch_size: int, seed: int, process_index: int = 0,
                   process_count: int = 1, prefetch: int = 2, shuffle: bool = True, start_step: int = 0):
  """Endless iterator of this process's local batches; has get_state()/set_state() (Grain's)."""
  source = dataset.source(split)
  n = len(source)
  _check_batch(global_batch_size, process_count, n, split)
  fn = _TrainBatches(source, n, global_batch_size, seed, process_index, process_count, shuffle)
  ds = grain.MapDataset.range(start_step, _ENDLESS).map(fn)
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, min(prefetch, 4)),
                                                   prefetch_buffer_size=max(1, prefetch))))


def eval_batches(dataset, split: str, *, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict[str, Any]]:
  """One ordered pass over `split`: local batches with 'mask' (1 real, 0 padding), all of the same shape."""
  source = dataset.source(split)
  n = len(source)
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise UserError(f'eval batch size {global_batch_size} does not divide across {process_count} processes',
                    f'a positive multiple of {process_count}', 'change --config.train.eval_batch_size')
  local = global_batch_size // process_count
  for start in range(0, n, global_batch_size):
    pos = np.arange(start + process_index * local, start + (process_index + 1) * local)
    mask = (pos < n).astype(np.float32)
    batch = source.get_batch(np.minimum(pos, n - 1))
    batch['mask'] = mask
    yield batch
