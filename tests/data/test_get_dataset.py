"""get_dataset: names and kwargs from config.data, checked before anything runs."""
import ml_collections
import numpy as np
import pytest

from jaxdl import data
from jaxdl.errors import UserError


def test_configdict_and_mapping_give_the_same_cached_dataset():
  c = ml_collections.ConfigDict({'name': 'two_moons', 'num_examples': 50, 'train_split': 'train',
                                 'eval_split': 'test', 'prefetch': 2})
  a = data.get_dataset(c)
  b = data.get_dataset({'name': 'two_moons', 'num_examples': 50})
  assert a is b and a.info.split_sizes['train'] == 50
  assert data.get_dataset({'name': 'two_moons', 'num_examples': 60}) is not a


def test_pipeline_keys():
  assert set(data.PIPELINE_KEYS) == {'train_split', 'eval_split', 'prefetch', 'augment', 'sorta_grad'}


@pytest.mark.parametrize('spec,match', [
    (('flop',), "unknown augmentation 'flop'"),
    ((('crop', {'paddin': 4}),), 'unknown kwargs'),
    ((('mixup', {'alpha': -1.0}),), 'alpha'),
])
def test_bad_augment_spec_is_a_user_error(spec, match):
  with pytest.raises(UserError, match=match):
    data.get_dataset({'name': 'digits28', 'augment': spec})


def test_mixup_takes_num_classes_from_the_dataset():
  info = data.get_dataset({'name': 'digits'}).info
  aug = data.build_augment(('mixup',), info)
  import jax  # pylint: disable=g-import-not-at-top
  out = aug(jax.random.PRNGKey(0), {'inputs': np.zeros((4, 8, 8, 1), np.float32), 'targets': np.arange(4)})
  assert out['targets'].shape == (4, info.num_outputs)
  np.testing.assert_allclose(np.asarray(out['targets']).sum(-1), 1.0, rtol=1e-6)
  assert data.build_augment((), info) is None


@pytest.mark.parametrize('cfg,match', [
    ({'name': 'imagenet'}, "unknown dataset 'imagenet'"),
    ({'name': 'digts'}, "did you mean 'digits'"),
    ({}, 'config.data.name'),
    ({'name': ''}, 'config.data.name'),
    ({'name': 'digits', 'noise': 0.1}, 'unknown key config.data.noise'),
    ({'name': 'two_moons', 'num_exemples': 10}, 'unknown key config.data.num_exemples.*num_examples.*train_split'),
    ({'name': 'two_moons', 'num_examples': '100'}, 'num_examples.*expected int'),
    ({'name': 'two_moons', 'num_examples': 10.0}, 'num_examples.*expected int'),
    ({'name': 'two_moons', 'num_examples': True}, 'num_examples.*expected int'),
    ({'name': 'two_moons', 'num_examples': 0}, 'num_examples=0.*too small'),
    ({'name': 'toy_regression', 'seed': 'x'}, 'seed'),
    ({'name': 'noisy_function', 'function': 'tan'}, 'function'),
    ({'name': 'digits', 'eval_split': 'validation'}, "no split 'validation'"),
    ({'name': 'digits', 'train_split': 3}, 'train_split'),
    ({'name': 'digits', 'prefetch': -2}, 'prefetch'),
    ({'name': 'mnist', 'data_dir': 3}, 'data_dir'),
])
def test_mistakes_are_one_line_user_errors(cfg, match):
  with pytest.raises(UserError, match=match) as e:
    data.get_dataset(cfg)
  assert '\n' not in str(e.value)


def test_an_int_is_fine_for_a_float():
  ds = data.get_dataset({'name': 'two_moons', 'noise': 0})
  assert ds.info.split_sizes['train'] == 100


def test_dataset_kwargs():
  assert data.dataset_kwargs('toy_regression') == {'num_examples': 30, 'num_test': 100, 'seed': 0}
  assert data.dataset_kwargs('mnist') == {'data_dir': '', 'cache': True}
