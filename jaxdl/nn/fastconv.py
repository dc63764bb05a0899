"""A drop-in `lax.conv_general_dilated` that is faster on XLA:CPU (jaxdl.nn.conv.Conv uses it).

Why: XLA:CPU (jaxlib 0.10) hands every f32 2-D convolution with more than 16 input or output channels to YNNPACK.
YNNPACK is fast when the output has the input's size ('SAME', stride 1: ~130 GFLOP/s here) but slow otherwise:
'VALID' convolutions (~50 GFLOP/s) and above all weight gradients, whose output is the tiny kernel. XLA's other
kernel, Eigen's spatial convolution (TensorFlow's CPU convolution), runs those at ~100 GFLOP/s. XLA keeps a
convolution off YNNPACK when its output or its kernel is spatially larger than its input
(xla/backends/cpu/ynn_support.cc, IsConvolutionOpSupportedByYnn), so on CPU this module lowers each convolution
YNNPACK would run slowly with extra rows that satisfy that rule, computing exactly the same numbers:

  grow the output   pad the input's bottom so that the output has one row more than the input, then slice the
                    extra rows off (the slice fuses with the bias add / activation that follows);
  grow the kernel   append zero rows to the kernel (and as much padding to the input) until the kernel has one
                    row more than the input: the extra taps multiply zeros (weight gradients, whose "kernel" is the
                    output gradient). Where XLA would then swap input and kernel (ConvOperandSwapper, whose swapped
                    layout is very slow), the input's padding on the other dimension is applied explicitly.

The cheaper option is taken; more than MAX_EXTRA_WORK relative extra work (strided convolutions) leaves the
convolution to YNNPACK, as do 'SAME'-sized outputs and inputs with < 8 channels (where YNNPACK is the faster one).
Measured (2 shared cores, medians, forward + both gradients): the small CNN's second layer (32->64, 3x3 VALID,
26x26, batch 128) 147 -> 82 ms, its weight gradient alone 121 -> 51 ms; a 3x3 SAME 32->32 layer at 16x16 26 -> 22 ms.

How: `conv_general_dilated` binds `conv_p`, a primitive with the SAME name, parameters, shape rule and derivative
structure as lax's (so jaxprs, jaxdl.inspect.flops, jvp/vjp/vmap/hessians all behave as with lax); only its CPU
lowering differs. Its transposes (input and weight gradients) are `conv_p` again, so they are routed too. On
GPU/TPU it lowers to the plain lax convolution; feature/batch groups, input dilation, integer/complex dtypes and
non-static shapes go to lax directly. `JAXDL_FASTCONV=0` in the environment turns the routing off (comparisons).
"""
from __future__ import annotations

import functools
import math
import operator
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore
from jax.interpreters import ad, batching, mlir

# Above this relative extra work (e.g. a strided convolution, whose output is much smaller than its input) the
# convolution is left to YNNPACK.
MAX_EXTRA_WORK = 0.5
YNN_MAX_SMALL_FEATURES = 16  # XLA leaves convolutions with <= 16 input and output channels to Eigen already
MIN_ROUTED_IN_FEATURES = 8   # with fewer input channels YNNPACK is as fast or faster (measured: 1-4 channels)
MAX_TAPS = 27                # kh*kw*C_in up to this: a sum of shifted planes (3x3 on RGB, 5x5 on grey)
MIN_TAP_SUM_OUT_FEATURES = 16
MAX_PATCH_POSITIONS = 64     # a weight gradient with at most this many kernel positions ...
MAX_PATCH_RATIO = 0.35       # ... and a patch matrix at most this fraction of its other operand: one matmul
                             # (measured: 1->32 channels, ratio 0.28: 1.7 -> 1.3 ms; ratio >= 0.56 was slower)


def enabled() -> bool:
  return os.environ.get('JAXDL_FASTCONV', '1') not in ('0', 'false', 'False', 'no')


