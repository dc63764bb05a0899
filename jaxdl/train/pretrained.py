"""Another run's weights: a finished run as (config, model, variables), warm starts, transfer learning by parameter
path (`train.init_from`, `init_from_exclude`), and a distillation teacher (`loss.name=distillation`)."""
from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.models import build_model
from jaxdl.optim import build_optimizer
from jaxdl.train.checkpoint import Checkpointer, first_line
from jaxdl.train.state import create_train_state


def restore_latest_state(workdir: str) -> dict[str, Any]:
  """The newest readable checkpoint's state of another run, as host arrays (no target structure needed)."""
  path = pathlib.Path(workdir)
  ck = path / 'checkpoints'
  steps = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.is_dir() else []
  if not steps:
    raise UserError(f'run {workdir!r} has no checkpoints', 'the --workdir of a finished run',
                    'train that run first or fix the path')
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ckpt = Checkpointer(ck, read_only=True)
  try:
    errors = []
    for step in reversed(steps):
      try:
        restored = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        return restored.state
      except Exception as e:  # noqa: BLE001 — try an older checkpoint
        errors.append(f'{step}: {first_line(e)}')
    raise UserError(f'run {workdir!r}: no checkpoint is readable ({errors[0]})', 'a checkpoint written by `jaxdl train`',
                    'fix the path or retrain that run')
  finally:
    ckpt.manager.close()


def load_run(workdir: str, info=None):
  """(config, model, variables) of a finished run, from its config.json and latest checkpoint."""
  path = pathlib.Path(workdir)
  if not (path / 'config.json').exists():
    raise UserError(f'{workdir!r} is not a jaxdl run (no config.json)', 'the --workdir of a trained run',
                    'train it first or fix the path')
  import ml_collections  # pylint: disable=g-import-not-at-top
  try:
    cfg = ml_collections.ConfigDict(json.loads((path / 'config.json').read_text(encoding='utf-8')))
  except (ValueError, OSError) as e:
    raise UserError(f'{path / "config.json"} is unreadable ({e})', 'the config.json jaxdl wrote',
                    'fix the path or retrain that run') from e
  info = info or data_lib.get_dataset(cfg.data).info
  model = build_model(cfg.model, info)
  like = jax.eval_shape(lambda: create_train_state(model, build_optimizer(cfg.optimizer, 1)[0],
                                                   jax.random.PRNGKey(0), info.input_shape))
  state = restore_latest_state(workdir)
  params = _fit(workdir, state['params'], like.params)
  model_state = _fit(workdir, state.get('model_state') or {}, like.model_state) if like.model_state else {}
  return cfg, model, {'params': params, **model_state}


def load_params(workdir: str, like: Any, item: str = 'params') -> Any:
  """The latest parameters of another run (warm start): the tree must have the same structure."""
  return _fit(workdir, restore_latest_state(workdir)[item], like)


def _fit(workdir: str, tree: Any, like: Any) -> Any:
  want = jax.tree_util.tree_structure(like)
  if jax.tree_util.tree_structure(tree) != want or any(
      np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(like))):
    raise UserError(f'run {workdir!r} holds parameters of another shape', 'a run of the same model',
                    'use a matching run (or replace the head with transfer learning)')
  return jax.tree.map(lambda a, b: np.asarray(a, dtype=b.dtype), tree, like)


def _flat_paths(tree) -> dict[str, Any]:
  return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_pretrained(workdir: str, params: Any, model_state: Any, exclude: tuple[str, ...] = ()) -> tuple[Any, Any]:
  """Transfer learning: every parameter (and mutable state such as BN statistics) of the new model takes the value
  of the same path in another run's latest checkpoint, except paths containing a name in `exclude` (e.g. a new
  'head'), which keep their fresh initialisation. A kept path that is missing or has another shape is an error.
  """
  source = restore_latest_state(workdir)
  src = {**_flat_paths({'params': source['params']}), **_flat_paths({'state': source.get('model_state') or {}})}
  problems = []

  def take(tree, root):
    def one(path, leaf):
      key = jax.tree_util.keystr((jax.tree_util.DictKey(root), *path))
      if any(x in key for x in exclude):
        return leaf
      if key not in src or np.shape(src[key]) != np.shape(leaf):
        problems.append(f"{key} {np.shape(leaf)} (source: {np.shape(src[key]) if key in src else 'missing'})")
        return leaf
      return np.asarray(src[key], dtype=leaf.dtype)
    return jax.tree_util.tree_map_with_path(one, tree)

  new_params, new_state = take(params, 'params'), take(model_state, 'state')
  if problems:
    raise UserError(f'run {workdir!r} does not fit this model at {len(problems)} parameter(s), e.g. {problems[0]}',
                    'the same layers with the same shapes, except those in config.train.init_from_exclude',
                    "add the differing layers' names (e.g. the head) to --config.train.init_from_exclude")
  return new_params, new_state


def with_teacher(loss_fn, teacher: str, info):
  """Wraps a distillation loss: the teacher run's logits are computed in the step, without gradient."""
  if not teacher:
    raise UserError('config.loss.teacher is not set', 'the --workdir of a trained teacher run',
                    'set --config.loss.teacher=runs/teacher')
  _, t_model, t_vars = load_run(teacher, info)
  t_vars = jax.tree.map(jnp.asarray, t_vars)

  def loss(outputs, batch):
    logits = jax.lax.stop_gradient(t_model.apply(t_vars, batch['inputs'], train=False))
    return loss_fn(outputs, dict(batch, teacher_logits=logits))
  return loss
