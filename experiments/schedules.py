"""Learning-rate schedules: values against their formulas, reduce-on-plateau in a real run, and a figure of all of them.

Reproduces: T14 (seed 000 "Adaptive learning rate": linear decrease, halve on a plateau / on a fixed schedule, 1cycle
            (Smith 2018), SGDR (Loshchilov & Hutter 2017); seed 004 VI.1: fractional (inverse-time), step, exponential).
Formulas:   inverse_time ε₀/(1 + γt/k); step ε₀γ^⌊t/k⌋; exponential ε₀γ^(t/k); 1cycle (linear) ε₀/div → ε₀ → ε₀/div →
            ε₀/(div·final_div) at pct_start, pct_final, end; SGDR η_min + ½(ε₀ − η_min)(1 + cos(π T_cur/T_i)),
            T_i = T₀·T_multⁱ; plateau: ×factor after `patience` updates without a relative improvement > rtol.
Command:    jaxdl reproduce schedules --out=report/
            jaxdl train --config=experiments/schedules.py --workdir=runs/schedules   (digits MLP, momentum + SGDR)
Expected:   every schedule = its formula written in NumPy (max |Δ|/ε₀ ≤ 1e-5, float32); the plateau schedule equals a
            NumPy ReduceLROnPlateau on the same loss sequence, and in a training run on the toy regression (whose
            loss flattens at the noise floor) the optimiser's plateau scale has dropped below 1.
CPU time:   ≈ 10 s for `reproduce`, ≈ 10 s for `train`.
"""
import ml_collections
import numpy as np
import optax

from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.optim.schedules import schedule_values

CLAIMS = {
    'T14': Claim('T14', 'LR schedules: inverse-time, step, exponential, reduce-on-plateau, 1cycle, SGDR warm restarts',
                 '000, 004 VI.1', 'jaxdl.optim.schedules.schedule_values = the formula in NumPy (max |Δ|/ε₀ ≤ 1e-5) for '
                 '400 steps; plateau = a NumPy ReduceLROnPlateau on a loss sequence; a trainer run with '
                 "schedule='plateau' ends with scale < 1"),
}
LR, T = 0.1, 400


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (64,)
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'momentum'
  c.optimizer.learning_rate = 0.1
  c.optimizer.momentum = 0.9
  c.optimizer.schedule = 'sgdr'
  c.optimizer.schedule_kwargs = ml_collections.ConfigDict({'period': 100, 'period_mult': 2.0})
  c.optimizer.warmup_steps = 50
  c.train.num_steps = 750
  c.train.batch_size = 64
  c.train.eval_every = 250
  c.train.checkpoint_every = 0
  c.train.log_every = 25
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def _cos(start, end, frac):
  return end + (start - end) * 0.5 * (1 + np.cos(np.pi * frac))


