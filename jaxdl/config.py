"""The one config schema every experiment shares, and its validation.

An experiment is `experiments/<name>.py` with `get_config()` returning an `ml_collections.ConfigDict` built on
`base_config()`. Sections: `model` (name + the model's fields), `data` (name + dataset kwargs), `loss`,
`optimizer` (name, learning_rate + optimiser kwargs), `train` (the loop). `validate` rejects unknown keys,
wrong types and impossible values before anything runs; the model/data/optimizer/loss sections are checked
against what their registered builders accept.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import pathlib
from typing import Any

import ml_collections

from jaxdl.errors import UserError

# field: (type(s), default, check, what the check expects)
_POS = (lambda v: v > 0, 'a positive number')
_NONNEG = (lambda v: v >= 0, 'a number >= 0')
TRAIN_FIELDS: dict[str, tuple[Any, Any, Any]] = {
    'num_steps': (int, 1000, _POS),
    'batch_size': (int, 128, _POS),             # global batch, split over the ('data',) mesh
    'eval_batch_size': (int, 0, _NONNEG),        # 0: same as batch_size
    'seed': (int, 0, _NONNEG),
    'checkpoint_every': (int, 1000, _NONNEG),    # 0: only at the end
    'eval_every': (int, 1000, _NONNEG),          # 0: only at the end
    'log_every': (int, 100, _POS),
    'grad_accum_steps': (int, 1, _POS),
    'max_steps_in_flight': (int, 0, _NONNEG),   # 0: automatic (1 on multi-device CPU, 2 otherwise)
    'keep_checkpoints': (int, 3, _POS),          # latest N kept ...
    'best_metric': (str, 'loss', None),          # ... plus the best by this eval metric ('' to disable)
    'best_mode': (str, 'min', (lambda v: v in ('min', 'max'), "'min' or 'max'")),
    'early_stopping_patience': (int, 0, _NONNEG),  # evals without improvement before stopping; 0: off
    'averaging': (str, 'none', (lambda v: v in ('none', 'ema', 'polyak'), "'none', 'ema' or 'polyak'")),
    'ema_decay': (float, 0.999, (lambda v: 0 < v < 1, 'a number in (0, 1)')),
    'restore_best': (bool, False, None),         # end on the best checkpoint (early stopping: keep the best model)
    'init_from': (str, '', None),                # workdir of another run: start from its latest params (+ BN stats)
    'init_from_exclude': (tuple, (), (lambda v: all(isinstance(x, str) and x for x in v), 'a tuple of names')),
                                                 # ... except those whose path contains one of these (a new head)
    'init_from_data_examples': (int, 10000, _POS),  # examples used by a model's data-dependent init (k-means)
    'compute_dtype': (str, 'float32', (lambda v: v in ('float32', 'bfloat16'), "'float32' or 'bfloat16'")),
                                                 # bfloat16: mixed precision (float32 weights, optimiser, loss, BN stats)
    'profile_steps': (str, '', (lambda v: v == '' or _profile_range(v) is not None, "'' or 'START,COUNT' (steps "
                                'START..START+COUNT-1, START >= 1, COUNT >= 1)')),
                                                 # a jax.profiler trace of those steps into WORKDIR/profile (XProf)
}


def _profile_range(value: str) -> tuple[int, int] | None:
  parts = value.replace(' ', '').split(',')
  if len(parts) != 2 or not all(x.isdigit() for x in parts) or int(parts[0]) < 1 or int(parts[1]) < 1:
    return None
  return int(parts[0]), int(parts[1])


def profile_range(train) -> tuple[int, int] | None:
  """train.profile_steps -> (first step, last step) traced, or None (off)."""
  r = _profile_range(train.get('profile_steps', '') or '')
  return None if r is None else (r[0], r[0] + r[1] - 1)
# Evaluation that generates (jaxdl.train.generation): decode every eval example with the model's `generate`
# method and score the text against the references on the host. Optional section (absent = no generation).
DECODE_FIELDS = {
    'metrics': (tuple, (), (lambda v: all(isinstance(x, str) and x for x in v), 'a tuple of metric names')),
                                                 # e.g. ('bleu', 'exact_match') or ('cer', 'wer'); () = off
    'beam_width': (int, 1, _POS),                # 1: greedy
    'max_length': (int, 0, _NONNEG),             # longest output; 0: the model's / data's own limit
    'length_penalty': (float, 0.0, _NONNEG),     # Wu et al. 2016's α in ((5 + |y|) / 6)^α (beam search)
}
REQUIRED_SECTIONS = ('model', 'data', 'loss', 'optimizer', 'train')
SECTIONS = REQUIRED_SECTIONS + ('decode',)


def base_config() -> ml_collections.ConfigDict:
  """The shared schema with defaults; experiments fill it in."""
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict({'name': ''})
  c.data = ml_collections.ConfigDict({'name': '', 'train_split': 'train', 'eval_split': 'test', 'prefetch': -1,
                                      'augment': ()})  # jaxdl.data.augment ops, applied in the train step
  c.loss = ml_collections.ConfigDict({'name': 'softmax_cross_entropy'})
  c.optimizer = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1})
  c.train = ml_collections.ConfigDict({k: v[1] for k, v in TRAIN_FIELDS.items()})
  c.decode = ml_collections.ConfigDict({k: v[1] for k, v in DECODE_FIELDS.items()})
  return c


def _type_name(t) -> str:
  return ' or '.join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def _check_value(where: str, value: Any, types: Any, check=None) -> None:
  ok_type = isinstance(value, types) and not (isinstance(value, bool) and bool not in
                                              (types if isinstance(types, tuple) else (types,)))
  if types is float and isinstance(value, int) and not isinstance(value, bool):
    ok_type = True
  if not ok_type:
    raise UserError(f'config {where}={value!r} has type {type(value).__name__}', f'a {_type_name(types)}',
                    f'fix it in the config file or with --config.{where}=...')
  if check is not None and not check[0](value):
    raise UserError(f'config {where}={value!r} is impossible', check[1], f'set --config.{where} to {check[1]}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Rejects unknown keys, wrong types and impossible values, before anything runs."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f'get_config() returned a {type(config).__name__}', 'an ml_collections.ConfigDict',
                    'build it with jaxdl.config.base_config()')
  for key in config.keys():
    if key not in SECTIONS:
      raise UserError(f'unknown top-level config key {key!r}', 'one of: ' + ', '.join(SECTIONS),
                      'remove it or move it into a section')
  for sec in REQUIRED_SECTIONS:
    if sec not in config or not isinstance(config[sec], ml_collections.ConfigDict):
      raise UserError(f'config has no section {sec!r}', 'the sections of jaxdl.config.base_config()',
                      'start get_config() from base_config()')
  for key in config.train.keys():
    if key not in TRAIN_FIELDS:
      raise UserError(f'unknown key config.train.{key}', 'one of: ' + ', '.join(TRAIN_FIELDS),
                      'remove it or fix its spelling')
  for key, (types, _, check) in TRAIN_FIELDS.items():
    if key in config.train:
      _check_value(f'train.{key}', config.train[key], types, check)
  if 'decode' in config:
    for key in config.decode.keys():
      if key not in DECODE_FIELDS:
        raise UserError(f'unknown key config.decode.{key}', 'one of: ' + ', '.join(DECODE_FIELDS),
                        'remove it or fix its spelling')
      _check_value(f'decode.{key}', config.decode[key], *DECODE_FIELDS[key][::2])
  t = config.train
  if t.batch_size % t.grad_accum_steps:
    raise UserError(f'train.batch_size={t.batch_size} does not divide into train.grad_accum_steps={t.grad_accum_steps} '
                    'micro-batches', 'batch_size a multiple of grad_accum_steps', 'change one of them')
  for sec in ('model', 'data', 'loss', 'optimizer'):
    name = config[sec].get('name', '')
    if not isinstance(name, str) or not name:
      raise UserError(f'config.{sec}.name is not set', f'the name of a registered {sec}',
                      f'see `jaxdl list` and set --config.{sec}.name')
  _check_value('optimizer.learning_rate', config.optimizer.get('learning_rate'), float, _POS)
  # Registered builders check their own sections (names, keys, values).
  from jaxdl import data, losses, models, optim  # pylint: disable=g-import-not-at-top
  models.check_config(config.model)
  data.get_dataset(config.data)
  losses.check_config(config.loss)
  optim.check_config(config.optimizer, config.train.num_steps)


# --------------------------------------------------------------------------------------------- experiments
def repo_root() -> pathlib.Path:
  return pathlib.Path(__file__).resolve().parent.parent


def experiments_dir() -> pathlib.Path:
  """`$JAXDL_EXPERIMENTS`, else the repository's experiments/ (editable install), else ./experiments."""
  env = os.environ.get('JAXDL_EXPERIMENTS')
  for cand in ([pathlib.Path(env)] if env else []) + [repo_root() / 'experiments', pathlib.Path('experiments')]:
    if cand.is_dir():
      return cand
  raise UserError('no experiments/ folder found', 'a jaxdl checkout (pip install -e .)',
                  'run from the repository root or set JAXDL_EXPERIMENTS')


