"""`train_and_evaluate(config, workdir)`: the one training loop every experiment runs.

config -> data iterator -> jit train step over the ('data',) mesh -> metrics / checkpoints. Re-running on a
workdir that has checkpoints resumes exactly (params, optimiser state, step, data position; the step RNG is
fold_in(seed key, step)). SIGTERM saves a checkpoint and exits cleanly.
"""
from __future__ import annotations

import collections
import json
import math
import os
import pathlib
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import config as config_lib
from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.losses import build_loss, build_penalty
from jaxdl.models import build_model, count_params
from jaxdl.optim import build_optimizer
from jaxdl.train import sharding
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.metrics import MetricWriter
from jaxdl.train.state import TrainState, create_train_state, params_fingerprint
from jaxdl.train.step import make_eval_step, make_train_step

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {'train.num_steps', 'train.log_every', 'train.eval_every', 'train.checkpoint_every',
                     'train.keep_checkpoints', 'train.max_steps_in_flight', 'train.early_stopping_patience'}


class TrainingDiverged(UserError):
  pass


def _flat(d: dict, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _write_json_atomic(path: pathlib.Path, obj: Any) -> None:
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + '\n', encoding='utf-8')
  os.replace(tmp, path)


def _check_workdir_config(workdir: pathlib.Path, config) -> None:
  """A workdir belongs to one config: refuse to resume a run with a different one."""
  path = workdir / 'config.json'
  if not path.exists():
    return
  try:
    old = _flat(json.loads(path.read_text(encoding='utf-8')))
  except (json.JSONDecodeError, OSError) as e:
    raise UserError(f'{path} is unreadable ({e})', 'the config.json jaxdl wrote', 'use a fresh --workdir') from e
  new = _flat(json.loads(config_lib.to_json(config)))
  for k, (_, default, _) in config_lib.TRAIN_FIELDS.items():  # a field added since that run: its default then
    old.setdefault(f'train.{k}', json.loads(json.dumps(default)))
  diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
  if diff:
    shown = ', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in diff[:3])
    raise UserError(f'--workdir {str(workdir)!r} holds a run with a different config ({shown})',
                    'the same config to resume', 'use a new --workdir for a new config')


class TrainSetup:
  """Everything derived from a validated config: dataset, model, optimiser, mesh, jitted steps, state."""

  def __init__(self, config):
    sharding.maybe_initialize_distributed()
    config_lib.validate(config)
    t = config.train
    self.config = config
    self.dataset = data_lib.get_dataset(config.data)
    self.info = self.dataset.info
    self.model = build_model(config.model, self.info)
    self.loss_fn = build_loss(config.loss)
    if config.loss.name == 'distillation':
      self.loss_fn = with_teacher(self.loss_fn, config.loss.get('teacher', ''), self.info)
    self.tx, self.schedule = build_optimizer(config.optimizer, t.num_steps)
    self.mesh = sharding.make_mesh()
    sharding.check_batch_size(t.batch_size, micro=t.grad_accum_steps)
    if t.batch_size % jax.process_count():
      raise UserError(f'train.batch_size={t.batch_size} does not divide across {jax.process_count()} processes',
                      f'a multiple of {jax.process_count()}', 'change --config.train.batch_size')
    n = jax.device_count()
    self.eval_batch_size = -(-(t.eval_batch_size or t.batch_size) // n) * n
    self.repl = sharding.replicated(self.mesh)
    self.data_sharding = sharding.batch_sharding(self.mesh)
    root = jax.random.PRNGKey(t.seed)
    self.init_rng, self.step_rng = jax.random.split(root)
    self.key_data = [int(x) for x in np.asarray(jax.random.key_data(root)).ravel()]

    averaging = t.averaging != 'none'
    init = lambda rng: create_train_state(self.model, self.tx, rng, self.info.input_shape, averaging)
    self._init = jax.jit(init, out_shardings=self.repl)
    self.abstract_state = jax.eval_shape(init, self.init_rng)
    self.abstract_state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.repl),
                                       self.abstract_state)
    self.train_step = jax.jit(make_train_step(self.model, self.loss_fn, self.tx, t.grad_accum_steps,
                                              build_penalty(config.loss), t.averaging, t.ema_decay,
                                              data_lib.build_augment(config.data.get('augment'), self.info),
                                              t.compute_dtype),
                              in_shardings=(self.repl, self.data_sharding, self.repl),
                              out_shardings=(self.repl, self.repl), donate_argnums=(0,))
    self.eval_step = jax.jit(make_eval_step(self.model, self.loss_fn, t.compute_dtype),
                             in_shardings=(self.repl, self.data_sharding), out_shardings=self.repl)

  def init_state(self) -> TrainState:
    state = self._init(self.init_rng)
    params = state.params
    if hasattr(self.model, 'init_from_data'):
      # Data-dependent initialisation (e.g. RBF centres by k-means++ on the training inputs).
      x, _ = data_lib.split_arrays(self.dataset, self.config.data.get('train_split', 'train'),
                                   self.config.train.init_from_data_examples)
      params = jax.jit(self.model.init_from_data, out_shardings=self.repl)(
          params, jax.random.fold_in(self.init_rng, 7), x)
    model_state = state.model_state
    t = self.config.train
    if t.init_from:
      params, model_state = load_pretrained(t.init_from, params, model_state, tuple(t.init_from_exclude))
    if params is not state.params:
      params = jax.device_put(params, self.repl)
      state = state.replace(params=params, opt_state=jax.jit(self.tx.init, out_shardings=self.repl)(params),
                            avg_params=params if state.avg_params is not None else None,
                            model_state=jax.device_put(model_state, self.repl))
    return state

  def checkpointer(self, workdir: pathlib.Path, read_only: bool = False) -> Checkpointer:
    t = self.config.train
    return Checkpointer(workdir / 'checkpoints', keep=t.keep_checkpoints, best_metric=t.best_metric,
                        best_mode=t.best_mode, read_only=read_only)

  def evaluate(self, state: TrainState, split: str | None = None) -> dict[str, float]:
    split = split or self.config.data.get('eval_split', 'test')
    sums = None
    for batch in data_lib.eval_batches(self.dataset, split, global_batch_size=self.eval_batch_size,
                                       process_index=jax.process_index(), process_count=jax.process_count()):
      out = self.eval_step(state, sharding.to_global(batch, self.data_sharding))
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
    sums = jax.device_get(sums)
    count = float(sums.pop('count'))
    return {k: float(v) / count for k, v in sums.items()}


