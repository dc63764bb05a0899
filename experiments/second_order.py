"""Second-order methods vs first-order optimisers, and every update rule of the notes checked by hand.

Reproduces: T13 (update rules of SGD, momentum, Nesterov (Sutskever form), Adagrad, RMSprop, Adadelta, Adam
            (bias-corrected), Nadam, Newton, Levenberg–Marquardt, L-BFGS as written in the notes (seed 000, seed 004
            V.1–V.3): a few steps by hand in NumPy = jaxdl), and shows seed 000's "glimpse into second order methods":
            Newton (exact Hessian), Gauss–Newton, Levenberg–Marquardt, L-BFGS and truncated Newton (CG on
            Hessian-vector products) against GD, momentum and Adam, full batch, on linear regression (toy set, from
            θ₀ = [10, 5]), logistic regression (two_moons) and a 1-16-1 tanh MLP (noisy sin, 40 points).
Command:    jaxdl reproduce second_order --out=report/
            jaxdl train --config=experiments/second_order.py --workdir=runs/second_order   (the MLP problem with Adam,
            the first-order baseline of the figure; the second-order methods are jaxdl.optim.second_order functions)
Expected:   T13: every rule = NumPy to ≤ 1e-4 relative (float32 vs float64). Convergence: on the quadratic (linear
            regression) Newton and Gauss–Newton reach θ* in one iteration, L-BFGS/CG in 2–3; first-order methods need
            hundreds to thousands; on logistic regression Newton converges quadratically in < 10 iterations; on the
            (non-convex) MLP Levenberg–Marquardt reaches the lowest loss (≈ 0.0056 in 200 iterations vs ≈ 0.0098 for
            Adam in 3000), undamped Gauss–Newton first blows up, Newton needs its damping. Measured in the T13 note.
CPU time:   ≈ 40 s for `reproduce`, ≈ 10 s for `train`.
"""
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
import optax
import scipy.optimize

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.optim import second_order
from jaxdl.config import base_config
from jaxdl.optim import build_optimizer
from jaxdl.optim.chains import run_path
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'T13': Claim('T13', 'update rules of SGD, momentum, Nesterov (Sutskever), Adagrad, RMSprop, Adadelta, Adam '
                 '(bias-corrected), Nadam, Newton, Levenberg–Marquardt, L-BFGS as in the notes', '000, 004 V.1–V.3',
                 'a few steps by hand in NumPy (float64, analytic gradients) = jaxdl: max relative error ≤ 1e-4'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (16,)
  c.model.activation = 'tanh'
  c.model.num_outputs = 1
  c.data.name = 'noisy_function'
  c.data.num_examples = 40
  c.loss.name = 'squared_error'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-2
  c.train.num_steps = 3000
  c.train.batch_size = 40          # full batch
  c.train.eval_every = 1000
  c.train.checkpoint_every = 0
  c.train.log_every = 100
  c.train.best_metric = ''
  return c


def _opt(name, kw):
  return dict({'name': name, 'learning_rate': 0.05}, **kw)


def reproduce(ctx):
  res = _t13()
  fig, summary = _comparison(ctx)
  res.figures.append(fig)
  res.note += ' Convergence (iterations to J − J* ≤ 1e-5·max(1, J*), full batch): ' + summary
  return [res]


# ----------------------------------------------------------------------------------------- the comparison
def _linear_problem():
  ds = data_lib.get_dataset(ml_collections.ConfigDict({'name': 'toy_regression'}))
  x, y = (jnp.asarray(a, jnp.float32) for a in data_lib.split_arrays(ds, 'train'))
  phi, y = jnp.c_[jnp.ones(len(x)), x[:, 0]], y[:, 0]
  resid = lambda t: (phi @ t - y) * jnp.sqrt(2.0 / len(y))      # ½‖r‖² = mean (y − θᵀφ)²
  return (lambda t: 0.5 * jnp.sum(resid(t) ** 2), resid, jnp.array([10.0, 5.0]),
          {'GD ε=0.3': ({'name': 'sgd', 'learning_rate': 0.3}, 3000),
           'momentum 0.9, ε=0.05': ({'name': 'momentum', 'learning_rate': 0.05, 'momentum': 0.9}, 3000),
           'Adam ε=0.1': ({'name': 'adam', 'learning_rate': 0.1}, 3000)})


def _logistic_problem():
  ds = data_lib.get_dataset(ml_collections.ConfigDict({'name': 'two_moons'}))
  x, y = (jnp.asarray(a) for a in data_lib.split_arrays(ds, 'train'))
  xb, yb = jnp.c_[jnp.ones(len(x)), x].astype(jnp.float32), y.astype(jnp.float32)
  return (lambda w: jnp.mean(optax.sigmoid_binary_cross_entropy(xb @ w, yb)), None, jnp.zeros(3),
          {'GD ε=1': ({'name': 'sgd', 'learning_rate': 1.0}, 3000),
           'momentum 0.9, ε=0.2': ({'name': 'momentum', 'learning_rate': 0.2, 'momentum': 0.9}, 3000),
           'Adam ε=0.05': ({'name': 'adam', 'learning_rate': 0.05}, 3000)})


def _mlp_problem():
  ds = data_lib.get_dataset(get_config().data)
  x, y = (jnp.asarray(a, jnp.float32) for a in data_lib.split_arrays(ds, 'train'))
  x, y = x.reshape(len(x), 1), y.reshape(-1)
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  p0 = {'w1': jax.random.normal(k1, (1, 16)), 'b1': jnp.zeros(16),
        'w2': jax.random.normal(k2, (16,)) / 4.0, 'b2': jnp.zeros(())}
  mlp = lambda p: jnp.tanh(x @ p['w1'] + p['b1']) @ p['w2'] + p['b2']
  resid = lambda p: (mlp(p) - y) * jnp.sqrt(2.0 / len(y))
  return (lambda p: 0.5 * jnp.sum(resid(p) ** 2), resid, p0,
          {'GD ε=0.2': ({'name': 'sgd', 'learning_rate': 0.2}, 3000),
           'momentum 0.9, ε=0.05': ({'name': 'momentum', 'learning_rate': 0.05, 'momentum': 0.9}, 3000),
           'Adam ε=0.01': ({'name': 'adam', 'learning_rate': 0.01}, 3000)})


def _problems():
  """name: (loss, residual or None, θ₀, first-order settings {label: (optimizer config, iterations)})."""
  return {'linear regression (toy, θ₀ = [10, 5])': _linear_problem(),
          'logistic regression (two_moons)': _logistic_problem(),
          'MLP 1-16-1 tanh (noisy sin, 40 points)': _mlp_problem()}


COLORS = {'GD': 'C0', 'momentum': 'C1', 'Adam': 'C2', 'Newton': 'C3', 'Gauss–Newton': 'C4', 'Levenberg–Marquardt': 'C5',
          'L-BFGS': 'C6', 'Newton-CG': 'C7'}


def _color(label):
  return next(c for k, c in sorted(COLORS.items(), key=lambda kv: -len(kv[0])) if label.startswith(k))


def _comparison(ctx):
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  lines = []
  for ax, (title, (loss, resid, p0, first)) in zip(axes, _problems().items()):
    mlp = 'MLP' in title
    curves = {}
    for label, (cfg, n) in first.items():
      tx, _ = build_optimizer(ml_collections.ConfigDict(cfg), n)
      curves[label] = np.asarray(run_path(loss, p0, tx, n)[2], np.float64)
    n2 = 200 if mlp else 30
    curves['Newton' + (' (adaptive damping)' if mlp else '')] = second_order.newton(
        loss, p0, n2 if mlp else 10, damping=1e-3 if mlp else 0.0, adaptive=mlp).losses
    if resid is not None:
      curves['Gauss–Newton'] = second_order.gauss_newton(resid, p0, n2 if mlp else 10).losses
      curves['Levenberg–Marquardt'] = second_order.levenberg_marquardt(resid, p0, n2).losses
    curves['L-BFGS (m=10)'] = second_order.lbfgs(loss, p0, n2).losses
    curves['Newton-CG (HVP)'] = second_order.newton_cg(loss, p0, n2).losses
    j_star = min(float(np.nanmin(v)) for v in curves.values())
    tol = 1e-5 * max(1.0, j_star)
    parts = []
    for label, v in curves.items():
      ax.plot(np.arange(1, len(v) + 1), v if mlp else np.maximum(v - j_star, 1e-10), label=label, lw=1.3,
              color=_color(label), ls='-' if label in first else '--')
      hit = np.nonzero(v - j_star <= tol)[0]
      parts.append(f'{label.split(" ")[0]} {hit[0] if len(hit) else f"> {len(v) - 1}"}' +
                   (f' (J = {v[-1]:.4g})' if mlp else ''))
    lines.append(f'{title}, J* = {j_star:.4g}: ' + ', '.join(parts))
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_title(title, fontsize=10)
    ax.set_xlabel('iteration + 1')
    ax.set_ylabel('J(θ) (non-convex: no J*)' if mlp else 'J(θ) − J* (J*: lowest reached)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  ctx.log('; '.join(lines))
  return plots.save(fig, ctx.figure('convergence')), '; '.join(lines) + '.'


# ----------------------------------------------------------------------------------------------------- T13
AQ = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.1]])
BQ = np.array([1.0, -2.0, 0.5])
T0 = np.array([1.0, 2.0, -3.0])


