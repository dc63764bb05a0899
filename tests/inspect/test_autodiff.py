"""Forward vs reverse mode on the notes' graph, the gradient checker, and custom VJPs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.inspect import autodiff


def _graph_args(seed=0):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(a, jnp.float32) for a in (rng.normal(size=8) * 0.3, rng.normal(size=8) * 0.3, 0.1,
                                                rng.normal(size=8) * 0.3, -0.2)]


def test_forward_and_reverse_mode_match_the_notes_formulas():
  x, w1, b1, w2, b2 = _graph_args()
  f = lambda x_: autodiff.example_graph(x_, w1, b1, w2, b2)
  fwd = autodiff.forward_mode_gradient(f, x)
  rev = autodiff.reverse_mode_gradient(f, x)
  np.testing.assert_allclose(fwd, rev, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(fwd, autodiff.example_graph_forward_formula(x, w1, b1, w2, b2), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(rev, autodiff.example_graph_reverse_formula(x, w1, b1, w2, b2), rtol=1e-5, atol=1e-6)


def test_gradcheck_passes_on_a_correct_gradient_and_fails_on_a_wrong_one():
  x, w1, b1, w2, b2 = _graph_args(1)
  assert autodiff.gradcheck(lambda p: autodiff.example_graph(p["x"], w1, b1, w2, b2), {"x": x}, eps=1e-3) <= 1.0

  @jax.custom_vjp
  def bad_square(v):
    return v * v
  bad_square.defvjp(lambda v: (v * v, v), lambda v, g: (3.0 * v * g,))   # wrong: should be 2v
  with pytest.raises(AssertionError, match='gradient check failed'):
    autodiff.gradcheck(lambda p: jnp.sum(bad_square(p)), jnp.arange(1.0, 4.0), eps=1e-3)


def test_linear_regression_graph_gradient_is_two_over_m_residual_times_x():
  rng = np.random.default_rng(0)
  X = jnp.asarray(rng.normal(size=(64, 8)), jnp.float32)
  y = jnp.asarray(rng.normal(size=64), jnp.float32)
  w, b = jnp.asarray(rng.normal(size=8), jnp.float32), 0.3
  J = lambda w_: jnp.mean((X @ w_ + b - y) ** 2)
  np.testing.assert_allclose(jax.grad(J)(w), 2 / 64 * (X @ w + b - y) @ X, rtol=1e-5, atol=1e-6)


def test_custom_vjp_cross_entropy_equals_autodiff_and_p_minus_y():
  rng = np.random.default_rng(0)
  o = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  y = jax.nn.one_hot(jnp.array([0, 3, 1, 4]), 5)
  f_custom = lambda o_: jnp.sum(autodiff.softmax_cross_entropy_custom(o_, y))
  f_auto = lambda o_: jnp.sum(-jnp.sum(y * jax.nn.log_softmax(o_), -1))
  np.testing.assert_allclose(f_custom(o), f_auto(o), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(f_custom)(o), jax.grad(f_auto)(o), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(jax.grad(f_custom)(o), jax.nn.softmax(o) - y, rtol=1e-5, atol=1e-7)


def test_clip_gradient_clips_only_the_backward_pass():
  x = jnp.array([1.0, 2.0, 3.0])
  assert np.allclose(autodiff.clip_gradient(x, 0.5), x)
  # The cotangent reaching clip_gradient is 10 per element: clipped to 0.5 on the way back.
  g = jax.grad(lambda v: jnp.sum(10.0 * autodiff.clip_gradient(v, 0.5)))(x)
  np.testing.assert_allclose(g, np.full(3, 0.5))
  g = jax.grad(lambda v: jnp.sum(0.1 * autodiff.clip_gradient(v, 0.5)))(x)
  np.testing.assert_allclose(g, np.full(3, 0.1), rtol=1e-6)
