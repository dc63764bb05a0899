"""Recurrent networks (seed 000 "DEALING WITH SEQUENTIAL DATA", seed 004 §XI): cells, padding-aware layers, ESN.

Cells, as the notes write them (x: input, h: hidden state, y: output, σ: sigmoid, ⊙: element-wise product):

  RNNCell      h(t) = f(W_in x(t) + W_h h(t−1) + W_back y(t−1) + b_h),  y(t) = g(W_out h(t) + b_y)
  ElmanCell    W_back = 0 (Elman 1990), the output is h (put a Dense on top for W_out); torch.nn.RNN-compatible
  JordanCell   W_h = 0: the output y(t−1) is fed back through W_back (Jordan 1986)
  LSTMCell     i, f, o = σ(W^x x + W^h h + b), n = tanh(W_n^x x + W_n^h h + b_n), c = f⊙c + i⊙n, h = o⊙tanh(c)
               (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000; peepholes: Gers & Schmidhuber 2000)
  GRUCell      r, z = σ(...), n = tanh(W_n^x x + b_nx + r⊙(W_n^h h + b_nh)), h = z⊙h + (1 − z)⊙n  (Cho et al. 2014)

Parameters are stored as PyTorch stores them, transposed: `kernel_ih` (D, G·H) = weight_ih.T, `kernel_hh`
(H, G·H) = weight_hh.T, `bias_ih`, `bias_hh` (the two redundant biases "for cuDNN compatibility"; `two_bias=False`
keeps one), gate blocks in torch's order (LSTM i, f, n(=g), o; GRU r, z, n), so `params_from_torch` copies an
nn.LSTM / nn.GRU / nn.RNN layer one-to-one and parameter counts equal PyTorch's. Initialisation defaults to
PyTorch's U(−1/√H, 1/√H) for every weight and bias (as the notes say); `recurrent_init='orthogonal'` (Henaff et
al. 2016) or 'identity' (IRNN, Le et al. 2015) per gate block; `forget_bias` = the "learning to forget" regime.

Options (train-time noise needs the 'dropout' rng; at evaluation every option is deterministic):
  layer_norm          Ba et al. 2016 (LN of W^x x and of W^h h, and of c before its tanh in the LSTM)
  zoneout             Krueger et al. 2017: each unit keeps its previous value with probability z; eval: the
                      expectation z·old + (1 − z)·new
  input_dropout,      variational dropout (Gal & Ghahramani 2016): ONE mask per sequence on x and on the h that
  recurrent_dropout   multiplies W_h
  clip / cell_clip    activation clipping (Hannun et al. 2014's clipped ReLU min(max(x, 0), 20)) / LSTM cell clipping
  learn_initial_state h(0) (and c(0)) learned (the notes: "you could learn these initial hidden states")

Layers run a cell over a (B, T, D) batch and return (outputs (B, T, F), final_carry). They are padding-aware:
given `lengths` [B] (or right-padded `paddings` [B, T], 1.0 = pad) the outputs at padded steps are exactly zero,
the carry stops at the last valid step, and a backward direction reads only the valid part of each sequence (a
reversed scan in which the padded tail leaves the carry unchanged), so each sequence of a batch gives exactly what
it gives alone. `RNN`, `Bidirectional` (concat or sum), `StackedRNN` (num_layers, dropout between layers) and
`Pyramidal` (Listen-Attend-Spell: consecutive pairs of states concatenated, halving time; Chan et al. 2016).

Speed (XLA:CPU, measured by /work/notes/rnn_bench.py): the input projection of ALL time steps is one matmul before
the scan and the gates are fused into one (G·H)-wide matmul per step. The plain LSTM and GRU run hand-derived
kernels (`lstm_recurrence`, `gru_recurrence`): the forward saves the few products the backward needs, the backward
scan propagates the states only, and the weight gradients are single (T·B)-deep matmuls afterwards (as cuDNN
does); σ is computed through tanh and the LSTM's four gates through ONE tanh. Other cells run `recurrence` (a
generic custom VJP: the same structure with jax.vjp of the step), LSTM/GRU with options run lax.scan + autodiff
(XLA compiles their generic backward no faster). `fused=False` forces lax.scan + autodiff everywhere (the
reference the tests compare with). The R1 char-RNN train step runs at ~1.0x PyTorch's speed on 2 cores (a flax
nn.RNN(nn.LSTMCell) one at ~0.75x), the GRU model at ~2x; in-cell LN or peepholes make a step 1.5-3x slower.

`EchoStateNetwork` (Jaeger 2001; leaky integrator: Jaeger et al. 2007): a fixed random reservoir rescaled to a
spectral radius, in the 'reservoir' collection (not 'params': an optimiser never sees it), read out in closed form
by ridge regression (`fit_readout`) or by a trained Dense.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import UserError

Array = jax.Array
Carry = Any
Initializer = Callable[..., Array]

RECURRENT_INITS = ('default', 'orthogonal', 'identity')
PLAIN_UNROLL = 2          # time steps per loop iteration of the hand-derived LSTM/GRU kernels (rnn_bench.py)


# ------------------------------------------------------------------------------------------------ initialisers
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    'tanh': jnp.tanh, 'relu': jax.nn.relu, 'sigmoid': lambda x: sigmoid(x), 'linear': lambda x: x}


def torch_uniform(features: int) -> Initializer:
  """U(−1/√H, 1/√H), H = hidden size: PyTorch's init of every RNN/LSTM/GRU weight and bias (the notes)."""
  a = 1.0 / math.sqrt(features)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -a, a)
  return init


def _activation(name: str) -> Callable[[Array], Array]:
  if name not in ACTIVATIONS:
    raise UserError(f'unknown recurrent activation {name!r}', f'one of {sorted(ACTIVATIONS)}',
                    'fix the cell\'s activation')
  return ACTIVATIONS[name]


def recurrent_kernel_init(kind: str, features: int, gates: int, gain: float = 1.0) -> Initializer:
  """Init of an (H, gates·H) recurrent kernel, gate block by gate block.

  'default': PyTorch's U(±1/√H); 'orthogonal': each H×H block a random orthogonal matrix × gain (Henaff et al.
  2016: ‖W h‖ = ‖h‖); 'identity': each block gain·I (IRNN, Le et al. 2015).
  """
  if kind not in RECURRENT_INITS:
    raise UserError(f'unknown recurrent_init {kind!r}', f'one of {RECURRENT_INITS}', 'fix the cell\'s recurrent_init')

  def init(key, shape, dtype=jnp.float32):
    rows, cols = shape
    if cols != gates * features or rows != features:
      raise ValueError(f'recurrent kernel shape {shape} is not ({features}, {gates}·{features})')
    if kind == 'default':
      return torch_uniform(features)(key, shape, dtype)
    if kind == 'identity':
      return jnp.tile(gain * jnp.eye(features, dtype=dtype), (1, gates))
    keys = jax.random.split(key, gates)
    ortho = jax.nn.initializers.orthogonal(scale=gain)
    return jnp.concatenate([ortho(k, (features, features), dtype) for k in keys], axis=1)
  return init


def sigmoid(x: Array) -> Array:
  """σ(x) = (1 + tanh(x/2))/2, exactly the logistic function; XLA:CPU runs it ~2x faster than its `logistic` op
  inside a scan's loop body (LSTM forward over 60 steps: 2.7 -> 1.2 ms, /work/notes/rnn_bench.py)."""
  return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _layer_norm(x: Array, scale: Array, bias: Array | None = None, eps: float = 1e-5) -> Array:
  """LN over the last axis, statistics per example (Ba et al. 2016, eq. 3-4)."""
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  y = (x - mean) * jax.lax.rsqrt(var + eps) * scale
  return y if bias is None else y + bias


