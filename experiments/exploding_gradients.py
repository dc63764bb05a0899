"""Exploding and vanishing gradients through 50 single-unit sigmoid layers, and gradient clipping.

Reproduces: T3 (seed 000, "THE EXPLODING AND VANISHING GRADIENT PROBLEM": ∂J/∂x_l carries (W·f′)^L, which vanishes
            or explodes for large L; "Exploding gradient and the effect of clipping. Experiment with 50 layers,
            single unit, sigmoid transfer function"; Pascanu, Mikolov & Bengio 2013, Fig. 6).
Setup:      the `mlp` with hidden (1,)*50, sigmoid. (a) Every layer y = w·x − w/2 (kernel_init constant w,
            bias_init constant −w/2): x = 0.5 is a fixed point where σ′ = 1/4, so |∂out/∂x_in| = w·(w/4)^50 —
            vanishing for w < 4, exploding for w > 4. (b) Pascanu's single-unit network: the same 50 layers
            sharing one (w, b) (an RNN unrolled 50 steps), input 0.5, loss (x_50 − 0.9)². Started ON the cliff
            (b = −w/2, w > 4), plain SGD (lr 0.1) takes one huge step into a flat, saturated region and stays;
            with `optimizer.clip_global_norm = 1` (jaxdl.optim) every step is ≤ lr and it reaches the valley.
Command:    jaxdl reproduce exploding_gradients --out=report/
            jaxdl train --config=experiments/exploding_gradients.py --workdir=runs/exploding_gradients
            (the untied 50-layer chain from w = 5 on a 1-D regression, clipped; away from the cliff its gradient
            vanishes and it learns little more than the mean; --config.optimizer.clip_global_norm=0 to compare)
Expected:   autodiff = w·(w/4)^50 (1e-16 at w = 2 … 1e9 at w = 6); unclipped SGD from the cliff jumps by 60–3e7
            and stalls at loss 0.01, clipped SGD reaches ≈ 0.
CPU time:   ≈ 10 s for `reproduce`; ≈ 15 s for `train`.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.optim import build_optimizer
from jaxdl.reproduce import Claim, ClaimResult, verdict

DEPTH = 50
TARGET = 0.9
LR = 0.1
STEPS = 300

CLAIMS = {
    'T3': Claim('T3', 'Exploding gradient through 50 single-unit sigmoid layers, tamed by gradient clipping', '000',
                '|∂out/∂x| = w(w/4)^50 within 1% for w ∈ {2,…,6} (vanishes below 4, explodes above); from the cliff '
                '(w₀ ∈ {4.5, 5, 6}, b₀ = −w₀/2) unclipped SGD jumps by > 10 and ends with loss > 0.009, SGD with '
                'clip_global_norm = 1 moves ≤ lr per step and ends below 1e-3'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (1,) * DEPTH
  c.model.num_outputs = 1
  c.model.activation = 'sigmoid'
  c.model.kernel_init = 'constant'
  c.model.kernel_init_scale = 5.0
  c.model.bias_init = 'constant'
  c.model.bias_init_scale = -2.5
  c.data.name = 'noisy_function'
  c.loss.name = 'squared_error'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = LR
  c.optimizer.clip_global_norm = 1.0
  c.train.num_steps = 1000
  c.train.batch_size = 20
  c.train.log_every = 10
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def _chain(w=1.0, b=0.0):
  return build_model(ml_collections.ConfigDict({
      'name': 'mlp', 'hidden': (1,) * DEPTH, 'num_outputs': 1, 'activation': 'sigmoid', 'kernel_init': 'constant',
      'kernel_init_scale': float(w), 'bias_init': 'constant', 'bias_init_scale': float(b)}))


def input_gradients(ws):
  """|∂out/∂x_in| at x_in = 0.5 of the untied chain as the library initialises it (every layer w, −w/2), per w."""
  def one(w):
    params = _chain(w, -w / 2).init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))['params']
    return params
  model = _chain()
  grad = jax.jit(jax.grad(lambda x, p: model.apply({'params': p}, x.reshape(1, 1))[0, 0]))
  return [float(grad(jnp.float32(0.5), one(w))) for w in ws]


def tied_loss_fn():
  """(w, b) -> (x_50 − 0.9)² for the 50 layers sharing w and b, input 0.5, the head reading x_50 (Pascanu 2013)."""
  model = _chain()

  def loss(wb):
    p = {f'dense{i}': {'kernel': wb[0].reshape(1, 1), 'bias': wb[1].reshape(1)} for i in range(DEPTH)}
    p['head'] = {'kernel': jnp.ones((1, 1)), 'bias': jnp.zeros((1,))}
    return (model.apply({'params': p}, jnp.full((1, 1), 0.5))[0, 0] - TARGET) ** 2
  return loss


def descender(loss, clip):
  """start -> STEPS of jaxdl's SGD (with or without optimizer.clip_global_norm) on the tied chain:
  (trajectory, losses, gradient norms, final loss)."""
  cfg = {'name': 'sgd', 'learning_rate': LR}
  if clip:
    cfg['clip_global_norm'] = clip
  tx, _ = build_optimizer(ml_collections.ConfigDict(cfg), STEPS)
  vg = jax.value_and_grad(loss)

  def body(carry, _):
    p, st = carry
    l, g = vg(p)
    u, st = tx.update(g, st, p)
    return (optax.apply_updates(p, u), st), (p, l, jnp.linalg.norm(g))

  @jax.jit
  def run(p0):
    (pend, _), (ps, ls, gs) = jax.lax.scan(body, (p0, tx.init(p0)), None, length=STEPS)
    return jnp.concatenate([ps, pend[None]]), ls, gs, loss(pend)

  def descend(start):
    traj, ls, gs, final = jax.device_get(run(jnp.asarray(start, jnp.float32)))
    return np.asarray(traj), np.asarray(ls), np.asarray(gs), float(final)
  return descend


def reproduce(ctx):
  ws = [2.0, 3.0, 4.0, 5.0, 6.0]
  grads = input_gradients(ws)
  formula = [w * (w / 4) ** DEPTH for w in ws]
  rel = max(abs(g - f) / f for g, f in zip(grads, formula))
  loss = tied_loss_fn()
  runs, ok_b = {}, True
  for clip in (0.0, 1.0):
    descend = descender(loss, clip)
    for w0 in (4.5, 5.0, 6.0):
      traj, ls, gs, final = descend((w0, -w0 / 2))
      jump = float(np.linalg.norm(np.diff(traj, axis=0), axis=1).max())
      runs[(w0, clip)] = (traj, ls, gs, final, jump)
      ok_b &= (jump > 10 and final > 0.009) if not clip else (jump <= LR * clip * (1 + 1e-5) and final < 1e-3)
  figs = [_figure_gradient(ctx, ws, grads), _figure_clipping(ctx, loss, runs)]
  ok = rel < 0.01 and ok_b
  meas = (f'|∂out/∂x| at w = {", ".join(f"{w:g}" for w in ws)}: {", ".join(f"{g:.2g}" for g in grads)} (= w(w/4)^50 to '
          f'{rel:.1e}); from the cliff, unclipped SGD: largest step ' +
          ', '.join(f'{runs[(w, 0.0)][4]:.2g}' for w in (4.5, 5.0, 6.0)) + ', final loss ' +
          ', '.join(f'{runs[(w, 0.0)][3]:.3f}' for w in (4.5, 5.0, 6.0)) + '; clipped (norm 1): max step ' +
          f'{max(runs[(w, 1.0)][4] for w in (4.5, 5.0, 6.0)):.2g}, final loss ' +
          ', '.join(f'{runs[(w, 1.0)][3]:.1e}' for w in (4.5, 5.0, 6.0)))
  return [ClaimResult('T3', meas, verdict(ok),
                      f'Start (w₀, −w₀/2), w₀ = 4.5 / 5 / 6: initial gradient norm ' +
                      ', '.join(f'{runs[(w, 0.0)][2][0]:.2g}' for w in (4.5, 5.0, 6.0)) +
                      '. Without clipping the first step lands where every sigmoid saturates (x_50 ≈ 1, loss '
                      '(1 − 0.9)² = 0.01, gradient ≈ 0) and training never recovers.', figs)]


def _figure_gradient(ctx, ws, grads):
  grid = np.linspace(1.5, 6.5, 101)
  return plots.curves({'w·(w/4)^50 (σ′(0) = 1/4)': (grid, grid * (grid / 4) ** DEPTH),
                       'autodiff through the 50-layer mlp': (ws, np.abs(grads))},
                      ctx.figure('gradient_vs_weight'), xlabel='weight w (every layer; bias −w/2)',
                      ylabel='|∂out/∂x_in| at x_in = 0.5', logy=True, title='50 single-unit sigmoid layers')


def _figure_clipping(ctx, loss, runs):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  W, B = np.meshgrid(np.linspace(2, 8, 121), np.linspace(-5, 1, 121))
  L = np.asarray(jax.jit(jax.vmap(loss))(jnp.asarray(np.c_[W.ravel(), B.ravel()], jnp.float32))).reshape(W.shape)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  ax = axes[0]
  cs = ax.contourf(W, B, np.log10(L + 1e-6), levels=30, cmap='viridis')
  fig.colorbar(cs, ax=ax, label='log10 loss')
  wc = np.linspace(4, 8, 10)
  ax.plot(wc, -wc / 2, 'w:', lw=1.5, label='cliff b = −w/2 (w > 4)')
  traj, *_, jump = runs[(5.0, 1.0)]
  ax.plot(traj[:, 0], traj[:, 1], 'r.-', ms=4, lw=1.5, label='clipped SGD (300 steps)')
  t_un = runs[(5.0, 0.0)][0]
  d = (t_un[1] - t_un[0]) / np.linalg.norm(t_un[1] - t_un[0])
  ax.annotate('', xy=t_un[0] + 2.5 * d, xytext=t_un[0], arrowprops=dict(color='w', width=1.5, headwidth=7))
  ax.text(*(t_un[0] + 2.5 * d + [-2.4, -0.2]), f'unclipped: to ({t_un[1][0]:.0f}, {t_un[1][1]:.0f})', color='w',
          fontsize=8)
  ax.set_xlim(2, 8)
  ax.set_ylim(-5, 1)
  ax.set_xlabel('w (shared by the 50 layers)')
  ax.set_ylabel('b')
  ax.legend(fontsize=7, loc='lower left')
  ax.set_title('loss (x_50 − 0.9)², start (5, −2.5)')
  ax = axes[1]
  for (w0, clip), (_, ls, *_rest) in runs.items():
    ax.plot(np.arange(len(ls)), ls + 1e-8, ls='-' if clip else '--', label=f'w₀ = {w0:g}, ' + ('clip 1' if clip else 'no clip'))
  ax.set_yscale('log')
  ax.set_xlabel('SGD step (lr 0.1)')
  ax.set_ylabel('loss')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return plots.save(fig, ctx.figure('clipping'))
