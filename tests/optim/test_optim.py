"""jaxdl.optim: every update rule against the formula of the notes, by hand in NumPy (float64), on a quadratic."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxdl.config import base_config, validate
from jaxdl.errors import UserError
from jaxdl.optim import build_optimizer

# J(θ) = ½θᵀAθ − bᵀθ, ∇J = Aθ − b (ill-conditioned so per-coordinate scalings matter).
A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.1]])
B = np.array([1.0, -2.0, 0.5])
THETA0 = np.array([1.0, 2.0, -3.0])


def grad_np(t):
  return A @ t - B


def jaxdl_path(opt, steps, theta0=THETA0, num_steps=100):
  """Iterates of jaxdl's chain for config.optimizer = opt, with ∇J from jax.grad."""
  tx, _ = build_optimizer(ml_collections.ConfigDict(opt), num_steps)
  f = lambda p: 0.5 * p['t'] @ jnp.asarray(A, jnp.float32) @ p['t'] - jnp.asarray(B, jnp.float32) @ p['t']
  p = {'t': jnp.asarray(theta0, jnp.float32)}
  s = tx.init(p)
  out = []
  for _ in range(steps):
    u, s = tx.update(jax.grad(f)(p), s, p)
    p = optax.apply_updates(p, u)
    out.append(np.asarray(p['t'], np.float64))
  return np.array(out), s


def close(a, b, rtol=2e-5, atol=2e-6):
  np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def hand(rule, steps, theta0=THETA0):
  t, out, state = theta0.copy(), [], {}
  for k in range(1, steps + 1):
    t = rule(t, k, state)
    out.append(t.copy())
  return np.array(out)


def test_sgd():
  eps = 0.1
  close(jaxdl_path({'name': 'sgd', 'learning_rate': eps}, 4)[0], hand(lambda t, k, s: t - eps * grad_np(t), 4))


