"""Normalisation: flax layers and jaxdl's references against NumPy written from the notes' table; batch norm's
train vs eval; the MLP's `norm` key; BN statistics over the GLOBAL batch on 8 (forced CPU) devices."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from helpers import REPO
from jaxdl.nn import norms
from jaxdl.errors import UserError
from jaxdl.models import build_model

EPS = 1e-5
RNG = np.random.default_rng(0)
X4 = (RNG.normal(size=(6, 5, 4, 8)) * RNG.uniform(0.5, 3, size=8) + RNG.normal(size=8) * 2).astype(np.float32)
X2 = (RNG.normal(size=(16, 12)) * 3 + 1).astype(np.float32)


def np_norm(kind, x, groups=4):
  """The notes' table in NumPy: statistics over (N,H,W) batch, (H,W,C) layer, (H,W) instance, (H,W,C/G) group."""
  x = x.astype(np.float64)
  sp = tuple(range(1, x.ndim - 1))
  if kind == 'group':
    n, c = x.shape[0], x.shape[-1]
    out = np.empty_like(x)
    for i in range(n):
      for g in range(groups):
        blk = x[i, ..., g * c // groups:(g + 1) * c // groups]
        out[i, ..., g * c // groups:(g + 1) * c // groups] = (blk - blk.mean()) / np.sqrt(blk.var() + EPS)
    return out
  axes = {'batch': (0,) + sp, 'layer': sp + (x.ndim - 1,), 'instance': sp}[kind]
  return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + EPS)


CASES = [('batch', X4), ('layer', X4), ('instance', X4), ('group', X4), ('batch', X2), ('layer', X2), ('group', X2)]


@pytest.mark.parametrize('kind, x', CASES)
def test_flax_layer_and_reference_match_numpy(kind, x):
  want = np_norm(kind, x)
  np.testing.assert_allclose(np.asarray(norms.reference(kind, x, groups=4, eps=EPS)), want, rtol=1e-4, atol=1e-4)
  layer = norms.make_norm(kind, x.ndim, train=True, groups=4, eps=EPS)
  v = layer.init(jax.random.PRNGKey(0), x)
  # A per-channel affine γ, β on top (random, so a wrong broadcast shows).
  c = x.shape[-1]
  gamma, beta = RNG.uniform(0.5, 2, c).astype(np.float32), RNG.normal(size=c).astype(np.float32)
  params = {'scale': jnp.asarray(gamma), 'bias': jnp.asarray(beta)}
  assert jax.tree.map(jnp.shape, v['params']) == jax.tree.map(jnp.shape, params)
  out = layer.apply({**v, 'params': params}, x, mutable=['batch_stats'])[0] if kind == 'batch' else \
      layer.apply({**v, 'params': params}, x)
  np.testing.assert_allclose(np.asarray(out), gamma * want + beta, rtol=1e-4, atol=2e-4)


def test_reduce_axes_table():
  assert norms.reduce_axes('batch', 4) == (0, 1, 2)
  assert norms.reduce_axes('layer', 4) == (1, 2, 3)
  assert norms.reduce_axes('instance', 4) == (1, 2)
  assert norms.reduce_axes('batch', 2) == (0,) and norms.reduce_axes('layer', 2) == (1,)


def test_batch_norm_train_vs_eval():
  layer_train = norms.make_norm('batch', 2, train=True, momentum=0.9)
  layer_eval = norms.make_norm('batch', 2, train=False, momentum=0.9)
  v = layer_train.init(jax.random.PRNGKey(0), X2)
  y, upd = layer_train.apply(v, X2, mutable=['batch_stats'])
  mu, var = X2.astype(np.float64).mean(0), X2.astype(np.float64).var(0)
  # m ← 0.9 m + 0.1 μ_B from m = 0, v = 1 (seed 004: running = β_m running + (1 − β_m) minibatch).
  np.testing.assert_allclose(np.asarray(upd['batch_stats']['mean']), 0.1 * mu, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(upd['batch_stats']['var']), 0.9 + 0.1 * var, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(y), np_norm('batch', X2), rtol=1e-4, atol=1e-4)
  # Eval: a fixed affine map with the running statistics, whatever else is in the batch.
  stats = upd['batch_stats']
  m, s = np.asarray(stats['mean'], np.float64), np.asarray(stats['var'], np.float64)
  ye = np.asarray(layer_eval.apply({'params': v['params'], 'batch_stats': stats}, X2))
  np.testing.assert_allclose(ye, (X2 - m) / np.sqrt(s + EPS), rtol=1e-4, atol=1e-4)
  one = np.asarray(layer_eval.apply({'params': v['params'], 'batch_stats': stats}, X2[:1]))
  np.testing.assert_allclose(one, ye[:1], rtol=1e-6)
  one_train = np.asarray(layer_train.apply(v, X2[:2], mutable=['batch_stats'])[0])
  assert np.abs(one_train - np.asarray(y)[:2]).max() > 0.1       # train mode depends on the batch


def test_mlp_norm_key():
  cfg = lambda **kw: ml_collections.ConfigDict({'name': 'mlp', 'hidden': (8, 8), 'num_outputs': 3, **kw})
  x = jnp.asarray(X2)
  a, b = build_model(cfg(batch_norm=True)), build_model(cfg(norm='batch'))
  va, vb = a.init(jax.random.PRNGKey(0), x), b.init(jax.random.PRNGKey(0), x)
  assert jax.tree.all(jax.tree.map(lambda p, q: bool(np.array_equal(p, q)), va, vb))
  np.testing.assert_array_equal(a.apply(va, x, train=True, mutable=['batch_stats'])[0],
                                b.apply(vb, x, train=True, mutable=['batch_stats'])[0])
  for kind, layer in (('layer', 'ln0'), ('group', 'gn0')):
    m = build_model(cfg(norm=kind))
    v = m.init(jax.random.PRNGKey(0), x)
    assert layer in v['params'] and 'bias' in v['params']['dense0']
    _, coll = m.apply(v, x, mutable=['intermediates'])
    pre = np.asarray(coll['intermediates']['pre0'][0], np.float64)      # the norm's output (γ = 1, β = 0)
    z = X2 @ np.asarray(v['params']['dense0']['kernel']) + np.asarray(v['params']['dense0']['bias'])
    np.testing.assert_allclose(pre, np_norm(kind, z), rtol=1e-4, atol=1e-4)
  with pytest.raises(UserError, match='instance norm'):
    build_model(cfg(norm='instance'))
  with pytest.raises(UserError, match='divisible'):
    build_model(cfg(norm='group', group_norm_groups=3))
  with pytest.raises(UserError, match='one normalisation'):
    build_model(cfg(norm='layer', batch_norm=True))
  with pytest.raises(UserError, match='unknown norm'):
    build_model(cfg(norm='weight'))


_SHARDED_BN = textwrap.dedent('''
    import json, jax, numpy as np, ml_collections
    from jaxdl.losses import build_loss
    from jaxdl.models import build_model
    from jaxdl.optim import build_optimizer
    from jaxdl.train import sharding
    from jaxdl.train.state import create_train_state
    from jaxdl.train.step import make_train_step
    assert jax.device_count() == 8
    model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (3,), 'num_outputs': 2, 'norm': 'batch'}))
    tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1}), 1)
    state = create_train_state(model, tx, jax.random.PRNGKey(0), (4,))
    # Device d holds 2 examples around d·10: every shard's mean differs from the global one.
    x = (np.random.default_rng(0).normal(size=(16, 4)) + np.repeat(np.arange(8) * 10.0, 2)[:, None]).astype(np.float32)
    batch = {'inputs': x, 'targets': np.zeros(16, np.int32)}
    mesh = sharding.make_mesh()
    repl, data = sharding.replicated(mesh), sharding.batch_sharding(mesh)
    step = jax.jit(make_train_step(model, build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'})), tx),
                   in_shardings=(repl, data, repl), out_shardings=(repl, repl))
    gbatch = jax.device_put(batch, data)
    assert len(gbatch['inputs'].addressable_shards) == 8
    z = x @ np.asarray(state.params['dense0']['kernel'])
    new, _ = step(state, gbatch, jax.random.PRNGKey(0))
    print(json.dumps({'mean': np.asarray(new.model_state['batch_stats']['bn0']['mean']).tolist(),
                      'var': np.asarray(new.model_state['batch_stats']['bn0']['var']).tolist(),
                      'z': z.tolist()}))
''')


def test_batch_norm_statistics_are_over_the_global_batch_on_8_devices():
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='8')
  r = subprocess.run([sys.executable, '-c', _SHARDED_BN], env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  z = np.asarray(out['z'])
  np.testing.assert_allclose(out['mean'], 0.1 * z.mean(0), rtol=1e-4, atol=1e-5)          # global μ_B
  np.testing.assert_allclose(out['var'], 0.9 + 0.1 * z.var(0), rtol=1e-4)                   # global σ²_B
  per_device = np.mean([0.9 + 0.1 * z[2 * d:2 * d + 2].var(0) for d in range(8)], 0)
  assert np.abs(np.asarray(out['var']) - per_device).max() > 1.0                           # not per shard