def _rel(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float64) - b) / (np.abs(b) + 1e-3)))


def _jaxdl_steps(opt, steps):
  tx, _ = build_optimizer(opt, 100)
  f = lambda t: 0.5 * t @ jnp.asarray(AQ, jnp.float32) @ t - jnp.asarray(BQ, jnp.float32) @ t
  t = jnp.asarray(T0, jnp.float32)
  s, out = tx.init(t), []
  for _ in range(steps):
    u, s = tx.update(jax.grad(f)(t), s, t)
    t = t + u
    out.append(np.asarray(t))
  return np.array(out)


def _by_hand(rule, steps):
  t, st, out = T0.copy(), {}, []
  for k in range(1, steps + 1):
    t = rule(t, AQ @ t - BQ, k, st)        # ∇J = Aθ − b
    out.append(t.copy())
  return np.array(out)


def _first_order_rules():
  eps, mu, rho, b1, b2, d = 0.05, 0.8, 0.9, 0.8, 0.95, 1e-8

  def momentum(t, g, k, s):
    s['v'] = mu * s.get('v', 0) - eps * g
    return t + s['v']

  def adagrad(t, g, k, s):
    s['r'] = s.get('r', 0) + g * g
    return t - eps / (1e-7 + np.sqrt(s['r'])) * g

  def rmsprop(t, g, k, s):
    s['r'] = rho * s.get('r', 0) + (1 - rho) * g * g
    return t - eps / (d + np.sqrt(s['r'])) * g

  def adadelta(t, g, k, s):   # Zeiler 2012, Alg. 1 (ε = 1e-6, no learning rate)
    s['eg'] = rho * s.get('eg', 0) + (1 - rho) * g * g
    dx = -np.sqrt(s.get('ex', 0) + 1e-6) / np.sqrt(s['eg'] + 1e-6) * g
    s['ex'] = rho * s.get('ex', 0) + (1 - rho) * dx * dx
    return t + dx

  def adam(t, g, k, s, nesterov=False):
    s['m'] = b1 * s.get('m', 0) + (1 - b1) * g
    s['v'] = b2 * s.get('v', 0) + (1 - b2) * g * g
    m_hat = s['m'] / (1 - b1 ** k)
    if nesterov:   # Dozat 2016
      m_hat = b1 * s['m'] / (1 - b1 ** (k + 1)) + (1 - b1) * g / (1 - b1 ** k)
    return t - eps * m_hat / (d + np.sqrt(s['v'] / (1 - b2 ** k)))

  return {
      'SGD θ ← θ − ε∇J': (_opt('sgd', {}) | {'learning_rate': eps}, lambda t, g, k, s: t - eps * g),
      'momentum v ← μv − ε∇J': (_opt('momentum', {'momentum': mu}) | {'learning_rate': eps}, momentum),
      'Adagrad ε/(δ+√r)': (_opt('adagrad', {}) | {'learning_rate': eps}, adagrad),
      'RMSprop ρ=0.9': (_opt('rmsprop', {'decay': rho}) | {'learning_rate': eps}, rmsprop),
      'Adadelta': ({'name': 'adadelta', 'learning_rate': 1.0, 'rho': rho}, adadelta),
      'Adam (bias-corrected)': (_opt('adam', {'b1': b1, 'b2': b2}) | {'learning_rate': eps}, adam),
      'Nadam': (_opt('nadam', {'b1': b1, 'b2': b2}) | {'learning_rate': eps},
                lambda t, g, k, s: adam(t, g, k, s, nesterov=True)),
  }


