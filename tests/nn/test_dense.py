"""jaxdl.nn.dense.Dense = flax's nn.Dense: same parameters (names, shapes, initial values), outputs and gradients,
on inputs of rank 2, 3 and 4, with and without bias and in bfloat16."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.nn.dense import Dense


@pytest.mark.parametrize('shape', [(6, 5), (3, 4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize('use_bias', [True, False])
def test_dense_equals_flax_dense(shape, use_bias):
  x = jax.random.normal(jax.random.key(0), shape)
  ours, theirs = Dense(7, use_bias=use_bias), nn.Dense(7, use_bias=use_bias)
  v = theirs.init(jax.random.key(1), x)
  v_ours = ours.init(jax.random.key(1), x)
  assert jax.tree.structure(v) == jax.tree.structure(v_ours)
  for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(v_ours)):
    np.testing.assert_array_equal(a, b)
  y = ours.apply(v, x)
  assert y.shape == shape[:-1] + (7,)
  # reference: NumPy in float64
  k = np.asarray(v['params']['kernel'], np.float64)
  ref = np.asarray(x, np.float64) @ k + (np.asarray(v['params']['bias'], np.float64) if use_bias else 0.0)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)

  def loss(model, params, x):
    return jnp.sum(jnp.sin(model.apply(params, x)))
  g_ours = jax.grad(loss, argnums=(1, 2))(ours, v, x)
  g_theirs = jax.grad(loss, argnums=(1, 2))(theirs, v, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_dense_keeps_flax_options():
  x = jnp.ones((2, 3, 4), jnp.bfloat16)
  m = Dense(5, dtype=jnp.bfloat16, kernel_init=nn.initializers.ones, bias_init=nn.initializers.constant(0.5))
  v = m.init(jax.random.key(0), x)
  assert v['params']['kernel'].dtype == jnp.float32          # param_dtype stays float32
  y = m.apply(v, x)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.full((2, 3, 5), 4.5, np.float32))
