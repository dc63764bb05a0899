"""BPTT helpers (jaxdl.nn.bptt): truncated BPTT against a hand-truncated Python loop (stop_gradient at every chunk
boundary) and, for k = T, against full BPTT; RTRL (forward mode) against reverse-mode BPTT; the R2 Jacobian norms
against a NumPy product of per-step Jacobians and against ρ^T for a linear RNN with a symmetric W_h."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.nn import bptt

H, D, O, B, T = 3, 2, 2, 2, 10


def step_fn(p, h, x, y):
  """A small Elman RNN with a linear readout and a squared error per step."""
  h = jnp.tanh(x @ p['w_in'] + h @ p['w_h'] + p['b'])
  out = h @ p['w_out']
  return h, jnp.mean((out - y) ** 2)


def _problem(dtype=np.float32, seed=0):
  rng = np.random.default_rng(seed)
  p = {'w_in': rng.normal(size=(D, H)), 'w_h': rng.normal(size=(H, H)) * 0.8, 'b': rng.normal(size=(H,)) * 0.1,
       'w_out': rng.normal(size=(H, O))}
  p = jax.tree.map(lambda a: jnp.asarray(a, dtype), p)
  xs = jnp.asarray(rng.normal(size=(T, B, D)), dtype)
  ys = jnp.asarray(rng.normal(size=(T, B, O)), dtype)
  h0 = jnp.asarray(rng.normal(size=(B, H)) * 0.1, dtype)
  return p, h0, xs, ys


def hand_truncated_loss(p, h, xs, ys, k):
  """Python loop over time; the carry goes through stop_gradient at every chunk boundary (t = k, 2k, ...)."""
  total = 0.0
  for t in range(xs.shape[0]):
    if t % k == 0:
      h = jax.lax.stop_gradient(h)
    h, loss = step_fn(p, h, xs[t], ys[t])
    total = total + loss
  return total / xs.shape[0]


@pytest.mark.parametrize('k', [1, 3, 5])
def test_truncated_bptt_equals_hand_truncated_loop(k):
  p, h0, xs, ys = _problem()
  loss, grads, final = jax.jit(lambda p, h, xs, ys: bptt.truncated_bptt(step_fn, p, h, xs, ys, k))(p, h0, xs, ys)
  ref_loss, ref_grads = jax.value_and_grad(hand_truncated_loss)(p, h0, xs, ys, k)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # the final carry is the state after the whole stream
  h = h0
  for t in range(T):
    h, _ = step_fn(p, h, xs[t], ys[t])
  np.testing.assert_allclose(final, h, atol=1e-6)


def test_truncation_at_T_is_full_bptt_and_shorter_truncation_differs():
  p, h0, xs, ys = _problem()
  full_loss, full_grads = jax.value_and_grad(hand_truncated_loss)(p, h0, xs, ys, T + 1)   # no boundary inside
  for fn in (lambda: bptt.truncated_bptt(step_fn, p, h0, xs, ys, T), lambda: bptt.bptt(step_fn, p, h0, xs, ys)):
    loss, grads, _ = fn()
    np.testing.assert_allclose(loss, full_loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(full_grads)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  _, short, _ = bptt.truncated_bptt(step_fn, p, h0, xs, ys, 2)
  assert not np.allclose(short['w_h'], full_grads['w_h'], rtol=1e-3)   # truncation does cut gradient paths
  loss_sum, _, _ = bptt.truncated_bptt(step_fn, p, h0, xs, ys, 4, reduction='sum')
  np.testing.assert_allclose(loss_sum, full_loss * T, rtol=1e-6)


def test_rtrl_gradient_equals_bptt_float64():
  with jax.enable_x64(True):
    p, h0, xs, ys = _problem(np.float64, seed=1)
    loss, grads, final = jax.jit(lambda p, h, xs, ys: bptt.rtrl_gradient(step_fn, p, h, xs, ys))(p, h0, xs, ys)
    ref_loss, ref_grads = jax.value_and_grad(hand_truncated_loss)(p, h0, xs, ys, T + 1)   # reverse mode, full
    assert loss == pytest.approx(float(ref_loss), rel=1e-12)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
      assert a.dtype == np.float64
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def np_jacobian_norms(W, T_max, act, h0, u, b, ord=2):
  """‖Π_t diag(f'(a_t)) W‖ accumulated step by step in NumPy (float64)."""
  W = np.asarray(W, np.float64)
  h, J, norms = np.asarray(h0, np.float64), np.eye(W.shape[0]), []
  for t in range(T_max):
    a = W @ h + u[t] + b
    if act == 'tanh':
      h = np.tanh(a)
      step = np.diag(1 - h ** 2) @ W
    else:
      h, step = a, W
    J = step @ J
    norms.append(np.linalg.norm(J, ord))
  return np.array(norms)


def test_jacobian_norms_match_numpy_product_tanh():
  rng = np.random.default_rng(2)
  W = rng.normal(size=(4, 4)) * 0.9
  h0, u, b = rng.normal(size=4), rng.normal(size=(12, 4)), rng.normal(size=4) * 0.1
  for ord in (2, 'fro'):
    got = bptt.hidden_state_jacobian_norms(jnp.asarray(W, jnp.float32), 12, activation='tanh', h0=h0, inputs=u,
                                           bias=b, ord=ord)
    np.testing.assert_allclose(got, np_jacobian_norms(W, 12, 'tanh', h0, u, b, ord), rtol=2e-4)


@pytest.mark.parametrize('radius', [0.9, 1.0, 1.1])
def test_linear_rnn_jacobian_norm_is_radius_to_the_T(radius):
  """Claim R2: for a symmetric W_h = Q Λ Qᵀ, ∂h_T/∂h_0 = W_h^T and its spectral norm is ρ^T."""
  rng = np.random.default_rng(3)
  Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
  lam = np.array([radius, -0.5 * radius, 0.3, 0.1, -0.2])
  W = Q @ np.diag(lam) @ Q.T
  norms, J = bptt.hidden_state_jacobian_norms(jnp.asarray(W, jnp.float32), 30, return_jacobians=True)
  np.testing.assert_allclose(norms, radius ** np.arange(1, 31), rtol=2e-4)
  np.testing.assert_allclose(J[4], np.linalg.matrix_power(W, 5), atol=1e-5)
  np.testing.assert_allclose(norms, np_jacobian_norms(W, 30, 'linear', np.zeros(5), np.zeros((30, 5)), 0.0),
                             rtol=2e-4)


def test_bad_arguments():
  p, h0, xs, ys = _problem()
  with pytest.raises(UserError, match='truncation'):
    bptt.truncated_bptt(step_fn, p, h0, xs, ys, 0)
  with pytest.raises(UserError, match='reduction'):
    bptt.bptt(step_fn, p, h0, xs, ys, reduction='max')
  with pytest.raises(UserError, match='square'):
    bptt.hidden_state_jacobian_norms(jnp.ones((2, 3)), 3)
