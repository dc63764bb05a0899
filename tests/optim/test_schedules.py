"""jaxdl.optim.schedules: every schedule's values against its formula (NumPy), warmup, reduce-on-plateau, errors."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxdl.errors import UserError
from jaxdl.optim import build_optimizer
from jaxdl.optim.schedules import SCHEDULES, schedule_values

LR, N = 0.1, 200
t = np.arange(N)


def values(schedule, n=N, warmup=0, **kw):
  return schedule_values(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': LR, 'schedule': schedule,
                                                    'schedule_kwargs': kw, 'warmup_steps': warmup}), n)


def close(a, b):
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_constant():
  close(values('constant'), np.full(N, LR))


def test_step():
  close(values('step', step_size=30, gamma=0.1), LR * 0.1 ** (t // 30))


def test_exponential():
  close(values('exponential', gamma=0.5, transition_steps=40), LR * 0.5 ** (t / 40))
  close(values('exponential', gamma=0.01)[[0, N // 2]], [LR, LR * 0.1])   # default: ×γ over the run


def test_inverse_time():
  close(values('inverse_time', gamma=0.3, transition_steps=10), LR / (1 + 0.3 * t / 10))


def test_linear_and_cosine():
  close(values('linear', end_value=0.01), LR + (0.01 - LR) * t / N)
  close(values('cosine', alpha=0.1), LR * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / N))))


def test_warmup_composes_with_any_schedule():
  w = 20
  v = values('step', warmup=w, step_size=30, gamma=0.5)
  close(v[:w], LR * t[:w] / w)
  close(v[w:], LR * 0.5 ** ((t[w:] - w) // 30))
  v = values('cosine', warmup=w)
  close(v[w:], LR * 0.5 * (1 + np.cos(np.pi * (t[w:] - w) / (N - w))))


def test_onecycle_linear_smith_2018():
  div, fdiv = 25.0, 1e4
  v = values('onecycle', anneal='linear', pct_start=0.3, pct_final=0.85, div_factor=div, final_div_factor=fdiv)
  lo = LR / div
  a, b = int(0.3 * N), int(0.85 * N)
  ref = np.where(t < a, lo + (LR - lo) * t / a,
                 np.where(t < b, LR + (lo - LR) * (t - a) / (b - a), lo + (lo / fdiv - lo) * (t - b) / (N - b)))
  close(v, ref)


def test_onecycle_cosine():
  div, fdiv = 10.0, 100.0
  v = values('onecycle', div_factor=div, final_div_factor=fdiv)
  lo, a = LR / div, int(0.3 * N)
  cos_interp = lambda start, end, frac: end + (start - end) * 0.5 * (1 + np.cos(np.pi * frac))
  ref = np.where(t < a, cos_interp(lo, LR, t / a), cos_interp(LR, lo / fdiv, (t - a) / (N - a)))
  close(v, ref)


def test_sgdr_warm_restarts_with_period_multiplier():
  # Loshchilov & Hutter 2017 eq. 5 with T₀ = 20, T_mult = 2: restarts at t = 20, 60, 140.
  v = values('sgdr', period=20, period_mult=2.0, end_value=0.001)
  starts = np.array([0, 20, 60, 140])
  i = np.searchsorted(starts, t, side='right') - 1
  t_cur, t_i = t - starts[i], 20 * 2 ** i
  close(v, 0.001 + 0.5 * (LR - 0.001) * (1 + np.cos(np.pi * t_cur / t_i)))
  assert v[20] == pytest.approx(LR) and v[19] < 0.01


def _plateau_reference(vals, factor, patience, rtol, cooldown=0):
  """Keras-style ReduceLROnPlateau on a per-update value: the scale used by update t."""
  best, bad, cool, scale, out = np.inf, 0, 0, 1.0, []
  for v in vals:
    if v < (1 - rtol) * best:
      best, bad = v, 0
    else:
      bad += 1
    if cool > 0:
      cool -= 1
      bad = 0
    elif bad == patience:
      scale, bad, cool = scale * factor, 0, cooldown
    out.append(scale)
  return np.array(out)


def test_reduce_on_plateau_reacts_to_a_plateau_in_value():
  losses = np.r_[np.linspace(1.0, 0.5, 30), np.full(40, 0.5), np.linspace(0.49, 0.2, 20), np.full(30, 0.2)]
  n = len(losses)
  cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': LR, 'schedule': 'plateau',
                                   'schedule_kwargs': {'factor': 0.5, 'patience': 8, 'cooldown': 3}})
  v = schedule_values(cfg, n, values=losses)
  close(v, LR * _plateau_reference(losses, 0.5, 8, 1e-4, cooldown=3))
  assert v[29] == pytest.approx(LR) and v[-1] < LR / 4     # none while improving, several on the plateaus
  # The chain itself consumes `value`: SGD updates shrink once the loss stops improving.
  tx, _ = build_optimizer(cfg, n)
  tx = optax.with_extra_args_support(tx)
  p = {'w': jnp.zeros(2)}
  s = tx.init(p)
  steps = []
  update = jax.jit(lambda s, val: tx.update({'w': jnp.ones(2)}, s, p, value=val))
  for val in losses:
    u, s = update(s, jnp.asarray(val, jnp.float32))
    steps.append(-float(u['w'][0]))
  close(np.array(steps), v)


def test_every_schedule_is_tested_here():
  assert set(SCHEDULES) == {'constant', 'step', 'piecewise', 'exponential', 'inverse_time', 'linear', 'cosine', 'plateau',
                            'onecycle', 'sgdr'}


@pytest.mark.parametrize('schedule, kw, needle', [
    ('linearr', {}, 'linearr'),
    ('step', {'decay': 0.5}, 'decay'),
    ('onecycle', {'anneal': 'exp'}, 'anneal'),
    ('onecycle', {'anneal': 'linear', 'pct_start': 0.5, 'pct_final': 0.4}, 'pct_final'),
    ('plateau', {'factor': 2.0}, 'factor'),
    ('sgdr', {'period_mult': 0.5}, 'period_mult'),
    ('cosine', {'alpha': True}, 'alpha'),
])
def test_bad_schedules_raise_user_error(schedule, kw, needle):
  with pytest.raises(UserError, match=needle):
    values(schedule, **kw)


def test_plateau_values_need_losses():
  with pytest.raises(UserError, match='values'):
    values('plateau')


@pytest.mark.parametrize('boundaries', [(0.6, 0.85), (60, 85)])
def test_piecewise_multiplies_by_gamma_at_each_boundary(boundaries):
  n = 100
  cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': LR, 'schedule': 'piecewise',
                                   'schedule_kwargs': {'boundaries': boundaries, 'gamma': 0.1}})
  t = np.arange(n)
  close(schedule_values(cfg, n), LR * 0.1 ** ((t >= 60).astype(int) + (t >= 85).astype(int)))
