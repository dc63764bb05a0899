"""Automatic differentiation, as the course presents it (seed 000 "Computational graph and differential programming").

- `example_graph`: the notes' two-path graph y = y₃·y₄, y₃ = y₁e^{y₂}, y₄ = y₂e^{y₁}, y₁ = w₁ᵀx + b₁, y₂ = w₂ᵀx + b₂,
  with the notes' hand-derived forward- and reverse-mode gradients, to compare with `jax.jvp` / `jax.vjp`.
- `gradcheck`: a central finite-difference gradient checker usable from any test.
- `softmax_cross_entropy_custom`: a `jax.custom_vjp` operation whose backward pass is the notes' ∂L/∂o = p − y.
- `clip_gradient`: identity forward, clipped cotangent backward (a custom_vjp used for gradient clipping per tensor).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


# ------------------------------------------------------------------------------------- the notes' graph
def example_graph(x, w1, b1, w2, b2):
  y1 = w1 @ x + b1
  y2 = w2 @ x + b2
  y3 = y1 * jnp.exp(y2)
  y4 = y2 * jnp.exp(y1)
  return y3 * y4


def example_graph_forward_formula(x, w1, b1, w2, b2):
  """∂y/∂x = y₄e^{y₂}[w₁ᵀ + y₁w₂ᵀ] + y₃e^{y₁}[w₂ᵀ + y₂w₁ᵀ] (forward mode: propagate ∂/∂x)."""
  y1, y2 = w1 @ x + b1, w2 @ x + b2
  y3, y4 = y1 * jnp.exp(y2), y2 * jnp.exp(y1)
  return y4 * jnp.exp(y2) * (w1 + y1 * w2) + y3 * jnp.exp(y1) * (w2 + y2 * w1)


def example_graph_reverse_formula(x, w1, b1, w2, b2):
  """∂y/∂x = (y₄y₁e^{y₂} + y₃e^{y₁})w₂ᵀ + (y₃y₂e^{y₁} + y₄e^{y₂})w₁ᵀ (reverse mode: propagate ∂y/∂·)."""
  y1, y2 = w1 @ x + b1, w2 @ x + b2
  y3, y4 = y1 * jnp.exp(y2), y2 * jnp.exp(y1)
  return (y4 * y1 * jnp.exp(y2) + y3 * jnp.exp(y1)) * w2 + (y3 * y2 * jnp.exp(y1) + y4 * jnp.exp(y2)) * w1


def forward_mode_gradient(f: Callable, x: jax.Array) -> jax.Array:
  """∇f(x) for scalar f by forward mode: one `jax.jvp` per input direction (n passes for x ∈ ℝⁿ)."""
  basis = jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)
  return jax.vmap(lambda v: jax.jvp(f, (x,), (v,))[1])(basis).reshape(x.shape)


def reverse_mode_gradient(f: Callable, x: jax.Array) -> jax.Array:
  """∇f(x) for scalar f by reverse mode: ONE `jax.vjp` pulling back the cotangent 1."""
  y, pullback = jax.vjp(f, x)
  return pullback(jnp.ones_like(y))[0]


# -------------------------------------------------------------------------------------- gradient check
def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-5) -> np.ndarray:
  """Central differences (f(x + εe_i) − f(x − εe_i)) / 2ε in float64."""
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    d = np.zeros_like(x)
    d[i] = eps
    g[i] = (float(f(x + d)) - float(f(x - d))) / (2 * eps)
  return g


def gradcheck(f: Callable, params: Any, eps: float = 1e-4, rtol: float = 1e-3, atol: float = 1e-5) -> float:
  """Compares `jax.grad(f)(params)` with central finite differences on every leaf (float64 evaluation when x64 is
  on, else float32 with a larger eps). Returns the largest error as a fraction of its tolerance atol + rtol·|fd|
  (≤ 1 passes); raises AssertionError beyond it."""
  grads = jax.grad(f)(params)
  leaves, treedef = jax.tree.flatten(params)
  worst = 0.0
  for k, (leaf, g) in enumerate(zip(leaves, jax.tree.leaves(grads))):
    def f_leaf(v, k=k):
      new = list(leaves)
      new[k] = jnp.asarray(v, leaf.dtype)
      return f(jax.tree.unflatten(treedef, new))
    num = numerical_gradient(f_leaf, np.asarray(leaf), eps)
    g = np.asarray(g, np.float64)
    err = np.abs(g - num)
    if np.any(err > atol + rtol * np.abs(num)):
      raise AssertionError(f'gradient check failed on leaf {k}: max abs error {err.max():.3g}')
    worst = max(worst, float(np.max(err / (atol + rtol * np.abs(num)))))
  return worst


# ------------------------------------------------------------------------------------------ custom VJPs
@jax.custom_vjp
def softmax_cross_entropy_custom(logits: jax.Array, onehot: jax.Array) -> jax.Array:
  """−Σ_c y_c log softmax(o)_c with a hand-written backward pass ∂L/∂o = p − y (seed 003/004 F18)."""
  return -jnp.sum(onehot * jax.nn.log_softmax(logits), axis=-1)


def _xent_fwd(logits, onehot):
  return softmax_cross_entropy_custom(logits, onehot), (jax.nn.softmax(logits), onehot)


def _xent_bwd(res, g):
  p, onehot = res
  return (g[..., None] * (p - onehot), None)


softmax_cross_entropy_custom.defvjp(_xent_fwd, _xent_bwd)


@jax.custom_vjp
def clip_gradient(x: jax.Array, bound: float) -> jax.Array:
  """Identity forward; the cotangent is clipped to [−bound, bound] on the way back."""
  return x


def _clip_fwd(x, bound):
  return x, bound


def _clip_bwd(bound, g):
  return (jnp.clip(g, -bound, bound), None)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)
