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
from jaxdl.models import alexnet, allcnn, cifar_small, cnn, convblock, densenet, highway, inception, lenet, linear, mlp, mobilenet, nin, polynomial, rbf, resnet, vgg, xception  # noqa: F401,E402  pylint: disable=unused-import


def _fields(cls) -> dict[str, dataclasses.Field]:
  return {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in ('parent', 'name')}


def check_config(model_config) -> None:
  cfg = dict(model_config)
  cls = MODELS.get(cfg.pop('name'))
  check_kwargs('model', cfg, set(_fields(cls)), f'model {model_config.name!r}')


def build_model(model_config, info=None) -> nn.Module:
  """Instantiates the model named in `config.model`, taking `num_outputs` from the dataset if unset."""
  cfg = dict(model_config)
  name = cfg.pop('name')
  cls = MODELS.get(name)
  fields = _fields(cls)
  check_kwargs('model', cfg, set(fields), f'model {name!r}')
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