def load_run(workdir: str, info=None):
  """(config, model, variables) of a finished run, from its config.json and latest checkpoint."""
  path = pathlib.Path(workdir)
  if not (path / 'config.json').exists():
    raise UserError(f'{workdir!r} is not a jaxdl run (no config.json)', 'the --workdir of a trained run',
                    'train it first or fix the path')
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(json.loads((path / 'config.json').read_text(encoding='utf-8')))
  info = info or data_lib.get_dataset(cfg.data).info
  model = build_model(cfg.model, info)
  like = jax.eval_shape(lambda: create_train_state(model, build_optimizer(cfg.optimizer, 1)[0],
                                                   jax.random.PRNGKey(0), info.input_shape))
  params = load_params(workdir, like.params)
  model_state = load_params(workdir, like.model_state, item='model_state') if like.model_state else {}
  return cfg, model, {'params': params, **model_state}


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


def _restore_latest_state(workdir: str):
  path = pathlib.Path(workdir)
  ck = path / 'checkpoints'
  steps = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.is_dir() else []
  if not steps:
    raise UserError(f'run {workdir!r} has no checkpoints', 'the --workdir of a finished run',
                    'train that run first or fix the path')
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  try:
    with ocp.CheckpointManager(ck.absolute(), options=ocp.CheckpointManagerOptions(read_only=True),
                               item_names=('state', 'data', 'meta')) as mngr:
      restored = mngr.restore(steps[-1], args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  except Exception as e:  # noqa: BLE001
    raise UserError(f'run {workdir!r}: checkpoint {steps[-1]} is unreadable ({str(e)[:200]})',
                    'a checkpoint written by `jaxdl train`', 'fix the path') from e
  return restored.state


def load_params(workdir: str, like: Any, item: str = 'params') -> Any:
  """The latest parameters of another run (warm start): the tree must have the same structure."""
  params = _restore_latest_state(workdir)[item]
  want = jax.tree_util.tree_structure(like)
  if jax.tree_util.tree_structure(params) != want or any(
      np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(like))):
    raise UserError(f'run {workdir!r} holds parameters of another shape', 'a run of the same model',
                    'use a matching run (or replace the head with transfer learning)')
  return jax.tree.map(lambda a, b: np.asarray(a, dtype=b.dtype), params, like)


def _flat_paths(tree) -> dict[str, Any]:
  return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_pretrained(workdir: str, params: Any, model_state: Any, exclude: tuple[str, ...] = ()) -> tuple[Any, Any]:
  """Transfer learning: every parameter (and mutable state such as BN statistics) of the new model takes the value
  of the same path in another run's latest checkpoint, except paths containing a name in `exclude` (e.g. a new
  'head'), which keep their fresh initialisation. A kept path that is missing or has another shape is an error.
  """
  source = _restore_latest_state(workdir)
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


def _mean(records: list[dict]) -> dict[str, float]:
  return {k: float(np.mean([r[k] for r in records])) for k in records[0]} if records else {}


