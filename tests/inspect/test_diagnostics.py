"""Diagnostics on a hand-set ReLU network: the recorded activations, ∂L/∂pre and ∂L/∂θ against a NumPy forward and
backward pass written out here; statistics (percentiles, dead units, gradient norms) and the figures."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.inspect import diagnostics
from jaxdl.losses import build_loss
from jaxdl.models import build_model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 3)).astype(np.float32)
Y = RNG.normal(size=(32, 2)).astype(np.float32)
W0 = RNG.normal(size=(3, 4)).astype(np.float32)
B0 = np.array([0.1, -0.2, -100.0, 0.3], np.float32)      # unit 2 is dead on any reasonable input
W1 = RNG.normal(size=(4, 2)).astype(np.float32)
B1 = np.array([0.5, -0.5], np.float32)


@pytest.fixture(scope='module')
def rec():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (4,), 'num_outputs': 2}))
  params = {'dense0': {'kernel': W0, 'bias': B0}, 'head': {'kernel': W1, 'bias': B1}}
  loss = build_loss(ml_collections.ConfigDict({'name': 'squared_error'}))   # Σ_k (y_k − f_k)² per example
  return diagnostics.record(model, {'params': params}, {'inputs': jnp.asarray(X), 'targets': jnp.asarray(Y)}, loss)


def _numpy_pass():
  x = X.astype(np.float64)
  pre = x @ W0 + B0
  act = np.maximum(pre, 0)
  out = act @ W1 + B1
  n = len(x)
  d_out = 2 * (out - Y) / n                      # L = 1/n Σ_n Σ_k (f − y)²
  d_act = d_out @ W1.T
  d_pre = d_act * (pre > 0)
  grads = {'head/kernel': act.T @ d_out, 'head/bias': d_out.sum(0), 'dense0/kernel': x.T @ d_pre,
           'dense0/bias': d_pre.sum(0)}
  return pre, act, out, np.mean(np.sum((out - Y) ** 2, 1)), d_pre, grads


def test_values_and_gradients_match_a_numpy_backward_pass(rec):
  pre, act, out, loss, d_pre, grads = _numpy_pass()
  np.testing.assert_allclose(np.asarray(rec.values['pre0']), pre, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(np.asarray(rec.values['act0']), act, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(np.asarray(rec.outputs), out, rtol=1e-5, atol=1e-4)
  assert float(rec.loss) == pytest.approx(loss, rel=1e-5)
  np.testing.assert_allclose(np.asarray(rec.pre_grads['pre0']), d_pre, rtol=1e-4, atol=1e-6)
  stats = diagnostics.gradient_stats(rec.param_grads)
  for name, g in grads.items():
    assert stats[name]['norm'] == pytest.approx(np.linalg.norm(g), rel=1e-4), name
    assert stats[name]['max_abs'] == pytest.approx(np.abs(g).max(), rel=1e-4), name
  assert diagnostics.global_norm(rec.param_grads) == pytest.approx(
      np.sqrt(sum(np.sum(g ** 2) for g in grads.values())), rel=1e-4)


def test_activation_statistics(rec):
  pre, act, *_ = _numpy_pass()
  s = diagnostics.activation_stats(rec.values)
  assert s['act0']['dead_fraction'] == 0.25                    # 1 of 4 units never fires
  assert s['pre0']['dead_fraction'] == 0.25
  assert s['act0']['zero_fraction'] == pytest.approx(np.mean(act <= 0))
  for q in (15, 50, 85):
    assert s['pre0'][f'p{q}'] == pytest.approx(np.percentile(pre, q), rel=1e-5, abs=1e-4)
  assert s['act0']['std'] == pytest.approx(act.std(), rel=1e-5)
  up = diagnostics.unit_percentiles(rec.values['pre0'])
  np.testing.assert_allclose(up, np.percentile(pre, (15, 50, 85), axis=0), rtol=1e-5, atol=1e-4)


def test_forward_only_and_nothing_recorded_in_training():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (5, 5), 'num_outputs': 2, 'norm': 'batch'}))
  v = model.init(jax.random.PRNGKey(0), jnp.asarray(X))
  assert set(v) == {'params', 'batch_stats'}                   # no intermediates / perturbations in the state
  r = diagnostics.record(model, v, {'inputs': jnp.asarray(X)}, train=True)
  assert r.loss is None and diagnostics.sorted_names(r.values, 'pre') == ['pre0', 'pre1']
  # Train mode: batch statistics, so each BN output unit has mean 0 and variance 1 over the batch.
  np.testing.assert_allclose(np.asarray(r.values['pre1']).mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(r.values['pre1']).var(0), 1, atol=1e-3)


def test_figures(rec, tmp_path):
  p1 = diagnostics.plot_histograms(rec.values, tmp_path / 'h.png')
  p2 = diagnostics.plot_layer_profile({'a': [1.0, 0.5, 0.25]}, tmp_path / 'p.png')
  p3 = diagnostics.plot_percentile_history({'x': ([0, 1, 2], np.arange(9.0).reshape(3, 3))}, tmp_path / 'q.png',
                                           extra=('acc', {'a': ([0, 1, 2], [0.1, 0.5, 0.9])}))
  for p in (p1, p2, p3):
    assert (tmp_path / p).stat().st_size > 1000
