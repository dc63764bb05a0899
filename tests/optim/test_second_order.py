"""jaxdl.optim.second_order against closed forms, hand-written NumPy steps and scipy."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from jaxdl.optim import second_order as so

RNG = np.random.default_rng(0)
M = RNG.normal(size=(5, 5))
A = M @ M.T + 5 * np.eye(5)
B = RNG.normal(size=5)
Aj, Bj = jnp.asarray(A, jnp.float32), jnp.asarray(B, jnp.float32)


def quad(p):
  return 0.5 * p['x'] @ Aj @ p['x'] - Bj @ p['x']


def test_newton_solves_a_quadratic_in_one_step():
  r = so.newton(quad, {'x': jnp.full(5, 3.0)}, 1)
  np.testing.assert_allclose(r.params['x'], np.linalg.solve(A, B), rtol=1e-4, atol=1e-5)
  assert r.path.shape == (2, 5) and r.losses[1] < r.losses[0]


def test_hvp_and_cg_match_the_hessian_and_solve():
  v = jnp.asarray(RNG.normal(size=5), jnp.float32)
  hv = so.hvp(quad, {'x': jnp.ones(5)}, {'x': v})['x']
  np.testing.assert_allclose(hv, A @ np.asarray(v), rtol=1e-5)
  # CG on Hessian-vector products of a non-quadratic function = solve with the materialised Hessian.
  f = lambda x: jnp.sum(jnp.log(1 + jnp.exp(Aj @ x))) + 0.5 * x @ x
  x0 = jnp.asarray(RNG.normal(size=5), jnp.float32)
  g = jax.grad(f)(x0)
  d, iters = so.cg_solve(lambda u: so.hvp(f, x0, u), -g, max_iters=10, tol=1e-6)
  np.testing.assert_allclose(d, jnp.linalg.solve(jax.hessian(f)(x0), -g), rtol=1e-4, atol=1e-5)
  assert int(iters) <= 10


def test_cg_stops_on_negative_curvature():
  h = jnp.diag(jnp.array([1.0, -1.0]))
  d, _ = so.cg_solve(lambda u: h @ u, jnp.array([1.0, 1.0]), negative_curvature_stop=True)
  np.testing.assert_allclose(d, [1.0, 1.0])      # first direction has dᵀHd = 0: steepest descent


def _logistic_data():
  rng = np.random.default_rng(1)
  x = np.c_[np.ones(60), rng.normal(size=(60, 2))]
  y = (x @ np.array([0.3, 1.0, -2.0]) + rng.normal(size=60) > 0).astype(np.float64)   # not separable
  return x, y


def _logistic_loss(x, y):
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  return lambda p: jnp.mean(optax.sigmoid_binary_cross_entropy(xj @ p['w'], yj))


def _logistic_optimum(x, y):
  fun = lambda w: np.mean(np.logaddexp(0, x @ w) - y * (x @ w))
  jac = lambda w: x.T @ (1 / (1 + np.exp(-x @ w)) - y) / len(y)
  return scipy.optimize.minimize(fun, np.zeros(3), jac=jac, method='BFGS', options={'gtol': 1e-10}).x


def test_newton_step_is_the_hand_formula_on_logistic_regression():
  x, y = _logistic_data()
  w = np.zeros(3)
  hand = [w]
  for _ in range(3):   # H = Xᵀ diag(p(1−p)) X / N, g = Xᵀ(p − y)/N, θ ← θ − H⁻¹g
    p = 1 / (1 + np.exp(-x @ w))
    w = w - np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]) / len(y), x.T @ (p - y) / len(y))
    hand.append(w)
  r = so.newton(_logistic_loss(x, y), {'w': jnp.zeros(3)}, 3)
  np.testing.assert_allclose(r.path, np.array(hand), rtol=1e-4, atol=1e-5)


def test_lbfgs_and_newton_cg_reach_the_logistic_regression_optimum():
  x, y = _logistic_data()
  w_star = _logistic_optimum(x, y)
  for r in (so.lbfgs(_logistic_loss(x, y), {'w': jnp.zeros(3)}, 30),
            so.newton_cg(_logistic_loss(x, y), {'w': jnp.zeros(3)}, 15)):
    np.testing.assert_allclose(r.params['w'], w_star, atol=1e-4)
    assert np.all(np.diff(r.losses) <= 1e-7)          # line searches never go up


def test_lbfgs_direction_is_the_two_loop_recursion():
  """optax's L-BFGS preconditioner (no line search, unit step) = Nocedal & Wright Alg. 7.4 in NumPy, memory 3."""
  m, steps = 3, 7
  grad = lambda x: A @ x - B
  x, xs, ss, ys = np.full(5, 2.0), [], [], []
  g = grad(x)
  for k in range(steps):
    q, alphas = g.copy(), []
    for s, yv in reversed(list(zip(ss[-m:], ys[-m:]))):
      a = (s @ q) / (yv @ s)
      alphas.append(a)
      q -= a * yv
    gamma = (ss[-1] @ ys[-1]) / (ys[-1] @ ys[-1]) if ss else min(1.0, 1 / np.linalg.norm(g))
    r = gamma * q
    for (s, yv), a in zip(list(zip(ss[-m:], ys[-m:])), reversed(alphas)):
      r += s * (a - (yv @ r) / (yv @ s))
    x_new = x - r
    g_new = grad(x_new)
    ss.append(x_new - x)
    ys.append(g_new - g)
    x, g = x_new, g_new
    xs.append(x)
  tx = optax.chain(optax.scale_by_lbfgs(memory_size=m), optax.scale(-1.0))
  p = jnp.full(5, 2.0)
  s = tx.init(p)
  out = []
  for _ in range(steps):
    u, s = tx.update(Aj @ p - Bj, s, p)
    p = p + u
    out.append(np.asarray(p))
  np.testing.assert_allclose(np.array(out), np.array(xs), rtol=1e-4, atol=1e-5)


