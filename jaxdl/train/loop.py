"""`train_and_evaluate(config, workdir)`: the one training loop every experiment runs.

config -> data iterator -> jit train step over the ('data',) mesh -> metrics / checkpoints. Re-running on a
workdir that has checkpoints resumes exactly (params, optimiser state, step, data position; the step RNG is
fold_in(seed key, step)). Nothing is written before the config validated and a checkpoint restored (or the run
started fresh); SIGTERM at any moment saves the last completed step and stops with status 'preempted'
(`jaxdl.train.preemption`); a non-finite loss or state stops training naming the step, and no non-finite state is
ever saved.

`train_and_evaluate` reads as the loop; the bookkeeping (steps in flight, metric windows, best-so-far, saves)
lives in `Run`, one method per thing the loop does, so new kinds of runs extend it in one place.
"""
from __future__ import annotations

import collections
import json
import math
import os
import pathlib
import time
from typing import Any

import jax
import numpy as np

from jaxdl import config as config_lib
from jaxdl import data as data_lib
from jaxdl import runtime
from jaxdl.errors import UserError
from jaxdl.models import count_params
from jaxdl.train import preemption, sharding, workdir as workdir_lib
from jaxdl.train.checkpoint import NonFiniteState, UnreadableCheckpoint
from jaxdl.train.evaluation import evaluate
from jaxdl.train.metrics import MetricWriter
from jaxdl.train.setup import TrainSetup
from jaxdl.train.state import TrainState, params_fingerprint


class TrainingDiverged(UserError):
  pass


def train_and_evaluate(config, workdir: str | os.PathLike, *, quiet: bool = False, return_state: bool = False):
  """Trains (or resumes) `config` in `workdir`; returns the summary also written to summary.json (and the final
  TrainState with `return_state=True`). summary['status']: completed | early_stopping | preempted."""
  t = config.train
  with preemption.Armed():
    run = Run(config, pathlib.Path(workdir), quiet)
    try:
      if run.preempted():                       # SIGTERM during start-up: nothing to save yet
        run.status = 'preempted'
      while run.status == 'running' and run.step < t.num_steps:
        run.train_step()
        last = run.step == t.num_steps
        if run.step % t.log_every == 0 or last:
          run.log_train()
        evaluated = bool((t.eval_every and run.step % t.eval_every == 0) or last)
        if evaluated:
          run.evaluate()
        if (t.checkpoint_every and run.step % t.checkpoint_every == 0) or last or (evaluated and t.best_metric) \
            or run.patience_out():
          run.save()
        run.writer.progress(run.step)
        if run.patience_out():
          run.status = 'early_stopping'
        elif run.preempted():
          if run.window_steps:
            run.log_train()
          run.save()
          run.status = 'preempted'
      run.drain()
      if run.status == 'running':
        run.status = 'completed'
      if t.restore_best and run.status != 'preempted':
        run.restore_best()
    finally:
      run.close()
  summary = run.summary()
  return (summary, run.state) if return_state else summary


