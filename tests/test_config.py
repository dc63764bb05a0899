"""Config schema validation: unknown keys, wrong types and impossible values are rejected before anything runs."""
import pytest

from jaxdl import config as config_lib
from jaxdl.errors import UserError


def _cfg():
  c = config_lib.base_config()
  c.model.name = 'mlp'
  c.data.name = 'digits'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  return c


def test_every_experiment_config_validates():
  for name, module in config_lib.list_experiments():
    doc = module.__doc__ or ''
    assert 'Command:' in doc and 'jaxdl ' in doc and 'Expected:' in doc, f'{name}: docstring must give the command'
    config = module.get_config()
    try:
      config_lib.validate(config)
    except UserError as e:
      if 'needs data' not in str(e):   # a stock corpus that is not here (LibriSpeech): check everything else
        raise
      from jaxdl import losses, models, optim  # pylint: disable=g-import-not-at-top
      models.check_config(config.model)
      losses.check_config(config.loss)
      optim.check_config(config.optimizer, config.train.num_steps)


def test_valid_config_passes():
  config_lib.validate(_cfg())


@pytest.mark.parametrize('mutate, needle', [
    (lambda c: c.train.__setattr__('num_steps', 0), 'train.num_steps'),
    (lambda c: c.train.__setattr__('best_mode', 'up'), 'best_mode'),
    (lambda c: c.optimizer.__setattr__('learning_rate', -1.0), 'learning_rate'),
    (lambda c: c.model.__setattr__('name', 'mlpp'), "did you mean 'mlp'"),
    (lambda c: c.data.__setattr__('name', 'imagenet'), 'unknown dataset'),
    (lambda c: c.optimizer.__setattr__('name', 'adamx'), 'unknown optimizer'),
    (lambda c: c.loss.__setattr__('name', 'l3'), 'unknown loss'),
    (lambda c: c.train.__setattr__('compute_dtype', 'float16'), "'float32' or 'bfloat16'"),
])
def test_bad_values_are_rejected(mutate, needle):
  c = _cfg()
  mutate(c)
  with pytest.raises(UserError, match=needle):
    config_lib.validate(c)


def test_unknown_keys_are_rejected_in_every_section():
  for section, key in [('train', 'num_stepz'), ('model', 'widht'), ('optimizer', 'momentm'), ('loss', 'smoothing'),
                       ('data', 'shuffel')]:
    c = _cfg()
    c.unlock()
    c[section][key] = 1
    with pytest.raises(UserError, match=key):
      config_lib.validate(c)
  c = _cfg()
  c.unlock()
  c.extra = 1
  with pytest.raises(UserError, match='top-level'):
    config_lib.validate(c)


def test_wrong_type_is_rejected():
  c = _cfg()
  with c.ignore_type():   # as a config file could write it
    c.train.batch_size = 12.5
  with pytest.raises(UserError, match='batch_size'):
    config_lib.validate(c)


def test_batch_must_split_into_micro_batches():
  c = _cfg()
  c.train.batch_size = 10
  c.train.grad_accum_steps = 4
  with pytest.raises(UserError, match='grad_accum_steps'):
    config_lib.validate(c)


def test_user_error_is_one_line():
  e = UserError('a\nb', 'c', 'd')
  assert '\n' not in str(e) and str(e) == 'a b; expected c; d'