# ------------------------------------------------------------------------------------------------ padding helpers
def lengths_to_paddings(lengths: Array, max_len: int) -> Array:
  """(B,) lengths -> (B, T) paddings: 1.0 at padded steps t >= length, 0.0 at valid ones."""
  return (jnp.arange(max_len)[None, :] >= jnp.asarray(lengths)[:, None]).astype(jnp.float32)


def paddings_to_lengths(paddings: Array) -> Array:
  """(B, T) right paddings (1.0 = pad) -> (B,) int32 lengths (the number of valid steps)."""
  return jnp.sum(1.0 - paddings, axis=-1).astype(jnp.int32)


def resolve_lengths(max_len: int, lengths: Array | None, paddings: Array | None) -> Array | None:
  """The (B,) lengths given either `lengths` or right `paddings` [B, T] (1.0 = pad); None when neither is given."""
  if lengths is not None and paddings is not None:
    raise ValueError('give lengths or paddings, not both')
  if paddings is not None:
    if paddings.ndim != 2 or paddings.shape[1] != max_len:
      raise UserError(f'paddings of shape {paddings.shape}', f'(batch, {max_len}) matching the inputs\' time axis',
                      'pass paddings with one entry per time step')
    return paddings_to_lengths(paddings)
  if lengths is not None:
    return jnp.asarray(lengths).astype(jnp.int32)
  return None


def flip_valid(xs: Array, lengths: Array | None) -> Array:
  """Reverses each sequence of a right-padded (B, T, ...) batch within its valid part; padding stays at the end."""
  if lengths is None:
    return jnp.flip(xs, axis=1)
  t = jnp.arange(xs.shape[1])[None, :]
  src = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)          # (B, T)
  src = src.reshape(src.shape + (1,) * (xs.ndim - 2))
  return jnp.take_along_axis(xs, src, axis=1)


# ------------------------------------------------------------------------------------------------ the scan
# A step of every cell here is   u = pre(consts, carry, x);  a = u @ W;  carry', y = post(small, consts, carry, x, a)
# with ONE matmul (the fused gates) and everything else row-local. x is the step's slice of a dict of (T, B, ...)
# arrays: 'xp' (the precomputed input projection), optional 'mask' (B, 1) (0 = padded step: the carry is kept and
# y = 0) and per-step noise (zoneout masks). small: the cell's other parameters (peepholes, LN gains, b_nh);
# consts: per-sequence constants (recurrent dropout masks), not differentiated.

def _masked_post(post: Callable, small, consts, carry, x, a):
  new, y = post(small, consts, carry, x, a)
  if 'mask' in x:
    keep = x['mask'] > 0
    new = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
    y = jnp.where(keep, y, jnp.zeros_like(y))
  return new, y


def _batched(small, carry):
  """The vector small parameters broadcast over the batch: their per-step cotangents are then (B, K) arrays added
  up in the loop and reduced over the batch once after it (a per-step reduction over the batch inside the loop
  body costs ~100 µs a step on XLA:CPU). Matrices (W_out) stay as they are."""
  batch = jax.tree.leaves(carry)[0].shape[0]
  return jax.tree.map(lambda v: jnp.broadcast_to(v, (batch,) + v.shape) if v.ndim == 1 else v, small)


def _forward_scan(pre, post, W, small, consts, carry0, xs, reverse, unroll):
  small = _batched(small, carry0)

  def step(carry, x):
    a = pre(consts, carry, x) @ W
    return _masked_post(post, small, consts, carry, x, a)
  return jax.lax.scan(step, carry0, xs, reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 7, 8))
def _fused(pre, post, W, small, consts, carry0, xs, reverse, unroll):
  return _forward_scan(pre, post, W, small, consts, carry0, xs, reverse, unroll)


def _fused_fwd(pre, post, W, small, consts, carry0, xs, reverse, unroll):
  # Each step keeps the matmul input u_t and the linearisations of pre and post (jax.vjp's residuals: gate
  # activations etc., a pytree that the scan stacks over time), so the backward pass recomputes nothing. The small
  # parameters enter broadcast over the batch (`_batched`); their (B, K) cotangents are summed once after the loop.
  small_b = _batched(small, carry0)

  def step(carry, x):
    u, pre_vjp = jax.vjp(lambda c, x_: pre(consts, c, x_), carry, x)
    a = u @ W
    (new, y), post_vjp = jax.vjp(lambda s, c, x_, a_: _masked_post(post, s, consts, c, x_, a_), small_b, carry, x, a)
    return new, (y, u, pre_vjp, post_vjp)
  carry, (ys, us, pre_vjps, post_vjps) = jax.lax.scan(step, carry0, xs, reverse=reverse, unroll=unroll)
  return (carry, ys), (W, consts, us, pre_vjps, post_vjps)


def _fused_bwd(pre, post, reverse, unroll, residuals, cotangents):
  W, consts, us, pre_vjps, post_vjps = residuals
  d_carry_last, d_ys = cotangents
  W_t = W.T
  add = functools.partial(jax.tree.map, jnp.add)

  # BPTT for the states only: dcarry_{t−1} = ∂post/∂carry · dcarry_t + (∂post/∂a · dcarry_t) Wᵀ ∂pre/∂carry
  def step(d_carry, inp):
    d_y, pre_vjp, post_vjp = inp
    ds, dc_post, dx_post, da = post_vjp((d_carry, d_y))
    dc_pre, dx_pre = pre_vjp(da @ W_t)
    return add(dc_post, dc_pre), (add(dx_post, dx_pre), da, ds)

  d_carry0, (d_xs, d_pre_acts, d_small) = jax.lax.scan(
      step, d_carry_last, (d_ys, pre_vjps, post_vjps), reverse=not reverse, unroll=unroll)
  d_W = _sum_tb(us, d_pre_acts)                               # dW = Σ_t u_tᵀ da_t: one matmul over all steps
  d_small = jax.tree.map(lambda v: v.sum((0, 1)), d_small)   # Σ over steps and examples, once
  return d_W, d_small, jax.tree.map(jnp.zeros_like, consts), d_carry0, d_xs


_fused.defvjp(_fused_fwd, _fused_bwd)


def recurrence(pre: Callable, post: Callable, W: Array, small, consts, carry0: Carry, xs: dict, *,
               reverse: bool = False, unroll: int = 1, fused: bool = True) -> tuple[Carry, Array]:
  """Scans `a = pre(consts, carry, x) @ W; carry, y = post(small, consts, carry, x, a)` over time-major `xs`.

  Returns (final carry, ys (T, ...)). Steps whose x['mask'] is 0 keep the carry and output zeros. `fused`: the
  custom VJP (backward recursion for the states, dW as one matmul afterwards); False: lax.scan + autodiff. pre and
  post must be pure functions of their arguments (close over no arrays); the leaves of `small` are vectors that
  post uses broadcast against (B, ...) arrays (they are passed to post as (B, K) in the fused backward).
  """
  if fused:
    return _fused(pre, post, W, small, consts, carry0, xs, reverse, unroll)
  return _forward_scan(pre, post, W, small, consts, carry0, xs, reverse, unroll)


# Plain LSTM and GRU (no peepholes, in-cell LN, zoneout, recurrent dropout or clipping) have hand-derived
# backward passes: the forward saves, per step, the few products the backward needs, so that a backward step is one
# matmul and one multiply of a (B, G·H) array (jax.vjp of a step that slices the gates builds the gate cotangent with
# pads, which XLA:CPU fuses into a slow loop). They take the inputs, not their projection: the input projection of
# all steps is one matmul before the scan, and its weight gradient shares one (T·B)-deep matmul with the recurrent
# weights' ([x_t, h_{t−1}]ᵀ dz_t summed over t). xs (T, B, D) time-major; mask (T, B, 1) or None as in `recurrence`.

