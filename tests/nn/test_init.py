"""Initialisers: the empirical variance (and range / shape of the distribution) of every one against the notes'
formulas, written out here independently; the MLP's config wiring (T2's 17-parameter 2-4-1 net)."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.nn import init
from jaxdl.errors import UserError
from jaxdl.models import build_model, count_params

FI, FO = 400, 300                                 # a Dense kernel (fan_in, fan_out): 120,000 samples
N = FI * FO

# name, scale -> the variance of one entry (seed 000: LeCun / Glorot / He; PyTorch's nn.Linear default)
FORMULA = {
    ('lecun_normal', 1.0): 1 / FI,
    ('lecun_uniform', 1.0): (math.sqrt(3 / FI)) ** 2 / 3,
    ('glorot_normal', 1.0): (math.sqrt(2) / math.sqrt(FI + FO)) ** 2,             # notes: std √2/√(fan_in+fan_out)
    ('glorot_uniform', 1.0): (math.sqrt(6) / math.sqrt(FI + FO)) ** 2 / 3,        # U(±√6/√(fan_in+fan_out))
    ('xavier_uniform', 1.0): (math.sqrt(6) / math.sqrt(FI + FO)) ** 2 / 3,
    ('he_normal', 1.0): 2 / FI,                                                    # notes: std √2/√fan_in
    ('he_uniform', 1.0): (math.sqrt(6) / math.sqrt(FI)) ** 2 / 3,                 # U(±√6/√fan_in)
    ('kaiming_normal', 1.0): 2 / FI,
    ('default', 1.0): 1 / FI,
    ('torch_default', 1.0): (1 / math.sqrt(FI)) ** 2 / 3,                          # U(±1/√fan_in)
    ('lecun_normal', 4.0): 4 / FI,                                                 # scale multiplies σ²
    ('uniform', 10.0): 100 / 3,                                                    # U(−10, 10) (T2)
    ('normal', 0.5): 0.25,                                                         # N(0, σ² = 0.5²)
    ('orthogonal', 2.0): 4 / FI,                                                   # orthonormal columns × gain
}
# the bound of the uniform ones
BOUND = {'lecun_uniform': math.sqrt(3 / FI), 'glorot_uniform': math.sqrt(6 / (FI + FO)), 'xavier_uniform': math.sqrt(6 / (FI + FO)),
         'he_uniform': math.sqrt(6 / FI), 'torch_default': 1 / math.sqrt(FI), 'uniform': 10.0}


def _sample(name, scale, shape=(FI, FO), seed=0):
  return np.asarray(init.get_initializer(name, scale)(jax.random.PRNGKey(seed), shape, jnp.float32), np.float64)


@pytest.mark.parametrize('name, scale', sorted(FORMULA))
def test_empirical_variance_matches_the_formula(name, scale):
  w = _sample(name, scale)
  want = FORMULA[(name, scale)]
  # Standard error of a sample variance ≈ var·√((κ − 1)/N) with κ ≤ 3: 5 standard errors.
  tol = 5 * math.sqrt(2 / N)
  assert abs(w.var() / want - 1) < tol, (w.var(), want)
  assert abs(w.mean()) < 5 * math.sqrt(want / N) + 1e-12
  assert init.expected_variance(name, (FI, FO), scale) == pytest.approx(want, rel=1e-9)
  if name in BOUND:
    b = BOUND[name]
    assert np.abs(w).max() <= b * (1 + 1e-6) and np.abs(w).max() > 0.999 * b


def test_normal_families_are_untruncated_and_default_is_flax():
  # N(0, σ²) has |w| > 3.5σ for ~0.05% of 120k samples; flax's truncated normal never exceeds ≈ 2.27σ.
  for name in ('lecun_normal', 'glorot_normal', 'he_normal'):
    w = _sample(name, 1.0)
    assert np.abs(w).max() / w.std() > 3.5, name
  w = _sample('default', 1.0)
  assert np.abs(w).max() / w.std() < 2.4
  flax_default = jax.nn.initializers.lecun_normal()(jax.random.PRNGKey(0), (FI, FO), jnp.float32)
  np.testing.assert_array_equal(w, np.asarray(flax_default, np.float64))


def test_orthogonal_identity_constant():
  w = _sample('orthogonal', 1.0)
  np.testing.assert_allclose(w.T @ w, np.eye(FO), atol=1e-4)
  np.testing.assert_array_equal(_sample('identity', 0.5, (5, 5)), 0.5 * np.eye(5))
  np.testing.assert_array_equal(_sample('constant', -2.5, (3,)), [-2.5] * 3)
  np.testing.assert_array_equal(_sample('zeros', 1.0, (3,)), [0.0] * 3)
  with pytest.raises(UserError, match='2-D'):
    _sample('identity', 1.0, (3, 3, 3))


def test_bias_initialisers():
  b = np.asarray(init.get_initializer('torch_default', fan_in=25, bias=True)(jax.random.PRNGKey(0), (20000,)))
  assert np.abs(b).max() <= 0.2 and np.abs(b).max() > 0.199             # U(±1/√25)
  for bad in ('he_normal', 'glorot_uniform', 'orthogonal'):
    with pytest.raises(UserError, match='cannot initialise a bias'):
      init.get_initializer(bad, bias=True)
  with pytest.raises(UserError, match='unknown initializer'):
    init.get_initializer('he_norml')
  with pytest.raises(UserError, match='positive'):
    init.get_initializer('uniform', 0.0)


def _mlp(**kw):
  return build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (4,), 'num_outputs': 1, 'activation': 'sigmoid',
                                                **kw}))


def test_mlp_takes_initialisers_from_config():
  # T2's net: 2-4-1, 17 parameters; U(−10, 10) weights, zero biases.
  v = _mlp(kernel_init='uniform', kernel_init_scale=10.0).init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  assert count_params(v['params']) == 17
  for layer in ('dense0', 'head'):
    k = np.asarray(v['params'][layer]['kernel'])
    assert np.abs(k).max() <= 10 and np.abs(k).max() > 1.0
    np.testing.assert_array_equal(v['params'][layer]['bias'], 0.0)
  # torch_default: weights and biases U(±1/√fan_in) with each layer's own fan-in.
  m = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (2000,), 'num_outputs': 2000,
                                             'kernel_init': 'torch_default', 'bias_init': 'torch_default'}))
  p = m.init(jax.random.PRNGKey(1), jnp.zeros((1, 1)))['params']
  assert np.abs(p['dense0']['bias']).max() > 0.99                       # fan_in 1: U(−1, 1)
  assert 0.02 < np.abs(p['head']['bias']).max() <= 1 / math.sqrt(2000)  # fan_in 2000
  assert np.asarray(p['head']['kernel']).var() == pytest.approx(1 / (3 * 2000), rel=0.02)
  with pytest.raises(UserError, match='cannot initialise a bias'):
    _mlp(bias_init='he_normal')
  with pytest.raises(UserError, match='unknown initializer'):
    _mlp(kernel_init='lecun')
