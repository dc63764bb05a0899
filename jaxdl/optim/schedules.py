"""Learning-rate schedules by name (seed 000 "Adaptive learning rate", seed 004 VI.1 "Learning rate decay").

`config.optimizer.schedule` names one, `config.optimizer.schedule_kwargs` (a ConfigDict / dict) holds its options,
`config.optimizer.warmup_steps` prepends a linear warmup 0 → ε₀ to any of them. ε₀ = `config.optimizer.learning_rate`;
t counts optimiser updates from 0 (after the warmup). T = num_steps − warmup_steps, the steps left to schedule.

  constant      ε₀
  step          ε₀ γ^⌊t/k⌋                        step_size k, gamma γ (notes: "halve every 50th epoch")
  piecewise     ε₀ γ^(number of boundaries ≤ t)   boundaries (steps, or fractions of T if all < 1), gamma γ
                (multi-step decay, e.g. ×0.1 at 60% and 85% of training)
  exponential   ε₀ γ^(t/k)                        gamma γ, transition_steps k (default T: ε falls by γ over the run)
  inverse_time  ε₀ / (1 + γ t/k)                  gamma γ, transition_steps k (LeCun et al. 1998; Bottou 2012)
  linear        ε₀ → end_value, linearly over k   end_value, transition_steps k (default T)
  cosine        ε₀ (α + (1−α)·½(1 + cos πt/k))    alpha α, decay_steps k (default T)
  plateau       ε₀ × a scale that drops by `factor` when the loss stops improving for `patience` updates
                (optax.contrib.reduce_on_plateau, fed the training loss as `value` by the train step)
  onecycle      Smith (2018) 1cycle over T: ε₀/div → ε₀ (pct_start) → ε₀/div → ε₀/(div·final_div); anneal 'linear'
                is Smith's three-phase form, 'cos' the cosine variant (fast.ai)
  sgdr          cosine with warm restarts (Loshchilov & Hutter 2017): ε = η_min + ½(ε₀ − η_min)(1 + cos(π T_cur/T_i)),
                T_i = T₀·T_multⁱ (period, period_mult, end_value = η_min)

Unknown schedule names and unknown or impossible options raise `UserError`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl.errors import UserError

Schedule = Callable[[Any], Any]


def _pos(name, v):
  if not v > 0:
    raise UserError(f'config.optimizer.schedule_kwargs.{name}={v} is impossible', 'a number > 0',
                    f'fix config.optimizer.schedule_kwargs.{name}')


def _frac(name, v, lo_open=True, hi_open=True):
  ok = (0 < v if lo_open else 0 <= v) and (v < 1 if hi_open else v <= 1)
  if not ok:
    raise UserError(f'config.optimizer.schedule_kwargs.{name}={v} is impossible',
                    f'a number in {"(" if lo_open else "["}0, 1{")" if hi_open else "]"}',
                    f'fix config.optimizer.schedule_kwargs.{name}')


# Each builder: (ε₀, T, **options) -> optax schedule. T = steps to schedule (after warmup), ≥ 1.
def constant(lr, T):
  del T
  return optax.constant_schedule(lr)


def step(lr, T, *, step_size: int = 1000, gamma: float = 0.5):
  """ε₀ γ^⌊t/k⌋ (step decay)."""
  del T
  _pos('step_size', step_size)
  _pos('gamma', gamma)
  return optax.exponential_decay(lr, transition_steps=int(step_size), decay_rate=gamma, staircase=True)


def piecewise(lr, T, *, boundaries: tuple = (), gamma: float = 0.1):
  """ε₀ γ^{#{b ∈ boundaries : b ≤ t}}: the rate is multiplied by γ at each boundary (steps, or fractions of T)."""
  _pos('gamma', gamma)
  bounds = [float(b) for b in boundaries]
  if not bounds or any(b <= 0 for b in bounds) or bounds != sorted(bounds):
    raise UserError(f'config.optimizer.schedule_kwargs.boundaries={tuple(boundaries)!r}',
                    'increasing positive steps, or fractions of the run in (0, 1), e.g. (0.6, 0.85)',
                    'fix config.optimizer.schedule_kwargs.boundaries')
  steps = [int(round(b * T)) if all(x < 1 for x in bounds) else int(b) for b in bounds]
  scales: dict[int, float] = {}
  for b in steps:
    scales[b] = scales.get(b, 1.0) * gamma
  return optax.piecewise_constant_schedule(lr, scales)


def exponential(lr, T, *, gamma: float = 0.01, transition_steps: int = 0):
  """ε₀ γ^(t/k); k = 0 means the whole run (ε ends at γε₀)."""
  _pos('gamma', gamma)
  return optax.exponential_decay(lr, transition_steps=int(transition_steps) or T, decay_rate=gamma)


def inverse_time(lr, T, *, gamma: float = 1e-3, transition_steps: int = 1):
  """ε₀ / (1 + γ t/k) (seed 004 "fractional decay" α₀/(1 + decay_rate·epoch) with k = steps per epoch)."""
  del T
  if gamma < 0:
    raise UserError(f'config.optimizer.schedule_kwargs.gamma={gamma} is negative', 'gamma >= 0', 'fix it')
  _pos('transition_steps', transition_steps)
  k = float(transition_steps)
  return lambda t: lr / (1.0 + gamma * jnp.asarray(t, jnp.float32) / k)


def linear(lr, T, *, end_value: float = 0.0, transition_steps: int = 0):
  """ε₀ → end_value linearly over k steps (default: the whole run), then constant (seed 000 "linear decrease")."""
  return optax.linear_schedule(lr, end_value, int(transition_steps) or T)


def cosine(lr, T, *, alpha: float = 0.0, decay_steps: int = 0):
  """ε₀(α + (1 − α)·½(1 + cos(π t/k))) (Loshchilov & Hutter 2017 without restarts)."""
  _frac('alpha', alpha, lo_open=False, hi_open=False)
  return optax.cosine_decay_schedule(lr, int(decay_steps) or T, alpha=alpha)


def plateau(lr, T, *, factor: float = 0.5, patience: int = 10, rtol: float = 1e-4, atol: float = 0.0,
            cooldown: int = 0, accumulation_size: int = 1, min_scale: float = 0.0):
  """Constant ε₀; the reduction is the `plateau_transform` that `build_schedule` returns next to it."""
  del T
  _frac('factor', factor)
  _pos('accumulation_size', accumulation_size)
  for k, v in dict(patience=patience, cooldown=cooldown, rtol=rtol, atol=atol, min_scale=min_scale).items():
    if v < 0:
      raise UserError(f'config.optimizer.schedule_kwargs.{k}={v} is negative', 'a number >= 0', 'fix it')
  return optax.constant_schedule(lr)


def onecycle(lr, T, *, anneal: str = 'cos', pct_start: float = 0.3, pct_final: float = 0.85,
             div_factor: float = 25.0, final_div_factor: float = 1e4):
  """1cycle (Smith 2018). 'linear': ε₀/div → ε₀ at pct_start·T → ε₀/div at pct_final·T → ε₀/(div·final_div) at T
  (optax.linear_onecycle_schedule); 'cos': cosine up to ε₀ at pct_start·T, cosine down to ε₀/(div·final_div)
  (optax.cosine_onecycle_schedule; pct_final unused)."""
  _frac('pct_start', pct_start)
  _pos('div_factor', div_factor)
  _pos('final_div_factor', final_div_factor)
  if anneal == 'linear':
    if not pct_start < pct_final < 1:
      raise UserError(f'config.optimizer.schedule_kwargs.pct_final={pct_final} is impossible',
                      f'pct_start ({pct_start}) < pct_final < 1', 'fix it')
    return optax.linear_onecycle_schedule(T, lr, pct_start, pct_final, div_factor, final_div_factor)
  if anneal == 'cos':
    return optax.cosine_onecycle_schedule(T, lr, pct_start, div_factor, final_div_factor)
  raise UserError(f'config.optimizer.schedule_kwargs.anneal={anneal!r} is unknown', "'cos' or 'linear'", 'fix it')


def sgdr_periods(T: int, period: int, period_mult: float) -> list[int]:
  """Cycle lengths T_i = round(T₀·T_multⁱ) until they cover T steps. T₀ = 0: three cycles fill the run."""
  if not period:
    period = max(1, int(T / (1 + period_mult + period_mult ** 2)))
  out, total = [], 0
  while total < T:
    out.append(max(1, int(round(period * period_mult ** len(out)))))
    total += out[-1]
  return out


def sgdr(lr, T, *, period: int = 0, period_mult: float = 2.0, end_value: float = 0.0):
  """SGDR (Loshchilov & Hutter 2017, eq. 5): cosine from ε₀ to η_min over T_i, restart, T_{i+1} = T_mult·T_i."""
  if period < 0:
    raise UserError(f'config.optimizer.schedule_kwargs.period={period} is negative', 'a period >= 1 (0: automatic)',
                    'fix it')
  if period_mult < 1:
    raise UserError(f'config.optimizer.schedule_kwargs.period_mult={period_mult} is impossible', 'a number >= 1',
                    'fix it')
  if not 0 <= end_value < lr:
    raise UserError(f'config.optimizer.schedule_kwargs.end_value={end_value} is impossible',
                    f'0 <= end_value < learning_rate ({lr})', 'fix it')
  return optax.sgdr_schedule([{'init_value': lr, 'peak_value': lr, 'warmup_steps': 0, 'decay_steps': p,
                               'end_value': end_value} for p in sgdr_periods(T, period, period_mult)])


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    'constant': constant, 'step': step, 'piecewise': piecewise, 'exponential': exponential, 'inverse_time': inverse_time,
    'linear': linear, 'cosine': cosine, 'plateau': plateau, 'onecycle': onecycle, 'sgdr': sgdr,
}