def test_momentum_is_the_notes_form_even_with_a_schedule():
  eps, mu = 0.1, 0.6
  # Step schedule ε_t = ε·0.5^⌊t/2⌋ (t = 0, 1, …): v ← μv − ε_t∇J, θ ← θ + v (seed 000).
  def rule(t, k, s):
    s['v'] = mu * s.get('v', 0.0) - eps * 0.5 ** ((k - 1) // 2) * grad_np(t)
    return t + s['v']
  opt = {'name': 'momentum', 'learning_rate': eps, 'momentum': mu, 'schedule': 'step',
         'schedule_kwargs': {'step_size': 2, 'gamma': 0.5}}
  close(jaxdl_path(opt, 6)[0], hand(rule, 6))


def test_nesterov_sutskever_form_in_lookahead_variables():
  eps, mu, steps = 0.1, 0.8, 6
  thetas, vs = [THETA0.copy()], [np.zeros(3)]
  for _ in range(steps):  # Sutskever et al. 2013: θ̄ = θ + μv; v ← μv − ε∇J(θ̄); θ ← θ + v
    bar = thetas[-1] + mu * vs[-1]
    vs.append(mu * vs[-1] - eps * grad_np(bar))
    thetas.append(thetas[-1] + vs[-1])
  thetas, vs = np.array(thetas[1:]), np.array(vs[1:])
  path, state = jaxdl_path({'name': 'nesterov', 'learning_rate': eps, 'momentum': mu}, steps)
  assert not np.allclose(path, thetas, atol=1e-3), 'the held parameters are the look-ahead points, not θ'
  close(path, thetas + mu * vs)                           # held parameters = θ̄_t = θ_t + μv_t
  v = np.asarray(optax.tree_utils.tree_get(state, 'trace')['t'])
  close(path[-1] - mu * v, thetas[-1])                     # the notes' θ recovered from the state
  # optax.sgd(nesterov=True) (trace of g, then −ε) is the same sequence for a constant ε.
  ref = optax.sgd(eps, momentum=mu, nesterov=True)
  p, s = jnp.asarray(THETA0, jnp.float32), None
  s = ref.init(p)
  for k in range(steps):
    u, s = ref.update(jnp.asarray(A, jnp.float32) @ p - jnp.asarray(B, jnp.float32), s)
    p = p + u
  close(np.asarray(p), path[-1])


def test_adagrad():
  eps, delta = 0.5, 1e-7
  def rule(t, k, s):
    g = grad_np(t)
    s['r'] = s.get('r', 0.0) + g * g
    return t - eps / (delta + np.sqrt(s['r'])) * g
  close(jaxdl_path({'name': 'adagrad', 'learning_rate': eps}, 5)[0], hand(rule, 5))


def test_adagrad_delta_sits_outside_the_root():
  # A tiny gradient component: g/(δ + |g|) ≈ 1, whereas g/√(g² + δ) would be ≈ 0.3.
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adagrad', 'learning_rate': 1.0}), 1)
  g = {'w': jnp.array([1e-4], jnp.float32)}
  u, _ = tx.update(g, tx.init(g))
  close(np.asarray(u['w']), -1e-4 / (1e-7 + 1e-4), rtol=1e-4)


def test_rmsprop_plain_and_with_momentum():
  eps, rho, delta, mu = 0.05, 0.9, 1e-8, 0.5
  def rule(t, k, s, momentum=0.0):
    g = grad_np(t)
    s['r'] = rho * s.get('r', 0.0) + (1 - rho) * g * g
    s['v'] = momentum * s.get('v', 0.0) - eps * g / (delta + np.sqrt(s['r']))
    return t + s['v']
  close(jaxdl_path({'name': 'rmsprop', 'learning_rate': eps}, 5)[0], hand(rule, 5))
  close(jaxdl_path({'name': 'rmsprop', 'learning_rate': eps, 'momentum': mu}, 5)[0],
        hand(lambda t, k, s: rule(t, k, s, mu), 5))


def test_adadelta_zeiler_algorithm_1():
  rho, delta = 0.95, 1e-6
  def rule(t, k, s):
    g = grad_np(t)
    s['eg'] = rho * s.get('eg', 0.0) + (1 - rho) * g * g
    dx = -np.sqrt(s.get('ex', 0.0) + delta) / np.sqrt(s['eg'] + delta) * g
    s['ex'] = rho * s.get('ex', 0.0) + (1 - rho) * dx * dx
    return t + dx
  close(jaxdl_path({'name': 'adadelta', 'learning_rate': 1.0, 'rho': rho}, 5)[0], hand(rule, 5))


def _adam_rule(eps, b1, b2, delta, nesterov=False, wd=0.0):
  def rule(t, k, s):
    g = grad_np(t)
    s['m'] = b1 * s.get('m', 0.0) + (1 - b1) * g
    s['v'] = b2 * s.get('v', 0.0) + (1 - b2) * g * g
    m_hat = s['m'] / (1 - b1 ** k)
    if nesterov:  # Dozat 2016: β₁m_t/(1 − β₁^{t+1}) + (1 − β₁)g_t/(1 − β₁ᵗ)
      m_hat = b1 * s['m'] / (1 - b1 ** (k + 1)) + (1 - b1) * g / (1 - b1 ** k)
    v_hat = s['v'] / (1 - b2 ** k)
    return t - eps * (m_hat / (delta + np.sqrt(v_hat)) + wd * t)
  return rule


def test_adam_bias_corrected():
  opt = {'name': 'adam', 'learning_rate': 0.1, 'b1': 0.8, 'b2': 0.9}
  close(jaxdl_path(opt, 5)[0], hand(_adam_rule(0.1, 0.8, 0.9, 1e-8), 5))


def test_nadam():
  opt = {'name': 'nadam', 'learning_rate': 0.1, 'b1': 0.8, 'b2': 0.9}
  close(jaxdl_path(opt, 5)[0], hand(_adam_rule(0.1, 0.8, 0.9, 1e-8, nesterov=True), 5))


def test_adamw_and_adam_with_decoupled_weight_decay_are_the_same():
  rule = _adam_rule(0.1, 0.9, 0.999, 1e-8, wd=0.3)
  close(jaxdl_path({'name': 'adamw', 'learning_rate': 0.1, 'weight_decay': 0.3}, 5)[0], hand(rule, 5))
  close(jaxdl_path({'name': 'adam', 'learning_rate': 0.1, 'weight_decay': 0.3}, 5)[0], hand(rule, 5))


def test_weight_decay_equals_l2_for_sgd_not_for_adam():
  lam = 0.2
  for name, same in (('sgd', True), ('adam', False)):
    coupled = jaxdl_path({'name': name, 'learning_rate': 0.05, 'l2': lam}, 30)[0]
    decoupled = jaxdl_path({'name': name, 'learning_rate': 0.05, 'weight_decay': lam}, 30)[0]
    if same:
      close(coupled, decoupled, rtol=1e-6, atol=1e-6)
    else:
      assert np.max(np.abs(coupled - decoupled)) > 1e-2
  # Coupled L2 = the gradient of (λ/2)‖θ‖² added by hand, decoupled = −ελθ after Adam's scaling.
  def l2_rule(t, k, s):
    g = grad_np(t) + lam * t
    s['m'] = 0.9 * s.get('m', 0.0) + 0.1 * g
    s['v'] = 0.999 * s.get('v', 0.0) + 0.001 * g * g
    return t - 0.05 * (s['m'] / (1 - 0.9 ** k)) / (1e-8 + np.sqrt(s['v'] / (1 - 0.999 ** k)))
  close(jaxdl_path({'name': 'adam', 'learning_rate': 0.05, 'l2': lam}, 5)[0], hand(l2_rule, 5))


def test_optimizer_weight_decay_equals_loss_l2_in_the_train_step():
  from jaxdl.losses import build_loss, build_penalty  # pylint: disable=g-import-not-at-top
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  from jaxdl.train.state import create_train_state  # pylint: disable=g-import-not-at-top
  from jaxdl.train.step import make_train_step  # pylint: disable=g-import-not-at-top
  model = build_model(ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 2}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'squared_error'}))
  rng = np.random.default_rng(0)
  batch = {'inputs': rng.normal(size=(8, 3)).astype(np.float32), 'targets': rng.normal(size=(8, 2)).astype(np.float32)}
  results = []
  for opt, pen in (({'name': 'sgd', 'learning_rate': 0.1}, {'name': 'squared_error', 'l2': 0.3}),
                   ({'name': 'sgd', 'learning_rate': 0.1, 'weight_decay': 0.3, 'decay_mask': 'weights'}, None)):
    tx, _ = build_optimizer(ml_collections.ConfigDict(opt), 10)
    state = create_train_state(model, tx, jax.random.PRNGKey(0), (3,))
    step = make_train_step(model, loss, tx, penalty_fn=pen and build_penalty(ml_collections.ConfigDict(pen)))
    for _ in range(5):
      state, _ = step(state, batch, jax.random.PRNGKey(0))
    results.append(state.params)
  jax.tree.map(lambda a, b: close(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7), *results)