# ------------------------------------------------------------------------------------------------ the op
def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding: str | Sequence[tuple[int, int]],
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
                         precision: Any = None, preferred_element_type: Any = None):
  """`lax.conv_general_dilated`, same signature and results; faster on CPU (see the module docstring)."""
  lax_call = functools.partial(lax.conv_general_dilated, lhs, rhs, window_strides, padding, lhs_dilation,
                               rhs_dilation, dimension_numbers, feature_group_count, batch_group_count, precision,
                               preferred_element_type)
  lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
  if (feature_group_count != 1 or batch_group_count != 1 or lhs.ndim != rhs.ndim or lhs.ndim < 3
      or not jnp.issubdtype(lhs.dtype, jnp.floating) or lhs.dtype != rhs.dtype
      or not all(isinstance(d, int) for d in (*lhs.shape, *rhs.shape))):
    return lax_call()
  dnums = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  nsp = lhs.ndim - 2
  lhs_dilation = (1,) * nsp if lhs_dilation is None else tuple(lhs_dilation)
  rhs_dilation = (1,) * nsp if rhs_dilation is None else tuple(rhs_dilation)
  window_strides = tuple(window_strides)
  if isinstance(padding, str):
    if any(d != 1 for d in lhs_dilation):
      return lax_call()  # lax raises its own error for this
    in_sp = np.take(lhs.shape, dnums.lhs_spec)[2:]
    k_sp = np.take(rhs.shape, dnums.rhs_spec)[2:]
    padding = lax.padtype_to_pads(in_sp, [(k - 1) * r + 1 for k, r in zip(k_sp, rhs_dilation)], window_strides,
                                  padding)
  padding = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
  if preferred_element_type is not None:
    preferred_element_type = np.dtype(preferred_element_type)
  if isinstance(precision, list):
    precision = tuple(precision)
  return conv_p.bind(lhs, rhs, window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                     rhs_dilation=rhs_dilation, dimension_numbers=dnums, precision=precision,
                     preferred_element_type=preferred_element_type)


def _lax(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, precision,
         preferred_element_type):
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                  precision=precision, preferred_element_type=preferred_element_type)


conv_p = jcore.Primitive('conv_general_dilated')  # lax's name: jaxpr readers (jaxdl.inspect.flops) count it as a conv


@functools.lru_cache(maxsize=None)
def _jitted_bind(**params):
  return jax.jit(functools.partial(conv_p.bind, **params))


def _impl(lhs, rhs, **params):
  return _jitted_bind(**params)(lhs, rhs)


def _abstract_eval(lhs, rhs, **params):
  out = jax.eval_shape(functools.partial(_lax, **params), jax.ShapeDtypeStruct(lhs.shape, lhs.dtype),
                       jax.ShapeDtypeStruct(rhs.shape, rhs.dtype))
  return jax.core.ShapedArray(out.shape, out.dtype)


conv_p.def_impl(_impl)
conv_p.def_abstract_eval(_abstract_eval)


# ------------------------------------------------------------------------------------ derivatives, vmap
def _spec_swap(spec):
  return (spec[1], spec[0], *spec[2:])


def _dilate(n, d):
  return 0 if n == 0 else (n - 1) * d + 1


def _shape(x):
  return x.aval.shape if hasattr(x, 'aval') else np.shape(x)  # undefined primals (transposes) have .aval


def _transpose_lhs(g, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                   precision, preferred_element_type):
  """Input gradient: the convolution of g with the flipped kernel (lax's rule, with feature groups = 1)."""
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  in_sp = np.take(_shape(lhs), lhs_spec[2:])
  k_sp = np.take(_shape(rhs), rhs_spec[2:])
  out_sp = np.take(g.shape, out_spec[2:])
  pads = []
  for i, (lo, _) in enumerate(padding):
    kd = _dilate(k_sp[i], rhs_dilation[i])
    before = kd - lo - 1
    after = _dilate(in_sp[i], lhs_dilation[i]) + kd - 1 - _dilate(out_sp[i], window_strides[i]) - before
    pads.append((int(before), int(after)))
  trans = lax.ConvDimensionNumbers(out_spec, _spec_swap(rhs_spec), lhs_spec)
  out = conv_p.bind(g, lax.rev(rhs, rhs_spec[2:]).astype(g.dtype), window_strides=lhs_dilation,
                    padding=tuple(pads), lhs_dilation=window_strides, rhs_dilation=rhs_dilation,
                    dimension_numbers=trans, precision=precision, preferred_element_type=preferred_element_type)
  return out.astype(lhs.aval.dtype)


def _transpose_rhs(g, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                   precision, preferred_element_type):
  """Weight gradient: the convolution of the input with g as kernel (lax's rule, with feature groups = 1)."""
  if np.size(g) == 0:
    return ad.Zero(rhs.aval)
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  in_sp = np.take(_shape(lhs), lhs_spec[2:])
  k_sp = np.take(_shape(rhs), rhs_spec[2:])
  out_sp = np.take(g.shape, out_spec[2:])
  pads = []
  for i, (lo, _) in enumerate(padding):
    hi = (_dilate(out_sp[i], window_strides[i]) - _dilate(in_sp[i], lhs_dilation[i])
          + _dilate(k_sp[i], rhs_dilation[i]) - lo - 1)
    pads.append((int(lo), int(hi)))
  trans = lax.ConvDimensionNumbers(_spec_swap(lhs_spec), _spec_swap(out_spec), _spec_swap(rhs_spec))
  out = conv_p.bind(lhs.astype(g.dtype), g, window_strides=rhs_dilation, padding=tuple(pads),
                    lhs_dilation=lhs_dilation, rhs_dilation=window_strides, dimension_numbers=trans,
                    precision=precision, preferred_element_type=preferred_element_type)
  return out.astype(rhs.aval.dtype)