def _keep(mask_t, new, old):
  return new if mask_t is None else jnp.where(mask_t > 0, new, old)


def _project(xs: Array, kernel: Array, bias: Array) -> Array:
  return jnp.einsum('tbd,dg->tbg', xs, kernel) + bias


def _sum_tb(a: Array, b: Array) -> Array:
  """Σ_t a_tᵀ b_t for time-major (T, B, ·) arrays: one dot contracting time and batch. Not a (T·B, ·) reshape:
  GSPMD cannot merge a sharded batch axis into a minor position, so under a ('data',) mesh the reshape gathers the
  whole batch onto every device and each computes the full gradient (the dot's partial sums are all-reduced)."""
  return jax.lax.dot_general(a, b, (((0, 1), (0, 1)), ((), ())))


def _lstm_affine(H: int, dtype) -> Array:
  """Per-lane a with [I, F, n, O] = a ⊙ tanh(a ⊙ z) + (1 − a): a = ½ on the σ blocks (σ(z) = ½ tanh(z/2) + ½),
  1 on the tanh block — every gate from ONE tanh over the (B, 4H) pre-activations."""
  return jnp.concatenate([jnp.full((2 * H,), 0.5, dtype), jnp.ones((H,), dtype), jnp.full((H,), 0.5, dtype)])


