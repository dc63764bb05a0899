"""Config -> optax chain. Every optimiser is an optax `GradientTransformation` built by name.

`config.optimizer = {name, learning_rate, schedule, <optimiser kwargs>, clip_global_norm, clip_value,
weight_decay}`; the generic keys wrap the named optimiser: clipping first, then the optimiser.
"""
from __future__ import annotations

import inspect
from typing import Any

import jax
import optax

from jaxdl.config import check_kwargs
from jaxdl.errors import UserError
from jaxdl.registry import OPTIMIZERS

GENERIC_KEYS = ('name', 'learning_rate', 'schedule', 'warmup_steps', 'clip_global_norm', 'clip_value', 'freeze')


@OPTIMIZERS.register('sgd')
def sgd(learning_rate):
  """θ ← θ − ε∇J."""
  return optax.sgd(learning_rate)


@OPTIMIZERS.register('momentum')
def momentum(learning_rate, *, momentum: float = 0.9):
  """v ← μv − ε∇J; θ ← θ + v (course form; optax's trace is the same up to the sign convention)."""
  return optax.sgd(learning_rate, momentum=momentum)


@OPTIMIZERS.register('nesterov')
def nesterov(learning_rate, *, momentum: float = 0.9):
  """Nesterov momentum (Sutskever et al. 2013)."""
  return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


@OPTIMIZERS.register('adagrad')
def adagrad(learning_rate, *, initial_accumulator_value: float = 0.0, eps: float = 1e-7):
  return optax.adagrad(learning_rate, initial_accumulator_value=initial_accumulator_value, eps=eps)


@OPTIMIZERS.register('rmsprop')
def rmsprop(learning_rate, *, decay: float = 0.9, eps: float = 1e-8, momentum: float = 0.0):
  return optax.rmsprop(learning_rate, decay=decay, eps=eps, momentum=momentum or None)


@OPTIMIZERS.register('adam')
def adam(learning_rate, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


@OPTIMIZERS.register('adamw')
def adamw(learning_rate, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-4):
  return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


SCHEDULES = ('constant', 'cosine', 'linear')


def _schedule(cfg: dict[str, Any], num_steps: int):
  lr, kind, warmup = cfg['learning_rate'], cfg.get('schedule', 'constant'), int(cfg.get('warmup_steps', 0))
  if kind == 'constant':
    sched = optax.constant_schedule(lr)
  elif kind == 'cosine':
    sched = optax.cosine_decay_schedule(lr, max(1, num_steps - warmup))
  elif kind == 'linear':
    sched = optax.linear_schedule(lr, 0.0, max(1, num_steps - warmup))
  else:
    raise UserError(f'unknown config.optimizer.schedule {kind!r}', 'one of: ' + ', '.join(SCHEDULES),
                    'fix config.optimizer.schedule')
  if warmup:
    sched = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), sched], [warmup])
  return sched


def _split(opt_config):
  cfg = dict(opt_config)
  fn = OPTIMIZERS.get(cfg['name'])
  own = {k: v for k, v in cfg.items() if k not in GENERIC_KEYS}
  params = inspect.signature(fn).parameters
  check_kwargs('optimizer', own, {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY} ,
               f"optimizer {cfg['name']!r} (generic keys: {', '.join(GENERIC_KEYS)})")
  return cfg, fn, own


def check_config(opt_config, num_steps: int) -> None:
  build_optimizer(opt_config, num_steps)


def build_optimizer(opt_config, num_steps: int) -> tuple[optax.GradientTransformation, Any]:
  """Returns (optax chain, learning-rate schedule)."""
  cfg, fn, own = _split(opt_config)
  for key in ('clip_global_norm', 'clip_value', 'warmup_steps'):
    if cfg.get(key, 0) < 0:
      raise UserError(f'config.optimizer.{key}={cfg[key]} is negative', 'a value >= 0 (0 disables it)',
                      f'fix config.optimizer.{key}')
  schedule = _schedule(cfg, num_steps)
  parts = []
  if cfg.get('clip_value'):
    parts.append(optax.clip(cfg['clip_value']))
  if cfg.get('clip_global_norm'):
    parts.append(optax.clip_by_global_norm(cfg['clip_global_norm']))
  parts.append(fn(schedule, **own))
  tx = optax.chain(*parts)
  freeze = tuple(cfg.get('freeze', ()) or ())
  if freeze:
    # Parameters whose path contains one of the `freeze` names get no update (e.g. RBF centres in phase 2,
    # a pretrained trunk in transfer learning).
    def labels(params):
      return jax.tree_util.tree_map_with_path(
          lambda path, _: 'frozen' if any(f in jax.tree_util.keystr(path) for f in freeze) else 'train', params)
    tx = optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()}, labels)
  return tx, schedule
