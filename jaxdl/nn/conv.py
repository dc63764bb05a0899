"""CNN primitives as pure functions (NHWC activations, HWIO kernels, like flax), and three small flax layers.

What the notes call a "convolution" is a cross-correlation: the kernel is *not* flipped. Course 3 (seed 002)
slides u over x, h[i, j] = Σ_ab x[i + a, j + b] u[a, b], which is how [[4,6,3],[8,5,1],[2,4,6]] ⊛ [[3,2],[5,1]]
gives [[69,50],[48,43]] (the flipped kernel, a true convolution, gives 65 at the top left). This is also what
`lax.conv_general_dilated`, flax's `nn.Conv` and torch's `F.conv2d` compute. Seed 000's 1-D picture writes the
same banded matrix as a true convolution with the reversed kernel k = [c, b, a]; `flip_kernel` converts.

With stride s, padding (p_lo, p_hi) and dilation d, output i of a spatial axis reads the inputs
i·s − p_lo + a·d, a = 0 … k−1, so the output size is ⌊(W + p_lo + p_hi − d(k−1) − 1)/s⌋ + 1.

Contents: sizes and padding (`conv_output_size`, `same_padding`, `padding_pairs`); receptive fields
(`receptive_field`, measured by `gradient_support`); convolution as an explicit doubly-block Toeplitz matrix
(block *circulant* with circular padding: `conv_matrix`, `conv_as_matmul`) and through XLA (`conv2d`); dilation
(`dilate_kernel`); transposed convolution, the adjoint of `conv2d` (`conv_transpose`, `zero_insert`); depthwise,
pointwise and separable convolutions; max, average, L2 and global pooling; nearest / bilinear upsampling;
parameter counts; and the flax layers `Conv` (every zoo convolution), `LocallyConnected2D`, `SpatialDropout`.
Pooling is `jaxdl.nn.pooling`.

`Conv` IS flax's `nn.Conv` (same fields, same parameters: 'kernel' HWIO and 'bias', same auto-name `Conv_0`, so
parameter counts and checkpoints are nn.Conv's); only its lowering differs: it convolves with
`jaxdl.nn.fastconv.conv_general_dilated`, which equals `lax.conv_general_dilated` to float rounding and runs 2-4x
faster on XLA:CPU for the convolutions (and weight gradients) that XLA hands to a slow kernel (see fastconv.py).
On GPU/TPU it is lax's convolution. `JAXDL_FASTCONV=0` in the environment gives the plain lowering.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl.nn import fastconv

DIMS = ('NHWC', 'HWIO', 'NHWC')
Padding = Union[str, int, Sequence[int], Sequence[tuple[int, int]]]


def _pair(v, n: int = 2) -> tuple:
  return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


# ------------------------------------------------------------------------------------------------- sizes

def effective_kernel_size(kernel: int, dilation: int = 1) -> int:
  """A kernel of k taps with dilation d spans d(k − 1) + 1 inputs."""
  return dilation * (kernel - 1) + 1


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0,
                     dilation: int = 1) -> int:
  """⌊(W + 2p − d(k − 1) − 1)/s⌋ + 1 (seed 002); an asymmetric (p_lo, p_hi) replaces 2p by p_lo + p_hi."""
  lo, hi = (padding, padding) if isinstance(padding, int) else padding
  return (size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
  """'SAME' (XLA/TensorFlow convention): output ⌈W/s⌉, total padding split with the extra one at the end.

  For stride 1 and odd k this is the notes' P = (F − 1)/2 on both sides.
  """
  out = -(-size // stride)
  total = max((out - 1) * stride + effective_kernel_size(kernel, dilation) - size, 0)
  return total // 2, total - total // 2


def padding_pairs(padding: Padding, in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int] | int = 1,
                  dilation: Sequence[int] | int = 1) -> list[tuple[int, int]]:
  """'SAME' | 'VALID' | p | (p_h, p_w) | ((lo, hi), (lo, hi)) -> [(lo, hi)] per spatial axis."""
  n = len(in_hw)
  stride, dilation = _pair(stride, n), _pair(dilation, n)
  if isinstance(padding, str):
    if padding.upper() == 'VALID':
      return [(0, 0)] * n
    if padding.upper() == 'SAME':
      return [same_padding(w, k, s, d) for w, k, s, d in zip(in_hw, kernel, stride, dilation)]
    raise ValueError(f"padding {padding!r}: expected 'SAME', 'VALID', an int or (lo, hi) pairs")
  if isinstance(padding, int):
    return [(padding, padding)] * n
  return [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding]


def output_shape(in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int] | int = 1,
                 padding: Padding = 'VALID', dilation: Sequence[int] | int = 1) -> tuple[int, ...]:
  """Spatial output shape of a convolution or pooling window."""
  n = len(in_hw)
  stride, dilation = _pair(stride, n), _pair(dilation, n)
  pads = padding_pairs(padding, in_hw, kernel, stride, dilation)
  return tuple(conv_output_size(w, k, s, p, d) for w, k, s, p, d in zip(in_hw, kernel, stride, pads, dilation))


# ---------------------------------------------------------------------------------------- receptive field

@dataclasses.dataclass(frozen=True)
class RFLayer:
  """One layer of a chain, for receptive-field arithmetic (one spatial axis)."""
  kernel: int
  stride: int = 1
  dilation: int = 1
  padding: int = 0          # padding before the first input (p_lo); only moves `start`
  name: str = ''


def receptive_field(layers: Sequence[RFLayer | tuple | dict]) -> list[dict[str, Any]]:
  """Receptive field size r, jump j and centre of the first unit, after each layer of a chain.

  r_k = r_{k−1} + (k_eff − 1)·j_{k−1} with j_{k−1} = ∏_{i<k} s_i (seed 004: r_k = r_{k−1} + (∏ s_i)(f_k − 1)),
  j_k = j_{k−1}·s_k, start_k = start_{k−1} + ((k_eff − 1)/2 − p_k)·j_{k−1}, in input pixels (0 = centre of pixel 0),
  k_eff = d(f − 1) + 1. Row 0 is the input itself: r = 1, j = 1, start = 0.
  """
  r, j, start = 1, 1, 0.0
  rows = [{'name': 'input', 'r': r, 'jump': j, 'start': start}]
  for i, layer in enumerate(layers):
    if isinstance(layer, dict):
      layer = RFLayer(**layer)
    elif not isinstance(layer, RFLayer):
      layer = RFLayer(*layer)
    k = effective_kernel_size(layer.kernel, layer.dilation)
    r, start, j = r + (k - 1) * j, start + ((k - 1) / 2 - layer.padding) * j, j * layer.stride
    rows.append({'name': layer.name or f'layer {i + 1}', 'r': r, 'jump': j, 'start': start})
  return rows


def gradient_support(f: Callable[[jnp.ndarray], jnp.ndarray], in_shape: Sequence[int],
                     unit: Sequence[int]) -> list[tuple[int, int]]:
  """The measured receptive field: [(first, last)] input index per spatial axis reached by ∂f(x)[unit]/∂x.

  f maps (1, H, W, C) to (1, H', W', C'); `unit` indexes its output without the batch axis. With non-negative
  weights nothing cancels, so the support is the geometric receptive field (clipped by the image border).
  """
  g = jax.grad(lambda x: f(x)[(0, *unit)])(jnp.zeros((1, *in_shape), jnp.float32))
  mag = np.abs(np.asarray(g))[0]
  out = []
  for axis in range(mag.ndim - 1):
    idx = np.nonzero(mag.sum(axis=tuple(a for a in range(mag.ndim) if a != axis)) > 0)[0]
    out.append((int(idx.min()), int(idx.max())) if idx.size else (-1, -1))
  return out


# ------------------------------------------------------------------------------- convolution (cross-corr.)

def flip_kernel(w: jnp.ndarray) -> jnp.ndarray:
  """Rotates the spatial axes by 180°: cross-correlation with flip_kernel(w) is the true convolution with w."""
  return w[::-1, ::-1]


def _hwio(w):
  w = jnp.asarray(w)
  return w[:, :, None, None] if w.ndim == 2 else w


def _nhwc(x):
  x = jnp.asarray(x)
  return x[None, :, :, None] if x.ndim == 2 else x


def conv2d(x: jnp.ndarray, w: jnp.ndarray, stride: int | Sequence[int] = 1, padding: Padding = 'VALID',
           dilation: int | Sequence[int] = 1, groups: int = 1, padding_mode: str = 'zeros') -> jnp.ndarray:
  """y[n, i, j, o] = Σ_{a,b,c} x[n, i·s − p + a·d, j·s − p + b·d, c] w[a, b, c, o] (zero outside, or wrapped).

  x (N, H, W, C) or a 2-D (H, W) image; w (kh, kw, C/groups, O) or a 2-D (kh, kw) kernel (then a 2-D result).
  `padding_mode='circular'` wraps the image around (periodic boundary) instead of padding with zeros.
  """
  two_d = jnp.ndim(x) == 2
  x, w = _nhwc(x), _hwio(w)
  stride, dilation = _pair(stride), _pair(dilation)
  pads = padding_pairs(padding, x.shape[1:3], w.shape[:2], stride, dilation)
  if padding_mode == 'circular':
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode='wrap')
    pads = [(0, 0), (0, 0)]
  elif padding_mode != 'zeros':
    raise ValueError(f"padding_mode {padding_mode!r}: expected 'zeros' or 'circular'")
  y = lax.conv_general_dilated(x, w.astype(x.dtype), stride, pads, rhs_dilation=dilation, dimension_numbers=DIMS,
                               feature_group_count=groups)
  return y[0, :, :, 0] if two_d else y


def conv_matrix_indices(in_hw: Sequence[int], kernel_shape: Sequence[int], stride=1, padding: Padding = 'VALID',
                        dilation=1, padding_mode: str = 'zeros') -> tuple[np.ndarray, ...]:
  """(rows, cols, kernel index) of the non-zeros of the convolution matrix (static NumPy index arithmetic).

  vec() is row-major over (H, W, C): row (i·Wo + j)·O + o, column (h·W + w)·C + c, kernel entry
  ((a·kw + b)·C + c)·O + o, with h = i·s − p_lo + a·d (likewise w): a doubly-block Toeplitz pattern
  (doubly-block circulant when h, w wrap around).
  """
  (hh, ww), (kh, kw, cin, cout) = in_hw, kernel_shape
  stride, dilation = _pair(stride), _pair(dilation)
  pads = padding_pairs(padding, (hh, ww), (kh, kw), stride, dilation)
  ho, wo = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip((hh, ww), (kh, kw), stride, pads, dilation))
  i, j, a, b, c, o = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw), np.arange(cin),
                                 np.arange(cout), indexing='ij')
  h = i * stride[0] - pads[0][0] + a * dilation[0]
  v = j * stride[1] - pads[1][0] + b * dilation[1]
  if padding_mode == 'circular':
    h, v, keep = h % hh, v % ww, np.ones(h.shape, bool)
  else:
    keep = (h >= 0) & (h < hh) & (v >= 0) & (v < ww)     # zero padding: taps on the frame vanish
  rows = ((i * wo + j) * cout + o)[keep]
  cols = ((h * ww + v) * cin + c)[keep]
  kidx = (((a * kw + b) * cin + c) * cout + o)[keep]
  return rows, cols, kidx, (ho, wo)


def conv_matrix(w: jnp.ndarray, in_hw: Sequence[int], stride=1, padding: Padding = 'VALID', dilation=1,
                padding_mode: str = 'zeros') -> jnp.ndarray:
  """The explicit (Ho·Wo·O, H·W·C) matrix U with vec(conv2d(x, w)) = U vec(x) (seed 002's U for a 2-D kernel).

  Built by scatter-adding the kernel entries at `conv_matrix_indices`, so it is differentiable in w. Each kernel
  entry appears once per output position: weight sharing; all other entries are 0: sparse connectivity.
  """
  w = _hwio(w)
  rows, cols, kidx, (ho, wo) = conv_matrix_indices(in_hw, w.shape, stride, padding, dilation, padding_mode)
  m = jnp.zeros((ho * wo * w.shape[3], in_hw[0] * in_hw[1] * w.shape[2]), w.dtype)
  return m.at[rows, cols].add(w.reshape(-1)[kidx])


def conv_as_matmul(x: jnp.ndarray, w: jnp.ndarray, stride=1, padding: Padding = 'VALID', dilation=1,
                   padding_mode: str = 'zeros') -> jnp.ndarray:
  """conv2d computed as U vec(x) with the explicit matrix: a fully connected layer with tied, sparse weights."""
  two_d = jnp.ndim(x) == 2
  x, w = _nhwc(x), _hwio(w)
  u = conv_matrix(w, x.shape[1:3], stride, padding, dilation, padding_mode)
  ho, wo = output_shape(x.shape[1:3], w.shape[:2], stride, padding, dilation)
  y = (x.reshape(x.shape[0], -1) @ u.T).reshape(x.shape[0], ho, wo, w.shape[3])
  return y[0, :, :, 0] if two_d else y


def dilate_kernel(w: jnp.ndarray, dilation: int | Sequence[int]) -> jnp.ndarray:
  """À trous: d − 1 rows and columns of zeros between the taps (same weights, span d(k − 1) + 1)."""
  w = jnp.asarray(w)
  dh, dw = _pair(dilation)
  kh, kw = w.shape[:2]
  out = jnp.zeros((dh * (kh - 1) + 1, dw * (kw - 1) + 1, *w.shape[2:]), w.dtype)
  return out.at[::dh, ::dw].set(w)


# ------------------------------------------------------------------------------------ transposed convolution

def zero_insert(y: jnp.ndarray, stride: int | Sequence[int]) -> jnp.ndarray:
  """Spreads the pixels s apart, filling with zeros ("unpooling" in seed 004): (N, H, W, C) -> (N, (H−1)s+1, …)."""
  sh, sw = _pair(stride)
  n, h, w, c = y.shape
  return jnp.zeros((n, (h - 1) * sh + 1, (w - 1) * sw + 1, c), y.dtype).at[:, ::sh, ::sw].set(y)


def conv_transpose(y: jnp.ndarray, w: jnp.ndarray, stride=1, padding: Padding = 'VALID', dilation=1,
                   input_hw: Sequence[int] | None = None) -> jnp.ndarray:
  """The adjoint of `conv2d(·, w, stride, padding, dilation)`: ⟨conv2d(x), y⟩ = ⟨x, conv_transpose(y)⟩.

  In matrix form it is Uᵀ, and it is what backpropagation computes for ∂L/∂x = Uᵀ ∂L/∂y (seed 000). It is a
  stride-1 cross-correlation of the zero-inserted y (`zero_insert`, dilation s) with the kernel rotated by 180°
  and its in/out channels swapped, padded by k_eff − 1 − p_lo before and k_eff − 1 − p_hi + r after, where
  r = (W + p_lo + p_hi − k_eff) mod s are the inputs the forward stride skipped. w is the *forward* kernel
  (kh, kw, C, O); y has O channels, the result C. `input_hw` (the forward input size) resolves the ambiguity
  of strided sizes; by default W = Ho·s for 'SAME' and the smallest size (r = 0) otherwise.
  """
  two_d = jnp.ndim(y) == 2
  y, w = _nhwc(y), _hwio(w)
  stride, dilation = _pair(stride), _pair(dilation)
  keff = [effective_kernel_size(k, d) for k, d in zip(w.shape[:2], dilation)]
  if input_hw is None:
    if isinstance(padding, str) and padding.upper() == 'SAME':
      input_hw = tuple(o * s for o, s in zip(y.shape[1:3], stride))
    else:
      pads0 = padding_pairs(padding, (0, 0), w.shape[:2], stride, dilation)
      input_hw = tuple((o - 1) * s + k - lo - hi for o, s, k, (lo, hi) in zip(y.shape[1:3], stride, keff, pads0))
  pads = padding_pairs(padding, input_hw, w.shape[:2], stride, dilation)
  expect = tuple(conv_output_size(n, k, s, p, d)
                 for n, k, s, p, d in zip(input_hw, w.shape[:2], stride, pads, dilation))
  if expect != tuple(y.shape[1:3]):
    raise ValueError(f'conv_transpose: a {tuple(input_hw)} input gives a {expect} output, not {tuple(y.shape[1:3])}')
  tpads = [(k - 1 - lo, k - 1 - hi + (n + lo + hi - k) % s) for n, k, s, (lo, hi) in zip(input_hw, keff, stride, pads)]
  wt = jnp.swapaxes(flip_kernel(w), 2, 3)
  x = lax.conv_general_dilated(y, wt.astype(y.dtype), (1, 1), tpads, lhs_dilation=stride, rhs_dilation=dilation,
                               dimension_numbers=DIMS)
  return x[0, :, :, 0] if two_d else x


# ------------------------------------------------------------------------ depthwise, pointwise, separable

def depthwise_conv2d(x: jnp.ndarray, w: jnp.ndarray, stride=1, padding: Padding = 'VALID', dilation=1):
  """Each input channel filtered on its own: w (kh, kw, 1, C·m), m filters per channel (groups = C)."""
  return conv2d(x, w, stride, padding, dilation, groups=x.shape[-1])


def pointwise_conv2d(x: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  """1×1 convolution: the same dense map C -> O at every pixel, y[n,i,j,:] = x[n,i,j,:] W. w (C, O) or (1,1,C,O)."""
  w = jnp.asarray(w)
  return jnp.einsum('nhwc,co->nhwo', x, w.reshape(w.shape[-2], w.shape[-1]))


def separable_conv2d(x: jnp.ndarray, w_depthwise: jnp.ndarray, w_pointwise: jnp.ndarray, stride=1,
                     padding: Padding = 'VALID', dilation=1) -> jnp.ndarray:
  """Depthwise separable (MobileNet / Xception): spatial filtering per channel, then a 1×1 channel mix."""
  return pointwise_conv2d(depthwise_conv2d(x, w_depthwise, stride, padding, dilation), w_pointwise)


# ------------------------------------------------------------------------------------------- parameters

def dense_params(n_in: float, n_out: float, bias: bool = True) -> float:
  """n_in·n_out weights (+ n_out biases)."""
  return n_in * n_out + (n_out if bias else 0)


def conv_params(kernel: int | Sequence[int], c_in: float, c_out: float, bias: bool = True, groups: int = 1) -> float:
  """kh·kw·(C_in/groups)·C_out weights (+ C_out biases): independent of the image size (weight sharing).

  Channel counts may be real numbers, for the notes' symbolic counts (√α·n filters).
  """
  kh, kw = _pair(kernel)
  return kh * kw * (c_in / groups if groups > 1 else c_in) * c_out + (c_out if bias else 0)


def stack_params(layers: Sequence[tuple], bias: bool = False) -> float:
  """Σ conv_params over [(kernel, c_in, c_out), ...]."""
  return sum(conv_params(k, ci, co, bias) for k, ci, co in layers)


def factorisation_saving(single: tuple, stack: Sequence[tuple]) -> float:
  """1 − params(stack)/params(single), bias-free: the fraction of weights a factorised stack saves."""
  return 1.0 - stack_params(stack) / stack_params([single])


def locally_connected_params(out_hw: Sequence[int], kernel: int | Sequence[int], c_in: int, c_out: int,
                             bias: bool = True) -> int:
  """Ho·Wo·kh·kw·C_in·C_out weights (+ Ho·Wo·C_out biases): a convolution without weight sharing."""
  kh, kw = _pair(kernel)
  ho, wo = out_hw
  return ho * wo * kh * kw * c_in * c_out + (ho * wo * c_out if bias else 0)


def depthwise_separable_params(kernel: int | Sequence[int], c_in: int, c_out: int, multiplier: int = 1,
                               bias: bool = True) -> int:
  """kh·kw·C_in·m (depthwise) + C_in·m·C_out (pointwise), vs kh·kw·C_in·C_out for a full convolution."""
  kh, kw = _pair(kernel)
  return (kh * kw * c_in * multiplier + (c_in * multiplier if bias else 0)
          + int(dense_params(c_in * multiplier, c_out, bias)))


def layer_param_count(layer: nn.Module, input_shape: Sequence[int], *args, **kwargs) -> int:
  """Number of parameters of a flax layer on a (1, *input_shape) input, via jax.eval_shape (nothing allocated)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  v = jax.eval_shape(lambda r, x: layer.init(r, x, *args, **kwargs), jax.random.PRNGKey(0), x)
  return int(sum(math.prod(l.shape) for l in jax.tree.leaves(v.get('params', {}))))


# -------------------------------------------------------------------------------------------- upsampling

def upsample_nearest(x: jnp.ndarray, factor: int | Sequence[int] = 2) -> jnp.ndarray:
  """Each pixel copied into an f × f block."""
  fh, fw = _pair(factor)
  return jnp.repeat(jnp.repeat(x, fh, axis=1), fw, axis=2)


def bilinear_matrix(n_in: int, n_out: int, align_corners: bool = False) -> np.ndarray:
  """(n_out, n_in) 1-D linear-interpolation weights; each row sums to 1.

  align_corners=False (half-pixel centres): source position (i + ½)·n_in/n_out − ½, clamped to [0, n_in − 1];
  align_corners=True: i·(n_in − 1)/(n_out − 1), so the corner pixels coincide.
  """
  i = np.arange(n_out, dtype=np.float64)
  if align_corners:
    pos = i * (n_in - 1) / max(n_out - 1, 1)
  else:
    pos = np.clip((i + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
  lo = np.floor(pos).astype(int)
  hi = np.minimum(lo + 1, n_in - 1)
  t = pos - lo
  m = np.zeros((n_out, n_in))
  np.add.at(m, (np.arange(n_out), lo), 1 - t)
  np.add.at(m, (np.arange(n_out), hi), t)
  return m


def upsample_bilinear(x: jnp.ndarray, factor: int | Sequence[int] = 2, align_corners: bool = False) -> jnp.ndarray:
  """Separable linear interpolation along H then W: y = A_h x A_wᵀ per channel; no trainable weights."""
  fh, fw = _pair(factor)
  _, h, w, _ = x.shape
  ah = jnp.asarray(bilinear_matrix(h, h * fh, align_corners), x.dtype)
  aw = jnp.asarray(bilinear_matrix(w, w * fw, align_corners), x.dtype)
  return jnp.einsum('ih,nhwc,jw->nijc', ah, x, aw)


# ------------------------------------------------------------------------------------------- flax layers

class Conv(nn.Conv):
  """flax.linen.Conv convolving with jaxdl.nn.fastconv (identical results and parameters, faster on CPU)."""
  conv_general_dilated: Callable[..., Any] | None = fastconv.conv_general_dilated


class LocallyConnected2D(nn.Module):
  """A convolution without weight sharing: each output position (i, j) has its own (kh, kw, C, F) kernel.

  y[n, i, j, f] = Σ_{a,b,c} x[n, i·s − p + a, j·s − p + b, c] W[i, j, a, b, c, f] + b[i, j, f], so
  Ho·Wo·kh·kw·C·F weights (+ Ho·Wo·F biases): `locally_connected_params`. Seed 003: good "when input image is
  registered (e.g., face recognition)".
  """
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Padding = 'VALID'
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kh, kw = _pair(self.kernel_size)
    strides = _pair(self.strides)
    c = x.shape[-1]
    pads = padding_pairs(self.padding, x.shape[1:3], (kh, kw), strides)
    # patches[n, i, j, (c, a, b)]: lax orders the patch features channel-major.
    patches = lax.conv_general_dilated_patches(x, (kh, kw), strides, pads, dimension_numbers=DIMS)
    ho, wo = patches.shape[1:3]
    kernel = self.param('kernel', self.kernel_init, (ho, wo, kh, kw, c, self.features), jnp.float32)
    k = jnp.transpose(kernel, (0, 1, 4, 2, 3, 5)).reshape(ho, wo, c * kh * kw, self.features)
    y = jnp.einsum('nijp,ijpf->nijf', patches, k.astype(x.dtype))
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (ho, wo, self.features), jnp.float32).astype(x.dtype)
    return y


class SpatialDropout(nn.Module):
  """Dropout of whole feature maps (seed 004 §IX.6): one Bernoulli(1 − rate) per (example, channel).

  Inverted scaling: kept maps are multiplied by 1/(1 − rate), so E[y] = x; deterministic: the identity.
  Needs the 'dropout' rng when not deterministic.
  """
  rate: float
  deterministic: bool | None = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, deterministic: bool | None = None) -> jnp.ndarray:
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    if deterministic or self.rate == 0.0:
      return x
    if self.rate == 1.0:
      return jnp.zeros_like(x)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    keep = jax.random.bernoulli(self.make_rng('dropout'), 1.0 - self.rate, shape)
    return jnp.where(keep, x / (1.0 - self.rate), 0.0).astype(x.dtype)

