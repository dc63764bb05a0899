"""Chapter 1 mechanisms against independent references (NumPy, finite differences, the notes' formulas)."""
import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl import losses
from jaxdl.nn import cluster
from jaxdl.models import build_model, linear, perceptron, polynomial, rbf
from jaxdl.optim import build_optimizer
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step

jax.config.update('jax_enable_x64', False)


def test_least_squares_matches_numpy_lstsq():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 3))
  y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.01 * rng.normal(size=40)
  phi = np.c_[np.ones(40), x]
  ref, *_ = np.linalg.lstsq(phi, y, rcond=None)
  np.testing.assert_allclose(np.asarray(linear.least_squares(x, y))[:, 0], ref, rtol=1e-4, atol=1e-5)


def test_ridge_is_solvable_when_normal_matrix_is_singular():
  # Points on a line in 2-D: XXᵀ is singular, (XXᵀ + αI) is not (course L4).
  t = np.linspace(-1, 1, 10)
  x = np.c_[t, 2 * t]
  y = 3 * t + 1
  phi = np.c_[np.ones(10), x]
  assert np.linalg.matrix_rank(phi.T @ phi) < 3
  alpha = 0.1
  theta = np.asarray(linear.least_squares(x, y, ridge=alpha))[:, 0]
  ref = np.linalg.solve(phi.T @ phi + 10 * alpha * np.eye(3), phi.T @ y)
  np.testing.assert_allclose(theta, ref, rtol=1e-4, atol=1e-5)


def test_polynomial_fit_recovers_a_cubic():
  x = np.linspace(-1, 1, 20)
  y = 1 - 2 * x + 0.5 * x ** 3
  p = polynomial.fit_polynomial(x, y, 3)
  np.testing.assert_allclose(np.r_[p['dense']['bias'], p['dense']['kernel'][:, 0]], [1, -2, 0, 0.5], atol=1e-3)


def _separable(n=40, seed=0, margin=0.2):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-1, 1, size=(4 * n, 2))
  w = np.array([1.0, -0.7]); b = 0.1
  s = x @ w + b
  keep = np.abs(s) / np.linalg.norm(w) > margin
  return x[keep][:n].astype(np.float32), np.where(s[keep][:n] >= 0, 1.0, -1.0).astype(np.float32)


def test_perceptron_mistake_bound_on_separable_data():
  """Novikoff: total mistakes ≤ (R/γ)² with R = max‖φ‖ and γ the margin of a unit-norm separator."""
  x, y = _separable()
  phi = np.c_[np.ones(len(x)), x]
  w, mistakes = perceptron.perceptron_fit(phi, y, 50)
  assert int(mistakes[-1]) == 0
  w_star = np.array([0.1, 1.0, -0.7]); w_star /= np.linalg.norm(w_star)
  gamma = np.min(y * (phi @ w_star))
  radius = np.max(np.linalg.norm(phi, axis=1))
  assert gamma > 0 and int(np.sum(mistakes)) <= (radius / gamma) ** 2
  assert np.all(np.sign(phi @ np.asarray(w) + 1e-12) == y)


def test_trainer_with_perceptron_loss_is_the_online_rule():
  """The one trainer (linear model, perceptron loss, SGD lr 1, batch 1) reproduces the online rule exactly."""
  x, y = _separable(n=12)
  model = build_model(ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 1, 'zero_init': True}))
  loss = losses.build_loss(ml_collections.ConfigDict({'name': 'perceptron'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1.0}), 1)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (2,))
  step = jax.jit(make_train_step(model, loss, tx))
  for _ in range(3):
    for i in range(len(x)):
      state, _ = step(state, {'inputs': x[i:i + 1], 'targets': y[i:i + 1]}, jax.random.PRNGKey(0))
  w_ref, _ = perceptron.perceptron_fit(np.c_[np.ones(len(x)), x], y, 3)
  np.testing.assert_allclose(np.asarray(linear.theta_from_params(state.params))[:, 0], w_ref, atol=1e-6)


def test_kernel_perceptron_with_linear_kernel_equals_primal():
  x, y = _separable(n=30, seed=1)
  lin = lambda a, b: 1.0 + a @ b.T          # ⟨[1;a],[1;b]⟩: the primal with φ₀ = 1
  alpha, mistakes, epochs = perceptron.kernel_perceptron_fit(x, y, lin, 50)
  w, m_primal = perceptron.perceptron_fit(np.c_[np.ones(len(x)), x], y, int(epochs))
  np.testing.assert_array_equal(np.asarray(mistakes[:int(epochs)]), np.asarray(m_primal))
  pred = perceptron.kernel_perceptron_predict(alpha, x, y, x, lin)
  np.testing.assert_array_equal(np.asarray(pred), y)


def test_kernel_perceptron_separates_xor_with_a_polynomial_kernel():
  x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32) * 2 - 1
  y = np.array([-1, 1, 1, -1], np.float32)
  k = perceptron.polynomial_kernel(3)
  alpha, mistakes, epochs = perceptron.kernel_perceptron_fit(x, y, k, 100)
  assert int(epochs) < 100
  np.testing.assert_array_equal(np.asarray(perceptron.kernel_perceptron_predict(alpha, x, y, x, k)), y)