def _t13():
  rows, steps = {}, 6
  for label, (opt, rule) in _first_order_rules().items():
    rows[label] = _rel(_jaxdl_steps(opt, steps), _by_hand(rule, steps))
  # Nesterov (Sutskever 2013): θ̄ = θ + μv; v ← μv − ε∇J(θ̄); θ ← θ + v. jaxdl holds θ̄ = θ + μv.
  eps, mu = 0.05, 0.8
  th, v, bars = T0.copy(), np.zeros(3), []
  for _ in range(steps):
    bar = th + mu * v
    v = mu * v - eps * (AQ @ bar - BQ)
    th = th + v
    bars.append(th + mu * v)
  rows['Nesterov (Sutskever), as θ̄ = θ + μv'] = _rel(_jaxdl_steps(_opt('nesterov', {'momentum': mu}) |
                                                                 {'learning_rate': eps}, steps), np.array(bars))
  rows.update(_second_order_rows())
  worst = max(rows.values())
  return ClaimResult('T13', '; '.join(f'{k}: {v:.1e}' for k, v in rows.items()), verdict(worst <= 1e-4),
                     'Max relative error of jaxdl\'s iterates vs the notes\' update rules written in NumPy (float64), '
                     f'{steps} steps on J = ½θᵀAθ − bᵀθ (first order), logistic regression (Newton, L-BFGS), '
                     'y = a·e^(bx) + c (LM). Seed 004\'s "final update rules" for Adam divide m, not m̂ (a typo: its '
                     'own bias correction lines, and seed 000, use m̂, v̂); Adadelta and Nadam follow Zeiler (2012) '
                     'and Dozat (2016), which the notes name but do not write out.')


