"""Datasets by name (built-in and stock) and the one Grain pipeline that feeds the trainer.

`get_dataset(config.data)` -> `Dataset` (its `info` and per-split random-access sources);
`train_iterator(...)` / `eval_batches(...)` -> local numpy batches {'inputs', 'targets'[, 'mask']}.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import numpy as np

from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.data.pipeline import eval_batches, train_iterator  # noqa: F401

# Keys of config.data used by the pipeline rather than by the dataset builder.
PIPELINE_KEYS = ('name', 'train_split', 'eval_split', 'prefetch')


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  task: str                       # 'classification' | 'regression'
  input_shape: tuple[int, ...]    # one example's inputs
  num_outputs: int                # classes, or target dimension
  split_sizes: dict[str, int]


class ArraySource:
  """An in-memory split: random access by example or by a whole batch of indices."""

  def __init__(self, inputs: np.ndarray, targets: np.ndarray):
    self.inputs, self.targets = inputs, targets

  def __len__(self) -> int:
    return len(self.inputs)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {'inputs': self.inputs[i], 'targets': self.targets[i]}

  def get_batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    return {'inputs': self.inputs[idx], 'targets': self.targets[idx]}


class Dataset:
  """A named dataset: `info` and `source(split)`."""

  def __init__(self, info: DatasetInfo, sources: Mapping[str, Any] | Callable[[str], Any]):
    self.info = info
    self._sources = sources

  def source(self, split: str):
    if callable(self._sources):
      return self._sources(split)
    if split not in self._sources:
      raise UserError(f'dataset {self.info.name!r} has no split {split!r}', 'one of: ' + ', '.join(self._sources),
                      'fix config.data.train_split / eval_split')
    return self._sources[split]


def from_arrays(name: str, task: str, splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                num_outputs: int | None = None) -> Dataset:
  """A Dataset from {split: (inputs, targets)} numpy arrays (inputs float32; targets int32 or float32)."""
  conv = {}
  for split, (x, y) in splits.items():
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32 if task == 'classification' else np.float32)
    if task == 'regression' and y.ndim == 1:
      y = y[:, None]
    conv[split] = ArraySource(x, y)
  first = next(iter(conv.values()))
  if num_outputs is None:
    num_outputs = (int(max(int(s.targets.max()) for s in conv.values())) + 1 if task == 'classification'
                   else int(first.targets.shape[-1]))
  info = DatasetInfo(name, task, tuple(first.inputs.shape[1:]), num_outputs, {k: len(v) for k, v in conv.items()})
  return Dataset(info, conv)


def split_arrays(dataset: Dataset, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(inputs, targets) of a split (its first `limit` examples), in order, read through the eval pipeline."""
  n = len(dataset.source(split))
  limit = n if limit is None else min(limit, n)
  xs, ys, got = [], [], 0
  for batch in eval_batches(dataset, split, global_batch_size=min(limit, 4096)):
    keep = batch['mask'] > 0
    xs.append(batch['inputs'][keep])
    ys.append(batch['targets'][keep])
    got += int(keep.sum())
    if got >= limit:
      break
  return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


_CACHE: dict[tuple, Dataset] = {}


def get_dataset(data_config) -> Dataset:
  """Builds (and caches) the dataset named by `config.data.name` with the rest of `config.data` as kwargs."""
  cfg = dict(data_config)
  name = cfg.get('name')
  builder = DATASETS.get(name)
  kwargs = {k: v for k, v in cfg.items() if k not in PIPELINE_KEYS}
  params = inspect.signature(builder).parameters
  accepted = [k for k, p in params.items() if p.kind == p.KEYWORD_ONLY]
  for k in kwargs:
    if k not in accepted:
      raise UserError(f'unknown key config.data.{k} for dataset {name!r}',
                      'one of: ' + ', '.join(sorted(accepted + list(PIPELINE_KEYS))), 'remove it or fix its spelling')
  key = (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
  if key not in _CACHE:
    _CACHE[key] = builder(**kwargs)
  return _CACHE[key]


# Importing the modules registers their datasets.
from jaxdl.data import builtin, stock  # noqa: E402,F401  pylint: disable=wrong-import-position
