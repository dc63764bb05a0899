"""Losses by name. A loss maps (model outputs, batch) to PER-EXAMPLE values: {'loss': [B], other metrics: [B]}.

Per-example values let one code path average a training batch and sum a padded evaluation batch (with its
mask). Configs choose with `config.loss.name` and the loss's keyword arguments.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl.registry import LOSSES, check_kwargs

LossFn = Callable[[jax.Array, dict], dict]


@LOSSES.register('softmax_cross_entropy', task='classification')
def softmax_cross_entropy(outputs, batch, *, label_smoothing: float = 0.0):
  """−Σ_k t_k log softmax(o)_k, from logits with log-sum-exp (finite for any logits); reports accuracy.

  Targets are integer labels (B,) — t is their one-hot — or a distribution (B, K) such as mixup's soft targets
  (accuracy is then judged against their argmax). A model returning {'logits', 'paddings'} (a CTC acoustic model)
  is scored on its logits (frame classification).
  """
  if isinstance(outputs, dict):
    outputs = outputs['logits']
  targets = batch['targets']
  num_classes = outputs.shape[-1]
  if targets.ndim == outputs.ndim and targets.shape[-1] == num_classes:
    dist = targets.astype(outputs.dtype)
    labels = jnp.argmax(targets, -1)
  else:
    labels = targets.astype(jnp.int32)
    dist = jax.nn.one_hot(labels, num_classes, dtype=outputs.dtype)
  if label_smoothing:
    # Szegedy et al. 2016: targets 1 − α(k−1)/k for the label, α/k elsewhere.
    dist = optax.smooth_labels(dist, label_smoothing)
  loss = optax.softmax_cross_entropy(outputs, dist)
  acc = (jnp.argmax(outputs, -1) == labels).astype(jnp.float32)
  # Per-step outputs (B, T, K) with targets (B, T): the mean over steps per sequence, so the batch mean is the
  # mean over batch × time (every sequence has T steps).
  if 'targets_paddings' in batch:
    # Variable-length targets (jaxdl.data.buckets): the mean over each sequence's valid steps, and its number of
    # valid steps as the example's weight, so the trainer's weighted mean is the mean over all valid tokens.
    valid = 1.0 - batch['targets_paddings'].astype(loss.dtype)
    n = valid.reshape(valid.shape[0], -1).sum(-1)
    per_seq = lambda v: (v * valid).reshape(v.shape[0], -1).sum(-1) / jnp.maximum(n, 1.0)
    return {'loss': per_seq(loss), 'accuracy': per_seq(acc), 'weight': n}
  return {'loss': _per_example(loss), 'accuracy': _per_example(acc)}


def _per_example(v):
  """[B, ...] -> [B]: the mean over every axis but the batch axis."""
  return v if v.ndim <= 1 else v.reshape(v.shape[0], -1).mean(-1)


CTC_REDUCTIONS = ('utterance', 'token')


@LOSSES.register('ctc', task='classification')
def ctc(outputs, batch, *, reduction: str = 'utterance', blank: int = 0):
  """CTC loss −log p(y|x) (Graves et al. 2006; seed 000 "CTC TRAINING") via jaxdl.speech.ctc.ctc_loss.

  `outputs` = {'logits': [B, T', K], 'paddings': [B, T']} (a CTC model such as jaxdl.models.deepspeech: the output
  frames' paddings follow its time strides); batch['targets'] [B, N] label ids (no blank) right-padded, and
  batch['targets_paddings'] [B, N]. Per example: 'loss' (utterance: −log p(y|x); token: −log p(y|x) / |y|),
  'weight' (utterance: 1; token: |y|; 0 for infeasible utterances — too few frames for the label and its repeats —
  so they drop out of the mean with zero gradient), and 'infeasible': the number of infeasible utterances of the
  batch (eval mask applied) spread over the batch's weight, so the trainer's weighted mean reports
  #infeasible / Σ weight — with the 'utterance' reduction: infeasible per feasible utterance (≈ the fraction).
  """
  from jaxdl.errors import UserError  # pylint: disable=g-import-not-at-top
  from jaxdl.speech.ctc import ctc_loss  # pylint: disable=g-import-not-at-top
  if reduction not in CTC_REDUCTIONS:
    raise UserError(f'config.loss.reduction={reduction!r}', f'one of {CTC_REDUCTIONS}', 'fix --config.loss.reduction')
  if not isinstance(outputs, dict) or 'paddings' not in outputs:
    raise UserError('the ctc loss needs the model\'s output paddings', "a model returning {'logits', 'paddings'} "
                    '(e.g. ds2_small)', 'use a CTC model (jaxdl/models/deepspeech.py)')
  if 'targets_paddings' not in batch:
    raise UserError('the ctc loss needs batch["targets_paddings"]', 'variable-length targets (a RaggedSource with '
                    'ragged targets)', 'use a speech dataset')
  logits = outputs['logits'].astype(jnp.float32)
  r = ctc_loss(logits, outputs['paddings'].astype(jnp.float32), batch['targets'].astype(jnp.int32),
               batch['targets_paddings'].astype(jnp.float32), blank=blank, reduction='none')
  feasible = r['feasible']
  if reduction == 'token':
    weight = r['num_tokens']
    loss = r['loss'] / jnp.maximum(weight, 1.0)
  else:
    weight, loss = feasible, r['loss']
  mask = batch.get('mask')
  bad = (1.0 - feasible) * (1.0 if mask is None else mask.astype(jnp.float32))
  spread = jnp.sum(bad) / jnp.maximum(jnp.sum(weight * (1.0 if mask is None else mask.astype(jnp.float32))), 1e-9)
  return {'loss': loss, 'infeasible': jnp.full_like(loss, spread), 'weight': weight}


@LOSSES.register('sigmoid_binary_cross_entropy', task='classification')
def sigmoid_binary_cross_entropy(outputs, batch):
  """Binary cross entropy from one logit per example (targets in {0, 1})."""
  logits = outputs.reshape(outputs.shape[0], -1)[:, 0]
  targets = batch['targets'].reshape(logits.shape).astype(logits.dtype)
  loss = optax.sigmoid_binary_cross_entropy(logits, targets)
  return {'loss': loss, 'accuracy': ((logits > 0) == (targets > 0.5)).astype(jnp.float32)}


@LOSSES.register('squared_error', task='regression')
def squared_error(outputs, batch, *, scale: float = 1.0):
  """The course's L2 loss L(y, f(x)) = scale·‖y − f(x)‖² (scale 1/2 gives the textbook ½‖·‖²)."""
  y = batch['targets'].reshape(outputs.shape).astype(outputs.dtype)
  err = jnp.sum(jnp.reshape((outputs - y) ** 2, (outputs.shape[0], -1)), axis=-1)
  return {'loss': scale * err, 'mse': err / max(1, outputs[0].size)}


PENALTY_KEYS = ('l1', 'l2')   # config.loss.l1 / l2: α of the notes' α‖θ‖₁ and (α/2)‖θ‖₂² on the weights


def check_config(loss_config) -> None:
  cfg = {k: v for k, v in dict(loss_config).items() if k not in PENALTY_KEYS}
  fn = LOSSES.get(cfg.pop('name'))
  check_kwargs('loss', cfg, {k for k in _kwonly(fn)} ,
               f'loss {loss_config.name!r} (generic keys: {", ".join(PENALTY_KEYS)})')
  for k in PENALTY_KEYS:
    if float(loss_config.get(k, 0.0)) < 0:
      from jaxdl.errors import UserError  # pylint: disable=g-import-not-at-top
      raise UserError(f'config.loss.{k}={loss_config[k]} is negative', 'a coefficient >= 0', f'fix config.loss.{k}')


def is_weight(path) -> bool:
  """Penalties apply to weights (kernels, embeddings), not to biases or normalisation scales (course convention)."""
  name = jax.tree_util.keystr(path)
  return not any(s in name for s in ("'bias'", "'scale'", "'mean'", "'var'"))


def build_penalty(loss_config):
  """params -> l1·Σ|w| + (l2/2)·Σw² over the weights (seed 000 "Regularization": ∇ = α sign(θ), αθ), or None."""
  l1, l2 = float(loss_config.get('l1', 0.0)), float(loss_config.get('l2', 0.0))
  if not (l1 or l2):
    return None

  def penalty(params):
    leaves = [x for p, x in jax.tree_util.tree_flatten_with_path(params)[0] if is_weight(p)]
    total = 0.0
    if l1:
      total += l1 * sum(jnp.sum(jnp.abs(x)) for x in leaves)
    if l2:
      total += 0.5 * l2 * sum(jnp.sum(x * x) for x in leaves)
    return total
  return penalty


def loss_kwargs(name: str) -> dict:
  """The config keys a registered loss accepts (its keyword-only arguments), with their defaults."""
  import inspect  # pylint: disable=g-import-not-at-top
  return {k: p.default for k, p in inspect.signature(LOSSES.get(name)).parameters.items() if p.kind == p.KEYWORD_ONLY}


def _kwonly(fn):
  import inspect  # pylint: disable=g-import-not-at-top
  return [k for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY]


def build_loss(loss_config) -> LossFn:
  check_config(loss_config)
  cfg = {k: v for k, v in dict(loss_config).items() if k not in PENALTY_KEYS}
  return with_aux_loss(functools.partial(LOSSES.get(cfg.pop('name')), **cfg))


def with_aux_loss(loss_fn: LossFn) -> LossFn:
  """Auxiliary loss terms from the model: outputs {'logits', ..., 'aux_loss': [B]} (e.g. show-attend-tell's doubly
  stochastic penalty, Xu et al. 2016 eq. 14) add aux_loss to each example's loss — divided by its 'weight' when the
  loss weights examples (per-token means), so the batch loss is (Σ token losses + Σ aux) / Σ tokens — reported as
  'aux_loss' too. Other outputs pass through unchanged."""
  def loss(outputs, batch):
    metrics = loss_fn(outputs, batch)
    if isinstance(outputs, dict) and 'aux_loss' in outputs:
      aux = outputs['aux_loss'].astype(metrics['loss'].dtype)
      if 'weight' in metrics:
        aux = aux / jnp.maximum(metrics['weight'], 1.0)
      metrics = {**metrics, 'loss': metrics['loss'] + aux, 'aux_loss': aux}
    return metrics
  return loss


@LOSSES.register('distillation', task='classification')
def distillation(outputs, batch, *, teacher: str = '', temperature: float = 4.0, alpha: float = 0.5):
  """Knowledge distillation (Hinton et al. 2015): α·CE(y, s) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T)).

  `teacher` is the workdir of a trained run; the loop puts its logits in batch['teacher_logits'] (no gradient).
  The T² factor keeps the soft-target gradients on the scale of the hard ones.
  """
  del teacher
  hard = softmax_cross_entropy(outputs, batch)
  t = jax.lax.stop_gradient(batch['teacher_logits']) / temperature
  s_log = jax.nn.log_softmax(outputs / temperature)
  p_t = jax.nn.softmax(t)
  kl = jnp.sum(p_t * (jax.nn.log_softmax(t) - s_log), axis=-1)
  return {'loss': alpha * hard['loss'] + (1 - alpha) * temperature ** 2 * kl, 'accuracy': hard['accuracy'],
          'soft_kl': kl}


def _signed(targets, n):
  """Binary targets as ±1 (accepts {0, 1} or {−1, +1})."""
  t = targets.reshape(n).astype(jnp.float32)
  return jnp.where(t > 0, 1.0, -1.0)


@LOSSES.register('perceptron', task='classification')
def perceptron(outputs, batch):
  """The perceptron criterion J(w) = max(0, −y wᵀφ(x)) with the course's g(0) = +1 (seed 000, "Various facts").

  Written as −y·s on misclassified samples (ŷ = g(s) ≠ y) and 0 elsewhere, so SGD with learning rate 1 and batch 1
  is exactly the online rule w ← w + ½(y − ŷ)φ(x), including the tie s = 0.
  """
  s = outputs.reshape(outputs.shape[0], -1)[:, 0]
  y = _signed(batch['targets'], s.shape[0])
  y_hat = jnp.where(s >= 0, 1.0, -1.0)
  wrong = y_hat != y
  return {'loss': jnp.where(wrong, -y * s, 0.0), 'accuracy': 1.0 - wrong.astype(jnp.float32)}


@LOSSES.register('multiclass_hinge', task='classification')
def multiclass_hinge(outputs, batch, *, margin: float = 1.0):
  """Weston–Watkins multiclass hinge Σ_{k≠y} max(0, s_k − s_y + Δ) (course F19, Δ = 1)."""
  labels = batch['targets'].astype(jnp.int32)
  s_y = jnp.take_along_axis(outputs, labels[:, None], axis=-1)
  terms = jnp.maximum(0.0, outputs - s_y + margin)
  terms = terms * (1.0 - jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype))
  return {'loss': jnp.sum(terms, -1), 'accuracy': (jnp.argmax(outputs, -1) == labels).astype(jnp.float32)}


@LOSSES.register('sigmoid_squared_error', task='classification')
def sigmoid_squared_error(outputs, batch):
  """½(σ(o) − y)²: the L2 loss on a sigmoid the course warns against (its gradient vanishes when very wrong)."""
  logits = outputs.reshape(outputs.shape[0], -1)[:, 0]
  targets = batch['targets'].reshape(logits.shape).astype(logits.dtype)
  p = jax.nn.sigmoid(logits)
  return {'loss': 0.5 * (p - targets) ** 2, 'accuracy': ((logits > 0) == (targets > 0.5)).astype(jnp.float32)}
