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
