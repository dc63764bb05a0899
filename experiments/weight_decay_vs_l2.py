"""Weight decay vs an L2 penalty: the same thing for SGD, not for Adam (AdamW ≠ Adam + L2).

Reproduces: T10 (seed 001 "Weight decay is similar to L2-norm (often confused) … analogous to L2-norm for SGD, not for
            adaptive optimizers"; Loshchilov & Hutter 2019).
Mapping:    penalty (α/2)‖w‖² (config.loss.l2 = α, or config.optimizer.l2 = α: coupled, ∇ += αw before the optimiser)
            ≡ for SGD config.optimizer.weight_decay = α (decoupled, u −= εαw after the optimiser): both give
            w ← (1 − εα)w − ε∇J, the multiplicative decay (1 − λ') with λ' = εα. A penalty written α‖w‖² maps to 2α.
            For Adam no λ makes them equal: Adam + L2 decays w by ε·m̂_pen/(√v̂ + δ) — divided by the gradient
            history, so weights with large gradients are barely regularised — AdamW by ελw, uniformly.
            decay_mask = 'weights' makes the optimiser-side keys decay the same leaves as config.loss.l2 (no biases).
Command:    jaxdl reproduce weight_decay_vs_l2 --out=report/
            jaxdl train --config=experiments/weight_decay_vs_l2.py --workdir=runs/weight_decay_vs_l2   (AdamW, digits)
Expected:   SGD: coupled and decoupled iterates equal to float rounding (relative difference ~1e-7, < 1e-5);
            Adam + L2 vs AdamW: parameters differ by ≳10% after a few hundred steps, while Adam + optimizer.l2 =
            Adam + loss.l2 and Adam + weight_decay = AdamW (< 1e-5). Same on a digits MLP through the trainer.
CPU time:   ≈ 30 s for `reproduce`, ≈ 5 s for `train`.
"""
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
import optax

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.optim import build_optimizer
from jaxdl.optim.chains import run_path
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'T10': Claim('T10', 'weight decay ≡ L2 penalty for SGD, not for Adam (AdamW differs from Adam+L2)', '001',
                 'softmax regression on digits (full batch, 300 steps) and an MLP on digits through the trainer: '
                 'SGD coupled vs decoupled max relative parameter difference < 1e-5 (chain) / < 1e-4 (trainer); '
                 'Adam+L2 vs AdamW > 1e-2 in both, with Adam+l2 = Adam+loss.l2 and Adam+weight_decay = AdamW < 1e-5'),
}
LAM = 1e-2


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (64,)
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'adamw'
  c.optimizer.learning_rate = 3e-3
  c.optimizer.weight_decay = LAM
  c.optimizer.decay_mask = 'weights'
  c.train.num_steps = 500
  c.train.batch_size = 64
  c.train.eval_every = 0
  c.train.checkpoint_every = 0
  c.train.log_every = 100
  c.train.best_metric = ''
  return c