ad.defbilinear(conv_p, _transpose_lhs, _transpose_rhs)


def _batch_rule(args, dims, **params):
  """vmap: a batched input folds into the convolution's batch; anything else is vmapped lax (correct, unrouted)."""
  lhs, rhs = args
  lbd, rbd = dims
  if rbd is None and lbd is not None:  # None: not mapped
    lhs_spec, _, out_spec = params['dimension_numbers']
    b = lhs_spec[0]
    x = jnp.moveaxis(lhs, lbd, b)  # (..., V, N, ...) with V at the batch position, N right after it
    x = x.reshape(x.shape[:b] + (x.shape[b] * x.shape[b + 1],) + x.shape[b + 2:])
    y = conv_p.bind(x, rhs, **params)
    ob = out_spec[0]
    y = y.reshape(y.shape[:ob] + (lhs.shape[lbd], -1) + y.shape[ob + 1:])
    return y, ob
  f = functools.partial(_lax, **params)
  return jax.vmap(f, in_axes=(lbd, rbd))(lhs, rhs), 0


batching.primitive_batchers[conv_p] = _batch_rule


# --------------------------------------------------------------------------------------------- lowering
def _swaps(in_sp, k_sp, pads, strides, rhs_dilation) -> bool:
  """Whether XLA's ConvOperandSwapper would exchange input and kernel (xla/hlo/transforms/simplifiers/
  conv_operand_swapper.cc): it does when the kernel's window is larger than the input's, and the swapped
  convolution has a layout XLA:CPU runs very slowly."""
  kp = skp = 1
  for i, k, (lo, hi), s, r in zip(in_sp, k_sp, pads, strides, rhs_dilation):
    if k == i and lo == hi == 0 and s == 1 and r == 1:
      continue  # a pure contraction dimension
    kp *= k
    skp *= k if (i == 1 and s == 1 and r == 1 and lo == hi == k - 1) else i
  return kp > skp


def plan(in_sp, k_sp, pads, strides, rhs_dilation, in_features, out_features):
  """How to keep an NHWC convolution (no input dilation) off YNNPACK, or None (nothing to do, or too costly).

  Returns (kind, dim, extra, pad_other): kind 'out' gives the output `extra` more rows on spatial dim `dim` (sliced
  off afterwards); 'kernel' appends `extra` zero rows to the kernel, and with pad_other the input's padding on the
  other spatial dim is applied explicitly (so that XLA does not swap input and kernel). Mirrors XLA's rule: YNNPACK
  takes a 2-D conv unless max(features) <= 16, or an output or kernel dimension exceeds the input's.
  """
  if len(in_sp) != 2 or max(in_features, out_features) <= YNN_MAX_SMALL_FEATURES:
    return None
  out_sp = [(i + lo + hi - _dilate(k, r)) // s + 1
            for i, k, (lo, hi), s, r in zip(in_sp, k_sp, pads, strides, rhs_dilation)]
  if any(o > i for o, i in zip(out_sp, in_sp)) or any(k > i for k, i in zip(k_sp, in_sp)):
    return None  # not YNNPACK's
  if list(out_sp) == list(in_sp) or in_features < MIN_ROUTED_IN_FEATURES:
    return None  # YNNPACK is the faster one for 'SAME'-sized outputs and for 1-4 input channels
  best = None
  for d in range(2):
    o = 1 - d
    extra = in_sp[d] + 1 - out_sp[d]
    p = [list(x) for x in pads]
    p[d][1] += extra * strides[d]
    if not _swaps(in_sp, k_sp, p, strides, rhs_dilation):
      cand = (extra / out_sp[d], 'out', d, extra, False)
      best = min(best, cand) if best else cand
    extra = in_sp[d] + 1 - k_sp[d]
    k2 = list(k_sp)
    k2[d] += extra
    p = [list(x) for x in pads]
    p[d][1] += extra * rhs_dilation[d]
    for pad_other in (False, True):
      i2 = list(in_sp)
      if pad_other:
        i2[o] += p[o][0] + p[o][1]
        p[o] = [0, 0]
      if not _swaps(i2, k2, p, strides, rhs_dilation):
        cand = (extra / k_sp[d] + 0.01 * pad_other, 'kernel', d, extra, pad_other)
        best = min(best, cand) if best else cand
        break
  if best is None or best[0] > MAX_EXTRA_WORK:
    return None
  return best[1:]


