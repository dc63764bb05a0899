"""Pure train and eval steps. `make_*` closes over the model, loss and optimiser; the result is jit-able.

train_step(state, batch, rng) -> (state, metrics): the step's key is `fold_in(rng, state.step)`, so the run is a
pure function of (config, seed) and resumes exactly. Mutable collections (e.g. batch_stats) are threaded through
generically. With grad_accum_steps = k the global batch is cut into k micro-batches whose gradients are averaged.

Mixed precision (compute_dtype='bfloat16'): the float32 parameters and inputs are cast to bfloat16 at the model's
door and its outputs back to float32, so every layer computes in bfloat16 while the weights, their gradients (the
cast's transpose returns float32), the optimiser state, the loss and BN's running statistics stay float32. bfloat16
has float32's exponent range: no loss scaling is needed.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl.nn.precision import cast_floating
from jaxdl.train.state import TrainState


def model_kwargs(model, batch: dict, step=None) -> dict:
  """The batch fields a model takes besides its inputs, as keyword arguments: those named in its `batch_keys`
  class attribute (e.g. ('inputs_paddings',) for a padded sequence model, or the decoder's teacher-forced inputs),
  and in training the step, `step=`, to a model that declares `takes_step` (e.g. scheduled sampling's decay)."""
  kwargs = {k: batch[k] for k in getattr(model, 'batch_keys', ())}
  if step is not None and getattr(model, 'takes_step', False):
    kwargs['step'] = step
  return kwargs


def weighted_means(per_example: dict, mask=None) -> tuple[dict, jax.Array]:
  """(Σ metric·w, Σ w) over the batch: w = the loss's per-example 'weight' (e.g. its number of valid tokens, so that
  sequence losses average per token) times the eval mask; 1 when absent."""
  per_example = dict(per_example)
  w = per_example.pop('weight', None)
  first = next(iter(per_example.values()))
  w = jnp.ones(first.shape[0], jnp.float32) if w is None else w.astype(jnp.float32)
  if mask is not None:
    w = w * mask
  return {k: jnp.sum(v * w) for k, v in per_example.items()}, jnp.sum(w)


def _apply(model, params, model_state, inputs, train: bool, rng, compute_dtype: str = 'float32', extra=None):
  """Runs the model; in training, mutable collections (e.g. batch_stats) come back updated."""
  mixed = jnp.dtype(compute_dtype) != jnp.float32
  extra = extra or {}
  if mixed:
    params, inputs = cast_floating(params, compute_dtype), cast_floating(inputs, compute_dtype)
    extra = cast_floating(extra, compute_dtype)
  variables = {'params': params, **model_state}
  rngs = {'dropout': rng} if train else None
  if train and model_state:
    outputs, new_state = model.apply(variables, inputs, train=True, rngs=rngs, mutable=list(model_state), **extra)
    new_state = dict(new_state)
    if mixed:  # running statistics keep their own (float32) dtype
      new_state = jax.tree.map(lambda new, old: new.astype(old.dtype), new_state, dict(model_state))
  else:
    outputs, new_state = model.apply(variables, inputs, train=train, rngs=rngs, **extra), model_state
  if mixed:
    outputs = cast_floating(outputs, jnp.float32)
  return outputs, new_state


def average_weights(avg, params, step, averaging: str, decay: float):
  """Model averaging of the weights: 'ema' θ̄ ← d·θ̄ + (1 − d)·θ; 'polyak' θ̄ₜ = (1/t)Σθ (Polyak & Juditsky 1992)."""
  if averaging == 'polyak':
    w = 1.0 / (step.astype(jnp.float32) + 1.0)
  else:
    w = 1.0 - decay
  return jax.tree.map(lambda a, p: a + w * (p - a), avg, params)


def make_train_step(model, loss_fn: Callable, tx: optax.GradientTransformation, grad_accum_steps: int = 1,
                    penalty_fn: Callable[[Any], jax.Array] | None = None, averaging: str = 'none',
                    ema_decay: float = 0.999, augment_fn: Callable | None = None, compute_dtype: str = 'float32',
                    freeze: tuple[str, ...] = ()) -> Callable[[TrainState, dict, jax.Array], tuple[TrainState, dict]]:
  """Builds `train_step(state, batch, rng) -> (state, metrics)` (metrics: batch means, plus grad_norm).

  `penalty_fn(params)` (e.g. an L1/L2 penalty) is added to the data loss; metrics report both. The optimiser
  receives the loss as `value` (optax's extra-args protocol), which reduce-on-plateau and line searches use.
  `augment_fn(rng, batch) -> batch` (jaxdl.data.augment) transforms the training batch on device, with its own key.
  `compute_dtype` 'bfloat16': mixed precision (see the module docstring).
  `freeze` (config.optimizer.freeze): the names whose parameters the optimiser leaves alone; the mutable state
  under them (BN's running statistics of a frozen trunk) stays too, so evaluation keeps the statistics the trunk was
  trained with. (The frozen layers still normalise with the batch's statistics in training; a model that runs a
  frozen part in inference mode says so, e.g. the captioners' `freeze_encoder`.)
  """
  tx = optax.with_extra_args_support(tx)
  freeze = tuple(freeze or ())

  def keep_frozen(new_state, old_state):
    if not freeze or not old_state:
      return new_state
    return jax.tree_util.tree_map_with_path(
        lambda path, new, old: old if any(f in jax.tree_util.keystr(path) for f in freeze) else new,
        new_state, dict(old_state))

  def loss_and_metrics(params, model_state, batch, rng, step):
    outputs, new_model_state = _apply(model, params, model_state, batch['inputs'], True, rng, compute_dtype,
                                      model_kwargs(model, batch, step))
    sums, count = weighted_means(loss_fn(outputs, batch))
    metrics = {k: v / jnp.maximum(count, 1e-9) for k, v in sums.items()}
    total = metrics['loss']
    if penalty_fn is not None:
      metrics['penalty'] = penalty_fn(params)
      total = total + metrics['penalty']
    return total, (metrics, new_model_state)

  grad_fn = jax.value_and_grad(loss_and_metrics, has_aux=True)

  def train_step(state: TrainState, batch: dict, rng: jax.Array):
    rng = jax.random.fold_in(rng, state.step)
    if augment_fn is not None:
      aug_rng, rng = jax.random.split(rng)
      batch = augment_fn(aug_rng, batch)
    if grad_accum_steps == 1:
      (_, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng, state.step)
    else:
      # Micro-batch i takes every k-th example of each device's shard, so no data moves between devices.
      k = grad_accum_steps
      micro = jax.tree.map(lambda x: jnp.moveaxis(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 1, 0), batch)

      def body(carry, inp):
        grads_acc, model_state = carry
        i, mb = inp
        (_, (m, model_state)), g = grad_fn(state.params, model_state, mb, jax.random.fold_in(rng, i), state.step)
        return (jax.tree.map(jnp.add, grads_acc, g), model_state), m

      zeros = jax.tree.map(jnp.zeros_like, state.params)
      (grads, model_state), ms = jax.lax.scan(body, (zeros, state.model_state), (jnp.arange(k), micro))
      grads = jax.tree.map(lambda g: g / k, grads)
      metrics = jax.tree.map(jnp.mean, ms)
    updates, opt_state = tx.update(grads, state.opt_state, state.params, value=metrics['loss'] + metrics.get('penalty', 0.0))
    params = optax.apply_updates(state.params, updates)
    metrics['grad_norm'] = optax.global_norm(grads)
    avg = state.avg_params
    if averaging != 'none':
      avg = average_weights(avg, params, state.step + 1, averaging, ema_decay)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=keep_frozen(model_state, state.model_state), avg_params=avg)
    return new_state, metrics

  return train_step


def make_eval_step(model, loss_fn: Callable, compute_dtype: str = 'float32') -> Callable[[TrainState, dict], dict[str, Any]]:
  """Builds `eval_step(state, batch) -> sums`: masked sums of every per-example metric, and 'count'.
  With averaged weights in the state, their metrics come too, prefixed 'avg_'."""

  def sums_for(params, state, batch):
    outputs, _ = _apply(model, params, state.model_state, batch['inputs'], False, None, compute_dtype,
                        model_kwargs(model, batch))
    return weighted_means(loss_fn(outputs, batch), batch.get('mask'))

  def eval_step(state: TrainState, batch: dict):
    sums, count = sums_for(state.params, state, batch)
    if state.avg_params is not None:
      avg, _ = sums_for(state.avg_params, state, batch)
      sums.update({f'avg_{k}': v for k, v in avg.items()})
    sums['count'] = count
    return sums

  return eval_step