def _rel(a, b):
  """Max over leaves of ‖a − b‖∞ / ‖b‖∞."""
  return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def reproduce(ctx):
  x, y = data_lib.split_arrays(data_lib.get_dataset(ml_collections.ConfigDict({'name': 'digits'})), 'train')
  x = jnp.asarray(x.reshape(len(x), -1), jnp.float32)
  onehot = jax.nn.one_hot(jnp.asarray(y), 10)

  def data_loss(p):
    return jnp.mean(optax.softmax_cross_entropy(x @ p['dense']['kernel'] + p['dense']['bias'], onehot))

  def penalised(p):   # config.loss.l2 = λ: (λ/2)‖W‖² on the weights only
    return data_loss(p) + 0.5 * LAM * jnp.sum(p['dense']['kernel'] ** 2)

  p0 = {'dense': {'kernel': 0.01 * jax.random.normal(jax.random.PRNGKey(0), (x.shape[1], 10)), 'bias': jnp.zeros(10)}}
  steps, runs = 300, {}
  for opt, lr in (('sgd', 0.05), ('adam', 1e-2)):
    base = {'name': opt, 'learning_rate': lr, 'decay_mask': 'weights'}
    variants = {'loss.l2': (penalised, base), 'optimizer.l2': (data_loss, dict(base, l2=LAM)),
                'optimizer.weight_decay': (data_loss, dict(base, weight_decay=LAM))}
    if opt == 'adam':
      variants['adamw'] = (data_loss, dict(base, name='adamw', weight_decay=LAM))
    for k, (fn, cfg) in variants.items():
      tx, _ = build_optimizer(ml_collections.ConfigDict(cfg), steps)
      params, path, losses = run_path(fn, p0, tx, steps)
      runs[opt, k] = (params, np.asarray(path), np.asarray(losses))
  sgd_diff = max(_rel(runs['sgd', k][0], runs['sgd', 'loss.l2'][0]) for k in ('optimizer.l2', 'optimizer.weight_decay'))
  adam_same_l2 = _rel(runs['adam', 'optimizer.l2'][0], runs['adam', 'loss.l2'][0])
  adam_same_wd = _rel(runs['adam', 'optimizer.weight_decay'][0], runs['adam', 'adamw'][0])
  adam_diff = _rel(runs['adam', 'adamw'][0], runs['adam', 'loss.l2'][0])
  fig = _figure(ctx, runs, x.shape[1])

  # The same through the trainer: an MLP on digits, same seed and data order.
  finals, accs = {}, {}
  for name, opt in (('sgd_loss_l2', {'name': 'sgd', 'learning_rate': 0.1}),
                    ('sgd_weight_decay', {'name': 'sgd', 'learning_rate': 0.1, 'weight_decay': LAM}),
                    ('adam_loss_l2', {'name': 'adam', 'learning_rate': 3e-3}),
                    ('adamw', {'name': 'adamw', 'learning_rate': 3e-3, 'weight_decay': LAM})):
    c = get_config()
    c.optimizer = ml_collections.ConfigDict(dict(opt, decay_mask='weights'))
    if name.endswith('loss_l2'):
      c.loss.l2 = LAM
    summary, state = ctx.train(c, name, return_state=True)
    finals[name], accs[name] = state.params, summary['eval']['accuracy']
  t_sgd = _rel(finals['sgd_weight_decay'], finals['sgd_loss_l2'])
  t_adam = _rel(finals['adamw'], finals['adam_loss_l2'])
  norm = lambda p: float(jnp.sqrt(sum(jnp.sum(v ** 2) for k, v in jax.tree_util.tree_leaves_with_path(p)
                                      if 'kernel' in jax.tree_util.keystr(k))))
  ok = (sgd_diff < 1e-5 and t_sgd < 1e-4 and adam_diff > 1e-2 and t_adam > 1e-2 and adam_same_l2 < 1e-5
        and adam_same_wd < 1e-5)
  measured = (f'softmax regression, {steps} steps: SGD coupled vs decoupled Δ = {sgd_diff:.1e}; Adam+L2 vs AdamW '
              f'Δ = {adam_diff:.2f} (Adam+optimizer.l2 vs Adam+loss.l2 {adam_same_l2:.1e}, Adam+weight_decay vs '
              f'AdamW {adam_same_wd:.1e}). Trainer, MLP 64-64-10 on digits, 500 steps: SGD Δ = {t_sgd:.1e} '
              f'(test acc {accs["sgd_loss_l2"]:.3f} / {accs["sgd_weight_decay"]:.3f}); Adam+L2 vs AdamW Δ = '
              f'{t_adam:.2f}, ‖W‖ {norm(finals["adam_loss_l2"]):.1f} vs {norm(finals["adamw"]):.1f}, test acc '
              f'{accs["adam_loss_l2"]:.3f} vs {accs["adamw"]:.3f}')
  return [ClaimResult('T10', measured, verdict(ok),
                      f'λ = {LAM} everywhere; Δ = max over parameter arrays of ‖a − b‖∞/‖b‖∞. Penalty (λ/2)‖w‖² ↔ '
                      'weight_decay λ (lr-scaled, as optax/PyTorch); for the multiplicative form w ← (1 − λ\')w − ε∇J, '
                      'λ\' = ελ. For SGD the two differ only in the order of float operations; Adam divides the '
                      'penalty gradient by √v̂, AdamW does not.', [fig])]


def _figure(ctx, runs, d):
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, opt in zip(axes, ('sgd', 'adam')):
    for (o, k), (_, path, _) in runs.items():
      if o != opt:
        continue
      ax.plot(np.linalg.norm(_kernel(path, d), axis=1), label=k, ls='--' if k in ('optimizer.l2', 'adamw') else '-')
    ax.set_title(f'{opt}: coupled L2 vs decoupled weight decay (λ = {LAM})')
    ax.set_xlabel('step')
    ax.set_ylabel('‖W‖ (softmax regression on digits)')
    ax.legend()
    ax.grid(alpha=0.3)
  return plots.save(fig, ctx.figure('weight_norm'))


def _kernel(path, d):
  """The kernel part of flattened {'dense': {'bias' (10), 'kernel' (d, 10)}} (ravel_pytree sorts keys)."""
  return path[:, 10:10 + 10 * d]
