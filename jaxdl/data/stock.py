"""Stock datasets through `tfds.data_source` (ArrayRecord; random access; no TensorFlow at run time).

They must be prepared once (that step needs TensorFlow and the network):
    pip install -e ".[tf]" && python -m tensorflow_datasets.scripts.download_and_prepare \
        --datasets=mnist --file_format=array_record
Nothing here downloads: an unprepared dataset is a one-line error that gives that command.
"""
from __future__ import annotations

import os

import numpy as np

from jaxdl.data import Dataset, DatasetInfo
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

STOCK = {  # name: (input shape, classes, test split)
    'mnist': ((28, 28, 1), 10),
    'fashion_mnist': ((28, 28, 1), 10),
    'cifar10': ((32, 32, 3), 10),
    'cifar100': ((32, 32, 3), 100),
}


def prepare_command(name: str) -> str:
  return (f'pip install -e ".[tf]" && python -m tensorflow_datasets.scripts.download_and_prepare '
          f'--datasets={name} --file_format=array_record')


def _data_dir(data_dir: str) -> str | None:
  return data_dir or os.environ.get('TFDS_DATA_DIR') or None


class TfdsSource:
  """A TFDS ArrayRecord split as a jaxdl source: images -> float32 in [0, 1], labels -> int32."""

  def __init__(self, source):
    self._src = source

  def __len__(self) -> int:
    return len(self._src)

  def __getitem__(self, i):
    r = self._src[int(i)]
    return {'inputs': np.asarray(r['image'], np.float32) / 255.0, 'targets': np.int32(r['label'])}

  def records(self, idx: np.ndarray) -> list:
    """One batched ArrayRecord read when the source supports it."""
    getitems = getattr(self._src, '__getitems__', None)
    return getitems([int(i) for i in idx]) if getitems else [self._src[int(i)] for i in idx]

  def get_batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    records = self.records(idx)
    return {'inputs': np.stack([np.asarray(r['image']) for r in records]).astype(np.float32) / 255.0,
            'targets': np.asarray([r['label'] for r in records], np.int32)}


def load_split(name: str, split: str, data_dir: str = ''):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return TfdsSource(tfds.data_source(name, split=split, data_dir=_data_dir(data_dir), download=False))
  except Exception as e:  # noqa: BLE001 — tfds raises several kinds for "not prepared"
    where = _data_dir(data_dir) or '~/tensorflow_datasets'
    raise UserError(f'stock dataset {name!r} (split {split!r}) is not prepared in {where} '
                    f'({type(e).__name__})', 'an ArrayRecord copy prepared by TFDS',
                    f'prepare it once with: {prepare_command(name)}') from e


def is_prepared(name: str, data_dir: str = '') -> bool:
  try:
    load_split(name, 'train', data_dir)
    return True
  except UserError:
    return False


def _register(name: str, shape, classes: int):
  @DATASETS.register(name, source='TFDS (needs preparing)', description=f'{name} via tfds.data_source', stock=True)
  def build(*, data_dir: str = '') -> Dataset:
    train = load_split(name, 'train', data_dir)    # fails early, with the prepare command
    sources = {'train': train}
    def source(split: str):
      if split not in sources:
        sources[split] = load_split(name, split, data_dir)
      return sources[split]
    info = DatasetInfo(name, 'classification', shape, classes, {'train': len(train)})
    return Dataset(info, source)
  return build


for _name, (_shape, _classes) in STOCK.items():
  _register(_name, _shape, _classes)
