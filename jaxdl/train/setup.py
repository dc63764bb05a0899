"""`TrainSetup(config)`: everything derived from a validated config — dataset, model, loss, optimiser, mesh, the
jitted train and eval steps, and the initial state. Built before anything is written: every mistake a config can
hold (an unknown key, an impossible value, a model that cannot be initialised, a `best_metric` the evaluation does
not produce) is a UserError here, before the first checkpoint.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxdl import config as config_lib
from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.losses import build_loss, build_penalty
from jaxdl.models import build_model
from jaxdl.optim import build_optimizer
from jaxdl.train import generation, sharding
from jaxdl.train.checkpoint import Checkpointer, first_line
from jaxdl.train.pretrained import load_pretrained, with_teacher
from jaxdl.train.state import TrainState, create_train_state
from jaxdl.train.step import make_eval_step, make_train_step


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
    example = None
    if getattr(self.model, 'batch_keys', ()):   # e.g. padded sequences: initialise on a real batch's shapes
      source = self.dataset.source(config.data.get('train_split', 'train'))
      example = data_lib.read_batch(source, np.arange(min(2, len(source))))
    init = lambda rng: create_train_state(self.model, self.tx, rng, self.info.input_shape, averaging, example)
    self._init = jax.jit(init, out_shardings=self.repl)
    try:
      abstract = jax.eval_shape(init, self.init_rng)
    except UserError:
      raise
    except Exception as e:  # noqa: BLE001 — a model that cannot be built from these fields is a config mistake
      raise UserError(f'model {config.model.name!r} cannot be initialised from config.model and the '
                      f'{config.data.name!r} data ({type(e).__name__}: {first_line(e)})',
                      'field values the model accepts (its docstring: `jaxdl list --models`)',
                      'fix config.model (JAXDL_DEBUG=1 shows the traceback)') from e
    self.abstract_state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.repl),
                                       abstract)
    self.train_step = jax.jit(make_train_step(self.model, self.loss_fn, self.tx, t.grad_accum_steps,
                                              build_penalty(config.loss), t.averaging, t.ema_decay,
                                              data_lib.build_augment(config.data.get('augment'), self.info),
                                              t.compute_dtype, tuple(config.optimizer.get('freeze', ()) or ())),
                              in_shardings=(self.repl, self.data_sharding, self.repl),
                              out_shardings=(self.repl, self.repl), donate_argnums=(0,))
    self._eval_fn = make_eval_step(self.model, self.loss_fn, t.compute_dtype)
    self.eval_step = jax.jit(self._eval_fn, in_shardings=(self.repl, self.data_sharding), out_shardings=self.repl)
    self.generation_metrics = generation.check(config, self.model, self.dataset)
    self.generate_step = None
    if self.generation_metrics:
      self.generate_step = jax.jit(generation.make_generate_step(self.model, config.decode, t.compute_dtype, self.mesh),
                                   in_shardings=(self.repl, self.data_sharding), out_shardings=self.data_sharding)
    self.eval_metric_names = sorted(self._eval_metric_names() + list(self.generation_metrics))
    if t.best_metric and t.best_metric not in self.eval_metric_names:
      raise UserError(f'train.best_metric={t.best_metric!r} is not an eval metric of this experiment',
                      'one of: ' + ', '.join(self.eval_metric_names) + " (or '' to keep only the latest)",
                      'set --config.train.best_metric')

  def _eval_metric_names(self) -> list[str]:
    """The metrics an evaluation reports, from the eval step's output structure (no computation)."""
    split = self.config.data.get('eval_split', 'test')
    example = data_lib.read_batch(self.dataset.source(split), np.zeros(1, np.int64))
    batch = {k: jax.ShapeDtypeStruct((self.eval_batch_size, *np.shape(v)[1:]), np.asarray(v).dtype)
             for k, v in example.items()}
    batch['mask'] = jax.ShapeDtypeStruct((self.eval_batch_size,), np.float32)
    try:
      out = jax.eval_shape(self._eval_fn, self.abstract_state, batch)
    except Exception as e:  # noqa: BLE001
      raise UserError(f'the loss {self.config.loss.name!r} does not fit the outputs of model '
                      f'{self.config.model.name!r} on {self.config.data.name!r} ({type(e).__name__}: {first_line(e)})',
                      'a loss made for this task', 'fix config.loss.name (see `jaxdl list --losses`)') from e
    return sorted(k for k in out if k != 'count')

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

  def checkpointer(self, workdir, read_only: bool = False) -> Checkpointer:
    t = self.config.train
    return Checkpointer(workdir / 'checkpoints', keep=t.keep_checkpoints, best_metric=t.best_metric,
                        best_mode=t.best_mode, read_only=read_only, lead=jax.process_index() == 0)

  def evaluate(self, state: TrainState, split: str | None = None) -> dict[str, Any]:
    """One evaluation pass over `split` (default config.data.eval_split): jaxdl.train.evaluation.evaluate."""
    from jaxdl.train.evaluation import evaluate  # pylint: disable=g-import-not-at-top
    return evaluate(self, state, split)