def load_module(path: str | os.PathLike):
  """Imports an experiment file (no side effects expected beyond definitions)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise UserError(f'config file {str(path)!r} does not exist', 'a path like experiments/mlp_digits.py',
                    'see `jaxdl list` for the experiments')
  name = f'jaxdl_experiment_{path.stem}'
  # An explicit source loader: a config file is Python whatever its suffix (`.txt` would otherwise get no loader).
  spec = importlib.util.spec_from_loader(name, importlib.machinery.SourceFileLoader(name, str(path)))
  module = importlib.util.module_from_spec(spec)
  module.__file__ = str(path)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a broken config file is a user error
    raise UserError(f'config file {str(path)!r} failed to load: {type(e).__name__}: {e}', 'a Python file defining get_config()',
                    'fix the file') from e
  if not hasattr(module, 'get_config'):
    raise UserError(f'config file {str(path)!r} defines no get_config()', 'def get_config() -> ConfigDict',
                    'add one (see experiments/mlp_digits.py)')
  return module


def get_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
  """`get_config()` of an experiment file; a config file that raises is a user error, not a traceback."""
  module = load_module(path)
  try:
    config = module.get_config()
  except Exception as e:  # noqa: BLE001
    raise UserError(f'get_config() of {str(path)!r} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}',
                    'a get_config() that returns an ml_collections.ConfigDict', 'fix the config file') from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f'get_config() of {str(path)!r} returned a {type(config).__name__}', 'an ml_collections.ConfigDict',
                    'build it with jaxdl.config.base_config()')
  return config


# Generic optimizer keys every optimiser accepts (jaxdl.optim.chains), with the values that leave them off.
OPTIMIZER_GENERIC_DEFAULTS: dict[str, Any] = {
    'schedule': 'constant', 'warmup_steps': 0, 'clip_global_norm': 0.0, 'clip_value': 0.0, 'l2': 0.0,
    'weight_decay': 0.0, 'decay_mask': 'all', 'max_norm': 0.0, 'freeze': (), 'lr_multipliers': ()}


def documented_keys(config: ml_collections.ConfigDict, path: list[str], names: dict[str, str]) -> dict[str, Any]:
  """The documented keys (with defaults) of the config node at `path` (e.g. ['optimizer']), which an override may
  set even where the experiment's file left them out.

  Documented keys: every train field; in model, data, loss and optimizer the keyword arguments of the registered
  builder named by `names[section]` (an override of its name) or by the config, plus the generic optimizer and loss
  keys, and a schedule's options under optimizer.schedule_kwargs. So `--config.optimizer.schedule=cosine` or
  `--config.model.activation=tanh` override any experiment, whether or not its file spells the key out.
  """
  from jaxdl import data, losses, models  # pylint: disable=g-import-not-at-top
  from jaxdl.optim import chains, schedules  # pylint: disable=g-import-not-at-top
  if not path or path[0] not in SECTIONS:
    return {}
  sec = path[0]
  name = names.get(sec) or config[sec].get('name', '')
  try:
    if path == ['train']:
      return {k: v[1] for k, v in TRAIN_FIELDS.items()}
    if path == ['decode']:
      return {k: v[1] for k, v in DECODE_FIELDS.items()}
    if path == ['model']:
      return models.field_defaults(name)
    if path == ['data']:
      return data.dataset_kwargs(name)
    if path == ['loss']:
      return {**{k: 0.0 for k in losses.PENALTY_KEYS}, **losses.loss_kwargs(name)}
    if path == ['optimizer']:
      return {**OPTIMIZER_GENERIC_DEFAULTS, 'schedule_kwargs': {}, **chains.optimizer_kwargs(name)}
    if path == ['optimizer', 'schedule_kwargs']:
      return schedules.schedule_options(names.get('optimizer.schedule') or config.optimizer.get('schedule')
                                        or 'constant')
  except UserError:
    return {}
  return {}


def list_experiments() -> list[tuple[str, Any]]:
  """(name, module) for every experiments/*.py."""
  out = []
  for path in sorted(experiments_dir().glob('*.py')):
    if path.name.startswith('_'):
      continue
    out.append((path.stem, load_module(path)))
  return out


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)
