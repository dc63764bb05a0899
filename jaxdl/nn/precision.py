"""Floating-point types at the model's door (mixed precision, `train.compute_dtype`).

`as_float`: model inputs as floating point, keeping a floating input's dtype (a bfloat16 batch is computed in
bfloat16). `cast_floating`: every floating leaf of a tree (parameters, inputs, outputs) to a dtype, integer leaves
(token ids) untouched.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def as_float(x):
  """Integer images/features become float32; floating inputs keep their dtype."""
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def cast_floating(tree, dtype):
  """Every floating-point leaf of `tree` as `dtype` (integer leaves, e.g. token ids, unchanged)."""
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, tree)