def _formulas(t):
  """name: (schedule, schedule_kwargs, warmup, reference values)."""
  a, b, lo = int(0.3 * T), int(0.85 * T), LR / 25
  starts = np.array([0, 50, 150, 350])           # SGDR, T₀ = 50, T_mult = 2
  i = np.searchsorted(starts, t, side='right') - 1
  return {
      'inverse_time γ=0.5/10 steps': ('inverse_time', {'gamma': 0.5, 'transition_steps': 10}, 0,
                                      LR / (1 + 0.5 * t / 10)),
      'step ×0.5 every 100': ('step', {'step_size': 100, 'gamma': 0.5}, 0, LR * 0.5 ** (t // 100)),
      'exponential ×0.1 per 200': ('exponential', {'gamma': 0.1, 'transition_steps': 200}, 0, LR * 0.1 ** (t / 200)),
      'linear → 0.01': ('linear', {'end_value': 0.01}, 0, LR + (0.01 - LR) * t / T),
      'cosine': ('cosine', {}, 0, _cos(LR, 0.0, t / T)),
      'warmup 40 + cosine': ('cosine', {}, 40, np.where(t < 40, LR * t / 40, _cos(LR, 0.0, (t - 40) / (T - 40)))),
      '1cycle (linear, Smith 2018)': ('onecycle', {'anneal': 'linear'}, 0, np.where(
          t < a, lo + (LR - lo) * t / a, np.where(t < b, LR + (lo - LR) * (t - a) / (b - a),
                                                  lo + (lo / 1e4 - lo) * (t - b) / (T - b)))),
      '1cycle (cos)': ('onecycle', {}, 0, np.where(t < a, _cos(lo, LR, t / a), _cos(LR, lo / 1e4, (t - a) / (T - a)))),
      'SGDR T₀=50, T_mult=2': ('sgdr', {'period': 50, 'period_mult': 2.0, 'end_value': 0.001}, 0,
                               0.001 + 0.5 * (LR - 0.001) * (1 + np.cos(np.pi * (t - starts[i]) / (50 * 2.0 ** i)))),
  }


def _plateau_reference(values, factor, patience, rtol):
  """ReduceLROnPlateau (Keras/PyTorch 'rel' mode) evaluated every update: the factor the update at t uses."""
  best, bad, scale, out = np.inf, 0, 1.0, []
  for v in values:
    if v < (1 - rtol) * best:
      best, bad = v, 0
    else:
      bad += 1
    if bad == patience:
      scale, bad = scale * factor, 0
    out.append(scale)
  return np.array(out)


def reproduce(ctx):
  t = np.arange(T)
  errs, series = {}, {}
  for label, (kind, kw, warmup, ref) in _formulas(t).items():
    cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': LR, 'schedule': kind, 'schedule_kwargs': kw,
                                     'warmup_steps': warmup})
    got = schedule_values(cfg, T)
    errs[label] = float(np.max(np.abs(got - ref)) / LR)
    series[label] = (t, got)
  # Reduce-on-plateau on a loss that falls, stalls, falls again and stalls.
  rng = np.random.default_rng(0)
  losses = np.r_[np.linspace(1.0, 0.4, 120), np.full(100, 0.4), np.linspace(0.39, 0.1, 80), np.full(100, 0.1)]
  losses = losses * (1 + 1e-5 * rng.normal(size=T))        # jitter below rtol: still a plateau
  cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': LR, 'schedule': 'plateau',
                                   'schedule_kwargs': {'factor': 0.5, 'patience': 25}})
  got = schedule_values(cfg, T, values=losses)
  errs['plateau (×0.5, patience 25)'] = float(np.max(np.abs(got - LR * _plateau_reference(losses, 0.5, 25, 1e-4))) / LR)
  series['plateau (×0.5, patience 25)'] = (t, got)
  fig = _figure(ctx, series, losses)

  # In the trainer: minibatch SGD on the toy regression flattens at the noise floor; the plateau scale drops.
  c = base_config()
  c.model.name, c.model.num_outputs, c.data.name, c.loss.name = 'linear', 1, 'toy_regression', 'squared_error'
  c.optimizer = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1, 'schedule': 'plateau',
                                           'schedule_kwargs': {'factor': 0.5, 'patience': 20,
                                                               'accumulation_size': 10}})
  c.train.num_steps, c.train.batch_size = 1500, 10
  c.train.eval_every, c.train.checkpoint_every, c.train.log_every, c.train.best_metric = 0, 0, 100, ''
  summary, state = ctx.train(c, 'plateau_run', return_state=True)
  scale = float(optax.tree_utils.tree_get(state.opt_state, 'scale'))
  worst = max(errs.values())
  ok = worst <= 1e-5 and scale < 1
  return [ClaimResult('T14', '; '.join(f'{k}: {v:.1e}' for k, v in errs.items()) +
                      f'; trainer run with plateau: final lr scale {scale:.3g} '
                      f'(train loss {summary["train"]["loss"]:.4f})',
                      verdict(ok), 'Max |jaxdl.optim.schedules.schedule_values − formula|/ε₀, the formula written in '
                      f'NumPy over {T} steps (ε₀ = {LR}). Reduce-on-plateau is optax.contrib.reduce_on_plateau fed the '
                      'training loss as `value` by the train step; the trainer logs the base ε₀, the current factor '
                      'is `scale` in the optimiser state.', [fig])]


def _figure(ctx, series, losses):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = len(series)
  cols = 5
  fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3.2 * cols, 2.6 * -(-n // cols)), squeeze=False)
  for ax, (label, (t, v)) in zip(axes.ravel(), series.items()):
    ax.plot(t, v, lw=1.5)
    if label.startswith('plateau'):
      ax2 = ax.twinx()
      ax2.plot(t, losses, color='gray', lw=0.8, ls='--')
      ax2.set_ylabel('loss (value)', fontsize=7)
    ax.set_title(label, fontsize=9)
    ax.set_xlabel('step', fontsize=8)
    ax.grid(alpha=0.3)
  for ax in axes.ravel()[n:]:
    ax.axis('off')
  axes[0][0].set_ylabel('learning rate')
  return plots.save(fig, ctx.figure('all'))