def test_decoupled_weight_decay_follows_the_schedule_and_mask():
  tx, _ = build_optimizer(ml_collections.ConfigDict(
      {'name': 'sgd', 'learning_rate': 0.1, 'weight_decay': 0.5, 'decay_mask': 'weights', 'schedule': 'step',
       'schedule_kwargs': {'step_size': 1, 'gamma': 0.5}}), 10)
  p = {'dense': {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones(2)}}
  zero = jax.tree.map(jnp.zeros_like, p)
  s = tx.init(p)
  for t in range(3):
    u, s = tx.update(zero, s, p)
    close(np.asarray(u['dense']['kernel']), -0.1 * 0.5 ** t * 0.5 * np.ones((2, 2)))
    close(np.asarray(u['dense']['bias']), np.zeros(2))


def test_max_norm_keeps_column_norms_below_c():
  c = 1.5
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1.0, 'max_norm': c}), 1)
  rng = np.random.default_rng(1)
  p = {'kernel': jnp.asarray(rng.normal(size=(4, 3)) * np.array([0.1, 1.0, 3.0]), jnp.float32),
       'conv': jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32), 'bias': jnp.full(3, 10.0)}
  g = jax.tree.map(lambda x: -x, p)   # the SGD step doubles every parameter
  u, _ = tx.update(g, tx.init(p), p)
  new = optax.apply_updates(p, u)
  k_norms = np.linalg.norm(np.asarray(new['kernel']), axis=0)
  assert np.all(k_norms <= c * (1 + 1e-6))
  doubled = 2 * np.asarray(p['kernel'])
  small = np.linalg.norm(doubled, axis=0) <= c
  assert small.any() and not small.all()
  close(np.asarray(new['kernel'])[:, small], doubled[:, small])                 # short columns untouched
  big = ~small
  close(np.asarray(new['kernel'])[:, big], doubled[:, big] / np.linalg.norm(doubled[:, big], axis=0) * c)
  conv_norms = np.sqrt((np.asarray(new['conv']) ** 2).sum(axis=(0, 1, 2)))
  assert np.all(conv_norms <= c * (1 + 1e-6))
  close(np.asarray(new['bias']), np.full(3, 20.0))                               # biases are not constrained