def train_and_evaluate(config, workdir: str | os.PathLike, *, quiet: bool = False, return_state: bool = False):
  """Trains (or resumes) `config` in `workdir`; returns the summary also written to summary.json
  (and the final TrainState with `return_state=True`)."""
  wall_start = time.time()
  workdir = pathlib.Path(workdir)
  s = TrainSetup(config)
  t = config.train
  lead = jax.process_index() == 0
  if lead:
    if workdir.exists() and not workdir.is_dir():
      raise UserError(f'--workdir {str(workdir)!r} is a file', 'a directory', 'choose another --workdir')
    workdir.mkdir(parents=True, exist_ok=True)
    _check_workdir_config(workdir, config)
    _write_json_atomic(workdir / 'config.json', json.loads(config_lib.to_json(config)))

  ckpt = s.checkpointer(workdir)
  start = ckpt.latest_step()
  best = {'step': None, 'value': None, 'evals_since': 0}
  data_state = None
  if start is not None:
    state, data_state, meta = ckpt.restore(start, s.abstract_state)
    if meta.get('key_data') != s.key_data:
      raise UserError(f'checkpoint {start} was written with another train.seed', 'the seed the run started with',
                      'use the original --config.train.seed or a new --workdir')
    best = meta.get('best', best)
  else:
    state, start = s.init_state(), 0

  train_iter = data_lib.train_iterator(s.dataset, config.data.get('train_split', 'train'),
                                       global_batch_size=t.batch_size, seed=t.seed,
                                       process_index=jax.process_index(), process_count=jax.process_count(),
                                       prefetch=None if config.data.get('prefetch', -1) < 0 else config.data.prefetch)
  if data_state is not None:
    train_iter.set_state(data_state)

  writer = MetricWriter(workdir, t.num_steps, start, quiet=quiet)
  in_flight = t.max_steps_in_flight or (1 if jax.devices()[0].platform == 'cpu' and jax.device_count() > 1 else 2)
  pending: collections.deque = collections.deque()
  window: list[dict] = []
  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  last_good_ckpt = start if start else None
  stop_reason = 'completed'
  compile_time = None
  restored_step = None

  stop_signal = {'term': False}
  def on_term(signum, frame):  # noqa: ARG001
    stop_signal['term'] = True
  old_handler = signal.signal(signal.SIGTERM, on_term) if lead or jax.process_count() > 1 else None

  unchecked: list[tuple[int, dict]] = []   # finished steps whose metrics are still on the device

  def retire(keep: int) -> None:
    # Bounds the steps in flight (waits, copies nothing); metrics come to the host once per window (`check`).
    while len(pending) > keep:
      step_no, m = pending.popleft()
      jax.block_until_ready(m)
      unchecked.append((step_no, m))

  def check() -> None:
    """Fetches the window's metrics in one transfer; a non-finite loss stops training, naming its step."""
    if not unchecked:
      return
    host = jax.device_get([m for _, m in unchecked])
    for (step_no, _), m in zip(unchecked, host):
      m = {k: float(v) for k, v in m.items()}
      if not math.isfinite(m['loss']):
        unchecked.clear()
        raise TrainingDiverged(
            f'training diverged: loss is {m["loss"]} at step {step_no}; stopped, nothing after the last good '
            f'checkpoint (step {last_good_ckpt}) was saved', 'a finite loss',
            'lower --config.optimizer.learning_rate or add --config.optimizer.clip_global_norm')
      window.append(m)
    unchecked.clear()

  def save(step_no: int, metrics: dict | None = None) -> None:
    nonlocal last_good_ckpt
    retire(0)
    check()   # never save parameters that came from a non-finite step
    ckpt.save(step_no, state, train_iter.get_state(),
              {'step': step_no, 'key_data': s.key_data, 'best': best}, metrics=metrics)
    last_good_ckpt = step_no

  def preempted() -> bool:
    flag = stop_signal['term']
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      flag = bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
    return flag

  excluded = 0.0  # eval / checkpoint / logging time, not counted as step time
  window_start = time.perf_counter()
  window_steps = 0
  step = start
  try:
    while step < t.num_steps:
      batch = sharding.to_global(next(train_iter), s.data_sharding)
      if compile_time is None:
        c0 = time.perf_counter()
        state, metrics = s.train_step(state, batch, s.step_rng)
        jax.block_until_ready(metrics)
        compile_time = time.perf_counter() - c0
      else:
        state, metrics = s.train_step(state, batch, s.step_rng)
      step += 1
      window_steps += 1
      pending.append((step, metrics))
      retire(in_flight - 1)

      is_last = step == t.num_steps
      check_preempt = jax.process_count() == 1 or step % t.log_every == 0 or is_last
      if (step % t.log_every == 0 or is_last) or (check_preempt and stop_signal['term']):
        retire(0)
        check()
        elapsed = time.perf_counter() - window_start - excluded
        t0 = time.perf_counter()
        last_train = _mean(window)
        rec = dict(last_train, examples_per_sec=window_steps * t.batch_size / max(elapsed, 1e-9),
                   step_time_ms=1e3 * elapsed / max(window_steps, 1),
                   learning_rate=float(s.schedule(step - 1)))
        writer.write(step, 'train', rec)
        window.clear()
        window_steps, excluded, window_start = 0, 0.0, time.perf_counter()
        t0 = time.perf_counter() - t0
        window_start -= 0  # logging time is already outside the new window
      if check_preempt and preempted():
        save(step)
        stop_reason = 'preempted'
        break
      ran_eval = False
      metrics_for_ckpt = None
      if (t.eval_every and step % t.eval_every == 0) or is_last:
        t0 = time.perf_counter()
        retire(0)
        check()
        last_eval = s.evaluate(state)
        writer.write(step, 'eval', last_eval)
        ran_eval = True
        if t.best_metric:
          if t.best_metric not in last_eval:
            raise UserError(f'train.best_metric={t.best_metric!r} is not an eval metric',
                            'one of: ' + ', '.join(sorted(last_eval)), 'set --config.train.best_metric')
          v = last_eval[t.best_metric]
          better = best['value'] is None or (v < best['value'] if t.best_mode == 'min' else v > best['value'])
          best = {'step': step, 'value': v, 'evals_since': 0} if better else dict(best, evals_since=best['evals_since'] + 1)
          metrics_for_ckpt = {t.best_metric: v}
        excluded += time.perf_counter() - t0
      patience_out = bool(t.early_stopping_patience and best['evals_since'] >= t.early_stopping_patience)
      if (t.checkpoint_every and step % t.checkpoint_every == 0) or is_last or (ran_eval and t.best_metric) \
          or patience_out:
        t0 = time.perf_counter()
        save(step, metrics_for_ckpt)
        excluded += time.perf_counter() - t0
      writer.progress(step)
      if patience_out:
        stop_reason = 'early_stopping'
        break
    retire(0)
    check()
    if t.restore_best and stop_reason != 'preempted' and best['step'] not in (None, step):
      # Early stopping keeps the model with the best validation metric (seed 000, "Early stopping").
      ckpt.wait()
      state, _, _ = ckpt.restore(best['step'], s.abstract_state)
      last_eval = s.evaluate(state)
      restored_step = best['step']
  finally:
    try:
      ckpt.close()  # waits for the async save in flight
    finally:
      writer.close()
      if old_handler is not None:
        signal.signal(signal.SIGTERM, old_handler)

  summary = {
      'step': step,
      'status': stop_reason,
      'train': last_train,
      'eval': last_eval,
      'best': {'step': best['step'], t.best_metric or 'metric': best['value']},
      'restored_best_step': restored_step,
      'params_fingerprint': params_fingerprint(state.params),
      'num_params': count_params(state.params),
      'wall_time_s': time.time() - wall_start,
      'compile_time_s': compile_time,
      'devices': jax.device_count(),
      'processes': jax.process_count(),
      'platform': jax.devices()[0].platform,
  }
  if lead and stop_reason != 'preempted':
    _write_json_atomic(workdir / 'summary.json', summary)
  return (summary, state) if return_state else summary


