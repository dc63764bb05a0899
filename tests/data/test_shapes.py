"""The generated `shapes` dataset: shapes, ranges, determinism, balance, and boxes that hold the drawn objects."""
from __future__ import annotations

import numpy as np
import pytest

from jaxdl import data
from jaxdl.data import shapes as shapes_lib
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS

SMALL = {'num_train': 300, 'num_test': 120}


def arrays(ds, split):
  src = ds.source(split)
  return np.asarray(src.inputs), np.asarray(src.targets)


def test_registered_with_a_description():
  assert 'shapes' in DATASETS and DATASETS.meta('shapes').get('description')
  assert data.dataset_kwargs('shapes')['num_classes'] == 10


def test_default_shapes_sizes_and_ranges():
  ds = data.get_dataset({'name': 'shapes'})
  info = ds.info
  assert info.task == 'classification' and info.input_shape == (32, 32, 3) and info.num_outputs == 10
  assert info.split_sizes == {'train': 5000, 'test': 1000}
  x, y = arrays(ds, 'train')
  assert x.dtype == np.float32 and x.shape == (5000, 32, 32, 3) and y.dtype == np.int32
  assert x.min() >= 0.0 and x.max() <= 1.0
  assert 0.2 < x.mean() < 0.8 and x.std() > 0.1      # a textured, not a flat, image set


def test_classes_are_exactly_balanced():
  for split, n in (('train', 5000), ('test', 1000)):
    _, y = arrays(data.get_dataset({'name': 'shapes'}), split)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))


def test_deterministic_and_seeded():
  a = shapes_lib.shapes(**SMALL)
  b = shapes_lib.shapes(**SMALL)
  c = shapes_lib.shapes(**SMALL, seed=1)
  for split in ('train', 'test'):
    np.testing.assert_array_equal(arrays(a, split)[0], arrays(b, split)[0])
    assert not np.array_equal(arrays(a, split)[0], arrays(c, split)[0])


def test_test_split_does_not_depend_on_num_train():
  a = shapes_lib.shapes(num_train=100, num_test=50)
  b = shapes_lib.shapes(num_train=200, num_test=50)
  np.testing.assert_array_equal(arrays(a, 'test')[0], arrays(b, 'test')[0])
  assert not np.array_equal(arrays(a, 'train')[0], arrays(b, 'train')[0][:100])


@pytest.mark.parametrize('split', ['train', 'test'])
def test_boxes_are_the_tight_boxes_of_the_drawn_pixels(split):
  ds = shapes_lib.shapes(**SMALL)
  ann = shapes_lib.shapes_annotations(split, **SMALL)
  boxes, masks = ann['boxes'], ann['masks']
  x, y = arrays(ds, split)
  np.testing.assert_array_equal(ann['labels'], y)
  n, h, w = masks.shape
  assert boxes.shape == (n, 4) and boxes.dtype == np.int32
  assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
  assert boxes.min() >= 0 and boxes[:, 2].max() < h and boxes[:, 3].max() < w
  rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
  inside = ((rows >= boxes[:, 0, None, None]) & (rows <= boxes[:, 2, None, None])
            & (cols >= boxes[:, 1, None, None]) & (cols <= boxes[:, 3, None, None]))
  assert not (masks & ~inside).any()                                  # every drawn pixel is in the box
  for i in range(n):                                                  # and the box is tight: each edge is hit
    r0, c0, r1, c1 = boxes[i]
    m = masks[i]
    assert m[r0].any() and m[r1].any() and m[:, c0].any() and m[:, c1].any()
  np.testing.assert_array_equal(shapes_lib.shapes_boxes(split, **SMALL), boxes)


def test_objects_differ_from_their_background():
  """The object's pixels stand out: their mean colour is far from the mean colour around the box."""
  ds = shapes_lib.shapes(**SMALL, noise=0.0)
  ann = shapes_lib.shapes_annotations('test', **SMALL, noise=0.0)
  x, _ = arrays(ds, 'test')
  full = ann['masks']
  dist = []
  for i in range(len(x)):
    obj = x[i][full[i]].mean(0)
    bg = x[i][~full[i]].mean(0)
    dist.append(np.linalg.norm(obj - bg))
  assert np.median(dist) > 0.3


def test_kwargs_size_and_classes():
  ds = shapes_lib.shapes(num_train=40, num_test=12, size=24, num_classes=4)
  assert ds.info.input_shape == (24, 24, 3) and ds.info.num_outputs == 4
  _, y = arrays(ds, 'train')
  assert set(np.unique(y)) == {0, 1, 2, 3}
  assert shapes_lib.shapes_annotations('train', num_train=40, num_test=12, size=24, num_classes=4)['masks'].shape \
      == (40, 24, 24)
  ds12 = shapes_lib.shapes(num_train=24, num_test=12, num_classes=len(shapes_lib.SHAPES))
  assert ds12.info.num_outputs == 12


@pytest.mark.parametrize('kwargs', [{'num_classes': 1}, {'num_classes': 13}, {'size': 4}, {'num_train': 0},
                                    {'min_scale': 0.4, 'max_scale': 0.2}, {'noise': -0.1},
                                    {'size': 16, 'min_scale': 0.1}])
def test_bad_kwargs_are_user_errors(kwargs):
  with pytest.raises(UserError):
    shapes_lib.shapes(**{**SMALL, **kwargs})


def test_annotations_reject_unknown_kwargs_and_splits():
  with pytest.raises(UserError):
    shapes_lib.shapes_annotations('test', colour='red')
  with pytest.raises(UserError):
    shapes_lib.shapes_annotations('validation')


def test_config_kwargs_reach_the_builder():
  ds = data.get_dataset({'name': 'shapes', 'num_train': 50, 'num_test': 20, 'num_classes': 5})
  assert ds.info.split_sizes == {'train': 50, 'test': 20} and ds.info.num_outputs == 5
