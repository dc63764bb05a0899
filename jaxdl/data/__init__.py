"""Datasets by name (built-in and stock) and the one Grain pipeline that feeds the trainer.

`get_dataset(config.data)` -> `Dataset` (its `info` and per-split random-access sources);
`train_iterator(...)` / `eval_batches(...)` -> local numpy batches {'inputs', 'targets'[, 'mask']}.
Importing this package registers every dataset in `jaxdl.registry.DATASETS`.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import numpy as np

from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.data.pipeline import TrainIterator, eval_batches, read_batch, train_iterator  # noqa: F401

# Keys of config.data read by the pipeline (the loop), not passed to the dataset builder.
PIPELINE_KEYS = ('train_split', 'eval_split', 'prefetch', 'augment', 'sorta_grad')


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  task: str                       # 'classification' | 'regression'
  input_shape: tuple[int, ...]    # one example's inputs
  num_outputs: int                # classes, or target dimension
  split_sizes: dict[str, int]


class ArraySource:
  """An in-memory split: random access by example (Grain's source protocol) or by a whole batch of indices."""

  in_memory = True   # the pipeline reads it in the caller's thread (no prefetch threads needed)

  def __init__(self, inputs: np.ndarray, targets: np.ndarray):
    if len(inputs) != len(targets):
      raise ValueError(f'{len(inputs)} inputs but {len(targets)} targets')
    self.inputs, self.targets = inputs, targets

  def __len__(self) -> int:
    return len(self.inputs)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {'inputs': self.inputs[i], 'targets': self.targets[i]}

  def get_batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    """One gather per array for a whole batch: the fast path of the pipeline."""
    return {'inputs': self.inputs[idx], 'targets': self.targets[idx]}

  def __repr__(self) -> str:
    return f'ArraySource({len(self)} x {self.inputs.shape[1:]})'


class Dataset:
  """A named dataset: `info` and `source(split)` (a random-access source: len, [i], get_batch(indices)).

  `vocabulary` (text and speech data): maps target ids back to text (jaxdl.text.vocab.Vocabulary), for sampling and
  for evaluation that generates.
  """

  def __init__(self, info: DatasetInfo, sources: Mapping[str, Any] | Callable[[str], Any], vocabulary: Any = None):
    self.info = info
    self._sources = sources
    self.vocabulary = vocabulary

  def source(self, split: str):
    if callable(self._sources):
      return self._sources(split)
    if split not in self._sources:
      raise UserError(f'dataset {self.info.name!r} has no split {split!r}', 'one of: ' + ', '.join(self._sources),
                      'fix config.data.train_split / eval_split')
    return self._sources[split]

  def __repr__(self) -> str:
    return f'Dataset({self.info})'


def from_arrays(name: str, task: str, splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                num_outputs: int | None = None) -> Dataset:
  """A Dataset from {split: (inputs, targets)} arrays: inputs float32; targets int32 (classes) or float32 [N, d]."""
  if task not in ('classification', 'regression'):
    raise ValueError(f'task must be classification or regression, not {task!r}')
  conv = {}
  for split, (x, y) in splits.items():
    x = np.array(x, np.float32, order='C')   # own copies, read-only: a cached dataset is shared
    y = np.array(y, np.int32 if task == 'classification' else np.float32, order='C')
    if task == 'regression' and y.ndim == 1:
      y = y[:, None]
    x.setflags(write=False)
    y.setflags(write=False)
    conv[split] = ArraySource(x, y)
  first = next(iter(conv.values()))
  for split, s in conv.items():
    if s.inputs.shape[1:] != first.inputs.shape[1:] or s.targets.shape[1:] != first.targets.shape[1:]:
      raise ValueError(f'{name}: split {split!r} has other shapes than the first split')
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
  for batch in eval_batches(dataset, split, global_batch_size=max(1, min(limit, 4096))):
    keep = batch['mask'] > 0
    xs.append(batch['inputs'][keep])
    ys.append(batch['targets'][keep])
    got += int(keep.sum())
    if got >= limit:
      break
  return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


# ------------------------------------------------------------------------------------------ get_dataset
def _type_ok(value: Any, default: Any) -> bool:
  """Does a config value have the type of the builder's default (int is fine for a float, never bool for int)?"""
  if isinstance(default, bool):
    return isinstance(value, (bool, np.bool_))
  if isinstance(default, int):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
  if isinstance(default, float):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if isinstance(default, (tuple, list)):
    return isinstance(value, (tuple, list))
  return isinstance(value, type(default))


def _items(data_config) -> dict[str, Any]:
  if hasattr(data_config, 'to_dict'):            # ml_collections.ConfigDict / FrozenConfigDict
    return dict(data_config.to_dict())
  if isinstance(data_config, Mapping):
    return dict(data_config)
  raise UserError(f'config.data is a {type(data_config).__name__}', 'a ConfigDict or mapping with a `name`',
                  'set --config.data.name')


def _check_pipeline_keys(cfg: dict[str, Any], info: DatasetInfo) -> None:
  for key in ('train_split', 'eval_split'):
    if key not in cfg:
      continue
    split = cfg[key]
    if not isinstance(split, str) or not split:
      raise UserError(f'config.data.{key}={split!r} is not a split name', 'a string such as "train"',
                      f'fix --config.data.{key}')
    base = split.split('[', 1)[0]  # TFDS slices such as 'train[:90%]'
    if info.split_sizes and base not in info.split_sizes:
      raise UserError(f'dataset {info.name!r} has no split {split!r} (config.data.{key})',
                      'one of: ' + ', '.join(info.split_sizes), f'fix --config.data.{key}')
  if cfg.get('augment'):
    build_augment(cfg['augment'], info)
  if 'sorta_grad' in cfg and not isinstance(cfg['sorta_grad'], bool):
    raise UserError(f'config.data.sorta_grad={cfg["sorta_grad"]!r} is not a bool', 'True or False',
                    'fix --config.data.sorta_grad')
  if 'prefetch' in cfg:
    p = cfg['prefetch']
    if not isinstance(p, (int, np.integer)) or isinstance(p, bool) or p < -1:
      raise UserError(f'config.data.prefetch={p!r} is not a batch count',
                      'an integer >= 0 (0: no background thread), or -1 for automatic',
                      'fix --config.data.prefetch')


def build_augment(spec, info: DatasetInfo):
  """config.data.augment -> `augment(rng, batch) -> batch` (jaxdl.data.augment), or None when the list is empty.

  Applied inside the jitted train step to training batches only. mixup's `num_classes` defaults to the
  dataset's number of classes.
  """
  from jaxdl.data import augment  # pylint: disable=g-import-not-at-top
  if not spec:
    return None
  items = []
  for item in spec:
    name, kwargs = augment.parse_op(item)
    if augment.ALIASES.get(name, name) == 'mixup' and 'num_classes' not in kwargs:
      kwargs = {**kwargs, 'num_classes': info.num_outputs}
    items.append((name, kwargs))
  return augment.build_augment(items)


_CACHE: dict[tuple, Dataset] = {}


def get_dataset(data_config) -> Dataset:
  """Builds (and caches) the dataset named by `config.data.name`; the other keys are its kwargs or PIPELINE_KEYS."""
  cfg = _items(data_config)
  name = cfg.pop('name', None)
  if not isinstance(name, str) or not name:
    raise UserError(f'config.data.name is {name!r}', 'the name of a registered dataset',
                    'see `jaxdl list --datasets` and set --config.data.name')
  builder = DATASETS.get(name)
  kwargs = {k: v for k, v in cfg.items() if k not in PIPELINE_KEYS}
  params = {k: p for k, p in inspect.signature(builder).parameters.items() if p.kind == p.KEYWORD_ONLY}
  for k, v in kwargs.items():
    if k not in params:
      raise UserError(f'unknown key config.data.{k} for dataset {name!r}',
                      'one of: ' + ', '.join(['name', *sorted(params), *PIPELINE_KEYS]),
                      'remove it or fix its spelling')
    default = params[k].default
    if default is not inspect.Parameter.empty and default is not None and not _type_ok(v, default):
      raise UserError(f'config.data.{k}={v!r} for dataset {name!r} is a {type(v).__name__}',
                      f'{type(default).__name__} (default {default!r})', f'fix --config.data.{k}')
  key = (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
  if key not in _CACHE:
    _CACHE[key] = builder(**kwargs)
  dataset = _CACHE[key]
  _check_pipeline_keys(cfg, dataset.info)
  return dataset


def dataset_kwargs(name: str) -> dict[str, Any]:
  """The kwargs a registered dataset accepts, with their defaults (for `jaxdl list --datasets` and docs)."""
  builder = DATASETS.get(name)
  return {k: p.default for k, p in inspect.signature(builder).parameters.items() if p.kind == p.KEYWORD_ONLY}


# Importing the modules registers their datasets.
from jaxdl.data import builtin, california, captions, seq2seq, sequences, shapes, stock, text_corpus  # noqa: E402,F401  pylint: disable=wrong-import-position
from jaxdl.data import speech  # noqa: E402,F401  pylint: disable=wrong-import-position
from jaxdl.data import coco_captions  # noqa: E402,F401  pylint: disable=wrong-import-position
