"""Activations: every value and derivative against NumPy formulas and finite differences; learned ones (PReLU,
maxout) as modules and inside the MLP; the derivative maxima of the notes (σ′ ≤ 1/4, tanh′ ≤ 1)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.nn import activations
from jaxdl.errors import UserError
from jaxdl.models import build_model

X = np.linspace(-4.0, 4.0, 81) + 0.0123          # avoids the kinks at 0
SELU_L, SELU_A = 1.0507009873554805, 1.6732632423543772


def _sig(x):
  return 1.0 / (1.0 + np.exp(-x))


# name: (f(x), f'(x)) written from the formulas (None: derivative by finite differences only)
REF = {
    'identity': (lambda x: x, lambda x: np.ones_like(x)),
    'sigmoid': (_sig, lambda x: _sig(x) * (1 - _sig(x))),
    'tanh': (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    'lecun_tanh': (lambda x: 1.7159 * np.tanh(2 * x / 3), lambda x: 1.7159 * 2 / 3 * (1 - np.tanh(2 * x / 3) ** 2)),
    'relu': (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    'leaky_relu': (lambda x: np.where(x >= 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01)),
    'elu': (lambda x: np.where(x >= 0, x, np.exp(x) - 1), lambda x: np.where(x > 0, 1.0, np.exp(x))),
    'selu': (lambda x: SELU_L * np.where(x >= 0, x, SELU_A * (np.exp(x) - 1)),
             lambda x: SELU_L * np.where(x > 0, 1.0, SELU_A * np.exp(x))),
    'swish': (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * (1 - _sig(x))),
    'silu': (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * (1 - _sig(x))),
    'softplus': (lambda x: np.log1p(np.exp(x)), _sig),
    'gelu': (lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))), None),
    'step': (lambda x: (x >= 0).astype(float), lambda x: np.zeros_like(x)),
}


def _grad(f, x):
  return np.asarray(jax.vmap(jax.grad(lambda v: f(v)))(jnp.asarray(x, jnp.float32)))


def test_every_fixed_activation_is_referenced():
  assert set(activations.ACTIVATIONS) - {'linear', 'maxout'} == set(REF)


@pytest.mark.parametrize('name', sorted(REF))
def test_value_and_derivative(name):
  f = activations.get_activation(name)
  ref, dref = REF[name]
  np.testing.assert_allclose(np.asarray(f(jnp.asarray(X, jnp.float32))), ref(X), rtol=2e-5, atol=2e-6)
  g = _grad(f, X)
  if dref is not None:
    np.testing.assert_allclose(g, dref(X), rtol=1e-4, atol=1e-6)
  if name != 'step':  # central differences of the NumPy formula (float64), away from the kinks
    h = 1e-5
    np.testing.assert_allclose(g, (ref(X + h) - ref(X - h)) / (2 * h), rtol=1e-4, atol=1e-5)


def test_parameters_are_config_values():
  x = jnp.asarray(X, jnp.float32)
  np.testing.assert_allclose(activations.get_activation('leaky_relu', slope=0.2)(x), np.where(X >= 0, X, 0.2 * X), rtol=1e-6)
  np.testing.assert_allclose(activations.get_activation('elu', alpha=2.0)(x), np.where(X >= 0, X, 2 * (np.exp(X) - 1)),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(activations.get_activation('swish', beta=3.0)(x), X * _sig(3 * X), rtol=1e-5, atol=1e-6)
  # Parameters that do not apply are ignored (one Activation module carries all of them).
  np.testing.assert_allclose(activations.get_activation('relu', slope=0.3)(x), np.maximum(X, 0))


def test_derivative_maxima_and_lecun_tanh_fixed_points():
  grid = jnp.linspace(-10, 10, 200001)          # contains 0 exactly
  ds = _grad(jax.nn.sigmoid, grid)
  dt = _grad(jnp.tanh, grid)
  far = np.abs(np.asarray(grid)) > 0.05
  assert abs(ds.max() - 0.25) < 1e-6 and float(jax.grad(jax.nn.sigmoid)(0.0)) == 0.25 and ds[far].max() < 0.25 - 1e-4
  assert abs(dt.max() - 1.0) < 1e-6 and float(jax.grad(jnp.tanh)(0.0)) == 1.0 and dt[far].max() < 1.0 - 1e-3
  f = activations.get_activation('lecun_tanh')
  np.testing.assert_allclose(np.asarray(f(jnp.array([1.0, -1.0]))), [1.0, -1.0], atol=1e-4)


def test_maxout_function_and_module():
  x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
  np.testing.assert_array_equal(activations.maxout(jnp.asarray(x), 3), x.reshape(5, 2, 3).max(-1))
  with pytest.raises(UserError, match='multiple of 4'):
    activations.maxout(jnp.asarray(x), 4)
  m = activations.Maxout(features=4, pieces=3)
  v = m.init(jax.random.PRNGKey(0), x)
  W, b = (np.asarray(v['params']['dense'][k]) for k in ('kernel', 'bias'))
  z = x @ W + b
  np.testing.assert_allclose(np.asarray(m.apply(v, x)), np.stack([z[:, 3 * j:3 * j + 3].max(-1) for j in range(4)], -1),
                             rtol=1e-5, atol=1e-6)


def test_prelu_learns_one_slope_per_channel():
  act = activations.Activation('prelu', prelu_init=0.25)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(7, 3)), jnp.float32)
  v = act.init(jax.random.PRNGKey(0), x)
  a = v['params']['prelu']['slope']
  np.testing.assert_array_equal(np.asarray(a), [0.25, 0.25, 0.25])
  xn = np.asarray(x)
  np.testing.assert_allclose(np.asarray(act.apply(v, x)), np.where(xn >= 0, xn, 0.25 * xn), rtol=1e-6)
  # ∂(Σ f)/∂a_c = Σ_{x_nc < 0} x_nc (He et al. 2015, eq. 4).
  g = jax.grad(lambda p: jnp.sum(act.apply({'params': p}, x)))(v['params'])['prelu']['slope']
  np.testing.assert_allclose(np.asarray(g), np.where(xn < 0, xn, 0).sum(0), rtol=1e-5)


@pytest.mark.parametrize('kw, hidden_param', [
    ({'activation': 'prelu'}, ('prelu0', 'prelu', 'slope')),
    ({'activation': 'maxout', 'maxout_pieces': 3}, ('dense0', 'kernel')),
    ({'activation': 'leaky_relu', 'leaky_relu_slope': 0.3}, ('dense0', 'kernel')),
])
def test_mlp_uses_learned_activations_by_name(kw, hidden_param):
  m = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (4,), 'num_outputs': 2, **kw}))
  x = jnp.asarray(np.random.default_rng(2).normal(size=(6, 5)), jnp.float32)
  v = m.init(jax.random.PRNGKey(0), x)
  p = v['params']
  for k in hidden_param:
    p = p[k]
  if kw['activation'] == 'maxout':
    assert p.shape == (5, 12)                    # 4 units × 3 pieces
  out, coll = m.apply(v, x, mutable=['intermediates'])
  pre, act = coll['intermediates']['pre0'][0], coll['intermediates']['act0'][0]
  pre = np.asarray(pre)
  want = {'prelu': lambda z: np.where(z >= 0, z, 0.25 * z), 'maxout': lambda z: z.reshape(6, 4, 3).max(-1),
          'leaky_relu': lambda z: np.where(z >= 0, z, 0.3 * z)}[kw['activation']](pre)
  np.testing.assert_allclose(np.asarray(act), want, rtol=1e-6)
  head = v['params']['head']
  np.testing.assert_allclose(np.asarray(out), want @ np.asarray(head['kernel']) + np.asarray(head['bias']), rtol=1e-5,
                             atol=1e-6)


def test_unknown_activation_is_a_user_error():
  with pytest.raises(UserError, match='unknown activation'):
    activations.get_activation('relux')
  with pytest.raises(UserError, match='unknown activation'):
    build_model(ml_collections.ConfigDict({'name': 'mlp', 'activation': 'relux'}))
  with pytest.raises(UserError, match='learned parameters'):
    activations.get_activation('prelu')