def _options(fn) -> dict[str, Any]:
  return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY}


def schedule_options(kind: str) -> dict[str, Any]:
  """The options (config.optimizer.schedule_kwargs keys) of schedule `kind`, with their defaults."""
  if kind not in SCHEDULES:
    raise UserError(f'unknown config.optimizer.schedule {kind!r}', 'one of: ' + ', '.join(SCHEDULES),
                    'fix --config.optimizer.schedule')
  return _options(SCHEDULES[kind])


def _check_options(kind: str, given: dict[str, Any]) -> None:
  accepted = _options(SCHEDULES[kind])
  for key, value in given.items():
    if key not in accepted:
      raise UserError(f'unknown key config.optimizer.schedule_kwargs.{key} for schedule {kind!r}',
                      'one of: ' + (', '.join(sorted(accepted)) or '(none)'), 'remove it or fix its spelling')
    want = type(accepted[key])
    ok = isinstance(value, want) or (want is float and isinstance(value, int)) or (
        want is tuple and isinstance(value, list))
    if isinstance(value, bool) or not ok:
      raise UserError(f'config.optimizer.schedule_kwargs.{key}={value!r} has type {type(value).__name__}',
                      f'a {want.__name__}', 'fix it')


def build_schedule(opt_config, num_steps: int) -> tuple[Schedule, optax.GradientTransformation | None]:
  """(schedule t -> ε_t, the reduce-on-plateau transform or None) from a config.optimizer section."""
  cfg = dict(opt_config)
  lr = cfg['learning_rate']
  kind = cfg.get('schedule', 'constant') or 'constant'
  if kind not in SCHEDULES:
    raise UserError(f'unknown config.optimizer.schedule {kind!r}', 'one of: ' + ', '.join(SCHEDULES),
                    'fix config.optimizer.schedule')
  kwargs = dict(cfg.get('schedule_kwargs', None) or {})
  _check_options(kind, kwargs)
  warmup = int(cfg.get('warmup_steps', 0))
  if warmup < 0:
    raise UserError(f'config.optimizer.warmup_steps={warmup} is negative', 'a value >= 0 (0 disables it)',
                    'fix config.optimizer.warmup_steps')
  T = max(1, int(num_steps) - warmup)
  sched = SCHEDULES[kind](lr, T, **kwargs)
  if warmup:
    # Linear warmup 0 → ε₀ over `warmup` updates (Goyal et al. 2017), then the schedule restarts its clock.
    sched = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), sched], [warmup])
  extra = None
  if kind == 'plateau':
    o = dict(_options(plateau), **kwargs)
    extra = optax.contrib.reduce_on_plateau(factor=o['factor'], patience=o['patience'], rtol=o['rtol'],
                                            atol=o['atol'], cooldown=o['cooldown'],
                                            accumulation_size=o['accumulation_size'], min_scale=o['min_scale'])
  return sched, extra