X_EXP = np.linspace(0, 2, 25)
Y_EXP = 2.5 * np.exp(-1.3 * X_EXP) + 0.3 + 0.02 * np.random.default_rng(2).normal(size=25)


def _exp_residual(p):
  x, y = jnp.asarray(X_EXP, jnp.float32), jnp.asarray(Y_EXP, jnp.float32)
  return p['a'] * jnp.exp(p['b'] * x) + p['c'] - y


def _exp_reference():
  res = lambda q: q[0] * np.exp(q[1] * X_EXP) + q[2] - Y_EXP
  return scipy.optimize.least_squares(res, [1.0, 0.0, 0.0], xtol=1e-14, ftol=1e-14).x


def test_gauss_newton_and_lm_fit_a_nonlinear_least_squares_problem():
  ref = _exp_reference()
  params = lambda a, b, c: {'a': jnp.array(a), 'b': jnp.array(b), 'c': jnp.array(c)}
  got = lambda r: np.array([r.params['a'], r.params['b'], r.params['c']])
  np.testing.assert_allclose(got(so.gauss_newton(_exp_residual, params(2.0, -1.0, 0.2), 15)), ref, rtol=1e-3, atol=1e-3)
  # From a poorer start the undamped Gauss–Newton step overshoots (b > 0) and never recovers; LM (λ·diag JᵀJ) and
  # Levenberg (λI) adapt λ, and every accepted step lowers J.
  far = params(1.0, -0.5, 0.0)
  assert not np.allclose(got(so.gauss_newton(_exp_residual, far, 20)), ref, atol=0.1)
  for marquardt in (True, False):
    r = so.levenberg_marquardt(_exp_residual, far, 40, marquardt=marquardt)
    np.testing.assert_allclose(got(r), ref, rtol=1e-3, atol=1e-3)
    assert np.all(np.diff(r.losses) <= 0)


def test_lm_step_is_the_hand_formula():
  q, lam = np.array([1.0, -0.5, 0.0]), 0.1
  e = np.exp(q[1] * X_EXP)
  jr = np.c_[e, q[0] * X_EXP * e, np.ones_like(X_EXP)]       # ∂r/∂(a, b, c)
  r = q[0] * e + q[2] - Y_EXP
  a = jr.T @ jr
  step = np.linalg.solve(a + lam * np.diag(np.diag(a)), jr.T @ r)   # (JᵀJ + λ diag JᵀJ)(θ_k − θ_{k+1}) = Jᵀr
  out = so.levenberg_marquardt(_exp_residual, {'a': jnp.array(1.0), 'b': jnp.array(-0.5), 'c': jnp.array(0.0)}, 1,
                               init_lambda=lam)
  np.testing.assert_allclose(out.path[1], q - step, rtol=1e-4, atol=1e-5)   # path order: a, b, c
  assert out.info['lambda'][0] == lam
