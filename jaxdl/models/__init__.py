"""Model zoo: Flax linen modules registered by their course names.

`build_model(config.model, dataset_info)` instantiates a registered module from its config section; the
module's dataclass fields ARE the accepted config keys. `num_outputs` is filled in from the dataset when the
config leaves it out. Registry metadata `example_input_shape` lets the registry test run every model.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn

from jaxdl.errors import UserError
from jaxdl.registry import MODELS, check_kwargs

# Importing the families registers them.
from jaxdl.models import alexnet, allcnn, captioning, char_rnn, cifar_small, cnn, convblock, deepspeech, densenet, highway, inception, lenet, linear, mlp, mobilenet, nin, polynomial, rbf, resnet, seq2seq, sequence, vgg, xception  # noqa: F401,E402  pylint: disable=unused-import


def _fields(cls) -> dict[str, dataclasses.Field]:
  return {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in ('parent', 'name')}


# Value rules by field name, shared by every model (a field's meaning is the same across the zoo). Ints and tuples
# of ints not listed as NONNEG must be >= 1; rates are probabilities of dropping.
_NONNEG_INTS = {'pool_every', 'degree', 'lookahead', 'proj_features', 'ffn_layers', 'fc_features', 'rnn_layers'}
_POSITIVE_FLOATS = {'width_mult', 'bn_eps', 'kernel_init_scale', 'ema_decay', 'gradient_clip', 'spectral_radius',
                    'input_scaling', 'temperature'}
_PROBABILITIES = {'leak_rate': (0.0, 1.0, False, True)}  # name: (lo, hi, lo_open, hi_open)
_INT_SEQUENCES = {'Sequence[int]', 'tuple[int, ...]', 'typing.Sequence[int]', 'Tuple[int, ...]'}  # annotations


def _bad_field(key: str, value: Any) -> str | None:
  """What a field's value should be, if it is not (None: fine)."""
  if isinstance(value, bool):
    return None
  if key.endswith('dropout_rate') or key.endswith('zoneout') or key == 'dropout':
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
      return 'a probability in [0, 1)'
  elif key in _PROBABILITIES:
    lo, hi, lo_open, hi_open = _PROBABILITIES[key]
    if not isinstance(value, (int, float)) or value < lo or value > hi or (lo_open and value == lo) or (
        hi_open and value == hi):
      return f'a number in {"(" if lo_open else "["}{lo}, {hi}{")" if hi_open else "]"}'
  elif isinstance(value, int):
    if value < (0 if key in _NONNEG_INTS else 1):
      return 'an integer >= 0' if key in _NONNEG_INTS else 'a positive integer'
  elif isinstance(value, float) and key in _POSITIVE_FLOATS:
    if not value > 0:
      return 'a positive number'
  elif isinstance(value, (tuple, list)) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                          for v in value):
    if any(v < 1 for v in value):
      return 'positive integers'
  return None


def field_defaults(name: str) -> dict[str, Any]:
  """The config keys a registered model accepts (its dataclass fields), with their defaults."""
  out = {}
  for k, f in _fields(MODELS.get(name)).items():
    if f.default is not dataclasses.MISSING:
      out[k] = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
      out[k] = f.default_factory()  # type: ignore[misc]
  return out


def check_config(model_config) -> None:
  """Known keys (the model's fields) with values in range, before anything is built."""
  cfg = dict(model_config)
  name = cfg.pop('name')
  cls = MODELS.get(name)
  fields = _fields(cls)
  check_kwargs('model', cfg, set(fields), f'model {name!r}')
  for key, value in cfg.items():
    want = _bad_field(key, value)
    if not want and isinstance(value, (tuple, list)) and str(fields[key].type) in _INT_SEQUENCES and not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value):
      want = 'a tuple of positive integers, e.g. (128, 64)'
    if want:
      raise UserError(f'config.model.{key}={value!r} is impossible for model {name!r}', want,
                      f'fix --config.model.{key}')


def build_model(model_config, info=None) -> nn.Module:
  """Instantiates the model named in `config.model`, taking `num_outputs` from the dataset if unset."""
  cfg = dict(model_config)
  name = cfg.pop('name')
  cls = MODELS.get(name)
  fields = _fields(cls)
  check_config(model_config)
  if 'num_outputs' in fields and 'num_outputs' not in cfg and info is not None:
    cfg['num_outputs'] = info.num_outputs
  cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
  try:
    return cls(**cfg)
  except TypeError as e:
    raise UserError(f'model {name!r} cannot be built from config.model: {e}', 'the fields of the model',
                    'fix config.model') from e


def count_params(params: Any) -> int:
  import jax  # pylint: disable=g-import-not-at-top
  return int(sum(x.size for x in jax.tree.leaves(params)))
