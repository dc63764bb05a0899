"""Second-order methods as pure functions on small problems (seed 000 "A glimpse into second order methods",
seed 004 V.2–V.3): each returns the iterate path and the losses, for comparison with first-order optimisers.

  newton               θ ← θ − (H + λI)⁻¹∇J, H = jax.hessian (exact; O(n³)). λ = 0: Newton's method; `adaptive`:
                       λ goes down ×1/10 after a successful step and up ×10 after a failed one (a damped Newton that
                       does not climb to saddles or maxima of a non-convex J)
  gauss_newton         least squares J = ½‖r(θ)‖²: θ ← θ − (JᵣᵀJᵣ)⁻¹Jᵣᵀr, Jᵣ = jax.jacfwd(r) (solved by lstsq)
  levenberg_marquardt  (JᵣᵀJᵣ + λD)(θ_k − θ_{k+1}) = Jᵣᵀr, D = diag(JᵣᵀJᵣ) (Marquardt) or I (Levenberg); λ adapted
  lbfgs                optax.lbfgs (two-loop recursion, memory m) with its zoom line search (strong Wolfe)
  newton_cg            truncated Newton: solve H d = −∇J by conjugate gradient on Hessian-vector products
                       (jax.jvp of jax.grad, H never formed; Nocedal & Wright 2006, Alg. 7.1), then an Armijo
                       backtracking line search

`loss_fn(params) -> scalar` and `residual_fn(params) -> vector` take any pytree of parameters; paths are the
flattened iterates, one row per iteration (row 0 = the start). "Newton, L-BFGS, GN, LM only if you can do full
batch updates" (seed 004): everything here is full batch.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree


class Path(NamedTuple):
  params: Any            # final parameters (same pytree as the start)
  path: np.ndarray       # (k + 1, n) flattened iterates θ_0 … θ_k
  losses: np.ndarray     # (k + 1,) J(θ_0) … J(θ_k)
  info: dict             # per-iteration extras (e.g. 'lambda' for LM, 'cg_iters' for Newton-CG)


def _flat(fn, params):
  x0, unravel = ravel_pytree(params)
  return (lambda x: fn(unravel(x))), x0, unravel


def _result(unravel, xs, losses, **info) -> Path:
  xs = np.stack([np.asarray(x) for x in xs])
  return Path(unravel(jnp.asarray(xs[-1])), xs, np.asarray(losses, np.float64),
              {k: np.asarray(v) for k, v in info.items()})


def hvp(loss_fn: Callable, params, v):
  """Hessian-vector product H(θ)v by forward-over-reverse differentiation: d/dε ∇J(θ + εv) at ε = 0."""
  return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def cg_solve(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, max_iters: int | None = None,
             tol: float = 1e-6, negative_curvature_stop: bool = False):
  """Conjugate gradient for A x = b with A given by `matvec` (Hestenes & Stiefel 1952), from x = 0.

  Stops when ‖r‖ ≤ tol·‖b‖ or after max_iters (default n). With `negative_curvature_stop` (truncated Newton),
  it also stops at a direction d with dᵀAd ≤ 0, returning the current x (or b itself if that is the first
  direction: steepest descent). Returns (x, iterations)."""
  n = b.shape[0]
  max_iters = n if max_iters is None else max_iters
  bnorm = jnp.linalg.norm(b)

  def cond(s):
    x, r, d, rr, i, done = s
    return (i < max_iters) & ~done & (jnp.sqrt(rr) > tol * bnorm)

  def body(s):
    x, r, d, rr, i, done = s
    ad = matvec(d)
    dad = jnp.vdot(d, ad)
    neg = negative_curvature_stop & (dad <= 0)
    alpha = rr / jnp.where(dad == 0, 1.0, dad)
    x_new = x + alpha * d
    r_new = r - alpha * ad
    rr_new = jnp.vdot(r_new, r_new)
    d_new = r_new + (rr_new / rr) * d
    # On negative curvature keep x (or take b at the first iteration) and stop.
    x_out = jnp.where(neg, jnp.where(i == 0, b, x), x_new)
    return (x_out, jnp.where(neg, r, r_new), jnp.where(neg, d, d_new), jnp.where(neg, rr, rr_new),
            i + 1, neg)

  x0 = jnp.zeros_like(b)
  state = (x0, b, b, jnp.vdot(b, b), jnp.asarray(0), jnp.asarray(False))
  x, _, _, _, iters, _ = jax.lax.while_loop(cond, body, state)
  return x, iters


def newton(loss_fn: Callable, params, num_steps: int = 10, damping: float = 0.0, adaptive: bool = False) -> Path:
  """Newton's method with the exact Hessian: θ ← θ − (H + λI)⁻¹∇J (seed 004 V.2: θ* = θ₀ − H⁻¹∇J)."""
  f, x, unravel = _flat(loss_fn, params)

  @jax.jit
  def step(x, lam):
    g, h = jax.grad(f)(x), jax.hessian(f)(x)
    d = jnp.linalg.solve(h + lam * jnp.eye(x.shape[0], dtype=x.dtype), g)
    return x - d, f(x - d)

  xs, losses, lams, lam = [x], [float(f(x))], [], float(damping)
  for _ in range(num_steps):
    x_new, loss_new = step(x, lam)
    lams.append(lam)
    if adaptive:
      if np.isfinite(float(loss_new)) and float(loss_new) < losses[-1]:
        x, lam = x_new, lam / 10
      else:
        lam = max(lam * 10, 1e-6)
    else:
      x = x_new
    xs.append(x)
    losses.append(float(f(x)))
  return _result(unravel, xs, losses, **{'lambda': lams})