def _lstm_scan(W_ih, W_hh, bias, xs, carry0, mask, reverse, unroll, save):
  H = W_hh.shape[0]
  a = _lstm_affine(H, xs.dtype)

  def step(carry, inp):
    h, c = carry
    x, m = inp
    t = jnp.tanh(a * (x + h @ W_hh))
    act = a * t + (1 - a)                                               # i, f, n (torch's g), o
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    c2 = f * c + i * g                                                  # c_t = F ⊙ c_{t−1} + I ⊙ n_t
    tc = jnp.tanh(c2)
    h2 = o * tc                                                         # h_t = O ⊙ tanh(c_t)
    new = (_keep(m, h2, h), _keep(m, c2, c))
    y = _keep(m, h2, jnp.zeros_like(h2))
    if not save:
      return new, y
    # dz = D ⊙ [dc, dc, dc, dh] with D = act'(z) ⊙ [n, c_{t−1}, I, tanh(c_t)], act' = a²(1 − t²)
    D = a * a * (1 - t * t) * jnp.concatenate([g, c, i, tc], axis=-1)
    return new, (y, h, D, o * (1 - tc * tc), f)
  return jax.lax.scan(step, carry0, (_project(xs, W_ih, bias), mask), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def lstm_recurrence(W_ih: Array, W_hh: Array, bias: Array, xs: Array, carry0: tuple[Array, Array],
                    mask: Array | None, reverse: bool = False, unroll: int = 1) -> tuple[tuple[Array, Array], Array]:
  """The plain LSTM over time-major xs (T, B, D): ((h_T, c_T), hs (T, B, H)); bias = b_ih + b_hh (4H,)."""
  return _lstm_scan(W_ih, W_hh, bias, xs, carry0, mask, reverse, unroll, save=False)


def _lstm_fwd(W_ih, W_hh, bias, xs, carry0, mask, reverse, unroll):
  carry, (ys, hs_prev, D, E, F) = _lstm_scan(W_ih, W_hh, bias, xs, carry0, mask, reverse, unroll, save=True)
  return (carry, ys), (W_ih, W_hh, xs, hs_prev, D, E, F, mask)


def _lstm_bwd(reverse, unroll, res, cot):
  W_ih, W_hh, xs, hs_prev, D, E, F, mask = res
  (dh_last, dc_last), d_ys = cot
  W_t = W_hh.T

  def step(carry, inp):
    dh, dc = carry
    dy, d, e, f, m = inp
    gh = dh + dy if m is None else m * (dh + dy)                        # cotangent of this step's new h
    gc = (dc if m is None else m * dc) + gh * e                          # ... and of its new c (e = O(1 − tanh²c))
    dz = d * jnp.concatenate([gc, gc, gc, gh], axis=-1)
    dh_prev, dc_prev = dz @ W_t, gc * f
    if m is not None:                                                    # padded steps pass the carry through
      dh_prev, dc_prev = dh_prev + (1 - m) * dh, dc_prev + (1 - m) * dc
    return (dh_prev, dc_prev), dz
  d_carry0, dz = jax.lax.scan(step, (dh_last, dc_last), (d_ys, D, E, F, mask), reverse=not reverse, unroll=unroll)
  Din = xs.shape[-1]
  d_W = _sum_tb(jnp.concatenate([xs, hs_prev], -1), dz)            # Σ_t [x_t, h_{t−1}]ᵀ dz_t, one matmul
  d_xs = jnp.einsum('tbg,dg->tbd', dz, W_ih)
  return d_W[:Din], d_W[Din:], dz.sum((0, 1)), d_xs, d_carry0, None if mask is None else jnp.zeros_like(mask)


lstm_recurrence.defvjp(_lstm_fwd, _lstm_bwd)


def _gru_scan(W_ih, W_hh, bias, b_hn, xs, carry0, mask, reverse, unroll, save):
  H = W_hh.shape[0]

  def step(h, inp):
    x, m = inp
    a = h @ W_hh
    rz = sigmoid(x[:, :2 * H] + a[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    an = a[:, 2 * H:] + b_hn                                             # W_n^h h + b_nh
    n = jnp.tanh(x[:, 2 * H:] + r * an)                                  # the reset gate multiplies it
    h2 = z * h + (1 - z) * n                                             # h_t = Z ⊙ h_{t−1} + (1 − Z) ⊙ n
    new, y = _keep(m, h2, h), _keep(m, h2, jnp.zeros_like(h2))
    if not save:
      return new, y
    kn = (1 - z) * (1 - n * n)                                           # ∂h/∂(x_n-part)
    K = jnp.concatenate([kn * an * r * (1 - r), (h - n) * z * (1 - z), kn], axis=-1)   # dxp = K ⊙ [dh, dh, dh]
    return new, (y, h, K, r, z)
  return jax.lax.scan(step, carry0, (_project(xs, W_ih, bias), mask), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8))
def gru_recurrence(W_ih: Array, W_hh: Array, bias: Array, b_hn: Array, xs: Array, carry0: Array, mask: Array | None,
                   reverse: bool = False, unroll: int = 1) -> tuple[Array, Array]:
  """The plain GRU over time-major xs (T, B, D): (h_T, hs (T, B, H)); bias: the x-side (3H,) (b_ir + b_hr,
  b_iz + b_hz, b_in); b_hn: b_nh, inside the reset gate."""
  return _gru_scan(W_ih, W_hh, bias, b_hn, xs, carry0, mask, reverse, unroll, save=False)


def _gru_fwd(W_ih, W_hh, bias, b_hn, xs, carry0, mask, reverse, unroll):
  carry, (ys, hs_prev, K, R, Z) = _gru_scan(W_ih, W_hh, bias, b_hn, xs, carry0, mask, reverse, unroll, save=True)
  return (carry, ys), (W_ih, W_hh, xs, hs_prev, K, R, Z, mask)


def _gru_bwd(reverse, unroll, res, cot):
  W_ih, W_hh, xs, hs_prev, K, R, Z, mask = res
  dh_last, d_ys = cot
  W_t = W_hh.T
  H = W_hh.shape[0]

  def step(dh, inp):
    dy, k, r, z, m = inp
    gh = dh + dy if m is None else m * (dh + dy)
    dxp = k * jnp.concatenate([gh, gh, gh], axis=-1)
    da = jnp.concatenate([dxp[:, :2 * H], dxp[:, 2 * H:] * r], axis=-1)   # ∂(W^h h): r scales the n block
    dh_prev = da @ W_t + gh * z
    if m is not None:
      dh_prev = dh_prev + (1 - m) * dh
    return dh_prev, (dxp, da)
  d_carry0, (dxp, da) = jax.lax.scan(step, dh_last, (d_ys, K, R, Z, mask), reverse=not reverse, unroll=unroll)
  d_W_ih, d_W_hh = _sum_tb(xs, dxp), _sum_tb(hs_prev, da)
  d_xs = jnp.einsum('tbg,dg->tbd', dxp, W_ih)
  return (d_W_ih, d_W_hh, dxp.sum((0, 1)), da[..., 2 * H:].sum((0, 1)), d_xs, d_carry0,
          None if mask is None else jnp.zeros_like(mask))


gru_recurrence.defvjp(_gru_fwd, _gru_bwd)


# ------------------------------------------------------------------------------------------------ step functions
@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def split_gates(z: Array, n: int) -> tuple[Array, ...]:
  """jnp.split(z, n, axis=-1) whose VJP concatenates the block cotangents: JAX's own transpose of a slice is a pad,
  and XLA:CPU fuses a sum of pads into a loop that is several times slower than one concatenate."""
  return tuple(jnp.split(z, n, axis=-1))


def _split_fwd(z, n):
  return split_gates(z, n), None


def _split_bwd(n, _, cotangents):
  return (jnp.concatenate(cotangents, axis=-1),)


split_gates.defvjp(_split_fwd, _split_bwd)


def _zoneout(x: dict, key: str, rate: float, old: Array, new: Array) -> Array:
  """Krueger et al. 2017: keep the old value where the (train) mask is 1; eval: the expectation."""
  if rate <= 0.0:
    return new
  keep = x[key] if key in x else rate
  return keep * old + (1.0 - keep) * new


def _pre_h(consts, carry, x, *, lstm: bool):
  h = carry[0] if lstm else carry
  return h * consts['rec_mask'] if 'rec_mask' in consts else h       # variational dropout on h (Gal 2016)


def _pre_rnn(consts, carry, x, *, recurrent: bool, feedback: bool):
  h, y = carry if feedback else (carry, None)
  if 'rec_mask' in consts:
    h = h * consts['rec_mask']
  parts = ([h] if recurrent else []) + ([y] if feedback else [])
  return parts[0] if len(parts) == 1 else jnp.concatenate(parts, -1)


def _post_lstm(small, consts, carry, x, a, *, peepholes, layer_norm, cell_clip, zoneout, zoneout_cell):
  h, c = carry
  if layer_norm:
    a = _layer_norm(a, small['ln_hh_scale'])
  zi, zf, zn, zo = split_gates(x['xp'] + a, 4)                        # gate order i, f, n (=g), o
  if peepholes:                                                         # Gers & Schmidhuber 2000
    zi, zf = zi + small['peephole_i'] * c, zf + small['peephole_f'] * c
  c_new = sigmoid(zf) * c + sigmoid(zi) * jnp.tanh(zn)                  # c_t = F ⊙ c_{t−1} + I ⊙ n_t
  if cell_clip is not None:
    c_new = jnp.clip(c_new, -cell_clip, cell_clip)
  if peepholes:
    zo = zo + small['peephole_o'] * c_new
  gate_o = sigmoid(zo)
  c_out = _layer_norm(c_new, small['ln_c_scale'], small['ln_c_bias']) if layer_norm else c_new
  h_new = gate_o * jnp.tanh(c_out)                                      # h_t = O ⊙ tanh(c_t)
  c_new = _zoneout(x, 'zone_c', zoneout_cell, c, c_new)
  h_new = _zoneout(x, 'zone_h', zoneout, h, h_new)
  return (h_new, c_new), h_new


def _post_gru(small, consts, carry, x, a, *, layer_norm, zoneout):
  h = carry
  if layer_norm:
    a = _layer_norm(a, small['ln_hh_scale'])
  xr, xz, xn = split_gates(x['xp'], 3)
  ar, az, an = split_gates(a, 3)
  r, z = sigmoid(xr + ar), sigmoid(xz + az)                              # reset and update gates
  n = jnp.tanh(xn + r * (an + small['bias_hn']))                         # reset applied to W_n^h h + b_nh
  h_new = z * h + (1.0 - z) * n
  h_new = _zoneout(x, 'zone_h', zoneout, h, h_new)
  return h_new, h_new


def _post_rnn(small, consts, carry, x, a, *, activation, clip, layer_norm, zoneout, feedback, output_activation,
              has_output):
  h_old = carry[0] if feedback else carry
  pre_act = x['xp'] + a                                                  # W_in x + b_h + W_h h + W_back y
  if layer_norm:
    pre_act = _layer_norm(pre_act, small['ln_scale'], small['ln_bias'])
  h = ACTIVATIONS[activation](pre_act)
  if clip is not None:
    h = jnp.clip(h, -clip, clip)                                         # activation clipping (Hannun 2014)
  h = _zoneout(x, 'zone_h', zoneout, h_old, h)
  if not has_output:
    return h, h
  y = ACTIVATIONS[output_activation](h @ small['kernel_out'] + small['bias_out'])   # y = g(W_out h + b_y)
  return ((h, y) if feedback else h), y


# ------------------------------------------------------------------------------------------------ cells
class RecurrentCell(nn.Module):
  """Base of the cells: parameters (`weights`), the input projection, the step, noise, and a sequence runner.

  Subclasses define `gates`, `weights(in_features)` (the single compact method), `_step_fns()` -> (pre, post) and
  `_carry_parts()`. `__call__(carry, x)` is one step as the notes write it; `run` is a whole sequence.
  """
  features: int
  two_bias: bool = True
  kernel_init: str | Initializer = 'default'
  recurrent_init: str = 'default'
  recurrent_gain: float = 1.0
  layer_norm: bool = False
  zoneout: float = 0.0
  input_dropout: float = 0.0
  recurrent_dropout: float = 0.0
  learn_initial_state: bool = False

  gates = 1

  # ---- parameters
  def _kernel_init(self) -> Initializer:
    if callable(self.kernel_init):
      return self.kernel_init
    if self.kernel_init != 'default':
      raise UserError(f'unknown kernel_init {self.kernel_init!r}', "'default' (PyTorch's U(±1/√H)) or an initializer",
                      'pass a jax.nn.initializers function for anything else')
    return torch_uniform(self.features)

  def _input_and_bias_params(self, in_features: int) -> dict:
    g, H = self.gates, self.features
    p = {'kernel_ih': self.param('kernel_ih', self._kernel_init(), (in_features, g * H))}
    if self.two_bias:
      p['bias_ih'] = self.param('bias_ih', self._bias_init(), (g * H,))
      p['bias_hh'] = self.param('bias_hh', self._bias_init(hh=True), (g * H,))
    else:
      p['bias'] = self.param('bias', self._bias_init(), (g * H,))
    if self.layer_norm:
      p['ln_ih_scale'] = self.param('ln_ih_scale', nn.initializers.ones, (g * H,))
    return p

  def _bias_init(self, hh: bool = False) -> Initializer:
    return torch_uniform(self.features)

  def _recurrent_init(self, gates: int) -> Initializer:
    return recurrent_kernel_init(self.recurrent_init, self.features, gates, self.recurrent_gain)

  def _initial_state_params(self) -> dict:
    if not self.learn_initial_state:
      return {}
    return {f'{name}0': self.param(f'{name}0', nn.initializers.zeros, (size,)) for name, size in self._carry_parts()}

  def _carry_parts(self) -> list[tuple[str, int]]:
    return [('h', self.features)]

  def _pack_carry(self, parts: list[Array]) -> Carry:
    return parts[0]

  def initial_carry(self, w: dict, batch_size: int, dtype=jnp.float32) -> Carry:
    """Zeros, or the learned h(0) (c(0)) broadcast over the batch."""
    parts = []
    for name, size in self._carry_parts():
      v = w.get(f'{name}0')
      parts.append(jnp.zeros((batch_size, size), dtype) if v is None
                   else jnp.broadcast_to(v.astype(dtype), (batch_size, size)))
    return self._pack_carry(parts)

  # ---- pure pieces (no parameter creation)
  def project(self, w: dict, xs: Array) -> Array:
    """The input part of every gate for all time steps at once: x W^x (+ LN) + biases."""
    xp = xs @ w['kernel_ih']
    if self.layer_norm:
      xp = _layer_norm(xp, w['ln_ih_scale'])
    return xp + self._input_bias(w)

  def _input_bias(self, w: dict) -> Array:
    return w['bias_ih'] + w['bias_hh'] if self.two_bias else w['bias']

  def _recurrent_matrix(self, w: dict) -> Array:
    return w['kernel_hh']

  def _small(self, w: dict) -> dict:
    return {}

  # ---- noise (train only)
  def _check_rates(self):
    for name in ('zoneout', 'input_dropout', 'recurrent_dropout'):
      rate = getattr(self, name)
      if not 0.0 <= rate < 1.0:
        raise UserError(f'{name}={rate}', 'a rate in [0, 1)', f'fix the cell\'s {name}')

  def sample_noise(self, batch_size: int, length: int, in_features: int, dtype=jnp.float32) -> tuple[dict, dict]:
    """Train-time random masks: (per-sequence {'in_mask', 'rec_mask'}, per-step {'zone_h', ...} of (T, B, H))."""
    seq, steps = {}, {}
    if self.input_dropout > 0:
      keep = 1.0 - self.input_dropout
      m = jax.random.bernoulli(self.make_rng('dropout'), keep, (batch_size, in_features))
      seq['in_mask'] = m.astype(dtype) / keep
    if self.recurrent_dropout > 0:
      keep = 1.0 - self.recurrent_dropout
      m = jax.random.bernoulli(self.make_rng('dropout'), keep, (batch_size, self.features))
      seq['rec_mask'] = m.astype(dtype) / keep
    for key, rate in self._zoneout_rates().items():
      if rate > 0:
        shape = (length, batch_size, self.features)
        steps[key] = jax.random.bernoulli(self.make_rng('dropout'), rate, shape).astype(dtype)
    return seq, steps

  def _zoneout_rates(self) -> dict[str, float]:
    return {'zone_h': self.zoneout}

  # ---- one step, and a whole sequence
  def __call__(self, carry: Carry | None, x: Array, train: bool = False, noise: tuple[dict, dict] | None = None):
    """One step on x (B, D): returns (new carry, y); carry None: the initial one (zeros or learned). Train-time
    masks are sampled for this step unless `noise` (from `sample_noise(B, 1, D)`) is given: pass the same one at
    every step for one mask per sequence."""
    w = self.weights(x.shape[-1])
    if carry is None:
      carry = self.initial_carry(w, x.shape[0], x.dtype)
    if train and noise is None:
      noise = self.sample_noise(x.shape[0], 1, x.shape[-1], x.dtype)
    seq, steps = noise if train else ({}, {})
    if 'in_mask' in seq:
      x = x * seq['in_mask']
    pre, post = self._step_fns(train)
    step_x = {'xp': self.project(w, x), **{k: v[0] for k, v in steps.items()}}
    consts = {'rec_mask': seq['rec_mask']} if 'rec_mask' in seq else {}
    a = pre(consts, carry, step_x) @ self._recurrent_matrix(w)
    return post(self._small(w), consts, carry, step_x, a)

  def run(self, xs: Array, lengths: Array | None = None, initial_carry: Carry | None = None, *, reverse: bool = False,
          train: bool = False, unroll: int | None = None, fused: bool = True) -> tuple[Array, Carry]:
    """The cell over a (B, T, D) batch: (outputs (B, T, F), final carry); see `RNN`."""
    self._check_rates()
    B, T, D = xs.shape
    w = self.weights(D)
    seq, steps = self.sample_noise(B, T, D, xs.dtype) if train else ({}, {})
    if 'in_mask' in seq:
      xs = xs * seq['in_mask'][:, None, :]
    xs = jnp.swapaxes(xs, 0, 1)                                          # time-major (T, B, D)
    mask = None if lengths is None else (jnp.arange(T)[:, None] < lengths[None, :]).astype(xs.dtype)[..., None]
    carry = self.initial_carry(w, B, xs.dtype) if initial_carry is None else initial_carry
    if fused and self._plain():
      carry, ys = self._plain_recurrence(w, carry, xs, mask, reverse, unroll or PLAIN_UNROLL)
    else:
      unroll = unroll or 1
      step_xs = {'xp': self.project(w, xs), **steps}                    # (T, B, G·H): one matmul for all steps
      if mask is not None:
        step_xs['mask'] = mask
      consts = {'rec_mask': seq['rec_mask']} if 'rec_mask' in seq else {}
      pre, post = self._step_fns(train)
      carry, ys = recurrence(pre, post, self._recurrent_matrix(w), self._small(w), consts, carry, step_xs,
                             reverse=reverse, unroll=unroll, fused=fused and self._fusable())
    return jnp.swapaxes(ys, 0, 1), carry

  def _plain(self) -> bool:
    """True when the cell has a hand-derived fused kernel and no option it does not implement."""
    return False

  def _fusable(self) -> bool:
    """True when `recurrence`'s custom VJP applies (small parameters all vectors) and is faster than autodiff."""
    return True

  def _plain_recurrence(self, w, carry, xs, mask, reverse, unroll):
    raise NotImplementedError


class LSTMCell(RecurrentCell):
  """LSTM (gate order i, f, n, o = PyTorch's i, f, g, o). Carry (h, c), output h.

  forget_bias: the forget-gate bias b_f at init ("learning to forget", Gers et al. 2000; 1.0 is common); with two
  biases it goes into bias_ih and the b_hh forget block starts at 0. peepholes: diagonal c -> gate weights
  (i, f from c_{t−1}; o from c_t). cell_clip: c clipped to ±cell_clip. zoneout_cell: zoneout rate of c.
  """
  forget_bias: float | None = None
  peepholes: bool = False
  cell_clip: float | None = None
  zoneout_cell: float = 0.0

  gates = 4

  @nn.compact
  def weights(self, in_features: int) -> dict:
    H = self.features
    p = self._input_and_bias_params(in_features)
    p['kernel_hh'] = self.param('kernel_hh', self._recurrent_init(4), (H, 4 * H))
    if self.peepholes:
      for gate in 'ifo':
        p[f'peephole_{gate}'] = self.param(f'peephole_{gate}', torch_uniform(H), (H,))
    if self.layer_norm:
      p['ln_hh_scale'] = self.param('ln_hh_scale', nn.initializers.ones, (4 * H,))
      p['ln_c_scale'] = self.param('ln_c_scale', nn.initializers.ones, (H,))
      p['ln_c_bias'] = self.param('ln_c_bias', nn.initializers.zeros, (H,))
    p.update(self._initial_state_params())
    return p

  def _bias_init(self, hh: bool = False) -> Initializer:
    base = torch_uniform(self.features)
    if self.forget_bias is None:
      return base
    H, value = self.features, 0.0 if hh else self.forget_bias

    def init(key, shape, dtype=jnp.float32):
      return base(key, shape, dtype).at[H:2 * H].set(value)              # the f block
    return init

  def _carry_parts(self):
    return [('h', self.features), ('c', self.features)]

  def _pack_carry(self, parts):
    return tuple(parts)

  def _zoneout_rates(self):
    return {'zone_h': self.zoneout, 'zone_c': self.zoneout_cell}

  def _check_rates(self):
    super()._check_rates()
    if not 0.0 <= self.zoneout_cell < 1.0:
      raise UserError(f'zoneout_cell={self.zoneout_cell}', 'a rate in [0, 1)', "fix the cell's zoneout_cell")

  def _small(self, w):
    return {k: v for k, v in w.items() if k.startswith('peephole_') or k in ('ln_hh_scale', 'ln_c_scale', 'ln_c_bias')}

  def _plain(self):
    return not (self.peepholes or self.layer_norm or self.cell_clip is not None or self.zoneout > 0
                or self.zoneout_cell > 0 or self.recurrent_dropout > 0)

  def _fusable(self):
    return False            # with options, XLA:CPU runs lax.scan + autodiff as fast as the generic custom VJP

  def _plain_recurrence(self, w, carry, xs, mask, reverse, unroll):
    return lstm_recurrence(w['kernel_ih'], w['kernel_hh'], self._input_bias(w), xs, carry, mask, reverse, unroll)

  def _step_fns(self, train: bool):
    pre = functools.partial(_pre_h, lstm=True)
    post = functools.partial(_post_lstm, peepholes=self.peepholes, layer_norm=self.layer_norm, cell_clip=self.cell_clip,
                             zoneout=self.zoneout, zoneout_cell=self.zoneout_cell)
    return pre, post


class GRUCell(RecurrentCell):
  """GRU (gate order r, z, n as PyTorch). Carry = output = h. The reset gate multiplies W_n^h h + b_nh, so b_nh
  stays a separate parameter (`bias_hn`) even with `two_bias=False` (the notes' equation); with two biases b_nh is
  the n block of bias_hh, as in PyTorch."""

  gates = 3

  @nn.compact
  def weights(self, in_features: int) -> dict:
    H = self.features
    p = self._input_and_bias_params(in_features)
    if not self.two_bias:
      p['bias_hn'] = self.param('bias_hn', torch_uniform(H), (H,))
    p['kernel_hh'] = self.param('kernel_hh', self._recurrent_init(3), (H, 3 * H))
    if self.layer_norm:
      p['ln_hh_scale'] = self.param('ln_hh_scale', nn.initializers.ones, (3 * H,))
    p.update(self._initial_state_params())
    return p

  def _input_bias(self, w):
    if not self.two_bias:
      return w['bias']
    H = self.features
    return w['bias_ih'] + jnp.concatenate([w['bias_hh'][:2 * H], jnp.zeros((H,), w['bias_hh'].dtype)])

  def _small(self, w):
    small = {'bias_hn': w['bias_hh'][2 * self.features:] if self.two_bias else w['bias_hn']}
    if self.layer_norm:
      small['ln_hh_scale'] = w['ln_hh_scale']
    return small

  def _plain(self):
    return not (self.layer_norm or self.zoneout > 0 or self.recurrent_dropout > 0)

  def _fusable(self):
    return False

  def _plain_recurrence(self, w, carry, xs, mask, reverse, unroll):
    return gru_recurrence(w['kernel_ih'], w['kernel_hh'], self._input_bias(w), self._small(w)['bias_hn'], xs, carry,
                          mask, reverse, unroll)

  def _step_fns(self, train: bool):
    return (functools.partial(_pre_h, lstm=False),
            functools.partial(_post_gru, layer_norm=self.layer_norm, zoneout=self.zoneout))


class RNNCell(RecurrentCell):
  """The notes' general RNN: h(t) = f(W_in x + W_h h(t−1) + W_back y(t−1) + b_h), y(t) = g(W_out h(t) + b_y).

  recurrent: use W_h; feedback: use W_back (needs out_features); out_features: size of y (None: no output layer,
  the output is h). Carry: h, or (h, y) with feedback. activation f: tanh | relu | sigmoid | linear, clipped to
  ±clip if given (relu + clip=20: Hannun et al. 2014's clipped ReLU); output_activation g. With layer_norm, LN
  (gain and bias) normalises the summed input of f (Ba et al. 2016, eq. 4).
  """
  out_features: int | None = None
  recurrent: bool = True
  feedback: bool = False
  activation: str = 'tanh'
  output_activation: str = 'linear'
  clip: float | None = None

  @nn.compact
  def weights(self, in_features: int) -> dict:
    H = self.features
    if not (self.recurrent or self.feedback):
      raise ValueError('an RNNCell needs recurrent=True or feedback=True')
    if self.feedback and self.out_features is None:
      raise ValueError('feedback (W_back y(t−1)) needs out_features')
    _activation(self.activation)
    _activation(self.output_activation)
    p = {'kernel_ih': self.param('kernel_ih', self._kernel_init(), (in_features, H))}
    if self.recurrent:
      p['kernel_hh'] = self.param('kernel_hh', self._recurrent_init(1), (H, H))
    if self.feedback:
      p['kernel_back'] = self.param('kernel_back', torch_uniform(H), (self.out_features, H))
    if self.two_bias:
      p['bias_ih'] = self.param('bias_ih', self._bias_init(), (H,))
      p['bias_hh'] = self.param('bias_hh', self._bias_init(hh=True), (H,))
    else:
      p['bias'] = self.param('bias', self._bias_init(), (H,))
    if self.layer_norm:
      p['ln_scale'] = self.param('ln_scale', nn.initializers.ones, (H,))
      p['ln_bias'] = self.param('ln_bias', nn.initializers.zeros, (H,))
    if self.out_features is not None:
      p['kernel_out'] = self.param('kernel_out', torch_uniform(H), (H, self.out_features))
      p['bias_out'] = self.param('bias_out', torch_uniform(H), (self.out_features,))
    p.update(self._initial_state_params())
    return p

  def project(self, w, xs):
    return xs @ w['kernel_ih'] + self._input_bias(w)                     # LN acts on the sum, inside the step

  def _recurrent_matrix(self, w):
    parts = ([w['kernel_hh']] if self.recurrent else []) + ([w['kernel_back']] if self.feedback else [])
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, 0)

  def _carry_parts(self):
    return [('h', self.features)] + ([('y', self.out_features)] if self.feedback else [])

  def _pack_carry(self, parts):
    return tuple(parts) if self.feedback else parts[0]

  def _small(self, w):
    return {k: w[k] for k in ('ln_scale', 'ln_bias', 'kernel_out', 'bias_out') if k in w}

  def _fusable(self):
    return self.out_features is None                                     # W_out is a matrix: plain autodiff

  def _step_fns(self, train: bool):
    pre = functools.partial(_pre_rnn, recurrent=self.recurrent, feedback=self.feedback)
    post = functools.partial(_post_rnn, activation=self.activation, clip=self.clip, layer_norm=self.layer_norm,
                             zoneout=self.zoneout, feedback=self.feedback, output_activation=self.output_activation,
                             has_output=self.out_features is not None)
    return pre, post


class ElmanCell(RNNCell):
  """Elman network (W_back = 0): h(t) = f(W_in x(t) + W_h h(t−1) + b_h); the output is h. torch.nn.RNN's cell."""


class JordanCell(RNNCell):
  """Jordan network (W_h = 0): h(t) = f(W_in x(t) + W_back y(t−1) + b_h), y(t) = g(W_out h(t) + b_y)."""
  recurrent: bool = False
  feedback: bool = True


def params_from_torch(weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> dict:
  """One PyTorch RNN/LSTM/GRU layer's tensors (as NumPy arrays: `t.detach().numpy()`) -> this module's params.

  torch computes x Wᵀ: kernels are transposed; gate blocks are already in the same order. For a two-bias cell.
  """
  p = {'kernel_ih': jnp.asarray(np.asarray(weight_ih).T), 'kernel_hh': jnp.asarray(np.asarray(weight_hh).T)}
  if bias_ih is not None:
    p['bias_ih'] = jnp.asarray(np.asarray(bias_ih))
    p['bias_hh'] = jnp.asarray(np.asarray(bias_hh))
  return p


def torch_param_count(kind: str, input_size: int, hidden_size: int, num_layers: int = 1,
                      bidirectional: bool = False) -> int:
  """PyTorch's parameter count of nn.RNN / nn.LSTM / nn.GRU: per layer and direction G·H·(D_l + H) + 2·G·H."""
  gates = {'rnn': 1, 'lstm': 4, 'gru': 3}[kind]
  dirs = 2 if bidirectional else 1
  total = 0
  for layer in range(num_layers):
    d = input_size if layer == 0 else dirs * hidden_size
    total += dirs * (gates * hidden_size * (d + hidden_size) + 2 * gates * hidden_size)
  return total


# ------------------------------------------------------------------------------------------------ layers
def _is_ours(cell) -> bool:
  return isinstance(cell, RecurrentCell)


def _run_foreign(cell: nn.Module, xs, lengths, initial_carry, reverse, unroll):
  """Any flax cell with (carry, x) -> (carry, y) and initialize_carry (flax's nn.LSTMCell, ...): nn.scan with masks."""
  B, T, _ = xs.shape
  if initial_carry is None:
    initial_carry = cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
  mask = (jnp.ones((B, T)) if lengths is None else (jnp.arange(T)[None] < lengths[:, None])).astype(xs.dtype)

  def body(c, carry, inp):
    x, m = inp
    new, y = c(carry, x)
    keep = m[:, None] > 0
    new = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
    return new, jnp.where(keep, y, jnp.zeros_like(y))

  scan = nn.scan(body, variable_broadcast='params', split_rngs={'params': False, 'dropout': True},
                 in_axes=1, out_axes=1, reverse=reverse, unroll=unroll or 1)
  carry, ys = scan(cell, initial_carry, (xs, mask))
  return ys, carry


class RNN(nn.Module):
  """One recurrent layer over (B, T, D) inputs: (outputs (B, T, F), final carry).

  `lengths` [B] or right `paddings` [B, T] (1.0 = pad): outputs at padded steps are exactly 0 and the final carry
  is the last valid step's; `reverse=True` reads each sequence's valid part backwards (outputs stay aligned with
  the inputs). `unroll`: time steps per loop iteration of the scan; `fused`: the custom-VJP scan. Any flax cell
  (e.g. nn.GRUCell) also works, through nn.scan (slower; no fused path).
  """
  cell: nn.Module
  reverse: bool = False
  unroll: int | None = None
  fused: bool = True

  @nn.compact
  def __call__(self, xs: Array, lengths: Array | None = None, *, paddings: Array | None = None,
               initial_carry: Carry | None = None, train: bool = False) -> tuple[Array, Carry]:
    if xs.ndim != 3:
      raise UserError(f'recurrent layer input of shape {xs.shape}', '(batch, time, features)',
                      'add a batch axis or a feature axis')
    lengths = resolve_lengths(xs.shape[1], lengths, paddings)
    if _is_ours(self.cell):
      return self.cell.run(xs, lengths, initial_carry, reverse=self.reverse, train=train, unroll=self.unroll,
                           fused=self.fused)
    return _run_foreign(self.cell, xs, lengths, initial_carry, self.reverse, self.unroll)


MERGES = ('concat', 'sum')


class Bidirectional(nn.Module):
  """Forward and backward RNNs over the same inputs (Schuster & Paliwal 1997), outputs merged by 'concat' or 'sum'.

  The backward cell is a copy of `cell` (own parameters) unless `backward_cell` is given. Final carry:
  (forward's, backward's) — the backward's is its state after reading each sequence's FIRST step.
  """
  cell: nn.Module
  backward_cell: nn.Module | None = None
  merge: str = 'concat'
  unroll: int | None = None
  fused: bool = True

  @nn.compact
  def __call__(self, xs: Array, lengths: Array | None = None, *, paddings: Array | None = None,
               initial_carry: tuple[Carry, Carry] | None = None, train: bool = False) -> tuple[Array, tuple]:
    if self.merge not in MERGES:
      raise UserError(f'unknown bidirectional merge {self.merge!r}', f'one of {MERGES}', 'fix merge')
    lengths = resolve_lengths(xs.shape[1], lengths, paddings)
    fwd_init, bwd_init = (None, None) if initial_carry is None else initial_carry
    bwd_cell = (self.backward_cell if self.backward_cell is not None else self.cell).clone()
    yf, cf = RNN(self.cell.clone(), unroll=self.unroll, fused=self.fused, name='forward')(
        xs, lengths, initial_carry=fwd_init, train=train)
    yb, cb = RNN(bwd_cell, reverse=True, unroll=self.unroll, fused=self.fused, name='backward')(
        xs, lengths, initial_carry=bwd_init, train=train)
    ys = jnp.concatenate([yf, yb], -1) if self.merge == 'concat' else yf + yb
    return ys, (cf, cb)


def pyramid_concat(xs: Array, lengths: Array | None = None) -> tuple[Array, Array | None]:
  """LAS's pyramidal reduction: (B, T, F) -> (B, ⌈T/2⌉, 2F), [h_{2i}, h_{2i+1}] (Chan et al. 2016, eq. 5).

  An odd T gets one zero frame; lengths -> ⌈L/2⌉ (the last pair of an odd sequence is [h_{L−1}, 0], which is what
  the padded batch holds there since padded outputs are zero).
  """
  B, T, F = xs.shape
  if T % 2:
    xs = jnp.pad(xs, ((0, 0), (0, 1), (0, 0)))
  xs = xs.reshape(B, (T + 1) // 2, 2 * F)
  return xs, None if lengths is None else (lengths + 1) // 2


class StackedRNN(nn.Module):
  """`num_layers` recurrent layers (deep RNN; Graves et al. 2013), each a copy of `cell` with its own parameters.

  bidirectional / merge: every layer is a `Bidirectional`; dropout: standard dropout on the outputs of every layer
  but the last (PyTorch's nn.LSTM(dropout=...)); pyramidal: halve time between layers with `pyramid_concat` (LAS).
  Returns (outputs, final carries: a tuple with one entry per layer) — and, when pyramidal, the outputs' lengths
  are `output_lengths(lengths)`.
  """
  cell: nn.Module
  num_layers: int = 2
  bidirectional: bool = False
  merge: str = 'concat'
  dropout: float = 0.0
  pyramidal: bool = False
  unroll: int | None = None
  fused: bool = True

  def output_lengths(self, lengths: Array) -> Array:
    """The valid lengths of the outputs (pyramidal: ⌈L/2⌉ per reduction)."""
    if self.pyramidal:
      for _ in range(self.num_layers - 1):
        lengths = (lengths + 1) // 2
    return lengths

  @nn.compact
  def __call__(self, xs: Array, lengths: Array | None = None, *, paddings: Array | None = None,
               initial_carry: Sequence[Carry] | None = None, train: bool = False) -> tuple[Array, tuple]:
    if self.num_layers < 1:
      raise UserError(f'num_layers={self.num_layers}', 'at least 1', 'fix num_layers')
    lengths = resolve_lengths(xs.shape[1], lengths, paddings)
    carries = []
    for i in range(self.num_layers):
      if i > 0 and self.pyramidal:
        xs, lengths = pyramid_concat(xs, lengths)
      init = None if initial_carry is None else initial_carry[i]
      if self.bidirectional:
        layer = Bidirectional(self.cell.clone(), merge=self.merge, unroll=self.unroll, fused=self.fused,
                              name=f'layer{i}')
      else:
        layer = RNN(self.cell.clone(), unroll=self.unroll, fused=self.fused, name=f'layer{i}')
      xs, carry = layer(xs, lengths, initial_carry=init, train=train)
      carries.append(carry)
      if self.dropout > 0 and i < self.num_layers - 1:
        xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
    return xs, tuple(carries)


class Pyramidal(StackedRNN):
  """Listen-Attend-Spell's pyramidal BLSTM encoder: a StackedRNN that halves time between layers (8× for 4 layers)."""
  bidirectional: bool = True
  pyramidal: bool = True


# ------------------------------------------------------------------------------------------------ echo-state network
def spectral_radius(w) -> float:
  """max |λ| over the eigenvalues of a square matrix (NumPy, float64)."""
  return float(np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64)))))


