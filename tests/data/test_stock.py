"""Stock TFDS datasets through tfds.data_source (mocked: nothing downloads), and the unprepared-dataset error."""
import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError


def test_unprepared_dataset_says_how_to_prepare(tmp_path):
  data._CACHE.clear()
  with pytest.raises(UserError) as e:
    data.get_dataset({'name': 'mnist', 'data_dir': str(tmp_path)})
  msg = str(e.value)
  assert 'not prepared' in msg and 'download_and_prepare --datasets=mnist' in msg and '\n' not in msg


@pytest.mark.parametrize('name, shape', [('mnist', (28, 28, 1)), ('cifar10', (32, 32, 3))])
def test_stock_pipeline_with_mock_data(name, shape, monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  # tfds 4.9.10's mock data source breaks batched reads (its __getitems__ is bound without `self`): read one by one.
  monkeypatch.setattr(stock.TfdsSource, 'records', lambda self, idx: [self._src[int(i)] for i in idx])
  data._CACHE.clear()
  with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.get_dataset({'name': name})
    assert ds.info.input_shape == shape
    it = data.train_iterator(ds, 'train', global_batch_size=8, seed=0)
    b = next(it)
    assert b['inputs'].shape == (8, *shape) and b['inputs'].dtype == np.float32
    assert 0.0 <= b['inputs'].min() and b['inputs'].max() <= 1.0
    assert b['targets'].dtype == np.int32 and b['targets'].shape == (8,)
    ev = list(data.eval_batches(ds, 'test', global_batch_size=16))
    assert sum(int(e['mask'].sum()) for e in ev) == len(ds.source('test'))
  data._CACHE.clear()


def _mock_data(tfds, monkeypatch, num_examples):
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(stock.TfdsSource, 'records', lambda self, idx: [self._src[int(i)] for i in idx])
  data._CACHE.clear()
  return tfds.testing.mock_data(num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE)


def test_mocked_mnist_records_sizes_and_process_slices(monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')
  with _mock_data(tfds, monkeypatch, 24):
    ds = data.get_dataset({'name': 'mnist', 'train_split': 'train', 'eval_split': 'test', 'prefetch': 2})
    assert ds.info.split_sizes == {'train': 24, 'test': 24}
    assert (ds.info.task, ds.info.num_outputs) == ('classification', 10)
    src = ds.source('train')
    r = src[5]
    assert r['inputs'].shape == (28, 28, 1) and r['inputs'].dtype == np.float32 and isinstance(r['targets'], np.int32)
    b = src.get_batch(np.array([5, 0]))
    np.testing.assert_array_equal(b['inputs'][0], r['inputs'])     # batched and per-record reads agree
    assert b['targets'][0] == r['targets']
    kw = dict(global_batch_size=8, seed=0, prefetch=2)
    whole = [next(it) for it in [data.train_iterator(ds, 'train', **kw)] for _ in range(4)]
    parts = [data.train_iterator(ds, 'train', process_index=p, process_count=2, **kw) for p in range(2)]
    for g in whole:
      a, c = next(parts[0]), next(parts[1])
      assert a['inputs'].shape == (4, 28, 28, 1)
      np.testing.assert_array_equal(np.concatenate([a['inputs'], c['inputs']]), g['inputs'])
    with pytest.raises(UserError, match="no split 'validation'"):
      data.get_dataset({'name': 'mnist', 'eval_split': 'validation'})
  data._CACHE.clear()


def test_unprepared_error_gives_the_array_record_command_and_honours_tfds_data_dir(tmp_path, monkeypatch):
  pytest.importorskip('tensorflow_datasets')
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  data._CACHE.clear()
  with pytest.raises(UserError) as e:
    data.get_dataset({'name': 'cifar100'})
  msg = str(e.value)
  assert str(tmp_path) in msg and '\n' not in msg
  assert 'pip install -e ".[tf]"' in msg
  assert ('python -m tensorflow_datasets.scripts.download_and_prepare --datasets=cifar100 '
          '--file_format=array_record') in msg
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  assert not stock.is_prepared('cifar100')


def test_nothing_in_jaxdl_data_imports_tensorflow():
  import pathlib  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(data.__file__).parent
  for f in root.glob('*.py'):
    assert not re.search(r'^\s*(import|from)\s+tensorflow(\s|\.|$)', f.read_text(), re.M), f
  # Importing the package (which registers every dataset) does not even import TFDS; no TensorFlow at run time.
  code = ('import sys, jaxdl.data; from jaxdl.registry import DATASETS; assert "mnist" in DATASETS; '
          'assert "tensorflow_datasets" not in sys.modules and "tensorflow" not in sys.modules')
  subprocess.run([sys.executable, '-c', code], check=True, env={'JAX_PLATFORMS': 'cpu', 'PATH': ''}, timeout=120)


def test_cached_and_uncached_splits_read_the_same_batches(monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')
  with _mock_data(tfds, monkeypatch, 30):
    cached = data.get_dataset({'name': 'fashion_mnist'})
    disk = data.get_dataset({'name': 'fashion_mnist', 'cache': False})
    assert cached.source('train').in_memory and not disk.source('train').in_memory
    kw = dict(global_batch_size=12, seed=5)
    for a, b in zip([next(it) for it in [data.train_iterator(cached, 'train', **kw)] for _ in range(5)],
                    [next(it) for it in [data.train_iterator(disk, 'train', prefetch=2, **kw)] for _ in range(5)]):
      np.testing.assert_array_equal(a['inputs'], b['inputs'])
      np.testing.assert_array_equal(a['targets'], b['targets'])
    r, s = cached.source('test')[7], disk.source('test')[7]
    np.testing.assert_array_equal(r['inputs'], s['inputs'])
    assert r['targets'] == s['targets'] and isinstance(r['targets'], np.int32)
  data._CACHE.clear()


def test_california_housing_needs_a_local_copy(tmp_path):
  from jaxdl import data  # pylint: disable=g-import-not-at-top
  from jaxdl.errors import UserError  # pylint: disable=g-import-not-at-top
  data._CACHE.clear()
  with pytest.raises(UserError, match='fetch_california_housing'):
    data.get_dataset({'name': 'california_housing', 'data_home': str(tmp_path)})