def evaluate_checkpoint(config, workdir: str | os.PathLike, checkpoint: str = 'latest',
                        split: str | None = None) -> dict[str, Any]:
  """Restores a checkpoint (`latest`, `best` or a step number) from workdir and evaluates it."""
  workdir = pathlib.Path(workdir)
  s = TrainSetup(config)
  ckpt = s.checkpointer(workdir, read_only=True)
  steps = ckpt.all_steps()
  if not steps:
    raise UserError(f'no checkpoints in {str(workdir)!r}', 'a workdir written by `jaxdl train`',
                    'train first, or point --workdir at a trained run')
  latest = max(steps)
  if checkpoint == 'latest':
    step = latest
  elif checkpoint == 'best':
    _, _, meta = ckpt.restore(latest, s.abstract_state)
    step = meta.get('best', {}).get('step') or latest
  else:
    try:
      step = int(checkpoint)
    except ValueError:
      step = None
    if step not in steps:
      raise UserError(f'--checkpoint={checkpoint} is not in {str(workdir)!r}',
                      'latest, best or one of the steps ' + ', '.join(map(str, steps)), 'pick one of those')
  state, _, _ = ckpt.restore(step, s.abstract_state)
  ckpt.close()
  metrics = s.evaluate(state, split)
  return {'step': step, 'split': split or config.data.get('eval_split', 'test'), 'eval': metrics,
          'params_fingerprint': params_fingerprint(state.params)}
