"""Stock datasets through `tfds.data_source` (ArrayRecord; random access; no TensorFlow at run time).

They must be prepared once (that step needs TensorFlow and the network):
    pip install -e ".[tf]" && python -m tensorflow_datasets.scripts.download_and_prepare \
        --datasets=mnist --file_format=array_record
(`tfds build mnist --file_format=array_record` is the same command.) Nothing here downloads: an unprepared
dataset is a one-line error that gives that command. TFDS is imported only when a stock dataset is built.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from jaxdl.data import Dataset, DatasetInfo
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

STOCK = {  # name: (input shape, classes)
    'mnist': ((28, 28, 1), 10),
    'fashion_mnist': ((28, 28, 1), 10),
    'cifar10': ((32, 32, 3), 10),
    'cifar100': ((32, 32, 3), 100),
}
_EAGER_SPLITS = ('train', 'test')   # every stock set has both; opened at build time for info.split_sizes
_LOAD_CHUNK = 4096                  # records per `__getitems__` call when a split is loaded into memory


def prepare_command(name: str, data_dir: str = '') -> str:
  where = f' --data_dir={data_dir}' if data_dir else ''
  return (f'pip install -e ".[tf]" && python -m tensorflow_datasets.scripts.download_and_prepare '
          f'--datasets={name} --file_format=array_record{where}')


def _data_dir(data_dir: str) -> str | None:
  # None lets TFDS choose: $TFDS_DATA_DIR, else ~/tensorflow_datasets.
  return data_dir or os.environ.get('TFDS_DATA_DIR') or None


def _images(x) -> np.ndarray:
  return np.divide(np.asarray(x), np.float32(255), dtype=np.float32)  # uint8 -> float32 in [0, 1]


def read_records(src, idx) -> list:
  """Records `idx` of a TFDS data source: one `__getitems__` call (ArrayRecord reads them together) when supported."""
  getitems = getattr(src, '__getitems__', None)
  return getitems([int(i) for i in idx]) if getitems else [src[int(i)] for i in idx]


class TfdsSource:
  """A TFDS ArrayRecord split as a jaxdl source: images -> float32 in [0, 1], labels -> int32.

  cache=True: the first read loads the whole split into memory as uint8 (MNIST train: 47 MB, CIFAR: 154 MB;
  ~60 µs a record, once); every batch is then one gather (~0.1 ms for 128 images) instead of 128 random
  ArrayRecord reads and TFDS decodes (~8 ms). cache=False reads the records of each batch from disk.
  """

  def __init__(self, source, cache: bool = True):
    self._src = source
    self.in_memory = cache          # the pipeline needs no prefetch threads for a cached split
    self._arrays: tuple[np.ndarray, np.ndarray] | None = None
    self._lock = threading.Lock()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in ('_lock', '_arrays')}

  def __setstate__(self, d):
    self.__dict__.update(d, _lock=threading.Lock(), _arrays=None)

  def __len__(self) -> int:
    return len(self._src)

  def records(self, idx: np.ndarray) -> list:
    """The decoded records of a batch (`read_records`)."""
    return read_records(self._src, idx)

  def arrays(self) -> tuple[np.ndarray, np.ndarray]:
    """(images as stored, e.g. uint8 [N, H, W, C]; labels int32 [N]), loaded once, in order."""
    if self._arrays is None:
      with self._lock:   # Grain's prefetch threads may ask at the same time
        if self._arrays is None:
          n, images, labels = len(self), None, np.empty(len(self), np.int32)
          for start in range(0, n, _LOAD_CHUNK):
            recs = self.records(np.arange(start, min(n, start + _LOAD_CHUNK)))
            block = np.stack([np.asarray(r['image']) for r in recs])
            if images is None:
              images = np.empty((n, *block.shape[1:]), block.dtype)
            images[start:start + len(recs)] = block
            labels[start:start + len(recs)] = [r['label'] for r in recs]
          for a in (images, labels):
            a.setflags(write=False)
          self._arrays = (images, labels)
    return self._arrays

  def __getitem__(self, i) -> dict[str, np.ndarray]:
    if self.in_memory:
      images, labels = self.arrays()
      return {'inputs': _images(images[int(i)]), 'targets': labels[int(i)]}
    r = self._src[int(i)]
    return {'inputs': _images(r['image']), 'targets': np.int32(r['label'])}

  def get_batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    if self.in_memory:
      images, labels = self.arrays()
      return {'inputs': _images(images[idx]), 'targets': labels[idx]}
    records = self.records(idx)
    return {'inputs': _images(np.stack([r['image'] for r in records])),
            'targets': np.asarray([r['label'] for r in records], np.int32)}

  def __repr__(self) -> str:
    return f'TfdsSource({self._src!r}, cache={self.in_memory})'


def _not_readable(name: str, split: str, data_dir: str, error: Exception) -> UserError:
  """Why `tfds.data_source` failed, as a UserError: not prepared, prepared as TFRecord, or no such split."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  where = _data_dir(data_dir) or '~/tensorflow_datasets'
  fix = f'prepare it once with: {prepare_command(name, data_dir)}'
  try:
    builder = tfds.builder(name, data_dir=_data_dir(data_dir))
    prepared = builder.is_prepared()
  except Exception:  # noqa: BLE001
    prepared = False
  if not prepared:
    return UserError(f'stock dataset {name!r} is not prepared in {where}', 'an ArrayRecord copy prepared by TFDS', fix)
  fmt = str(getattr(builder.info.file_format, 'value', builder.info.file_format))
  if fmt != 'array_record':
    return UserError(f'stock dataset {name!r} in {where} is prepared as {fmt}', 'the array_record format '
                     '(random access without TensorFlow)', f'prepare it again with: {prepare_command(name, data_dir)}')
  base = split.split('[', 1)[0]
  if base not in builder.info.splits:
    return UserError(f'stock dataset {name!r} has no split {split!r}', 'one of: ' + ', '.join(builder.info.splits),
                     'fix config.data.train_split / eval_split')
  return UserError(f'stock dataset {name!r} (split {split!r}) in {where} could not be read: '
                   f'{type(error).__name__}: {error}', 'a complete ArrayRecord copy', fix)


def load_split(name: str, split: str, data_dir: str = '', cache: bool = True) -> TfdsSource:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return TfdsSource(tfds.data_source(name, split=split, data_dir=_data_dir(data_dir), download=False), cache)
  except Exception as e:  # noqa: BLE001 — tfds raises several kinds (NotImplementedError, ValueError, ...)
    raise _not_readable(name, split, data_dir, e) from e


def is_prepared(name: str, data_dir: str = '') -> bool:
  try:
    load_split(name, 'train', data_dir)
    return True
  except UserError:
    return False


def _register(name: str, shape: tuple[int, ...], classes: int):
  @DATASETS.register(name, source='TFDS (prepare once; see jaxdl/data/stock.py)',
                     description=f'{name} via tfds.data_source (ArrayRecord)', stock=True)
  def build(*, data_dir: str = '', cache: bool = True) -> Dataset:
    """data_dir: TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets); cache: hold each split in memory."""
    sources = {s: load_split(name, s, data_dir, cache) for s in _EAGER_SPLITS}  # fails early: the prepare command
    def source(split: str) -> TfdsSource:
      if split not in sources:
        sources[split] = load_split(name, split, data_dir, cache)   # e.g. 'train[:90%]'
      return sources[split]
    info = DatasetInfo(name, 'classification', shape, classes, {s: len(src) for s, src in sources.items()})
    return Dataset(info, source)
  build.__name__ = name
  return build


for _name, (_shape, _classes) in STOCK.items():
  _register(_name, _shape, _classes)