def _scale_to_radius(w: Array, radius: float) -> Array:
  """w · radius / ρ(w), ρ computed exactly by numpy's eig on the host (works under jit via pure_callback)."""
  rho = jax.pure_callback(lambda m: np.asarray(spectral_radius(m), np.float32),
                          jax.ShapeDtypeStruct((), jnp.float32), w)
  return w * (radius / rho).astype(w.dtype)


class EchoStateNetwork(nn.Module):
  """Echo-state network (Jaeger 2001): an Elman RNN whose W_in, W_h, b are random and FIXED.

  x(t) = (1 − a) x(t−1) + a tanh(W_in u(t) + W_h x(t−1) + b)   (leaky integrator, Jaeger et al. 2007; a = leak_rate)

  W_h: N(0, 1) entries, a fraction `sparsity` of them zeroed, rescaled so that its spectral radius (computed
  exactly at init) is `spectral_radius`; W_in ~ U(±input_scaling), b ~ U(±bias_scaling). They live in the
  'reservoir' collection — `init` returns them next to 'params', `apply` needs them, optimisers and parameter
  counts of 'params' never see them. Returns (outputs, final state): the states (B, T, N) — to be read out in
  closed form by `fit_readout` — or, with `readout_features`, a trained Dense readout of them ('params').
  Padding as in `RNN` (states at padded steps are zero, the final state is the last valid one).
  """
  features: int
  spectral_radius: float = 0.9
  input_scaling: float = 1.0
  bias_scaling: float = 0.0
  leak_rate: float = 1.0
  sparsity: float = 0.0
  readout_features: int | None = None
  unroll: int = 4

  def _reservoir(self, in_features: int) -> tuple[Array, Array, Array]:
    N = self.features
    if not 0.0 < self.leak_rate <= 1.0:
      raise UserError(f'leak_rate={self.leak_rate}', 'a value in (0, 1]', 'fix the ESN leak_rate')
    if not 0.0 <= self.sparsity < 1.0:
      raise UserError(f'sparsity={self.sparsity}', 'a fraction of zero weights in [0, 1)', 'fix the ESN sparsity')

    def make_w():
      k1, k2 = jax.random.split(self.make_rng('params'))
      w = jax.random.normal(k1, (N, N))
      if self.sparsity > 0:
        w = w * jax.random.bernoulli(k2, 1.0 - self.sparsity, (N, N))
      return _scale_to_radius(w, self.spectral_radius)

    w_in = self.variable('reservoir', 'kernel_in', lambda: jax.random.uniform(
        self.make_rng('params'), (in_features, N), minval=-self.input_scaling, maxval=self.input_scaling))
    w = self.variable('reservoir', 'kernel_hh', make_w)
    b = self.variable('reservoir', 'bias', lambda: jax.random.uniform(
        self.make_rng('params'), (N,), minval=-self.bias_scaling, maxval=self.bias_scaling))
    return tuple(jax.lax.stop_gradient(v.value) for v in (w_in, w, b))

  @nn.compact
  def __call__(self, u: Array, lengths: Array | None = None, *, paddings: Array | None = None,
               initial_state: Array | None = None) -> tuple[Array, Array]:
    B, T, D = u.shape
    w_in, w, b = self._reservoir(D)
    lengths = resolve_lengths(T, lengths, paddings)
    xs = {'xp': jnp.swapaxes(u, 0, 1) @ w_in + b}
    if lengths is not None:
      xs['mask'] = (jnp.arange(T)[:, None] < lengths[None, :]).astype(u.dtype)[..., None]
    x0 = jnp.zeros((B, self.features), u.dtype) if initial_state is None else initial_state
    post = functools.partial(_post_esn, leak=self.leak_rate)
    final, states = recurrence(_pre_esn, post, w, {}, {}, x0, xs, unroll=self.unroll, fused=False)
    states = jnp.swapaxes(states, 0, 1)
    if self.readout_features is not None:
      return nn.Dense(self.readout_features, name='readout')(states), final
    return states, final


