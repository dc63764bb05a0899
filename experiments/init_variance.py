"""Initialisation and the variance of activations and gradients through depth; the maxima of σ′ and tanh′.

Reproduces: T7 (seed 000 "LECUN / XAVIER (GLOROT) / HE INITIALIZATION", seed 002, seed 004 F22: LeCun N(0, 1/fan_in),
            Glorot U(±√6/√(fan_in+fan_out)), He N(0, 2/fan_in) keep the activation variance through depth for the
            activation each was derived for; PyTorch's default U(±1/√fan_in) — "not what we should use for ReLU" —
            does not), T8 (seed 001: "gradient is 0.25 or 1 max": max σ′ = 1/4, max tanh′ = 1).
Setup:      `mlp` with 10 hidden layers of 256 units (no bias: zeros), inputs x ~ N(0, I₂₅₆), 1,000 examples,
            4 networks per setting. Recorded with jaxdl.inspect.diagnostics: the variance of every layer's pre-activation
            y_l = W_l x_l (forward), and of ∂L/∂y_l for L = Σ out·r, r ~ N(0, I) (backward: a fixed random
            output gradient, so the backward pass is W_l's alone). Pairs (activation, kernel_init):
              LeCun  lecun_tanh 1.7159 tanh(2x/3) + lecun_normal;   He  relu + he_normal;
              Glorot its derivation's linear regime (f′ = 1: identity) + glorot_uniform — and, reported but not
                     judged, tanh + glorot_uniform (tanh is linear only near 0);
              relu + `default` (flax's LeCun, σ² = 1/fan_in) and relu + `torch_default` (σ² = 1/(3 fan_in)).
Command:    jaxdl reproduce init_variance --out=report/
            jaxdl train --config=experiments/init_variance.py --workdir=runs/init_variance   (10-layer ReLU MLP, He init,
            on the digits)
Expected:   var(y_10)/var(y_1) ≈ 1 for He + ReLU and Glorot + linear (backward too), ≈ 0.4 (settles, does not vanish)
            for LeCun + his tanh; ≈ 2⁻⁹ for ReLU + flax default and ≈ 6⁻⁹ for ReLU + PyTorch default.
            max σ′ = 0.25 and max tanh′ = 1, both at 0.
CPU time:   ≈ 15 s for `reproduce`; ≈ 20 s for `train`.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxdl import plots
from jaxdl.inspect import diagnostics
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, vec, verdict

DEPTH, WIDTH, N, NETS = 10, 256, 1000, 4
SETTINGS = {  # label: (activation, kernel_init, judged as)
    'LeCun: lecun_tanh + lecun_normal': ('lecun_tanh', 'lecun_normal', 'keeps'),
    'Glorot: linear + glorot_uniform': ('identity', 'glorot_uniform', 'keeps'),
    'He: relu + he_normal': ('relu', 'he_normal', 'keeps'),
    'tanh + glorot_uniform': ('tanh', 'glorot_uniform', 'reported'),
    'relu + flax default (lecun)': ('relu', 'default', 'loses'),
    'relu + torch default U(±1/√n)': ('relu', 'torch_default', 'loses'),
}
THEORY_DECAY = {'relu + flax default (lecun)': 0.5, 'relu + torch default U(±1/√n)': 1 / 6}   # ½ n σ² per layer

CLAIMS = {
    'T7': Claim('T7', 'LeCun N(0,1/fan_in), Glorot U(±√6/√(fan_in+fan_out)), He N(0,2/fan_in): activation variance '
                'preserved through depth for their activation; default init does not for ReLU', '000, 002, 004 F22',
                'var(y_10)/var(y_1) in [1/4, 4] for LeCun + lecun_tanh and He + relu, in [1/2, 2] forward and backward '
                'for Glorot in its linear regime; ReLU with the flax and PyTorch defaults below 1/4, decaying per layer '
                'within 20% of ½·fan_in·σ² (1/2, 1/6)'),
    'T8': Claim('T8', 'max σ′ = 0.25, max tanh′ = 1', '001', 'autodiff on a grid: max = 0.25 / 1 (1e-6), at x = 0'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (128,) * DEPTH
  c.model.activation = 'relu'
  c.model.kernel_init = 'he_normal'
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.05
  c.train.num_steps = 1500
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def _probe_loss(out, batch):
  """L = Σ_k out_k r_k: ∂L/∂out = r, independent of the forward pass."""
  return {'loss': jnp.sum(out * batch['targets'], axis=-1) * out.shape[0]}


def profile(activation, kernel_init):
  """Per-layer variance of y_l and of ∂L/∂y_l, averaged over NETS networks; plus one network's activations."""
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (WIDTH,) * DEPTH, 'num_outputs': WIDTH,
                                                 'activation': activation, 'kernel_init': kernel_init}))
  x = jax.random.normal(jax.random.PRNGKey(1000), (N, WIDTH))

  @jax.jit
  def one(key):
    k_init, k_r = jax.random.split(key)
    v = model.init(k_init, x[:2])
    r = diagnostics.record(model, v, {'inputs': x, 'targets': jax.random.normal(k_r, (N, WIDTH))}, _probe_loss)
    fwd = jnp.stack([jnp.var(r.values[f'pre{i}']) for i in range(DEPTH)])
    bwd = jnp.stack([jnp.var(r.pre_grads[f'pre{i}']) for i in range(DEPTH)])
    return fwd, bwd, {k: v for k, v in r.values.items() if k.startswith('act')}

  outs = [one(jax.random.PRNGKey(s)) for s in range(NETS)]
  fwd = np.mean([np.asarray(o[0]) for o in outs], 0)
  bwd = np.mean([np.asarray(o[1]) for o in outs], 0)
  return fwd, bwd, jax.device_get(outs[0][2])