def _second_order_rows():
  rows = {}
  rng = np.random.default_rng(0)
  x = np.c_[np.ones(50), rng.normal(size=(50, 2))]
  yb = (x @ np.array([0.5, 1.0, -1.5]) + rng.normal(size=50) > 0).astype(np.float64)
  loss = lambda w: jnp.mean(optax.sigmoid_binary_cross_entropy(jnp.asarray(x, jnp.float32) @ w,
                                                               jnp.asarray(yb, jnp.float32)))
  # Newton: θ ← θ − H⁻¹∇J with H = Xᵀdiag(p(1−p))X/N, ∇J = Xᵀ(p − y)/N.
  w, hand = np.zeros(3), []
  for _ in range(4):
    p = 1 / (1 + np.exp(-x @ w))
    w = w - np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]) / 50, x.T @ (p - yb) / 50)
    hand.append(w)
  rows['Newton θ ← θ − H⁻¹∇J'] = _rel(second_order.newton(loss, jnp.zeros(3), 4).path[1:], np.array(hand))
  # L-BFGS: the optimum it reaches with its line search = scipy's.
  ref = scipy.optimize.minimize(lambda w: np.mean(np.logaddexp(0, x @ w) - yb * (x @ w)), np.zeros(3),
                                jac=lambda w: x.T @ (1 / (1 + np.exp(-x @ w)) - yb) / 50, method='BFGS',
                                options={'gtol': 1e-10}).x
  rows['L-BFGS (zoom line search) → optimum'] = _rel(second_order.lbfgs(loss, jnp.zeros(3), 30).params, ref)
  # L-BFGS two-loop recursion (Nocedal & Wright Alg. 7.4, memory 3, unit steps) = optax.scale_by_lbfgs.
  grad = lambda t: AQ @ t - BQ
  t, ss, ys, hand = T0.copy(), [], [], []
  g = grad(t)
  for _ in range(5):
    q, alphas = g.copy(), []
    for s_, y_ in reversed(list(zip(ss[-3:], ys[-3:]))):
      alphas.append((s_ @ q) / (y_ @ s_))
      q = q - alphas[-1] * y_
    r = ((ss[-1] @ ys[-1]) / (ys[-1] @ ys[-1]) if ss else min(1.0, 1 / np.linalg.norm(g))) * q
    for (s_, y_), a in zip(list(zip(ss[-3:], ys[-3:])), reversed(alphas)):
      r = r + s_ * (a - (y_ @ r) / (y_ @ s_))
    t_new = t - r
    ss.append(t_new - t)
    ys.append(grad(t_new) - g)
    t, g = t_new, grad(t_new)
    hand.append(t)
  tx = optax.chain(optax.scale_by_lbfgs(memory_size=3), optax.scale(-1.0))
  tj, out = jnp.asarray(T0, jnp.float32), []
  s = tx.init(tj)
  for _ in range(5):
    u, s = tx.update(jnp.asarray(AQ, jnp.float32) @ tj - jnp.asarray(BQ, jnp.float32), s, tj)
    tj = tj + u
    out.append(np.asarray(tj))
  rows['L-BFGS two-loop recursion'] = _rel(np.array(out), np.array(hand))
  # Levenberg–Marquardt: (JᵀJ + λ diag JᵀJ)(θ_k − θ_{k+1}) = Jᵀr (seed 004 V.3), one step with λ = 0.1.
  xe = np.linspace(0, 2, 25)
  ye = 2.5 * np.exp(-1.3 * xe) + 0.3 + 0.02 * rng.normal(size=25)
  q, lam = np.array([1.0, -0.5, 0.0]), 0.1
  e = np.exp(q[1] * xe)
  jr = np.c_[e, q[0] * xe * e, np.ones(25)]
  a = jr.T @ jr
  hand_lm = q - np.linalg.solve(a + lam * np.diag(np.diag(a)), jr.T @ (q[0] * e + q[2] - ye))
  resid = lambda p: p[0] * jnp.exp(p[1] * jnp.asarray(xe, jnp.float32)) + p[2] - jnp.asarray(ye, jnp.float32)
  lm = second_order.levenberg_marquardt(resid, jnp.asarray(q, jnp.float32), 1, init_lambda=lam)
  rows['Levenberg–Marquardt step'] = _rel(lm.path[1], hand_lm)
  return rows
