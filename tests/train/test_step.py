"""The pure train/eval steps against hand-computed references."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdl.losses import build_loss
from jaxdl.models import build_model
from jaxdl.optim import build_optimizer
from jaxdl.train.state import create_train_state, params_fingerprint
from jaxdl.train.step import make_eval_step, make_train_step


def _linear_setup(lr=0.1):
  model = build_model(ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 1}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'squared_error'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': lr}), 10)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (1,))
  return model, loss, tx, state


def test_sgd_step_on_least_squares_matches_numpy():
  model, loss, tx, state = _linear_setup(lr=0.1)
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(16, 1)).astype(np.float32)
  y = (3 * x + 2).astype(np.float32)
  w = np.asarray(state.params['dense']['kernel'])[0, 0]
  b = np.asarray(state.params['dense']['bias'])[0]
  # J = mean (y − (w x + b))²  ->  ∂J/∂w = −2 mean(r x), ∂J/∂b = −2 mean(r)
  r = y[:, 0] - (w * x[:, 0] + b)
  w_ref = w - 0.1 * (-2 * np.mean(r * x[:, 0]))
  b_ref = b - 0.1 * (-2 * np.mean(r))
  step = jax.jit(make_train_step(model, loss, tx))
  new, metrics = step(state, {'inputs': x, 'targets': y}, jax.random.PRNGKey(1))
  np.testing.assert_allclose(new.params['dense']['kernel'][0, 0], w_ref, rtol=1e-5)
  np.testing.assert_allclose(new.params['dense']['bias'][0], b_ref, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], np.mean(r ** 2), rtol=1e-5)
  assert int(new.step) == 1


def test_grad_accumulation_equals_full_batch():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (8,), 'num_outputs': 3}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 1e-2}), 10)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (5,))
  rng = np.random.default_rng(1)
  batch = {'inputs': rng.normal(size=(12, 5)).astype(np.float32), 'targets': rng.integers(0, 3, 12).astype(np.int32)}
  full, m_full = make_train_step(model, loss, tx, 1)(state, batch, jax.random.PRNGKey(0))
  acc, m_acc = make_train_step(model, loss, tx, 4)(state, batch, jax.random.PRNGKey(0))
  chex.assert_trees_all_close(full.params, acc.params, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m_full['loss'], m_acc['loss'], rtol=1e-5)


def test_batch_stats_are_updated_in_training_and_used_in_eval():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (4,), 'num_outputs': 2, 'batch_norm': True}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.0 + 1e-9}), 10)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (3,))
  assert 'batch_stats' in state.model_state
  x = np.random.default_rng(0).normal(5.0, 1.0, size=(64, 3)).astype(np.float32)
  batch = {'inputs': x, 'targets': np.zeros(64, np.int32)}
  new, _ = make_train_step(model, loss, tx)(state, batch, jax.random.PRNGKey(0))
  before = state.model_state['batch_stats']['bn0']['mean']
  after = new.model_state['batch_stats']['bn0']['mean']
  # Running mean moves 10% of the way (momentum 0.9) to the batch mean of the pre-BN activations.
  h = x @ np.asarray(state.params['dense0']['kernel'])
  np.testing.assert_allclose(after, 0.9 * before + 0.1 * h.mean(0), rtol=1e-4, atol=1e-5)


def test_eval_step_masks_padding():
  model, loss, _, state = _linear_setup()
  x = np.arange(6, dtype=np.float32).reshape(6, 1)
  y = np.ones((6, 1), np.float32)
  mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
  sums = make_eval_step(model, loss)(state, {'inputs': x, 'targets': y, 'mask': mask})
  pred = np.asarray(model.apply({'params': state.params}, x))
  np.testing.assert_allclose(sums['loss'], np.sum(((pred - y)[:4]) ** 2), rtol=1e-5)
  assert float(sums['count']) == 4.0


def test_dropout_rng_is_folded_with_step():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (32,), 'num_outputs': 2, 'dropout_rate': 0.5}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1}), 10)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (3,))
  batch = {'inputs': np.ones((8, 3), np.float32), 'targets': np.zeros(8, np.int32)}
  step = jax.jit(make_train_step(model, loss, tx))
  a, _ = step(state, batch, jax.random.PRNGKey(0))
  b, _ = step(state, batch, jax.random.PRNGKey(0))
  c, _ = step(state.replace(step=jnp.ones((), jnp.int32)), batch, jax.random.PRNGKey(0))
  assert params_fingerprint(a.params) == params_fingerprint(b.params)   # pure
  assert params_fingerprint(a.params) != params_fingerprint(c.params)   # mask depends on the step


def test_fingerprint_sees_every_bit():
  p = {'a': jnp.zeros(3), 'b': {'c': jnp.ones((2, 2))}}
  q = jax.tree.map(lambda x: x, p)
  q['b']['c'] = q['b']['c'].at[1, 1].set(np.nextafter(np.float32(1), np.float32(2)))
  assert params_fingerprint(p) == params_fingerprint(jax.tree.map(lambda x: x, p))
  assert params_fingerprint(p) != params_fingerprint(q)


def test_optimizer_chain_clips_global_norm():
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1.0, 'clip_global_norm': 1.0}), 1)
  g = {'w': jnp.array([3.0, 4.0])}
  upd, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(upd['w'], -np.array([0.6, 0.8]), rtol=1e-6)
  assert optax.global_norm(upd) <= 1.0 + 1e-6


def test_l2_penalty_adds_alpha_w_to_the_gradient_of_weights_only():
  from jaxdl.losses import build_penalty  # pylint: disable=g-import-not-at-top
  model, loss, tx, state = _linear_setup(lr=0.1)
  pen = build_penalty(ml_collections.ConfigDict({'name': 'squared_error', 'l2': 0.5}))
  x = np.ones((4, 1), np.float32)
  y = np.ones((4, 1), np.float32)
  plain, _ = make_train_step(model, loss, tx)(state, {'inputs': x, 'targets': y}, jax.random.PRNGKey(0))
  reg, m = make_train_step(model, loss, tx, penalty_fn=pen)(state, {'inputs': x, 'targets': y}, jax.random.PRNGKey(0))
  w = state.params['dense']['kernel']
  # θ_reg − θ_plain = −lr · ∂((α/2)‖w‖²)/∂w = −0.1 · 0.5 · w on the kernel; the bias is not penalised.
  np.testing.assert_allclose(reg.params['dense']['kernel'] - plain.params['dense']['kernel'], -0.05 * w, rtol=1e-5)
  np.testing.assert_allclose(reg.params['dense']['bias'], plain.params['dense']['bias'])
  np.testing.assert_allclose(m['penalty'], 0.25 * np.sum(np.asarray(w) ** 2), rtol=1e-6)


def test_augment_fn_transforms_the_training_batch_only():
  """The train step's gradient is the gradient at augment(batch); eval sees the batch as given."""
  model, loss, tx, state = _linear_setup(lr=0.1)
  x = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
  batch = {'inputs': x, 'targets': 3 * x + 2}
  flip_sign = lambda rng, b: {**b, 'inputs': -b['inputs']}
  aug, _ = jax.jit(make_train_step(model, loss, tx, augment_fn=flip_sign))(state, batch, jax.random.PRNGKey(1))
  ref, _ = jax.jit(make_train_step(model, loss, tx))(state, {**batch, 'inputs': -x}, jax.random.PRNGKey(1))
  chex.assert_trees_all_close(aug.params, ref.params, rtol=1e-6)