def test_clipping_and_freeze_still_compose():
  tx, _ = build_optimizer(ml_collections.ConfigDict(
      {'name': 'momentum', 'learning_rate': 1.0, 'clip_value': 0.5, 'freeze': ('b',)}), 1)
  p = {'a': jnp.zeros(2), 'b': jnp.zeros(2)}
  u, _ = tx.update({'a': jnp.array([3.0, -0.2]), 'b': jnp.ones(2)}, tx.init(p), p)
  close(np.asarray(u['a']), [-0.5, 0.2])
  close(np.asarray(u['b']), [0.0, 0.0])


@pytest.mark.parametrize('opt, needle', [
    ({'name': 'adam', 'learning_rate': 0.1, 'momentum': 0.9}, 'momentum'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'schedule': 'cosinus'}, 'cosinus'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'schedule': 'step', 'schedule_kwargs': {'gama': 0.5}}, 'gama'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'schedule': 'step', 'schedule_kwargs': {'gamma': -0.5}}, 'gamma'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'schedule': 'step', 'schedule_kwargs': {'step_size': 'ten'}}, 'step_size'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'weight_decay': -1.0}, 'weight_decay'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'decay_mask': 'kernels'}, 'decay_mask'),
    ({'name': 'sgd', 'learning_rate': 0.1, 'max_norm': -3.0}, 'max_norm'),
])
def test_config_errors_are_user_errors(opt, needle):
  with pytest.raises(UserError, match=needle):
    build_optimizer(ml_collections.ConfigDict(opt), 100)


def test_full_config_with_schedule_kwargs_validates():
  c = base_config()
  c.model.name, c.data.name = 'linear', 'two_blobs'
  c.loss.name = 'sigmoid_binary_cross_entropy'
  c.model.num_outputs = 1
  c.optimizer.name = 'nesterov'
  c.optimizer.momentum = 0.8
  c.optimizer.schedule = 'sgdr'
  c.optimizer.schedule_kwargs = ml_collections.ConfigDict({'period': 100, 'period_mult': 2.0})
  c.optimizer.warmup_steps = 10
  c.optimizer.max_norm = 3.0
  validate(c)
  c.optimizer.schedule_kwargs.periodd = 3
  with pytest.raises(UserError, match='periodd'):
    validate(c)
