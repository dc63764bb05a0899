"""An untrained ReLU MLP 1→200→200→1 computes a piecewise-linear function (seed 003's "pyTorch demo").

Reproduces: T16 (seed 003: net = Linear(1, 200), ReLU, Linear(200, 200), ReLU, Linear(200, 1), PyTorch's default init,
            plotted on inputs arange(−3, 3, 0.01)).
Setup:      `mlp` hidden (200, 200), relu, one output, kernel_init and bias_init `torch_default` (U(±1/√fan_in), as
            torch.nn.Linear; with zero biases every kink would sit at x = 0). On the demo's 600 inputs:
            second differences Δ²f(x) = f(x+h) − 2f(x) + f(x−h) (float32, jax). Exact breakpoints in float64 (NumPy,
            the model's parameters): first layer at x = −b_i/w_i; between those every second-layer pre-activation is
            linear in x, so its zeros are found exactly; a breakpoint counts if the slope of f changes there.
            Then f is rebuilt as the linear interpolation through its values at the breakpoints and compared with
            the network at 20,000 random points. The same after training (the `get_config` run, reported).
Command:    jaxdl reproduce relu_piecewise --out=report/
            jaxdl train --config=experiments/relu_piecewise.py --workdir=runs/relu_piecewise   (fits sin(πx))
Expected:   |Δ²f| at float32 rounding level (< 1e-5) on every stencil without a breakpoint, orders of magnitude
            larger at kinks; the interpolation through the breakpoints reproduces f to float32 precision; a few
            hundred linear pieces on [−3, 3].
CPU time:   ≈ 10 s for `reproduce`; ≈ 10 s for `train`.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict

H = 0.01
LO, HI = -3.0, 3.0

CLAIMS = {
    'T16': Claim('T16', 'An untrained ReLU MLP 1→200→200→1 is piecewise linear', '003',
                 'on arange(−3, 3, 0.01): max |Δ²f| < 1e-5 on stencils without a breakpoint and ≥ 100× that at the '
                 'largest kink; the linear interpolation through the exact breakpoints equals f within 1e-5 '
                 '(relative to max |f|)'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (200, 200)
  c.model.num_outputs = 1
  c.model.activation = 'relu'
  c.model.kernel_init = 'torch_default'
  c.model.bias_init = 'torch_default'
  c.data.name = 'noisy_function'
  c.data.num_examples = 100
  c.loss.name = 'squared_error'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 3e-3
  c.train.num_steps = 1000
  c.train.batch_size = 50
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def breakpoints(params):
  """The exact breakpoints of x -> f(x) in [LO, HI] (float64) and f's slopes on the pieces between them."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  w0, b0 = p['dense0']['kernel'][0], p['dense0']['bias']
  W1, b1 = p['dense1']['kernel'], p['dense1']['bias']
  w2, b2 = p['head']['kernel'][:, 0], p['head']['bias'][0]
  f = lambda x: np.maximum(np.maximum(np.outer(x, w0) + b0, 0) @ W1 + b1, 0) @ w2 + b2
  pre1 = lambda x: np.maximum(np.outer(x, w0) + b0, 0) @ W1 + b1
  k1 = -b0[w0 != 0] / w0[w0 != 0]
  k1 = np.sort(k1[(k1 > LO) & (k1 < HI)])
  edges = np.r_[LO, k1, HI]
  k2 = []
  for a, b in zip(edges[:-1], edges[1:]):       # pre1 is linear on [a, b]: one zero per unit at most
    ya, yb = pre1(np.array([a, b]))
    cross = (ya * yb < 0)
    k2.extend(a + (b - a) * ya[cross] / (ya[cross] - yb[cross]))
  cand = np.unique(np.r_[k1, np.asarray(k2)])
  # Keep the candidates where the slope actually changes (a unit whose downstream paths are all off is no kink).
  pts = np.r_[LO, cand, HI]
  mids = (pts[:-1] + pts[1:]) / 2
  eps = np.minimum(np.diff(pts) / 4, 1e-6)
  slopes = (f(mids + eps) - f(mids - eps)) / (2 * eps)
  change = np.abs(np.diff(slopes)) > 1e-9 * (1 + np.abs(slopes[1:]))
  return cand[change], cand, f