def _nhwc_conv(x, w, strides, padding, rhs_dilation, precision, preferred_element_type):
  """NHWC x HWIO convolution (no input dilation), routed to XLA's Eigen kernel when YNNPACK would take it."""
  how = plan(x.shape[1:3], w.shape[:2], padding, strides, rhs_dilation, x.shape[3], w.shape[3])
  pads = [list(p) for p in padding]
  out_rows = None
  if how is not None:
    kind, d, extra, pad_other = how
    if kind == 'out':
      out_rows = (x.shape[1 + d] + pads[d][0] + pads[d][1] - _dilate(w.shape[d], rhs_dilation[d])) // strides[d] + 1
      pads[d][1] += extra * strides[d]
    else:
      w = jnp.pad(w, [(0, extra if a == d else 0) for a in range(4)])
      pads[d][1] += extra * rhs_dilation[d]
      if pad_other:
        o = 1 - d
        cfg = [(0, 0, 0)] * 4
        cfg[1 + o] = (pads[o][0], pads[o][1], 0)
        # The barrier keeps XLA from folding the padding back into the convolution (and then swapping operands).
        x = lax.optimization_barrier(lax.pad(x, jnp.zeros((), x.dtype), cfg))
        pads[o] = [0, 0]
  y = lax.conv_general_dilated(x, w, strides, [tuple(p) for p in pads], None, rhs_dilation,
                               ('NHWC', 'HWIO', 'NHWC'), precision=precision,
                               preferred_element_type=preferred_element_type)
  if out_rows is not None:
    y = lax.slice_in_dim(y, 0, out_rows, axis=1 + how[1])
  return y