def _optimizer_section(config):
  return config.optimizer if 'optimizer' in config and 'learning_rate' not in config else config


def schedule_values(config, num_steps: int, values=None) -> np.ndarray:
  """ε_t for t = 0 … num_steps − 1 (what the optimiser applies at its (t+1)-th update).

  `config` is a full config or its `optimizer` section. For 'plateau', `values` (the loss seen at each update, as
  the train step passes it) drive the reduction: the result is ε₀ × the scale applied to the update at t."""
  cfg = _optimizer_section(config)
  sched, extra = build_schedule(cfg, num_steps)
  base = np.asarray(jax.jit(jax.vmap(sched))(jnp.arange(num_steps)), np.float64)
  if extra is None:
    return base
  if values is None:
    raise UserError("schedule_values(...) for schedule 'plateau' needs `values`", 'one loss value per update',
                    'pass values=losses')
  values = np.asarray(values, np.float32)
  if len(values) < num_steps:
    raise UserError(f'{len(values)} plateau values for {num_steps} steps', 'one per step', 'pass more values')

  def body(state, value):
    # The update at t is scaled by the scale the state holds after seeing value_t (optax updates it first).
    _, state = extra.update(jnp.ones(()), state, value=value)
    return state, state.scale

  _, scales = jax.jit(lambda v: jax.lax.scan(body, extra.init(jnp.zeros(())), v))(jnp.asarray(values[:num_steps]))
  return base * np.asarray(scales, np.float64)