def reproduce(ctx):
  prof = {label: profile(act, ki) for label, (act, ki, _) in SETTINGS.items()}
  fwd_ratio = {k: float(f[-1] / f[0]) for k, (f, _, _) in prof.items()}
  bwd_ratio = {k: float(b[0] / b[-1]) for k, (_, b, _) in prof.items()}
  decay = {k: float((prof[k][0][-1] / prof[k][0][0]) ** (1 / (DEPTH - 1))) for k in THEORY_DECAY}
  ok7 = (0.25 <= fwd_ratio['LeCun: lecun_tanh + lecun_normal'] <= 4 and 0.25 <= fwd_ratio['He: relu + he_normal'] <= 4
         and 0.5 <= fwd_ratio['Glorot: linear + glorot_uniform'] <= 2
         and 0.5 <= bwd_ratio['Glorot: linear + glorot_uniform'] <= 2
         and all(fwd_ratio[k] < 0.25 and abs(decay[k] / THEORY_DECAY[k] - 1) < 0.2 for k in THEORY_DECAY))
  figs = [
      diagnostics.plot_layer_profile({k: f / f[0] for k, (f, _, _) in prof.items()}, ctx.figure('forward_variance'),
                                     ylabel='var(y_l) / var(y_1)', title=f'{DEPTH} layers × {WIDTH}, forward'),
      diagnostics.plot_layer_profile({k: b / b[-1] for k, (_, b, _) in prof.items()}, ctx.figure('backward_variance'),
                                     ylabel='var(∂L/∂y_l) / var(∂L/∂y_10)', title='backward (random output gradient)'),
      _histograms(ctx, prof),
  ]
  meas7 = '; '.join(f'{k}: {fwd_ratio[k]:.3g}' for k in SETTINGS) + \
      f' (var(y_10)/var(y_1)); Glorot linear backward {bwd_ratio["Glorot: linear + glorot_uniform"]:.3g}; per-layer ' \
      'decay ' + ', '.join(f'{k.split(" + ")[1]} {decay[k]:.3f} (theory {THEORY_DECAY[k]:.3f})' for k in THEORY_DECAY)
  note7 = ('Forward: y_l = W_l f(y_{l−1}). With tanh, Glorot (= LeCun for equal widths) keeps the variance only in '
           'tanh\'s linear part: it shrinks slowly (≈ 1/(2l), not geometrically); with LeCun\'s scaled tanh (slope '
           f'1.14 at 0) it settles near {fwd_ratio["LeCun: lecun_tanh + lecun_normal"]:.2f} instead. Backward ratios: '
           + ', '.join(f'{k}: {bwd_ratio[k]:.3g}' for k in SETTINGS) + '.')
  # T8: the derivatives' maxima on a grid containing 0.
  grid = jnp.linspace(-8.0, 8.0, 160001)
  ds = np.asarray(jax.vmap(jax.grad(jax.nn.sigmoid))(grid))
  dt = np.asarray(jax.vmap(jax.grad(jnp.tanh))(grid))
  g = np.asarray(grid)
  at = lambda d: float(np.mean(g[d == d.max()]))          # centre of the (float32-flat) maximum
  ok8 = abs(ds.max() - 0.25) < 1e-6 and abs(dt.max() - 1.0) < 1e-6 and abs(at(ds)) < 1e-2 and abs(at(dt)) < 1e-2
  fig8 = plots.curves({'σ(x)': (g[::400], 1 / (1 + np.exp(-g[::400]))), 'σ′(x)': (g[::400], ds[::400]),
                       'tanh(x)': (g[::400], np.tanh(g[::400])), 'tanh′(x)': (g[::400], dt[::400])},
                      ctx.figure('derivatives'), xlabel='x', ylabel='value', title='σ′ ≤ 1/4, tanh′ ≤ 1')
  return [ClaimResult('T7', meas7, verdict(ok7), note7, figs),
          ClaimResult('T8', f'max σ′ = {ds.max():.6f} at x ≈ {at(ds):.1e}; max tanh′ = {dt.max():.6f} at x ≈ {at(dt):.1e} '
                      f'(autodiff on {len(g)} points in [−8, 8]); σ′ at ±2: {vec(np.asarray(jax.vmap(jax.grad(jax.nn.sigmoid))(jnp.array([-2.0, 2.0]))))}',
                      verdict(ok8), 'σ′ = σ(1 − σ) ≤ 1/4, so through L sigmoid layers the gradient carries ≤ 4^−L '
                      'times the weights (the vanishing-gradient pattern (W·f′)^L).', [fig8])]


def _histograms(ctx, prof):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  keys = ['He: relu + he_normal', 'relu + torch default U(±1/√n)', 'LeCun: lecun_tanh + lecun_normal',
          'tanh + glorot_uniform']
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
  for ax, k in zip(axes, keys):
    acts = prof[k][2]
    for i in (0, 2, 4, 6, 9):
      a = np.asarray(acts[f'act{i}']).ravel()
      a = a[a != 0] if 'relu' in k else a          # the ReLU's zeros (half of them) would dwarf the rest
      ax.hist(a, bins=80, histtype='step', density=True, label=f'layer {i + 1}', range=(np.percentile(a, 0.5), np.percentile(a, 99.5)))
    ax.set_title(k, fontsize=9)
    ax.set_xlabel('activation' + (' (non-zero)' if 'relu' in k else ''))
    ax.set_yscale('log')
  axes[0].legend(fontsize=7)
  return plots.save(fig, ctx.figure('activation_histograms'))
