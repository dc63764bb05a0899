"""Vector quantisation in JAX: k-means++ seeding (Arthur & Vassilvitskii 2007) and Lloyd's iterations.

Used to place RBF centres (seed 000, "RBF networks: learning"). Pure functions of (key, data).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def sq_distances(x: jax.Array, c: jax.Array) -> jax.Array:
  """‖x_i − c_j‖² for x (N, d), c (K, d) -> (N, K), clipped at 0 against round-off."""
  d = jnp.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, 1)[None, :]
  return jnp.maximum(d, 0.0)


def kmeans_plus_plus_init(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
  """k-means++ seeding: the first centre uniformly, each next one with probability ∝ D(x)², D the distance
  to the nearest centre chosen so far. Returns (k, d) centres, rows of x."""
  x = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
  n = x.shape[0]
  keys = jax.random.split(key, k)
  first = jax.random.randint(keys[0], (), 0, n)
  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  d2 = jnp.sum((x - x[first]) ** 2, 1)

  def body(i, carry):
    centres, d2 = carry
    # Sampling ∝ D²; points already chosen have D² = 0 and so probability 0.
    logits = jnp.where(d2 > 0, jnp.log(jnp.maximum(d2, 1e-30)), -jnp.inf)
    logits = jnp.where(jnp.all(d2 <= 0), jnp.zeros_like(d2), logits)  # degenerate: all points coincide
    j = jax.random.categorical(keys[i], logits)
    centres = centres.at[i].set(x[j])
    d2 = jnp.minimum(d2, jnp.sum((x - x[j]) ** 2, 1))
    return centres, d2

  centres, _ = jax.lax.fori_loop(1, k, body, (centres, d2))
  return centres


def lloyd(x: jax.Array, centres: jax.Array, num_iters: int = 50) -> jax.Array:
  """Lloyd's algorithm: assign each point to its nearest centre, move centres to their cluster means
  (an empty cluster keeps its centre)."""
  x = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)

  def body(_, c):
    assign = jax.nn.one_hot(jnp.argmin(sq_distances(x, c), 1), c.shape[0], dtype=x.dtype)  # (N, K)
    counts = assign.sum(0)
    means = (assign.T @ x) / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, means, c)

  return jax.lax.fori_loop(0, num_iters, body, centres)


def kmeans(key: jax.Array, x: jax.Array, k: int, num_iters: int = 50) -> jax.Array:
  """k-means++ seeding followed by Lloyd's iterations; returns (k, d) centres."""
  return lloyd(x, kmeans_plus_plus_init(key, x, k), num_iters)


def inertia(x: jax.Array, centres: jax.Array) -> jax.Array:
  """Σ_i min_j ‖x_i − c_j‖² (the k-means objective)."""
  x = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
  return jnp.sum(jnp.min(sq_distances(x, centres), 1))