def analyse(model, params):
  x = np.arange(LO, HI, H)                                      # the demo's inputs
  fx = np.asarray(model.apply({'params': params}, jnp.asarray(x[:, None], jnp.float32)))[:, 0].astype(np.float64)
  d2 = fx[2:] - 2 * fx[1:-1] + fx[:-2]
  kinks, cand, f64 = breakpoints(params)
  # A stencil [x_{i−1}, x_{i+1}] is linear if no breakpoint candidate lies inside it.
  has = np.array([np.any((cand > x[i - 1]) & (cand < x[i + 1])) for i in range(1, len(x) - 1)])
  scale = float(np.max(np.abs(fx)))
  lin_max, kink_max = float(np.max(np.abs(d2[~has]))), float(np.max(np.abs(d2[has]))) if has.any() else 0.0
  # f = the interpolation through the breakpoints (exact for a piecewise-linear f).
  knots = np.r_[LO, kinks, HI]
  xs = np.random.default_rng(0).uniform(LO, HI, 20000)
  fx_net = np.asarray(model.apply({'params': params}, jnp.asarray(xs[:, None], jnp.float32)))[:, 0]
  interp_err = float(np.max(np.abs(np.interp(xs, knots, f64(knots)) - fx_net))) / scale
  return dict(x=x, fx=fx, d2=d2, has=has, kinks=kinks, lin_max=lin_max / scale, kink_max=kink_max / scale,
              pieces=len(kinks) + 1, interp_err=interp_err, n_first=int(np.sum((kinks > LO) & (kinks < HI))))


def reproduce(ctx):
  c = get_config()
  model = build_model(c.model)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))['params']
  a = analyse(model, params)
  # Trained on noisy sin(πx) through `jaxdl train`: still piecewise linear (reported).
  _, state = ctx.train(c, 'trained', return_state=True)
  t = analyse(model, jax.device_get(state.params))
  ok = a['lin_max'] < 1e-5 and a['kink_max'] >= 100 * max(a['lin_max'], 1e-12) and a['interp_err'] < 1e-5
  fig = _figure(ctx, a, t)
  return [ClaimResult('T16', f'untrained: {a["pieces"]} linear pieces on [−3, 3]; max |Δ²f|/max|f| = {a["lin_max"]:.1e} '
                      f'on the {int((~a["has"]).sum())} stencils without a breakpoint vs {a["kink_max"]:.1e} at kinks '
                      f'({int(a["has"].sum())} stencils); interpolation through the breakpoints = f to {a["interp_err"]:.1e}',
                      verdict(ok), f'After training on noisy sin(πx) (reported): {t["pieces"]} pieces, |Δ²f| off kinks '
                      f'{t["lin_max"]:.1e}, interpolation error {t["interp_err"]:.1e}. Breakpoints come from the 200 '
                      'first-layer units (x = −b/w) and from the zeros of the second-layer pre-activations.', [fig])]


def _figure(ctx, a, t):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  for ax, r, title in ((axes[0], a, 'untrained'), (axes[1], t, 'trained on sin(πx)')):
    ax.plot(r['x'], r['fx'], lw=1)
    ax.plot(r['kinks'], np.interp(r['kinks'], r['x'], r['fx']), '|', color='C3', ms=6, label=f'{r["pieces"]} pieces')
    ax.set_title(f'f(x), {title}')
    ax.set_xlabel('x')
    ax.legend(fontsize=8)
  ax = axes[2]
  xm = a['x'][1:-1]
  ax.semilogy(xm[~a['has']], np.abs(a['d2'][~a['has']]) + 1e-12, '.', ms=2, label='no breakpoint in stencil')
  ax.semilogy(xm[a['has']], np.abs(a['d2'][a['has']]) + 1e-12, '.', ms=3, color='C3', label='breakpoint in stencil')
  ax.set_title('|Δ²f| (untrained, h = 0.01)')
  ax.set_xlabel('x')
  ax.legend(fontsize=8)
  return plots.save(fig, ctx.figure('piecewise'))