def test_kmeans_plus_plus_seeding_distribution():
  """On points {0, 1, 3} (1-D): after a first centre c, the next is x with probability D(x)²/ΣD²."""
  x = jnp.array([[0.0], [1.0], [3.0]])
  counts = {}
  keys = jax.random.split(jax.random.PRNGKey(0), 6000)
  pairs = jax.vmap(lambda k: cluster.kmeans_plus_plus_init(k, x, 2)[:, 0])(keys)
  for a, b in np.asarray(pairs):
    counts[(a, b)] = counts.get((a, b), 0) + 1
  pts = [0.0, 1.0, 3.0]
  for a, b in itertools.permutations(pts, 2):
    d2 = {p: (p - a) ** 2 for p in pts}
    expected = (1 / 3) * d2[b] / sum(d2.values())
    observed = counts.get((a, b), 0) / len(keys)
    assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / len(keys)) + 1e-3, (a, b)
  assert all(a != b for a, b in counts)  # a chosen point is never chosen again


def test_lloyd_finds_well_separated_clusters():
  rng = np.random.default_rng(0)
  true = np.array([[0, 0], [5, 5], [-5, 5]], np.float32)
  x = np.concatenate([c + 0.1 * rng.normal(size=(50, 2)) for c in true]).astype(np.float32)
  c = np.asarray(cluster.kmeans(jax.random.PRNGKey(3), x, 3))
  for t in true:
    assert np.min(np.linalg.norm(c - t, axis=1)) < 0.1


def test_rbf_features_match_numpy():
  rng = np.random.default_rng(0)
  x, mu, sig = rng.normal(size=(5, 2)), rng.normal(size=(3, 2)), np.array([0.5, 1.0, 2.0])
  ref = np.exp(-((x[:, None, :] - mu[None]) ** 2).sum(-1) / (2 * sig ** 2))
  np.testing.assert_allclose(rbf.rbf_features(jnp.asarray(x, jnp.float32), jnp.asarray(mu, jnp.float32),
                                              jnp.log(jnp.asarray(sig, jnp.float32))), ref, rtol=1e-5, atol=1e-6)


def _fd_grad(f, x, eps=1e-3):
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    d = np.zeros_like(x); d[i] = eps
    g[i] = (f(x + d) - f(x - d)) / (2 * eps)
  return g


@pytest.mark.parametrize('name', ['softmax_cross_entropy', 'multiclass_hinge', 'sigmoid_binary_cross_entropy',
                                  'squared_error', 'sigmoid_squared_error'])
def test_loss_gradients_match_finite_differences(name):
  rng = np.random.default_rng(0)
  k = 1 if name.startswith('sigmoid') or name == 'squared_error' else 4
  o = rng.normal(size=(3, k)).astype(np.float32)
  t = (rng.integers(0, 2, size=(3,)) if k == 1 and name != 'squared_error' else
       rng.normal(size=(3, 1)) if name == 'squared_error' else rng.integers(0, k, size=(3,)))
  fn = losses.build_loss(ml_collections.ConfigDict({'name': name}))
  f = lambda o_: float(jnp.sum(fn(jnp.asarray(o_, jnp.float32), {'targets': jnp.asarray(t)})['loss']))
  g = jax.grad(lambda o_: jnp.sum(fn(o_, {'targets': jnp.asarray(t)})['loss']))(jnp.asarray(o))
  np.testing.assert_allclose(g, _fd_grad(f, o), rtol=2e-2, atol=2e-3)


def test_softmax_cross_entropy_gradient_is_p_minus_y_and_finite_for_huge_logits():
  o = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
  y = jnp.array([1, 2])
  fn = losses.build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  out = fn(o, {'targets': y})
  assert np.all(np.isfinite(out['loss']))
  np.testing.assert_allclose(out['loss'], [2e4, 0.0], rtol=1e-6)
  g = jax.grad(lambda o_: jnp.sum(fn(o_, {'targets': y})['loss']))(o)
  np.testing.assert_allclose(g, jax.nn.softmax(o) - jax.nn.one_hot(y, 3), atol=1e-6)
  # Shift invariance of softmax.
  np.testing.assert_allclose(jax.nn.softmax(o + 123.0), jax.nn.softmax(o), atol=1e-6)


def test_multiclass_hinge_matches_the_formula():
  rng = np.random.default_rng(1)
  s = rng.normal(size=(6, 4)).astype(np.float32)
  y = rng.integers(0, 4, 6)
  ref = [sum(max(0, s[i, k] - s[i, y[i]] + 1) for k in range(4) if k != y[i]) for i in range(6)]
  fn = losses.build_loss(ml_collections.ConfigDict({'name': 'multiclass_hinge'}))
  np.testing.assert_allclose(fn(jnp.asarray(s), {'targets': jnp.asarray(y)})['loss'], ref, rtol=1e-5)