def test_cross_entropy_soft_targets_equal_labels_when_one_hot():
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
  labels = np.array([0, 3, 1, 2, 3])
  hard = loss(logits, {'targets': labels})
  soft = loss(logits, {'targets': np.eye(4, dtype=np.float32)[labels]})
  np.testing.assert_allclose(hard['loss'], soft['loss'], rtol=1e-6)
  np.testing.assert_array_equal(hard['accuracy'], soft['accuracy'])
  # A 50/50 mixture: the loss is the mean of the two labels' losses (cross entropy is linear in the target).
  mixed = loss(logits, {'targets': 0.5 * np.eye(4, dtype=np.float32)[labels] + 0.5 * np.eye(4, dtype=np.float32)[0]})
  ref = 0.5 * hard['loss'] + 0.5 * loss(logits, {'targets': np.zeros(5, np.int32)})['loss']
  np.testing.assert_allclose(mixed['loss'], ref, rtol=1e-5)


def _bn_mlp_setup():
  model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'hidden': (32,), 'num_outputs': 4, 'batch_norm': True}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1.0}), 10)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (16,))  # plain SGD: no optimiser state
  rng = np.random.default_rng(3)
  batch = {'inputs': rng.normal(size=(64, 16)).astype(np.float32), 'targets': rng.integers(0, 4, 64).astype(np.int32)}
  return model, loss, tx, state, batch


def _dtypes_of(jaxpr, prim):
  out = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == prim:
      out |= {str(v.aval.dtype) for v in eqn.invars}
    for p in eqn.params.values():
      inner = getattr(p, 'jaxpr', None)
      if inner is not None:
        out |= _dtypes_of(getattr(inner, 'jaxpr', inner), prim)
  return out


def test_bfloat16_compute_keeps_float32_master_state():
  model, loss, tx, state, batch = _bn_mlp_setup()
  key = jax.random.PRNGKey(0)
  step32 = make_train_step(model, loss, tx)
  step16 = make_train_step(model, loss, tx, compute_dtype='bfloat16')
  # the matrix products run in bfloat16 (and only with it)
  assert _dtypes_of(jax.make_jaxpr(step16)(state, batch, key).jaxpr, 'dot_general') == {'bfloat16'}
  assert _dtypes_of(jax.make_jaxpr(step32)(state, batch, key).jaxpr, 'dot_general') == {'float32'}
  new32, m32 = jax.jit(step32)(state, batch, key)
  new16, m16 = jax.jit(step16)(state, batch, key)
  # weights, optimiser state, BN statistics and metrics stay float32 ...
  for tree in (new16.params, new16.model_state, m16):
    assert {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)} == {'float32'}
  # ... and the update (SGD, lr 1: the gradient itself) is float32's to bfloat16 precision, not equal to it
  d32 = jax.tree.map(jnp.subtract, new32.params, state.params)
  d16 = jax.tree.map(jnp.subtract, new16.params, state.params)
  err = optax.global_norm(jax.tree.map(jnp.subtract, d16, d32)) / optax.global_norm(d32)
  assert 0 < float(err) < 3e-2, float(err)
  np.testing.assert_allclose(m16['loss'], m32['loss'], rtol=2e-2)
  chex.assert_trees_all_close(new16.model_state, new32.model_state, rtol=2e-2, atol=2e-2)


def test_bfloat16_eval_matches_float32():
  model, loss, _, state, batch = _bn_mlp_setup()
  s32 = make_eval_step(model, loss)(state, batch)
  s16 = make_eval_step(model, loss, compute_dtype='bfloat16')(state, batch)
  assert s16['loss'].dtype == jnp.float32
  np.testing.assert_allclose(s16['loss'], s32['loss'], rtol=2e-2)
  assert float(s16['count']) == float(s32['count']) == 64