def _out_spatial(in_sp, k_sp, pads, strides, rhs_dilation):
  return [(i + lo + hi - _dilate(k, r)) // s + 1 for i, k, (lo, hi), s, r in zip(in_sp, k_sp, pads, strides, rhs_dilation)]


def _window_slice(x, axes, starts, sizes, steps):
  """x sliced on `axes`: `sizes[d]` elements from `starts[d]`, every `steps[d]`-th."""
  start, limit, stride = [0] * x.ndim, list(x.shape), [1] * x.ndim
  for a, b, n, s in zip(axes, starts, sizes, steps):
    start[a], limit[a], stride[a] = b, b + (n - 1) * s + 1, s
  return lax.slice(x, start, limit, stride)


def _pad_spatial(x, axes, padding):
  if all(lo == hi == 0 for lo, hi in padding):
    return x
  cfg = [(0, 0, 0)] * x.ndim
  for a, (lo, hi) in zip(axes, padding):
    cfg[a] = (lo, hi, 0)
  return lax.pad(x, jnp.zeros((), x.dtype), cfg)  # negative padding crops, as in the convolution


def patch_dot_size(lhs_shape, rhs_shape, dimension_numbers, window_strides, padding, rhs_dilation):
  """Elements of the patch matrix `_patch_dot` would build (positions x one window of the input), or None when
  the output has too many positions for it (it is meant for weight gradients, whose output is the kernel)."""
  lhs_spec, rhs_spec, _ = dimension_numbers
  in_sp = [lhs_shape[a] for a in lhs_spec[2:]]
  k_sp = [rhs_shape[a] for a in rhs_spec[2:]]
  out_sp = _out_spatial(in_sp, k_sp, padding, window_strides, rhs_dilation)
  if math.prod(out_sp) > MAX_PATCH_POSITIONS:
    return None
  return math.prod(out_sp) * lhs_shape[lhs_spec[0]] * lhs_shape[lhs_spec[1]] * math.prod(k_sp)


def _patch_dot(lhs, rhs, *, window_strides, padding, rhs_dilation, dimension_numbers, precision,
               preferred_element_type):
  """A convolution with few output positions (a weight gradient) as ONE matrix product, in the operands' own
  layouts: the input windows at the output positions are stacked (the patch matrix) and contracted with the
  "kernel" over features and window positions. No transposes of the (large) kernel operand, unlike a convolution
  kernel, which XLA:CPU wants in HWIO order."""
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  x = _pad_spatial(lhs, lhs_spec[2:], padding)
  k_sp = [rhs.shape[a] for a in rhs_spec[2:]]
  out_sp = _out_spatial([lhs.shape[a] for a in lhs_spec[2:]], k_sp, padding, window_strides, rhs_dilation)
  windows = [_window_slice(x, lhs_spec[2:], [p * s for p, s in zip(pos, window_strides)], k_sp, rhs_dilation)
             for pos in np.ndindex(*out_sp)]
  patches = jnp.stack(windows)  # (positions, *lhs axes with the window's sizes)
  contract = ((1 + lhs_spec[1], *(1 + a for a in lhs_spec[2:])), (rhs_spec[1], *rhs_spec[2:]))
  y = lax.dot_general(patches, rhs, (contract, ((), ())), precision=precision,
                      preferred_element_type=preferred_element_type)  # (positions, batch, out features)
  y = y.reshape(*out_sp, y.shape[1], y.shape[2])
  nsp = len(out_sp)
  src = [0] * y.ndim  # y is (*spatial, N, O); out_spec says where each goes
  for axis_of_y, out_axis in zip((nsp, nsp + 1, *range(nsp)), out_spec):
    src[out_axis] = axis_of_y
  return y.transpose(src)


def tap_sum_applies(in_features, k_sp, out_features) -> bool:
  # With fewer than 16 output channels the fused loop does not vectorise: an activation fused after it ran 5x
  # slower than on its own (LeNet's 1->6 5x5 + tanh: 3.1 ms vs YNNPACK's 3.2), so those stay convolutions.
  return in_features * math.prod(k_sp) <= MAX_TAPS and out_features >= MIN_TAP_SUM_OUT_FEATURES


def _tap_sum(x, w, strides, padding, rhs_dilation, preferred_element_type):
  """NHWC x HWIO convolution with few input taps (e.g. the first layer on 1-3 channel images) as a sum of
  kh*kw*C shifted input planes times kernel rows: one fused elementwise loop, no matrix kernel at all."""
  dtype = preferred_element_type or x.dtype
  x, w = x.astype(dtype), w.astype(dtype)
  x = _pad_spatial(x, (1, 2), padding)
  out_sp = _out_spatial(x.shape[1:3], w.shape[:2], ((0, 0), (0, 0)), strides, rhs_dilation)
  y = None
  for i, j, c in np.ndindex(*w.shape[:3]):
    plane = _window_slice(x[..., c:c + 1], (1, 2), (i * rhs_dilation[0], j * rhs_dilation[1]), out_sp, strides)
    term = plane * w[i, j, c]
    y = term if y is None else y + term
  return y


def _cpu_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, precision,
              preferred_element_type):
  params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers, precision=precision,
                preferred_element_type=preferred_element_type)
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  if (not enabled() or len(lhs_spec) != 4 or any(d != 1 for d in lhs_dilation)
      or lhs.dtype not in (jnp.float32, jnp.float64)):
    return _lax(lhs, rhs, **params)
  if any(p < 0 for pair in padding for p in pair):
    # XLA:CPU's convolution reads out of bounds with negative padding (jaxlib 0.10: garbage values); crop instead
    lhs = _pad_spatial(lhs, lhs_spec[2:], [(min(lo, 0), min(hi, 0)) for lo, hi in padding])
    padding = tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)
  size = patch_dot_size(lhs.shape, rhs.shape, dimension_numbers, window_strides, padding, rhs_dilation)
  if size is not None and size <= MAX_PATCH_RATIO * rhs.size:
    return _patch_dot(lhs, rhs, window_strides=window_strides, padding=padding, rhs_dilation=rhs_dilation,
                      dimension_numbers=dimension_numbers, precision=precision,
                      preferred_element_type=preferred_element_type)
  x = lhs.transpose(lhs_spec[0], lhs_spec[2], lhs_spec[3], lhs_spec[1])   # NHWC
  w = rhs.transpose(rhs_spec[2], rhs_spec[3], rhs_spec[1], rhs_spec[0])   # HWIO
  if tap_sum_applies(x.shape[3], w.shape[:2], w.shape[3]):
    y = _tap_sum(x, w, window_strides, padding, rhs_dilation, preferred_element_type)
  else:
    y = _nhwc_conv(x, w, window_strides, padding, rhs_dilation, precision, preferred_element_type)
  src = [0] * 4  # y is (N, H, W, O); out_spec says where each goes
  for axis_of_y, out_axis in zip((0, 3, 1, 2), out_spec):
    src[out_axis] = axis_of_y
  return y.transpose(src)


mlir.register_lowering(conv_p, mlir.lower_fun(_lax, multiple_results=False))
mlir.register_lowering(conv_p, mlir.lower_fun(_cpu_impl, multiple_results=False), platform='cpu')
