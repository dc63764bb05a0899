"""Feed-forward layers over time (seed 000 "SPATIALISING THE TIME: TDNN"): the time-delay neural network and the
gated linear unit.

TDNN (Waibel et al. 1989): every output frame sees a fixed window of input frames, the same weights at every time
(a 1-D convolution over time). With context (lo, hi) and dilation d, output frame j (stride s) is

  y[j] = b + Σ_{k=lo..hi} W_k x[j·s + k·d]          (frames outside [0, T) are zero)

e.g. context (−2, 2) is the classic 5-frame window; Kaldi's {−3, 0, 3} is context (−1, 1) with dilation 3.

GLU (Dauphin et al. 2017, eq. 1): h(X) = (X∗W + b) ⊗ σ(X∗V + c), a convolution with 2F output channels whose second
half gates the first; `causal=True` pads (k − 1)·d frames on the left only, so y[t] sees x[≤ t] (language
modelling); otherwise the window is centred.

Both are padding-aware like jaxdl.nn.recurrent's layers: given `lengths` [B] or right `paddings` [B, T] (1.0 = pad)
the input at padded frames is zeroed before the convolution (so a padded batch computes what each sequence computes
alone, whose frames past its end are the convolution's zero padding), outputs at padded frames are exactly zero,
and the paddings are subsampled with the stride: output frame j is valid iff input frame j·s is (the frame its
window is anchored on), so a length L becomes ⌈L/s⌉. Each layer returns (outputs, output paddings or lengths, in
the form given; None if neither was given).
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError

Array = jax.Array


def _padding_in(x: Array, lengths: Array | None, paddings: Array | None) -> tuple[Array | None, str | None]:
  """(B, T) paddings (1.0 = pad) from lengths or paddings, and which form the caller used."""
  if lengths is not None and paddings is not None:
    raise ValueError('give lengths or paddings, not both')
  T = x.shape[1]
  if paddings is not None:
    if paddings.shape != x.shape[:2]:
      raise UserError(f'paddings of shape {paddings.shape}', f'{x.shape[:2]} (batch, time) matching the inputs',
                      'pass one padding flag per frame')
    return paddings.astype(x.dtype), 'paddings'
  if lengths is not None:
    return (jnp.arange(T)[None, :] >= jnp.asarray(lengths)[:, None]).astype(x.dtype), 'lengths'
  return None, None


def _padding_out(pad: Array | None, form: str | None, stride: int):
  if pad is None:
    return None
  pad = pad[:, ::stride]                                   # output j is anchored on input frame j·s
  return pad if form == 'paddings' else jnp.sum(1.0 - pad, axis=1).astype(jnp.int32)


def _check_input(x: Array, name: str):
  if x.ndim != 3:
    raise UserError(f'{name} input of shape {x.shape}', '(batch, time, features)', 'add the missing axis')


class TDNN(nn.Module):
  """Time-delay layer: a 1-D convolution over time with window `context` = (lo, hi) frames, `dilation`, `stride`.

  (B, T, D) -> ((B, ⌈T/s⌉, features), paddings/lengths). activation: applied after the affine map (None: linear).
  """
  features: int
  context: tuple[int, int] = (-2, 2)
  dilation: int = 1
  stride: int = 1
  use_bias: bool = True
  activation: Callable[[Array], Array] | None = None
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array, lengths: Array | None = None, *, paddings: Array | None = None):
    _check_input(x, 'TDNN')
    lo, hi = self.context
    if not lo <= 0 <= hi:
      raise UserError(f'TDNN context {self.context}', '(lo, hi) with lo <= 0 <= hi (frames before/after t)',
                      'use e.g. (-2, 2)')
    if self.dilation < 1 or self.stride < 1:
      raise UserError(f'dilation={self.dilation}, stride={self.stride}', 'positive integers', 'fix the TDNN')
    pad, form = _padding_in(x, lengths, paddings)
    if pad is not None:
      x = x * (1.0 - pad)[..., None]                       # padded frames read as the zeros past the end
    y = nn.Conv(self.features, kernel_size=(hi - lo + 1,), strides=(self.stride,), kernel_dilation=(self.dilation,),
                padding=[(-lo * self.dilation, hi * self.dilation)], use_bias=self.use_bias,
                kernel_init=self.kernel_init, name='conv')(x)
    if self.activation is not None:
      y = self.activation(y)
    out = _padding_out(pad, form, self.stride)
    if pad is not None:
      y = y * (1.0 - pad[:, ::self.stride])[..., None]
    return y, out


class GLU(nn.Module):
  """Gated convolution (Dauphin et al. 2017): (X∗W + b) ⊗ σ(X∗V + c), F = `features` output channels.

  One convolution 'conv' with 2F channels: the first F are X∗W + b, the last F the gate's X∗V + c. causal: y[t]
  depends on x[t − (k−1)·d .. t] only. (B, T, D) -> ((B, T, F), paddings/lengths).
  """
  features: int
  kernel_size: int = 3
  dilation: int = 1
  causal: bool = False
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array, lengths: Array | None = None, *, paddings: Array | None = None):
    _check_input(x, 'GLU')
    if self.kernel_size < 1 or self.dilation < 1:
      raise UserError(f'kernel_size={self.kernel_size}, dilation={self.dilation}', 'positive integers', 'fix the GLU')
    pad, form = _padding_in(x, lengths, paddings)
    if pad is not None:
      x = x * (1.0 - pad)[..., None]
    span = (self.kernel_size - 1) * self.dilation
    left = span if self.causal else span // 2
    h = nn.Conv(2 * self.features, kernel_size=(self.kernel_size,), kernel_dilation=(self.dilation,),
                padding=[(left, span - left)], kernel_init=self.kernel_init, name='conv')(x)
    a, b = jnp.split(h, 2, axis=-1)
    y = a * jax.nn.sigmoid(b)                              # the gate σ(X∗V + c) scales X∗W + b
    if pad is not None:
      y = y * (1.0 - pad)[..., None]
    return y, _padding_out(pad, form, 1)