class Run:
  """One training run's state and bookkeeping (see the module docstring)."""

  def __init__(self, config, workdir: pathlib.Path, quiet: bool):
    self.wall_start = time.time()
    self.config, self.workdir = config, workdir
    self.s = s = TrainSetup(config)
    t = config.train
    self.lead = jax.process_index() == 0
    config_json = json.loads(config_lib.to_json(config))
    created = None
    if self.lead:
      created = workdir_lib.check_writable(workdir)
      workdir_lib.check_config(workdir, config)
    self.best = {'step': None, 'value': None, 'evals_since': 0}
    self.ckpt = s.checkpointer(workdir)
    try:
      restored = self.ckpt.restore_latest(s.abstract_state)
      if restored is not None:
        start, self.state, data_state, meta = restored
        if meta.get('key_data') != s.key_data:
          raise UserError(f'checkpoint {start} was written with another train.seed', 'the seed the run started with',
                          'use the original --config.train.seed or a new --workdir')
        self.best = meta.get('best', self.best)
      else:
        start, self.state, data_state = 0, s.init_state(), None
      self.train_iter = data_lib.train_iterator(
          s.dataset, config.data.get('train_split', 'train'), global_batch_size=t.batch_size, seed=t.seed,
          process_index=jax.process_index(), process_count=jax.process_count(),
          prefetch=None if config.data.get('prefetch', -1) < 0 else config.data.prefetch,
          sorta_grad=bool(config.data.get('sorta_grad', False)))
      if data_state is not None:
        self.train_iter.set_state(data_state)
      # From here on the run writes: the config it runs, then metrics and checkpoints.
      if self.lead:
        workdir_lib.write_json_atomic(workdir / 'config.json', config_json)
      self.writer = MetricWriter(workdir, t.num_steps, start, quiet=quiet)
    except BaseException:
      self.ckpt.close()
      workdir_lib.remove_if_empty(created)
      raise
    self.step = self.start = start
    self.status = 'running'
    self.last_saved = start if start else None   # the newest checkpoint on disk (None: none yet)
    self.in_flight = t.max_steps_in_flight or (
        1 if jax.devices()[0].platform == 'cpu' and jax.device_count() > 1 else 2)
    self.pending: collections.deque = collections.deque()   # (step, metrics on device) still running
    self.unchecked: list[tuple[int, Any]] = []               # finished, metrics not yet on the host
    self.window: list[dict[str, float]] = []
    self.window_start, self.window_steps, self.excluded = time.perf_counter(), 0, 0.0
    self.last_train: dict[str, float] = {}
    self.last_eval: dict[str, float] = {}
    self.eval_step = None
    self.compile_time = None
    self.restored_step = None
    self.profile, self.profiling = config_lib.profile_range(t), False   # train.profile_steps: (first, last) step

  # ----------------------------------------------------------------------------------------- one step
  def train_step(self) -> None:
    s = self.s
    if self.profile and self.step + 1 == self.profile[0]:
      self._trace(True)
    batch = sharding.to_global(next(self.train_iter), s.data_sharding)
    if self.compile_time is None:
      c0 = time.perf_counter()
      self.state, metrics = s.train_step(self.state, batch, s.step_rng)
      jax.block_until_ready(metrics)
      self.compile_time = time.perf_counter() - c0
    else:
      self.state, metrics = s.train_step(self.state, batch, s.step_rng)
    self.step += 1
    self.window_steps += 1
    self.pending.append((self.step, metrics))
    self._retire(self.in_flight - 1)
    if self.profiling and self.step == self.profile[1]:
      self._trace(False)

  def _trace(self, start: bool) -> None:
    """A jax.profiler trace of steps train.profile_steps into WORKDIR/profile (TensorBoard's profile plugin)."""
    if start:
      sub = f'process_{jax.process_index()}' if jax.process_count() > 1 else ''
      jax.profiler.start_trace(str(self.workdir / 'profile' / sub))
    else:
      jax.block_until_ready(self.state)
      jax.profiler.stop_trace()
    self.profiling = start

  def _retire(self, keep: int) -> None:
    """Bounds the steps in flight (waits, copies nothing); metrics come to the host once per window (`_check`)."""
    while len(self.pending) > keep:
      step_no, m = self.pending.popleft()
      jax.block_until_ready(m)
      self.unchecked.append((step_no, m))

  def _check(self) -> None:
    """Fetches the finished steps' metrics in one transfer; a non-finite loss stops training, naming its step."""
    self._retire(0)
    if not self.unchecked:
      return
    host = jax.device_get([m for _, m in self.unchecked])
    for (step_no, _), m in zip(self.unchecked, host):
      m = {k: float(v) for k, v in m.items()}
      if not math.isfinite(m['loss']):
        self.unchecked.clear()
        raise self._diverged(f'loss is {m["loss"]} at step {step_no}')
      self.window.append(m)
    self.unchecked.clear()

  def _diverged(self, what: str) -> TrainingDiverged:
    kept = (f'the last good checkpoint (step {self.last_saved}) is kept' if self.last_saved is not None
            else 'no checkpoint had been written')
    return TrainingDiverged(f'training diverged: {what}; stopped, nothing after it was saved ({kept})',
                            'a finite loss', 'lower --config.optimizer.learning_rate or add '
                            '--config.optimizer.clip_global_norm')

  def drain(self) -> None:
    self._check()

  # --------------------------------------------------------------------------------------- log, eval
  def log_train(self) -> None:
    self._check()
    t = self.config.train
    elapsed = time.perf_counter() - self.window_start - self.excluded
    self.last_train = {k: float(np.mean([r[k] for r in self.window])) for k in self.window[0]} if self.window else {}
    rec = dict(self.last_train, examples_per_sec=self.window_steps * t.batch_size / max(elapsed, 1e-9),
               step_time_ms=1e3 * elapsed / max(self.window_steps, 1),
               learning_rate=float(self.s.schedule(self.step - 1)))
    self.writer.write(self.step, 'train', rec)
    self.window.clear()
    self.window_steps, self.excluded, self.window_start = 0, 0.0, time.perf_counter()

  def evaluate(self) -> None:
    t0 = time.perf_counter()
    self._check()
    t = self.config.train
    self.last_eval = evaluate(self.s, self.state)
    self.eval_step = self.step
    self.writer.write(self.step, 'eval', self.last_eval)
    if t.best_metric:
      v = self.last_eval[t.best_metric]
      b = self.best
      better = b['value'] is None or (v < b['value'] if t.best_mode == 'min' else v > b['value'])
      self.best = {'step': self.step, 'value': v, 'evals_since': 0} if better else dict(
          b, evals_since=b['evals_since'] + 1)
    self.excluded += time.perf_counter() - t0

  def patience_out(self) -> bool:
    p = self.config.train.early_stopping_patience
    return bool(p and self.best['evals_since'] >= p)

  # -------------------------------------------------------------------------------------------- save
  def save(self) -> None:
    """Checkpoints the current step (once): only after its loss and state are known finite."""
    if self.last_saved == self.step or self.step == 0:
      return
    t0 = time.perf_counter()
    self._check()   # never save parameters that came from a non-finite step
    t = self.config.train
    # A checkpoint of an evaluated step carries its metric, for the best-checkpoint policy.
    metrics = {t.best_metric: self.last_eval[t.best_metric]} if t.best_metric and self.eval_step == self.step else None
    try:
      self.ckpt.save(self.step, self.state, self.train_iter.get_state(),
                     {'step': self.step, 'key_data': self.s.key_data, 'best': self.best}, metrics=metrics)
    except NonFiniteState as e:
      raise self._diverged(f'the parameters or optimiser state are not finite at step {self.step}') from e
    self.last_saved = self.step
    self.excluded += time.perf_counter() - t0

  def preempted(self) -> bool:
    """SIGTERM received (by any process)? Every process asks at the same steps (a collective when several)."""
    t = self.config.train
    if jax.process_count() == 1:
      return preemption.requested()
    if self.step % t.log_every and self.step not in (self.start, t.num_steps):
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return bool(np.any(multihost_utils.process_allgather(np.asarray(preemption.requested()))))

  # ------------------------------------------------------------------------------------------- finish
  def restore_best(self) -> None:
    """Early stopping keeps the model with the best validation metric (seed 000, "Early stopping")."""
    best = self.best['step']
    if best in (None, self.step):
      return
    self.ckpt.wait()
    try:
      self.state = self.ckpt.restore(best, self.s.abstract_state)[0]
    except UnreadableCheckpoint as e:
      raise UserError(f'the best checkpoint ({best}) does not restore ({e})', 'a readable best checkpoint',
                      'set --config.train.restore_best=False or retrain') from e
    self.last_eval = evaluate(self.s, self.state)
    self.restored_step = best

  def close(self) -> None:
    try:
      if self.profiling:   # stopped inside the traced steps
        self._trace(False)
      self.ckpt.close()  # waits for the async save in flight
    finally:
      self.writer.close()

  def summary(self) -> dict[str, Any]:
    t = self.config.train
    state: TrainState = self.state
    summary = {
        'step': self.step,
        'status': self.status,
        'train': self.last_train,
        'eval': self.last_eval,
        'best': {'step': self.best['step'], t.best_metric or 'metric': self.best['value']},
        'restored_best_step': self.restored_step,
        'params_fingerprint': params_fingerprint(state.params),
        'num_params': count_params(state.params),
        'wall_time_s': time.time() - self.wall_start,
        'compile_time_s': self.compile_time,
        'devices': jax.device_count(),
        'processes': jax.process_count(),
        'platform': jax.devices()[0].platform,
        'host_memory': runtime.host_memory_policy(),
    }
    if self.lead and self.status != 'preempted':
      workdir_lib.write_json_atomic(self.workdir / 'summary.json', summary)
    return summary