def _residual_parts(residual_fn, params):
  r, x, unravel = _flat(residual_fn, params)
  jac = jax.jacfwd(r)
  half_sq = lambda x: 0.5 * jnp.sum(r(x) ** 2)
  return r, jac, half_sq, x, unravel


def gauss_newton(residual_fn: Callable, params, num_steps: int = 10) -> Path:
  """Gauss–Newton on J = ½‖r(θ)‖²: θ ← θ − (JᵣᵀJᵣ)⁻¹Jᵣᵀr, as the least-squares solution of Jᵣ δ ≈ −r."""
  r, jac, half_sq, x, unravel = _residual_parts(residual_fn, params)

  @jax.jit
  def step(x):
    delta, *_ = jnp.linalg.lstsq(jac(x), -r(x))
    return x + delta

  xs, losses = [x], [float(half_sq(x))]
  for _ in range(num_steps):
    x = step(x)
    xs.append(x)
    losses.append(float(half_sq(x)))
  return _result(unravel, xs, losses)


def levenberg_marquardt(residual_fn: Callable, params, num_steps: int = 20, init_lambda: float = 1e-3,
                        factor: float = 10.0, marquardt: bool = True) -> Path:
  """Levenberg (1944) / Marquardt (1963) on J = ½‖r(θ)‖² (seed 004 V.3):
  (JᵣᵀJᵣ + λD)(θ_k − θ_{k+1}) = Jᵣᵀr, D = diag(JᵣᵀJᵣ) if `marquardt` else I. A step that lowers J is taken and
  λ ← λ/factor (towards Gauss–Newton); otherwise it is rejected (θ stays) and λ ← λ·factor (towards gradient
  descent with a step ∝ 1/λ). Every solve counts as one iteration."""
  r, jac, half_sq, x, unravel = _residual_parts(residual_fn, params)

  @jax.jit
  def step(x, lam):
    jr, res = jac(x), r(x)
    a = jr.T @ jr
    d = jnp.diag(jnp.diag(a)) if marquardt else jnp.eye(a.shape[0], dtype=a.dtype)
    x_new = x - jnp.linalg.solve(a + lam * d, jr.T @ res)
    return x_new, half_sq(x_new)

  xs, losses, lams, lam = [x], [float(half_sq(x))], [], float(init_lambda)
  for _ in range(num_steps):
    x_new, loss_new = step(x, lam)
    lams.append(lam)
    if np.isfinite(float(loss_new)) and float(loss_new) < losses[-1]:
      x, lam = x_new, lam / factor
    else:
      lam = lam * factor
    xs.append(x)
    losses.append(float(half_sq(x)))
  return _result(unravel, xs, losses, **{'lambda': lams})


def lbfgs(loss_fn: Callable, params, num_steps: int = 50, memory_size: int = 10) -> Path:
  """L-BFGS (Liu & Nocedal 1989): the two-loop recursion approximates H⁻¹∇J from the last m pairs
  (s, y) = (Δθ, Δ∇J); the step length comes from optax's zoom line search (strong Wolfe conditions)."""
  f, x, unravel = _flat(loss_fn, params)
  tx = optax.lbfgs(memory_size=memory_size)
  value_and_grad = optax.value_and_grad_from_state(f)

  @jax.jit
  def step(x, state):
    value, grad = value_and_grad(x, state=state)
    updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
    return optax.apply_updates(x, updates), state

  state = tx.init(x)
  xs, losses = [x], [float(f(x))]
  for _ in range(num_steps):
    x, state = step(x, state)
    xs.append(x)
    losses.append(float(f(x)))
  return _result(unravel, xs, losses)


def newton_cg(loss_fn: Callable, params, num_steps: int = 20, cg_iters: int | None = None, c1: float = 1e-4) -> Path:
  """Truncated Newton (Newton-CG): d ≈ −H⁻¹∇J by CG on Hessian-vector products, forcing tolerance
  min(½, √‖∇J‖) (Nocedal & Wright, Alg. 7.1) and stopping on negative curvature; then θ ← θ + αd with α the first
  of 1, ½, ¼, … that satisfies Armijo's J(θ + αd) ≤ J(θ) + c₁α∇Jᵀd."""
  f, x, unravel = _flat(loss_fn, params)

  @jax.jit
  def direction(x):
    g = jax.grad(f)(x)
    gnorm = jnp.linalg.norm(g)
    d, iters = cg_solve(lambda v: hvp(f, x, v), -g, cg_iters, jnp.minimum(0.5, jnp.sqrt(gnorm)),
                        negative_curvature_stop=True)
    return d, g, iters

  @jax.jit
  def line_search(x, d, g):
    fx, slope = f(x), jnp.vdot(g, d)

    def cond(s):
      alpha, i = s
      return (f(x + alpha * d) > fx + c1 * alpha * slope) & (i < 30)

    alpha, _ = jax.lax.while_loop(cond, lambda s: (s[0] / 2, s[1] + 1), (jnp.asarray(1.0, x.dtype), 0))
    return x + alpha * d

  xs, losses, iters = [x], [float(f(x))], []
  for _ in range(num_steps):
    d, g, it = direction(x)
    x = line_search(x, d, g)
    xs.append(x)
    losses.append(float(f(x)))
    iters.append(int(it))
  return _result(unravel, xs, losses, cg_iters=iters)
