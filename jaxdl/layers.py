"""Layers shared by the CNN model zoo. Every zoo model builds its convolutions with `jaxdl.layers.Conv`.

`Conv` IS flax's `nn.Conv` (same fields, same parameters: 'kernel' HWIO and 'bias', same auto-name `Conv_0`, so
parameter counts and checkpoints are nn.Conv's); only its lowering differs: it convolves with
`jaxdl.fastconv.conv_general_dilated`, which equals `lax.conv_general_dilated` to float rounding and runs 2-4x
faster on XLA:CPU for the convolutions (and weight gradients) that XLA hands to a slow kernel (see jaxdl/fastconv.py).
On GPU/TPU it is lax's convolution. `JAXDL_FASTCONV=0` in the environment gives the plain lowering.

`max_pool` / `avg_pool`: flax.linen's signatures and results. On CPU a max-pool whose windows tile the input
(strides == window, no padding: the usual 2×2/2) is computed from a reshape, with its derivative written as a
masked sum that sends each window's gradient to its FIRST maximum, exactly as lax's select-and-scatter does:
XLA:CPU's select-and-scatter (reduce_window's gradient) took 52-82 ms on the small CNN's (128, 24, 24, 64) pool,
this 9-13 ms (forward 1.8 ms either way). Other pools, and other platforms, are flax's.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxdl import fastconv


class Conv(nn.Conv):
  """flax.linen.Conv convolving with jaxdl.fastconv (identical results and parameters, faster on CPU)."""
  conv_general_dilated: Callable[..., Any] | None = fastconv.conv_general_dilated


def avg_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = 'VALID', count_include_pad: bool = True):
  """flax.linen.avg_pool (its reduce_window sum and gradient, a pad, are fast already) in the input's dtype: with
  count_include_pad=False flax divides by a float32 window count, which would turn a bfloat16 network float32."""
  return nn.avg_pool(inputs, window_shape, strides, padding, count_include_pad).astype(inputs.dtype)


def as_float(x):
  """Model inputs as floating point: integer images/features become float32, floating inputs keep their dtype
  (so that a bfloat16 batch, under train.compute_dtype='bfloat16', is computed in bfloat16)."""
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def max_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = 'VALID'):
  """flax.linen.max_pool; tiling 2-D windows on CPU take the reshape path (see the module docstring)."""
  window_shape = tuple(window_shape)
  strides = tuple(strides) if strides is not None else (1,) * len(window_shape)
  no_pad = padding == 'VALID' or (not isinstance(padding, str) and all(tuple(p) == (0, 0) for p in padding))
  if (inputs.ndim != 4 or len(window_shape) != 2 or strides != window_shape or not no_pad
      or not jnp.issubdtype(inputs.dtype, jnp.floating) or jax.default_backend() != 'cpu' or not fastconv.enabled()):
    return nn.max_pool(inputs, window_shape, strides=strides, padding=padding)
  (kh, kw), (n, h, w, c) = window_shape, inputs.shape
  x = inputs[:, :h - h % kh, :w - w % kw]  # VALID drops the remainder
  return _tiled_max_pool(x.reshape(n, h // kh, kh, w // kw, kw, c))


def _first_max_mask(xr):
  """One-hot over each window (axes 2, 4) marking its first maximum in row-major order (lax's select rule)."""
  kh, kw = xr.shape[2], xr.shape[4]
  pos = lax.broadcasted_iota(jnp.int32, (1, 1, kh, 1, kw, 1), 2) * kw + lax.broadcasted_iota(
      jnp.int32, (1, 1, kh, 1, kw, 1), 4)
  first = jnp.where(xr == xr.max((2, 4), keepdims=True), pos, kh * kw).min((2, 4), keepdims=True)
  return pos == first


@jax.custom_jvp
def _tiled_max_pool(xr):
  """max over axes 2 and 4 of (N, H/kh, kh, W/kw, kw, C); tangent: the tangent at each window's first maximum."""
  return xr.max((2, 4))


@_tiled_max_pool.defjvp
def _tiled_max_pool_jvp(primals, tangents):
  (xr,), (t,) = primals, tangents
  # linear in t: its transpose (the gradient) is one fused select, instead of XLA's slow select-and-scatter
  return xr.max((2, 4)), jnp.where(_first_max_mask(xr), t, 0).sum((2, 4))
