"""Config -> optax chain. Every optimiser is an optax `GradientTransformation` built by name.

`config.optimizer = {name, learning_rate, <optimiser kwargs>, <generic keys>}`. The generic keys wrap any optimiser:

  clip_value        clip each gradient component to [−c, c]                        (0: off)
  clip_global_norm  rescale the gradient to global norm ≤ c (Pascanu et al. 2013)   (0: off)
  l2                COUPLED L2: g ← g + λθ before the optimiser, i.e. the gradient of a (λ/2)‖θ‖² penalty;
                    an adaptive optimiser then rescales it with the rest of the gradient
  weight_decay      DECOUPLED weight decay (Loshchilov & Hutter 2019): u ← u − ε_t λθ added to the optimiser's update
                    after its adaptive scaling (ε_t: the schedule). For `adamw` it is adamw's own argument, so
                    `adam` + weight_decay ≡ `adamw`. For plain SGD, l2 = λ and weight_decay = λ give the same iterates
                    (also = config.loss.l2 = λ, which penalises the weights only: use decay_mask='weights')
  decay_mask        'all' (default, as optax / PyTorch) or 'weights' (kernels only: no biases or norm scales)
  max_norm          after the update, project every weight column (the fan-in vector of one unit) onto ‖w‖ ≤ c
                    (Srebro & Shraibman 2005; Hinton et al. 2012 with dropout; seed 001 "Max-Norm", c ≈ 3–4) (0: off)
  schedule, schedule_kwargs, warmup_steps   the learning-rate schedule (jaxdl.optim.schedules)
  freeze            names: parameters whose path contains one get no update
  lr_multipliers    {name: m} (or ((name, m), ...)): parameters whose path contains `name` move m× as far (their
                    updates are scaled by m, i.e. the learning rate for SGD/Adam); first matching name wins. With
                    `freeze` this is fine-tuning with per-layer learning rates (optax.multi_transform)

Chain order: clip_value → clip_global_norm → l2 → optimiser(ε_t) → weight_decay → reduce-on-plateau → max_norm,
inside `freeze`'s partition. Optimisers and their kwargs (the update rules of seed 000 / seed 004 V.1):

  sgd        θ ← θ − ε∇J
  momentum   v ← μv − ε∇J; θ ← θ + v                                   momentum μ (notes' form, ε inside the trace)
  nesterov   Sutskever et al. (2013): θ̄ = θ + μv; v ← μv − ε∇J(θ̄); θ ← θ + v. The parameters the trainer holds
             are the look-ahead points θ̄ (the only way a transform can get ∇J(θ̄)); θ = θ̄ − μv, v = the trace state.
  adagrad    r ← r + g⊙g; θ ← θ − ε g/(δ + √r)                          eps δ, initial_accumulator_value
  adadelta   Zeiler (2012): E[g²] ← ρE[g²] + (1−ρ)g²; Δ = −√(E[Δ²]+δ)/√(E[g²]+δ) g; E[Δ²] ← ρE[Δ²] + (1−ρ)Δ²; θ ← θ + εΔ
             (ε = 1 in the paper)                                        rho, eps
  rmsprop    r ← ρr + (1−ρ)g⊙g; θ ← θ − ε g/(δ + √r) (± momentum: v ← μv − ε g/(δ+√r); θ ← θ + v; centered: Graves 2013)
  adam       m, v moving averages; m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ); θ ← θ − ε m̂/(δ + √v̂)        b1, b2, eps
  adamw      adam + decoupled weight decay                               b1, b2, eps, weight_decay
  nadam      Dozat (2016): adam with m̂ = β₁m_t/(1−β₁^{t+1}) + (1−β₁)g_t/(1−β₁ᵗ)       b1, b2, eps
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxdl.errors import UserError
from jaxdl.optim.schedules import build_schedule
from jaxdl.registry import OPTIMIZERS, check_kwargs

GENERIC_KEYS = ('name', 'learning_rate', 'schedule', 'schedule_kwargs', 'warmup_steps', 'clip_global_norm',
                'clip_value', 'l2', 'weight_decay', 'decay_mask', 'max_norm', 'freeze', 'lr_multipliers')
_NONNEG_KEYS = ('clip_global_norm', 'clip_value', 'l2', 'weight_decay', 'max_norm')


# ----------------------------------------------------------------------------- transforms optax does not have
class ScaleByAdagradState(NamedTuple):
  sum_of_squares: Any


def scale_by_adagrad(eps: float = 1e-7, initial_accumulator_value: float = 0.0) -> optax.GradientTransformation:
  """r ← r + g⊙g; u = g/(δ + √r) (Duchi et al. 2011 as in seed 000; optax.scale_by_rss puts δ under the root)."""

  def init_fn(params):
    return ScaleByAdagradState(jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params))

  def update_fn(updates, state, params=None):
    del params
    r = jax.tree.map(lambda s, g: s + g * g, state.sum_of_squares, updates)
    updates = jax.tree.map(lambda g, s: g / (eps + jnp.sqrt(s)), updates, r)
    return updates, ScaleByAdagradState(r)

  return optax.GradientTransformation(init_fn, update_fn)


class DecoupledWeightDecayState(NamedTuple):
  count: jax.Array


def decoupled_weight_decay(rate: float, schedule: Callable[[Any], Any]) -> optax.GradientTransformation:
  """u ← u − ε_t λθ, added to the optimiser's (already scaled) update: AdamW/SGDW's decay (Loshchilov & Hutter 2019).

  ε_t = schedule(t), so the decay follows the learning rate as in optax.adamw and torch.optim.AdamW (the paper's
  λ_paper = ε·λ here, its η_t is the schedule's shape)."""

  def init_fn(params):
    del params
    return DecoupledWeightDecayState(jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(optax._src.base.NO_PARAMS_MSG)  # pylint: disable=protected-access
    lr = schedule(state.count)
    updates = jax.tree.map(lambda u, p: u - lr * rate * p, updates, params)
    return updates, DecoupledWeightDecayState(optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def _column_norms(w):
  """Norm of every column: over all axes but the last (Dense (in, out): per unit; Conv (h, w, in, out): per filter)."""
  return jnp.sqrt(jnp.sum(w * w, axis=tuple(range(w.ndim - 1)), keepdims=True))


def max_norm_projection(max_norm: float) -> optax.GradientTransformation:
  """After the update, θ_new = Π(θ + u): every weight column with ‖w‖ > c is rescaled to norm c (max-norm
  constraint, Srebro & Shraibman 2005; Srivastava et al. 2014 §5.1). Leaves with ndim < 2 (biases) are left alone.
  Returned as the update u' = Π(θ + u) − θ, so it needs params."""

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(optax._src.base.NO_PARAMS_MSG)  # pylint: disable=protected-access

    def project(u, p):
      if p.ndim < 2:
        return u
      new = p + u
      norms = _column_norms(new)
      return new * jnp.minimum(1.0, max_norm / jnp.maximum(norms, 1e-12)) - p

    return jax.tree.map(project, updates, params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


# ----------------------------------------------------------------------------------------------- optimisers
@OPTIMIZERS.register('sgd',
                     description='θ ← θ − ε∇J')
def sgd(learning_rate):
  """θ ← θ − ε∇J."""
  return optax.sgd(learning_rate)


@OPTIMIZERS.register('momentum',
                     description='v ← μv − ε∇J; θ ← θ + v (momentum)')
def momentum(learning_rate, *, momentum: float = 0.9):
  """v ← μv − ε∇J; θ ← θ + v (seed 000): ε is applied before the trace, so a schedule changes only new terms.
  (optax.sgd(momentum=μ) traces g and scales after: the same iterates for a constant ε.)"""
  return optax.chain(optax.scale_by_learning_rate(learning_rate), optax.trace(decay=momentum))


@OPTIMIZERS.register('nesterov',
                     description='Nesterov momentum, Sutskever et al. 2013 (momentum)')
def nesterov(learning_rate, *, momentum: float = 0.9):
  """Nesterov momentum, Sutskever et al. (2013) form (seed 000), in the look-ahead variable θ̄ = θ + μv:
  with v ← μv − ε∇J(θ̄) (the trace), θ̄ ← θ̄ + μv_new − ε∇J(θ̄) — which is optax's nesterov trace. The held
  parameters are θ̄; the notes' θ is θ̄ − μv (the same limit, v → 0)."""
  return optax.chain(optax.scale_by_learning_rate(learning_rate), optax.trace(decay=momentum, nesterov=True))


@OPTIMIZERS.register('adagrad',
                     description='r ← r + g²; θ ← θ − εg/(δ + √r) (eps, initial_accumulator_value)')
def adagrad(learning_rate, *, initial_accumulator_value: float = 0.0, eps: float = 1e-7):
  """r ← r + g⊙g; θ ← θ − ε g/(δ + √r) (Duchi et al. 2011)."""
  return optax.chain(scale_by_adagrad(eps, initial_accumulator_value), optax.scale_by_learning_rate(learning_rate))


@OPTIMIZERS.register('adadelta', example_learning_rate=1.0, example_steps=50,
                     description="Zeiler 2012; learning_rate 1 is the paper's (rho, eps)")
def adadelta(learning_rate, *, rho: float = 0.9, eps: float = 1e-6):
  """Zeiler (2012), Algorithm 1 (learning_rate = 1 is the paper's)."""
  return optax.adadelta(learning_rate, rho=rho, eps=eps)


@OPTIMIZERS.register('rmsprop',
                     description='r ← ρr + (1−ρ)g²; θ ← θ − εg/(δ + √r) (decay, eps, momentum, centered)')
def rmsprop(learning_rate, *, decay: float = 0.9, eps: float = 1e-8, momentum: float = 0.0, centered: bool = False):
  """r ← ρr + (1−ρ)g⊙g; θ ← θ − ε g/(δ + √r) (Hinton, Coursera lecture 6e); momentum μ > 0: v ← μv − ε g/(δ+√r)."""
  return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=False, centered=centered,
                       momentum=momentum or None)


@OPTIMIZERS.register('adam',
                     description='Kingma & Ba 2015, bias-corrected (b1, b2, eps)')
def adam(learning_rate, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  """Kingma & Ba (2015), bias-corrected: θ ← θ − ε m̂/(δ + √v̂)."""
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


@OPTIMIZERS.register('adamw',
                     description='Adam + decoupled weight decay, Loshchilov & Hutter 2019 (b1, b2, eps, weight_decay)')
def adamw(learning_rate, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-4,
          mask=None):
  """Adam with decoupled weight decay: θ ← θ − ε(m̂/(δ + √v̂) + λθ) (Loshchilov & Hutter 2019)."""
  return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=mask)


@OPTIMIZERS.register('nadam',
                     description='Adam with Nesterov momentum, Dozat 2016 (b1, b2, eps)')
def nadam(learning_rate, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  """Dozat (2016): Adam with a Nesterov look-ahead on the first moment."""
  return optax.nadam(learning_rate, b1=b1, b2=b2, eps=eps)


# ------------------------------------------------------------------------------------------------- building
def _accepted(fn) -> set[str]:
  return {k for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY and k != 'mask'}


def optimizer_kwargs(name: str) -> dict[str, Any]:
  """The optimiser's own config keys (besides the generic ones), with their defaults."""
  fn = OPTIMIZERS.get(name)
  return {k: p.default for k, p in inspect.signature(fn).parameters.items()
          if p.kind == p.KEYWORD_ONLY and k != 'mask' and p.default is not inspect.Parameter.empty}


def _split(opt_config):
  cfg = dict(opt_config)
  fn = OPTIMIZERS.get(cfg['name'])
  own = {k: v for k, v in cfg.items() if k not in GENERIC_KEYS}
  check_kwargs('optimizer', own, _accepted(fn), f"optimizer {cfg['name']!r} (generic keys: {', '.join(GENERIC_KEYS)})")
  return cfg, fn, own


def _decay_mask(kind: str):
  if kind == 'all':
    return None
  if kind == 'weights':
    from jaxdl.losses import is_weight  # pylint: disable=g-import-not-at-top
    return lambda params: jax.tree_util.tree_map_with_path(lambda path, _: is_weight(path), params)
  raise UserError(f'config.optimizer.decay_mask={kind!r} is unknown', "'all' or 'weights'",
                  'fix config.optimizer.decay_mask')


def check_config(opt_config, num_steps: int) -> None:
  build_optimizer(opt_config, num_steps)


def build_optimizer(opt_config, num_steps: int) -> tuple[optax.GradientTransformation, Any]:
  """Returns (optax chain, learning-rate schedule t -> ε_t). With schedule 'plateau' the chain also holds
  optax.contrib.reduce_on_plateau, which needs `value=loss` in `update` (the train step passes it); the returned
  schedule is then the base ε₀ (the current factor is the `scale` in the optimiser state)."""
  cfg, fn, own = _split(opt_config)
  for key in _NONNEG_KEYS:
    v = cfg.get(key, 0) or 0
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
      raise UserError(f'config.optimizer.{key}={v!r} is impossible', 'a number >= 0 (0 disables it)',
                      f'fix config.optimizer.{key}')
  schedule, plateau = build_schedule(cfg, num_steps)
  mask = _decay_mask(cfg.get('decay_mask', 'all') or 'all')
  parts = []
  if cfg.get('clip_value'):
    parts.append(optax.clip(cfg['clip_value']))
  if cfg.get('clip_global_norm'):
    parts.append(optax.clip_by_global_norm(cfg['clip_global_norm']))
  if cfg.get('l2'):
    parts.append(optax.add_decayed_weights(cfg['l2'], mask))     # coupled: ∇[(λ/2)‖θ‖²] = λθ joins the gradient
  wd = cfg.get('weight_decay', None)
  if 'weight_decay' in _accepted(fn):                              # adamw: its own decoupled decay
    if wd is not None:
      own['weight_decay'] = wd
    parts.append(fn(schedule, mask=mask, **own))
  else:
    parts.append(fn(schedule, **own))
    if wd:
      decay = decoupled_weight_decay(wd, schedule)
      parts.append(decay if mask is None else optax.masked(decay, mask))
  if plateau is not None:
    parts.append(plateau)
  if cfg.get('max_norm'):
    parts.append(max_norm_projection(cfg['max_norm']))
  tx = optax.chain(*parts)
  return partition(tx, tuple(cfg.get('freeze', ()) or ()), _multipliers(cfg.get('lr_multipliers', ()))), schedule


def _multipliers(spec) -> tuple[tuple[str, float], ...]:
  if hasattr(spec, 'to_dict'):
    spec = spec.to_dict()
  items = list(spec.items()) if isinstance(spec, dict) else list(spec or ())
  out = []
  for item in items:
    ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str) and isinstance(
        item[1], (int, float)) and not isinstance(item[1], bool) and item[1] >= 0
    if not ok:
      raise UserError(f'config.optimizer.lr_multipliers entry {item!r}', 'name: multiplier >= 0 pairs, e.g. '
                      "{'head': 10.0} or (('head', 10.0),)", 'fix config.optimizer.lr_multipliers')
    out.append((item[0], float(item[1])))
  return tuple(out)


def param_labels(params, freeze: tuple[str, ...] = (), multipliers: tuple[tuple[str, float], ...] = ()):
  """The partition used by `partition`: 'frozen', 'lr{i}' (the i-th multiplier) or 'train' for every leaf.
  A leaf matches a name when its path (jax keystr, e.g. "['head']['kernel']") contains it; freeze wins."""
  def label(path, _):
    key = jax.tree_util.keystr(path)
    if any(f in key for f in freeze):
      return 'frozen'
    for i, (name, _m) in enumerate(multipliers):
      if name in key:
        return f'lr{i}'
    return 'train'
  return jax.tree_util.tree_map_with_path(label, params)


def partition(tx: optax.GradientTransformation, freeze: tuple[str, ...] = (),
              multipliers: tuple[tuple[str, float], ...] = ()) -> optax.GradientTransformation:
  """`tx` on the trainable parameters, no update for the frozen ones (e.g. RBF centres in phase 2, a pretrained
  trunk in transfer learning), `tx` followed by ×m for those with a learning-rate multiplier m. Each group keeps
  its own optimiser state (optax.multi_transform)."""
  if not freeze and not multipliers:
    return tx
  transforms = {'train': tx, 'frozen': optax.set_to_zero()}
  for i, (_, m) in enumerate(multipliers):
    transforms[f'lr{i}'] = optax.set_to_zero() if m == 0 else optax.chain(tx, optax.scale(m))
  return optax.multi_transform(transforms, lambda params: param_labels(params, freeze, multipliers))
  return tx, schedule


def run_path(loss_fn: Callable[[Any], jax.Array], params, tx: optax.GradientTransformation, num_steps: int):
  """Full-batch optimisation of `loss_fn` with `tx` for plots and checks: (final params, path (num_steps + 1, n) of
  the flattened iterates, losses (num_steps + 1,)). The loss is passed as `value` like the train step does."""
  from jax.flatten_util import ravel_pytree  # pylint: disable=g-import-not-at-top
  tx = optax.with_extra_args_support(tx)
  flat0, unravel = ravel_pytree(params)
  value_and_grad = jax.value_and_grad(loss_fn)

  def body(carry, _):
    p, s = carry
    loss, g = value_and_grad(p)
    u, s = tx.update(g, s, p, value=loss)
    p = optax.apply_updates(p, u)
    return (p, s), (ravel_pytree(p)[0], loss_fn(p))

  @jax.jit
  def run(p):
    (p, _), (path, losses) = jax.lax.scan(body, (p, tx.init(p)), None, length=num_steps)
    return p, path, losses

  p, path, losses = run(params)
  return p, jnp.concatenate([flat0[None], path]), jnp.concatenate([loss_fn(params)[None], losses])
