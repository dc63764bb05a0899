"""Rosenblatt's perceptron and the kernel perceptron (seed 000, "Linear neural networks").

The (primal) perceptron is the `linear` model trained by the one trainer with the `perceptron` loss, SGD with
learning rate 1 and batch size 1: exactly the online rule w ← w + ½(y − ŷ)φ(x), φ₀ = 1, g(s) = +1 iff s ≥ 0.
This file holds what is not gradient descent: the kernel perceptron's dual, mistake-driven rule, as a pure
`fit` function, and `perceptron_fit`, an independent NumPy-free reference of the online rule used by the tests.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def sign(s: jax.Array) -> jax.Array:
  """The course's g: −1 if s < 0, +1 if s ≥ 0."""
  return jnp.where(s >= 0, 1.0, -1.0)


def perceptron_fit(phi: jax.Array, y: jax.Array, num_epochs: int, w0: jax.Array | None = None):
  """Online perceptron rule over the samples in order, `num_epochs` times.

  phi: (N, p) features INCLUDING φ₀ = 1; y: (N,) in {−1, +1}. Returns (w, mistakes per epoch).
  """
  phi = jnp.asarray(phi, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  w0 = jnp.zeros(phi.shape[1], jnp.float32) if w0 is None else jnp.asarray(w0, jnp.float32)

  def sample(w, inp):
    p, t = inp
    y_hat = sign(w @ p)
    return w + 0.5 * (t - y_hat) * p, (y_hat != t).astype(jnp.int32)   # the delta rule

  def epoch(w, _):
    w, wrong = jax.lax.scan(sample, w, (phi, y))
    return w, wrong.sum()

  return jax.lax.scan(epoch, w0, None, length=num_epochs)


# ---------------------------------------------------------------------------------------------- kernels
def polynomial_kernel(degree: int = 3, c: float = 1.0) -> Callable:
  """k(x, y) = (c + ⟨x, y⟩)^d (the notes use c = 1, d = 3)."""
  return lambda a, b: (c + a @ b.T) ** degree


def gaussian_kernel(sigma: float = 1.0) -> Callable:
  """k(x, y) = exp(−‖x − y‖² / 2σ²)."""
  def k(a, b):
    d2 = jnp.sum(a * a, 1)[:, None] - 2 * a @ b.T + jnp.sum(b * b, 1)[None, :]
    return jnp.exp(-jnp.maximum(d2, 0) / (2 * sigma ** 2))
  return k


KERNELS = {'polynomial': polynomial_kernel, 'gaussian': gaussian_kernel}


def kernel_perceptron_fit(x: jax.Array, y: jax.Array, kernel: Callable, num_epochs: int = 100):
  """Dual perceptron: f(x) = Σ_i α_i y_i k(x_i, x) with α_i the number of mistakes made on sample i.

  Online over the samples, epochs until an epoch makes no mistake (or `num_epochs`). Returns (alpha, mistakes
  per epoch, epochs run). k(w₀, x) = 0 (w₀ = 0).
  """
  x = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
  y = jnp.asarray(y, jnp.float32)
  gram = kernel(x, x)                          # (N, N)

  def sample(alpha, i):
    y_hat = sign(jnp.sum(alpha * y * gram[:, i]))
    wrong = y_hat != y[i]
    return alpha.at[i].add(wrong.astype(jnp.float32)), wrong.astype(jnp.int32)

  def epoch(carry, _):
    alpha, done, epochs = carry
    new_alpha, wrong = jax.lax.scan(sample, alpha, jnp.arange(x.shape[0]))
    alpha = jnp.where(done, alpha, new_alpha)
    mistakes = jnp.where(done, 0, wrong.sum())
    return (alpha, done | (mistakes == 0), epochs + (~done).astype(jnp.int32)), mistakes

  (alpha, _, epochs), mistakes = jax.lax.scan(epoch, (jnp.zeros(x.shape[0]), jnp.array(False), jnp.array(0)), None,
                                              length=num_epochs)
  return alpha, mistakes, epochs


def kernel_perceptron_predict(alpha, x_train, y_train, x, kernel: Callable) -> jax.Array:
  """sign(Σ_i α_i y_i k(x_i, x)) for every row of x."""
  x_train = jnp.asarray(x_train, jnp.float32).reshape(x_train.shape[0], -1)
  x = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
  return sign(kernel(x, x_train) @ (alpha * jnp.asarray(y_train, jnp.float32)))