def _pre_esn(consts, carry, x):
  return carry


def _post_esn(small, consts, carry, x, a, *, leak):
  new = (1.0 - leak) * carry + leak * jnp.tanh(x['xp'] + a)
  return new, new


def _readout_rows(states: Array, targets: Array, washout: int, mask: Array | None):
  if states.ndim == 2:
    states, targets = states[None], targets[None]
    mask = None if mask is None else mask[None]
  if targets.ndim == states.ndim - 1:
    targets = targets[..., None]
  T = states.shape[-2]
  if washout >= T:
    raise UserError(f'washout={washout} of a {T}-step sequence', 'fewer washout steps than time steps',
                    'reduce the washout or use longer sequences')
  weight = jnp.ones(states.shape[:-1], states.dtype) if mask is None else mask.astype(states.dtype)
  weight = weight.at[..., :washout].set(0.0)                             # transient states discarded
  X = states.reshape(-1, states.shape[-1])
  Y = targets.reshape(-1, targets.shape[-1]).astype(states.dtype)
  return X, Y, weight.reshape(-1)


def fit_readout(states: Array, targets: Array, ridge: float = 1e-6, washout: int = 0, mask: Array | None = None,
                bias: bool = True) -> tuple[Array, Array]:
  """Closed-form ridge-regression readout: (W (N, K), b (K,)) minimising Σ ‖W_out [1; x(t)] − y(t)‖² + ridge ‖W_out‖².

  states (B, T, N) or (T, N); targets (B, T, K), (B, T) or (T, K), (T,); the first `washout` steps of every
  sequence and the steps where `mask` (B, T) is 0 (padding) are left out. As in Lukoševičius 2012 (eq. 9) the bias
  is part of W_out and regularised too. Solved by least squares on the augmented system [X 1; √ridge·I] W = [Y; 0]
  (better conditioned than the normal equations in float32).
  """
  if ridge < 0:
    raise UserError(f'ridge={ridge}', 'a non-negative regularisation strength', 'fix ridge')
  X, Y, weight = _readout_rows(states, targets, washout, mask)
  if bias:
    X = jnp.concatenate([jnp.ones((X.shape[0], 1), X.dtype), X], axis=1)
  sw = jnp.sqrt(weight)[:, None]
  A = jnp.concatenate([X * sw, math.sqrt(ridge) * jnp.eye(X.shape[1], dtype=X.dtype)], axis=0)
  rhs = jnp.concatenate([Y * sw, jnp.zeros((X.shape[1], Y.shape[1]), Y.dtype)], axis=0)
  W = jnp.linalg.lstsq(A, rhs)[0]
  if bias:
    return W[1:], W[0]
  return W, jnp.zeros((Y.shape[1],), W.dtype)


def apply_readout(states: Array, W: Array, b: Array) -> Array:
  """y(t) = W_outᵀ x(t) + b."""
  return states @ W + b
