"""Least squares on the course's toy set: closed form, ridge, and online / minibatch / batch gradient descent.

Reproduces: L4 (closed form w = (XXᵀ)⁻¹Xy; ridge (XXᵀ + αI)w = Xy is solvable for α > 0 even when XXᵀ is singular),
            L5 (online SGD = delta rule, minibatch and batch GD converge to the closed form),
            L6 (maximum likelihood under Gaussian noise = least squares).
Data:       N = 30, y = 3x + 2 + U(−0.1, 0.1), x ~ U(0, 1) (seed 000, "Example regression problem");
            model f(x) = θᵀ[1; x]; L2 loss (y − f(x))².
Command:    jaxdl train --config=experiments/linear_regression.py --workdir=runs/linear_regression
            jaxdl reproduce linear_regression --out=report/
Expected:   batch GD θ within 1e-3 of numpy.linalg.lstsq's θ ≈ [2, 3] (bias, slope); online and minibatch SGD (with a
            decaying step) within 1e-2; train MSE ≈ 0.0033 (the noise variance 0.2²/12).
CPU time:   ≈ 5 s for `train`, ≈ 20 s for `reproduce`.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.models import linear
from jaxdl.reproduce import Claim, ClaimResult, vec, verdict

CLAIMS = {
    'L4': Claim('L4', 'closed form w=(XXᵀ)⁻¹Xy; ridge (XXᵀ+αI)w=Xy solvable for α>0 even when XXᵀ is singular', '000, 004 F1',
                'normal equations = numpy lstsq (1e-4); on points along a line XXᵀ has rank 2 < 3 and the ridge '
                'system has a unique solution'),
    'L5': Claim('L5', 'online SGD (delta rule), minibatch and batch GD on linear regression converge to the closed form',
                '000', '|θ − θ*|∞ < 1e-3 (batch), < 1e-2 (online, minibatch)'),
    'L6': Claim('L6', 'MLE under Gaussian noise = least squares', '004 F2',
                'maximising the Gaussian likelihood over (θ, σ) gives θ* (|Δ| < 1e-3) and σ̂² = MSE(θ*)'),
}


def get_config():
  c = base_config()
  c.model.name = 'linear'
  c.model.num_outputs = 1
  c.data.name = 'toy_regression'
  c.loss.name = 'squared_error'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.2
  c.train.num_steps = 2000
  c.train.batch_size = 30          # full batch: the N = 30 points
  c.train.eval_every = 500
  c.train.checkpoint_every = 1000
  c.train.log_every = 250
  c.train.best_metric = 'loss'
  return c


VARIANTS = {  # name: (batch size, learning rate, steps, schedule)
    'batch': (30, 0.2, 2000, 'constant'),
    'minibatch': (8, 0.1, 4000, 'linear'),
    'online': (1, 0.05, 6000, 'linear'),
}


def reproduce(ctx):
  c = get_config()
  x, y = data_lib.split_arrays(data_lib.get_dataset(c.data), 'train')
  phi = np.c_[np.ones(len(x)), x[:, 0]].astype(np.float64)
  yv = y[:, 0].astype(np.float64)
  # L4 — normal equations as written (numerator layout: X = [x_0 | x_1 | ...], XXᵀ w = X y).
  X = phi.T
  w_normal = np.linalg.solve(X @ X.T, X @ yv)
  w_lstsq, *_ = np.linalg.lstsq(phi, yv, rcond=None)
  w_ours = np.asarray(linear.least_squares(x, y))[:, 0]
  t = np.linspace(0, 1, 10)
  line = np.c_[t, 2 * t]                       # points along a line in 2-D
  Xl = np.c_[np.ones(10), line].T
  rank = int(np.linalg.matrix_rank(Xl @ Xl.T))
  alpha = 0.1
  w_ridge = np.linalg.solve(Xl @ Xl.T + alpha * np.eye(3), Xl @ (3 * t + 1))
  w_ridge_ours = np.asarray(linear.least_squares(line, 3 * t + 1, ridge=alpha / 10))[:, 0]
  l4_ok = (np.allclose(w_normal, w_lstsq, atol=1e-4) and np.allclose(w_ours, w_lstsq, atol=1e-4) and rank == 2
           and np.allclose(w_ridge, w_ridge_ours, atol=1e-4))
  res = [ClaimResult('L4', f'θ* = {vec(w_lstsq)}: normal equations, lstsq and jaxdl agree '
                     f'(|Δ| ≤ {max(np.abs(w_normal - w_lstsq).max(), np.abs(w_ours - w_lstsq).max()):.1e}); line data: '
                     f'rank XXᵀ = {rank}, ridge α={alpha} → w = {vec(w_ridge)}', verdict(l4_ok))]

  # L5 — the one trainer with batch sizes 1, 8, 30.
  devs, series = {}, {}
  for name, (bs, lr, steps, sched) in VARIANTS.items():
    cv = get_config()
    cv.train.batch_size, cv.optimizer.learning_rate, cv.train.num_steps = bs, lr, steps
    cv.optimizer.schedule = sched
    cv.train.log_every, cv.train.eval_every, cv.train.checkpoint_every = max(1, steps // 50), 0, 0
    cv.train.best_metric = ''
    _, state = ctx.train(cv, name, return_state=True)
    theta = np.asarray(linear.theta_from_params(state.params))[:, 0]
    devs[name] = (float(np.max(np.abs(theta - w_lstsq))), theta)
    series[f'{name} (B={bs})'] = plots.metric_history(ctx.workdir(name), 'train', 'loss')
  fig = plots.curves(series, ctx.figure('gd_variants'), ylabel='train loss (mean squared error)', logy=True,
                     title='least squares by gradient descent')
  ok5 = devs['batch'][0] < 1e-3 and devs['minibatch'][0] < 1e-2 and devs['online'][0] < 1e-2
  res.append(ClaimResult('L5', '; '.join(f'{k}: θ={vec(v[1])} |Δ|={v[0]:.1e}' for k, v in devs.items()),
                         verdict(ok5), f'closed form θ* = {vec(w_lstsq)}', [fig]))

  # L6 — maximise the Gaussian likelihood over (θ, log σ) and compare with least squares.
  def nll(p):
    r = jnp.asarray(yv, jnp.float32) - jnp.asarray(phi, jnp.float32) @ p['theta']
    return 0.5 * jnp.mean(r ** 2) * jnp.exp(-2 * p['log_sigma']) + p['log_sigma'] + 0.5 * jnp.log(2 * jnp.pi)
  tx = optax.adam(0.05)
  p = {'theta': jnp.zeros(2), 'log_sigma': jnp.zeros(())}
  s = tx.init(p)
  @jax.jit
  def step(p, s):
    g = jax.grad(nll)(p)
    u, s = tx.update(g, s)
    return optax.apply_updates(p, u), s
  for _ in range(4000):
    p, s = step(p, s)
  theta_mle = np.asarray(p['theta'])
  mse = float(np.mean((yv - phi @ w_lstsq) ** 2))
  sigma2 = float(np.exp(2 * p['log_sigma']))
  ok6 = np.max(np.abs(theta_mle - w_lstsq)) < 1e-3 and abs(sigma2 - mse) / mse < 1e-2
  res.append(ClaimResult('L6', f'θ_MLE = {vec(theta_mle)} (|Δ| = {np.max(np.abs(theta_mle - w_lstsq)):.1e}); '
                         f'σ̂² = {sigma2:.5f} vs MSE(θ*) = {mse:.5f}', verdict(ok6),
                         '−log p(y|x,θ,σ) = (1/2σ²)Σ(y − θᵀφ)² + N log σ + const: for any σ its minimiser in θ is θ*.'))
  return res
