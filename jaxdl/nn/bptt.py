"""Training recurrent networks through time (seed 000 "TRAINING WITH (TRUNCATED)-BPTT"; seed 004 §XI.2).

A recurrent model is given as one step, `step_fn(params, carry, x_t, y_t) -> (carry, loss_t)` (a scalar loss for
step t), and a stream xs, ys with time on the leading axis of every leaf. The total loss is the mean (or sum) of
the loss_t over the stream.

* `bptt`: backpropagation through time (Werbos 1990) — reverse mode through the unrolled graph (jax.grad of a scan).
* `truncated_bptt`: the stream cut into chunks of k steps; the carry flows from chunk to chunk under
  lax.stop_gradient, so gradients stop at chunk boundaries (Williams & Peng 1990; Sutskever 2013, §2.8) and memory
  is that of k steps: the gradient of each chunk is taken inside a scan over chunks and summed.
* `rtrl_gradient`: real-time recurrent learning (Williams & Zipser 1989) — FORWARD mode: the sensitivity
  S_t = ∂carry_t/∂θ is carried with the state, S_t = ∂f/∂carry · S_{t−1} + ∂f/∂θ (one jax.jvp per parameter,
  vmapped), and the loss gradient accumulates online, g += ∂loss_t/∂θ + ∂loss_t/∂carry_{t−1} · S_{t−1}, with no
  stored history. It equals BPTT's gradient at #params times the cost of a step: "computationally expensive".
* `hidden_state_jacobian_norms` (claim R2): ‖∂h_T/∂h_0‖ for h_t = f(W_h h_{t−1} + u_t + b), T = 1..T_max; for a
  linear RNN ∂h_T/∂h_0 = W_h^T, whose norm for a normal W_h is ρ(W_h)^T — vanishing below 1, exploding above.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxdl.errors import UserError

Array = jax.Array
StepFn = Callable[[Any, Any, Any, Any], tuple[Any, Array]]   # (params, carry, x_t, y_t) -> (carry, loss_t)
REDUCTIONS = ('mean', 'sum')


def _length(xs) -> int:
  leaves = jax.tree.leaves(xs)
  if not leaves:
    raise ValueError('xs has no arrays')
  return leaves[0].shape[0]


def _scale(reduction: str, T: int) -> float:
  if reduction not in REDUCTIONS:
    raise UserError(f'unknown reduction {reduction!r}', f'one of {REDUCTIONS}', 'fix reduction')
  return 1.0 / T if reduction == 'mean' else 1.0


def _run(step_fn: StepFn, params, carry, xs, ys):
  """Σ_t loss_t over the (sub)stream, and the final carry."""
  def body(c, xy):
    c, loss = step_fn(params, c, *xy)
    return c, loss
  carry, losses = jax.lax.scan(body, carry, (xs, ys))
  return losses.sum(), carry


def bptt(step_fn: StepFn, params, carry, xs, ys, *, reduction: str = 'mean'):
  """Full BPTT: (loss, grads w.r.t. params, final carry) of the whole stream (jax.value_and_grad of the scan)."""
  scale = _scale(reduction, _length(xs))

  def total(p):
    loss, c = _run(step_fn, p, carry, xs, ys)
    return loss * scale, c
  (loss, final), grads = jax.value_and_grad(total, has_aux=True)(params)
  return loss, grads, final


def _chunk(tree, n: int, k: int):
  return jax.tree.map(lambda a: a[:n * k].reshape((n, k) + a.shape[1:]), tree)


def truncated_bptt(step_fn: StepFn, params, carry, xs, ys, k: int, *, reduction: str = 'mean'):
  """Truncated BPTT with chunks of k steps: (loss, grads, final carry).

  loss is the loss of the whole stream (mean or sum of loss_t); grads = Σ over chunks of ∂(chunk loss)/∂params
  with the chunk's initial carry held constant (stop_gradient): what training on truncated series computes. A
  last chunk shorter than k (T not a multiple of k) is its own chunk. k >= T gives full BPTT.
  """
  T = _length(xs)
  if k < 1:
    raise UserError(f'truncation length k={k}', 'k >= 1', 'pass a positive chunk length')
  scale = _scale(reduction, T)
  k = min(k, T)
  n_full, rest = divmod(T, k)

  def chunk_grad(p, c, xs_c, ys_c):
    def chunk_loss(p_):
      loss, c_out = _run(step_fn, p_, jax.lax.stop_gradient(c), xs_c, ys_c)   # no gradient into earlier chunks
      return loss * scale, c_out
    (loss, c_out), g = jax.value_and_grad(chunk_loss, has_aux=True)(p)
    return loss, g, c_out

  def body(acc, chunk):
    c, loss, grads = acc
    l, g, c = chunk_grad(params, c, *chunk)
    return (c, loss + l, jax.tree.map(jnp.add, grads, g)), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  chunks = (_chunk(xs, n_full, k), _chunk(ys, n_full, k))
  (carry, loss, grads), _ = jax.lax.scan(body, (carry, jnp.zeros(()), zeros), chunks)
  if rest:
    tail = lambda tree: jax.tree.map(lambda a: a[n_full * k:], tree)
    l, g, carry = chunk_grad(params, carry, tail(xs), tail(ys))
    loss, grads = loss + l, jax.tree.map(jnp.add, grads, g)
  return loss, grads, carry


def rtrl_gradient(step_fn: StepFn, params, carry, xs, ys, *, reduction: str = 'mean'):
  """Real-time recurrent learning (forward mode): (loss, grads, final carry), equal to `bptt`'s.

  With θ the flattened parameters (P of them), each step propagates the sensitivity S = ∂carry/∂θ (every carry leaf
  gets a leading axis of size P) and the loss derivative: for every p, one jvp of (θ, carry) -> (carry', loss_t)
  along the tangent (e_p, S[p]) gives S'[p] and dloss_t/dθ_p (Williams & Zipser 1989, eq. 12-13); the gradient is
  accumulated as the stream goes, so nothing of the past is stored. Cost per step: P jvps (vmapped).
  """
  T = _length(xs)
  scale = _scale(reduction, T)
  theta, unravel = ravel_pytree(params)
  P = theta.shape[0]
  basis = jnp.eye(P, dtype=theta.dtype)

  def f(th, c, x, y):
    return step_fn(unravel(th), c, x, y)

  def body(state, xy):
    c, S, loss, grad = state
    x, y = xy

    def tangent(e, s):                                      # d(carry', loss_t) along (e_p, S_{t−1}[p])
      return jax.jvp(lambda th, c_: f(th, c_, x, y), (theta, c), (e, s))[1]
    (c_new, loss_t) = f(theta, c, x, y)
    S_new, dloss = jax.vmap(tangent)(basis, S)              # S_t = ∂f/∂c S_{t−1} + ∂f/∂θ; dℓ_t/dθ
    return (c_new, S_new, loss + loss_t, grad + dloss), None

  S0 = jax.tree.map(lambda a: jnp.zeros((P,) + a.shape, a.dtype), carry)   # ∂carry_0/∂θ = 0
  init = (carry, S0, jnp.zeros((), theta.dtype), jnp.zeros_like(theta))
  (carry, _, loss, grad), _ = jax.lax.scan(body, init, (xs, ys))
  return loss * scale, unravel(grad * scale), carry


ACTIVATIONS = {'linear': lambda a: a, 'tanh': jnp.tanh, 'relu': jax.nn.relu}


def hidden_state_jacobian_norms(W_h: Array, T_max: int, *, activation: str = 'linear', h0: Array | None = None,
                                inputs: Array | None = None, bias: Array | None = None, ord: int | str = 2,
                                return_jacobians: bool = False):
  """‖∂h_T/∂h_0‖ for T = 1..T_max of the RNN h_t = f(W_h h_{t−1} + u_t + b) (claim R2; Pascanu et al. 2013).

  W_h (H, H) acts as h_t = W_h h_{t−1} (column convention). activation f: linear | tanh | relu; h0 (H,) (default
  zeros), inputs u (T_max, H) (default zeros), bias b (H,). ord: the matrix norm (2: spectral, 'fro'). The
  Jacobians ∂h_t/∂h_0 of the whole trajectory come from one jax.jacfwd (forward mode: one jvp per basis vector of
  h_0). Returns the (T_max,) norms, and the (T_max, H, H) Jacobians if return_jacobians.
  """
  W_h = jnp.asarray(W_h)
  if W_h.ndim != 2 or W_h.shape[0] != W_h.shape[1]:
    raise UserError(f'W_h of shape {W_h.shape}', 'a square (H, H) matrix', 'pass the recurrent weight matrix')
  if activation not in ACTIVATIONS:
    raise UserError(f'unknown activation {activation!r}', f'one of {sorted(ACTIVATIONS)}', 'fix activation')
  if T_max < 1:
    raise UserError(f'T_max={T_max}', 'T_max >= 1', 'ask for at least one step')
  H = W_h.shape[0]
  f = ACTIVATIONS[activation]
  h0 = jnp.zeros((H,), W_h.dtype) if h0 is None else jnp.asarray(h0, W_h.dtype)
  u = jnp.zeros((T_max, H), W_h.dtype) if inputs is None else jnp.asarray(inputs, W_h.dtype)
  b = jnp.zeros((H,), W_h.dtype) if bias is None else jnp.asarray(bias, W_h.dtype)

  def trajectory(h):
    def step(h_, u_t):
      h_ = f(W_h @ h_ + u_t + b)
      return h_, h_
    return jax.lax.scan(step, h, u)[1]                      # (T_max, H): h_1 .. h_T
  J = jax.jacfwd(trajectory)(h0)                            # (T_max, H, H): ∂h_t/∂h_0
  norms = jnp.linalg.norm(J, ord=ord, axis=(1, 2))
  return (norms, J) if return_jacobians else norms
