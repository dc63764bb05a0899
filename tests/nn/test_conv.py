"""CNN primitives (jaxdl.nn.conv) against independent references: NumPy loops, torch.nn.functional, jax.vjp,
finite differences of the geometry (gradient supports), and the notes' worked examples (C1–C5, C11)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:   # PyTorch is a reference where installed (pip install -e ".[bench]"); the NumPy references always run.
  import torch
  import torch.nn.functional as F
except ImportError:
  torch = F = None
needs_torch = pytest.mark.skipif(torch is None, reason='PyTorch not installed (pip install -e ".[bench]")')

from jaxdl.inspect import summary
from jaxdl.nn import conv, pooling

RNG = np.random.default_rng(0)


def _rand(*shape):
  return RNG.normal(size=shape).astype(np.float32)


def _np_conv(x, w, stride=(1, 1), pads=((0, 0), (0, 0)), dil=(1, 1), groups=1):
  """Reference cross-correlation by explicit loops over output positions (NHWC, HWIO)."""
  x = np.pad(x, [(0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)])
  n, hh, ww, _ = x.shape
  kh, kw, cg, o = w.shape
  ho, wo = (hh - dil[0] * (kh - 1) - 1) // stride[0] + 1, (ww - dil[1] * (kw - 1) - 1) // stride[1] + 1
  og = o // groups
  y = np.zeros((n, ho, wo, o), np.float64)
  for i in range(ho):
    for j in range(wo):
      patch = x[:, i * stride[0]:i * stride[0] + dil[0] * (kh - 1) + 1:dil[0],
                j * stride[1]:j * stride[1] + dil[1] * (kw - 1) + 1:dil[1], :]
      for g in range(groups):
        y[:, i, j, g * og:(g + 1) * og] = np.einsum('nabc,abco->no', patch[..., g * cg:(g + 1) * cg],
                                                    w[..., g * og:(g + 1) * og])
  return y


def _t(x):   # NHWC -> NCHW torch
  return torch.from_numpy(np.asarray(x, np.float32)).permute(0, 3, 1, 2)


def _tw(w):  # HWIO -> OIHW torch
  return torch.from_numpy(np.asarray(w, np.float32)).permute(3, 2, 0, 1)


def _back(t):
  return t.permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------------- C1, matrices

NOTES_X = np.array([[4, 6, 3], [8, 5, 1], [2, 4, 6]], np.float32)
NOTES_U = np.array([[3, 2], [5, 1]], np.float32)
NOTES_MATRIX = np.array([[3, 2, 0, 5, 1, 0, 0, 0, 0], [0, 3, 2, 0, 5, 1, 0, 0, 0],
                         [0, 0, 0, 3, 2, 0, 5, 1, 0], [0, 0, 0, 0, 3, 2, 0, 5, 1]], np.float32)


def test_c1_notes_example_is_a_cross_correlation_and_a_matrix_product():
  expected = np.array([[69, 50], [48, 43]])
  np.testing.assert_array_equal(conv.conv2d(NOTES_X, NOTES_U), expected)
  np.testing.assert_array_equal(conv.conv_as_matmul(NOTES_X, NOTES_U), expected)
  np.testing.assert_array_equal(conv.conv_matrix(NOTES_U, (3, 3)), NOTES_MATRIX)          # seed 002's U
  np.testing.assert_array_equal(NOTES_MATRIX @ NOTES_X.ravel(), expected.ravel())
  # The true convolution (flipped kernel) does not give the notes' numbers.
  assert float(conv.conv2d(NOTES_X, conv.flip_kernel(NOTES_U))[0, 0]) == 4 * 1 + 6 * 5 + 8 * 2 + 5 * 3


def test_seed000_banded_matrix_is_a_true_convolution_with_k_equal_c_b_a():
  a, b, c, n = 1.0, 2.0, 3.0, 6
  k = jnp.array([[c, b, a]])                        # k = [c, b, a] as in seed 000, convolved (flipped)
  m = conv.conv_matrix(conv.flip_kernel(k), (1, n), padding=((0, 0), (1, 1)))
  expected = b * np.eye(n) + a * np.eye(n, k=-1) + c * np.eye(n, k=1)
  np.testing.assert_array_equal(m, expected)


@pytest.mark.parametrize('shape, kshape, stride, padding, dil', [
    ((2, 7, 8, 3), (3, 2, 3, 4), 1, 'VALID', 1),
    ((1, 9, 7, 2), (3, 3, 2, 3), 2, 'SAME', 1),
    ((2, 8, 9, 2), (2, 3, 2, 2), (2, 3), ((1, 2), (0, 1)), (2, 1)),
    ((1, 10, 10, 1), (3, 3, 1, 2), 3, 1, 2),
])
def test_conv2d_and_toeplitz_matrix_match_numpy_loops_and_torch(shape, kshape, stride, padding, dil):
  x, w = _rand(*shape), _rand(*kshape)
  st, dl = conv._pair(stride), conv._pair(dil)
  pads = conv.padding_pairs(padding, shape[1:3], kshape[:2], st, dl)
  ref = _np_conv(x, w, st, pads, dl)
  np.testing.assert_allclose(conv.conv2d(x, w, stride, padding, dil), ref, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(conv.conv_as_matmul(x, w, stride, padding, dil), ref, rtol=1e-4, atol=1e-4)
  if F is not None:
    tx = F.pad(_t(x), (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    np.testing.assert_allclose(_back(F.conv2d(tx, _tw(w), stride=st, dilation=dl)), ref, rtol=1e-4, atol=1e-4)
  # Sparse: at most one kernel entry per (output, input) pair, kh·kw·C·O per output row.
  u = np.asarray(conv.conv_matrix(w, shape[1:3], stride, padding, dil))
  assert (u != 0).sum(axis=1).max() <= np.prod(kshape)


def test_conv_matrix_is_differentiable_in_the_kernel_and_jits():
  x, w = _rand(2, 6, 6, 2), _rand(3, 3, 2, 3)
  g_mat = jax.grad(lambda w_: jnp.sum(jnp.sin(conv.conv_as_matmul(x, w_, 2, 'SAME'))))(w)
  g_lax = jax.grad(lambda w_: jnp.sum(jnp.sin(conv.conv2d(x, w_, 2, 'SAME'))))(w)
  np.testing.assert_allclose(g_mat, g_lax, rtol=1e-4, atol=1e-4)
  y = jax.jit(lambda x_, w_: conv.conv_as_matmul(x_, w_, 2, 'SAME'))(x, w)
  np.testing.assert_allclose(y, conv.conv2d(x, w, 2, 'SAME'), rtol=1e-5, atol=1e-5)


def test_circular_padding_gives_a_doubly_block_circulant_matrix_that_matches_the_fft():
  hh, ww = 5, 6
  x, k = _rand(hh, ww), _rand(3, 3)
  y = conv.conv2d(x, k, padding=1, padding_mode='circular')
  # FFT reference: circular cross-correlation y[i, j] = Σ k[a, b] x[i + a − 1, j + b − 1] (mod H, W).
  kfull = np.zeros((hh, ww))
  for a in range(3):
    for b in range(3):
      kfull[(a - 1) % hh, (b - 1) % ww] += k[a, b]
  ref = np.fft.ifft2(np.fft.fft2(x) * np.conj(np.fft.fft2(kfull))).real
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
  m = np.asarray(conv.conv_matrix(k, (hh, ww), padding=1, padding_mode='circular'))
  np.testing.assert_allclose(m @ x.ravel(), ref.ravel(), rtol=1e-4, atol=1e-4)
  blocks = m.reshape(hh, ww, hh, ww)            # block (i, h): ww × ww
  for i in range(hh):
    for h in range(hh):
      np.testing.assert_array_equal(blocks[i, :, h, :], blocks[(i + 1) % hh, :, (h + 1) % hh, :])    # circulant blocks
      np.testing.assert_array_equal(blocks[i, :, h, :], np.roll(np.roll(blocks[i, :, h, :], 1, 0), 1, 1))  # circulant


# ------------------------------------------------------------------------------------------ C2, sizes

def test_c2_output_size_200_to_99_to_49_and_matches_real_shapes():
  assert conv.conv_output_size(200, 3, 2) == 99 and conv.conv_output_size(99, 3, 2) == 49
  x = jnp.zeros((1, 200, 200, 1))
  w = jnp.zeros((3, 3, 1, 1))
  assert conv.conv2d(conv.conv2d(x, w, 2), w, 2).shape == (1, 49, 49, 1)


@needs_torch
def test_output_size_formula_matches_torch_over_a_sweep():
  z = torch.zeros(1, 1, 12, 12)
  for k in (1, 2, 3, 4):
    for s in (1, 2, 3):
      for p in (0, 1, 2):
        for d in (1, 2, 3):
          if d * (k - 1) + 1 > 12 + 2 * p:
            continue
          got = F.conv2d(z, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d).shape[-1]
          assert conv.conv_output_size(12, k, s, p, d) == got, (k, s, p, d)


def test_same_padding_matches_lax_and_keeps_ceil_w_over_s():
  for size in (5, 8, 11):
    for k in (1, 2, 3, 5):
      for s in (1, 2, 3):
        for d in (1, 2):
          keff = conv.effective_kernel_size(k, d)
          assert conv.same_padding(size, k, s, d) == tuple(jax.lax.padtype_to_pads((size,), (keff,), (s,), 'SAME')[0])
          assert conv.conv_output_size(size, k, s, conv.same_padding(size, k, s, d), d) == -(-size // s)
  assert conv.same_padding(10, 5) == (2, 2)                        # the notes' P = (F − 1)/2


# --------------------------------------------------------------------------------------- C5, receptive field

def test_receptive_field_of_the_notes_28x28_example_and_the_pooling_rule():
  layers = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]     # seed 000: conv 3, conv 3, pool 2, conv 3, conv 3
  assert [r['r'] for r in conv.receptive_field(layers)] == [1, 3, 5, 6, 10, 14]
  for k in (3, 5):
    for p in (2, 3):                                      # seed 003: conv K, stride 1, then pool P -> P + K − 1
      assert conv.receptive_field([(k, 1), (p, p)])[-1]['r'] == p + k - 1
  assert conv.receptive_field([(3, 1), (3, 1)])[-1]['r'] == conv.receptive_field([(5, 1)])[-1]['r'] == 5


@pytest.mark.parametrize('chain', [
    [('conv', 3, 1, 1, 0), ('conv', 3, 1, 1, 0)],
    [('conv', 5, 2, 1, 2), ('pool', 2, 2), ('conv', 3, 1, 2, 1), ('conv', 3, 2, 1, 0)],
    [('conv', 3, 1, 2, 0), ('conv', 3, 1, 4, 0), ('pool', 3, 1), ('conv', 2, 3, 1, 1)],
])
def test_receptive_field_size_and_centre_equal_the_gradient_support(chain):
  """Independent reference: which input pixels the gradient of one output unit reaches (ones kernels: no cancels)."""
  def forward(x):
    for layer in chain:
      if layer[0] == 'conv':
        _, k, s, d, p = layer
        x = conv.conv2d(x, jnp.ones((k, k, 1, 1)), s, p, d)
      else:
        x = pooling.avg_pool(x, layer[1], layer[2])
    return x
  size = 80
  out = forward(jnp.zeros((1, size, size, 1))).shape[1]
  u = out // 2
  g = jax.grad(lambda x: forward(x)[0, u, u, 0])(jnp.zeros((1, size, size, 1)))
  rows = np.nonzero(np.abs(np.asarray(g)).sum(axis=(0, 2, 3)) > 0)[0]
  layers = [conv.RFLayer(k, s, d, p) if kind == 'conv' else conv.RFLayer(k, s) for kind, k, s, *rest in chain
            for d, p in [(rest + [1, 0])[:2]]]
  rf = conv.receptive_field(layers)[-1]
  assert 0 < rows.min() and rows.max() < size - 1                  # fully inside: not clipped by the border
  assert rows.max() - rows.min() + 1 == rf['r']
  assert (rows.max() + rows.min()) / 2 == rf['start'] + u * rf['jump']
  assert conv.gradient_support(forward, (size, size, 1), (u, u, 0)) == [(rows.min(), rows.max())] * 2


def test_c5_two_3x3_versus_one_5x5_parameters_with_real_flax_layers():
  k = 16
  two = sum(conv.layer_param_count(nn.Conv(k, (3, 3), use_bias=False), (9, 9, k)) for _ in range(2))
  one = conv.layer_param_count(nn.Conv(k, (5, 5), use_bias=False), (9, 9, k))
  assert (two, one) == (18 * k * k, 25 * k * k)
  assert conv.stack_params([(3, k, k), (3, k, k)]) == two and conv.conv_params(5, k, k, bias=False) == one


def test_inception_v3_factorisation_savings_match_the_paper_and_the_closed_form():
  def savings(alpha, n=1.0):
    five = conv.factorisation_saving(((5, 5), n, alpha * n), [((3, 3), n, alpha ** 0.5 * n),
                                                              ((3, 3), alpha ** 0.5 * n, alpha * n)])
    three = conv.factorisation_saving(((3, 3), n, alpha * n), [((1, 3), n, alpha ** 0.5 * n),
                                                               ((3, 1), alpha ** 0.5 * n, alpha * n)])
    return five, three
  five, three = savings(1.0, 64)                  # Szegedy et al. 2015: "28%" and "33%" for equal filters
  assert round(100 * five) == 28 and round(100 * three) == 33
  a = 2.0                                          # the notes' symbolic counts: 9√α(1 + α) / 25α, 3√α(1 + α) / 9α
  five, three = savings(a)
  assert five == pytest.approx(1 - 9 * a ** 0.5 * (1 + a) / (25 * a))
  assert three == pytest.approx(1 - 3 * a ** 0.5 * (1 + a) / (9 * a))


# ---------------------------------------------------------------------------------------- C11, transposed

@pytest.mark.parametrize('xshape, kshape, stride, padding, dil', [
    ((2, 6, 7, 3), (3, 3, 3, 4), 1, 'VALID', 1),
    ((1, 9, 8, 2), (3, 2, 2, 3), 2, 'VALID', 1),         # remainders: the stride skips inputs
    ((2, 8, 8, 1), (4, 4, 1, 2), 2, 'SAME', 1),
    ((1, 10, 11, 2), (3, 3, 2, 2), (3, 2), ((2, 1), (1, 0)), (1, 2)),
    ((1, 7, 7, 1), (3, 3, 1, 1), 2, 2, 1),                # padding larger than k − 1 − p: negative
])
def test_c11_transposed_convolution_is_the_adjoint_vjp_and_matrix_transpose(xshape, kshape, stride, padding, dil):
  x, w = _rand(*xshape), _rand(*kshape)
  y_fwd, vjp = jax.vjp(lambda x_: conv.conv2d(x_, w, stride, padding, dil), x)
  y = _rand(*y_fwd.shape)
  xt = conv.conv_transpose(y, w, stride, padding, dil, input_hw=xshape[1:3])
  assert xt.shape == x.shape
  lhs, rhs = float(np.vdot(np.asarray(y_fwd, np.float64), y)), float(np.vdot(x, np.asarray(xt, np.float64)))
  assert abs(lhs - rhs) <= 1e-5 * (abs(lhs) + np.abs(x).sum())                           # ⟨Ux, y⟩ = ⟨x, Uᵀy⟩
  np.testing.assert_allclose(xt, vjp(jnp.asarray(y))[0], rtol=1e-4, atol=1e-4)
  u = np.asarray(conv.conv_matrix(w, xshape[1:3], stride, padding, dil), np.float64)
  ref = (y.reshape(y.shape[0], -1) @ u).reshape(x.shape)                                    # Uᵀ y, row by row
  np.testing.assert_allclose(xt, ref, rtol=1e-4, atol=1e-4)


def test_transposed_convolution_matches_torch_and_zero_insertion_plus_convolution():
  y, w = _rand(2, 4, 5, 3), _rand(3, 3, 2, 3)                # forward: 2 -> 3 channels, kernel 3, stride 2, pad 1
  for r in (0, 1) if F is not None else ():                  # torch's output_padding = our remainder r
    hw = tuple((n - 1) * 2 - 2 + 3 + r for n in (4, 5))
    ours = conv.conv_transpose(y, w, 2, 1, input_hw=hw)
    ref = _back(F.conv_transpose2d(_t(y), _tw(w), stride=2, padding=1, output_padding=r))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
  z = conv.zero_insert(jnp.asarray(y), 2)
  assert z.shape == (2, 7, 9, 3) and float(jnp.abs(z[:, 1::2]).sum()) == 0.0
  via = conv.conv2d(z, jnp.swapaxes(conv.flip_kernel(w), 2, 3), 1, 1)     # unpool (spread + 0s), then convolve
  np.testing.assert_allclose(via, conv.conv_transpose(y, w, 2, 1), rtol=1e-4, atol=1e-4)
  out = jax.jit(lambda y_: conv.conv_transpose(y_, w, 2, 'SAME'))(y)
  assert out.shape == (2, 8, 10, 2)


# --------------------------------------------------------------------- dilation, depthwise, 1×1, counts

def test_dilated_convolution_equals_the_zero_inserted_kernel_with_the_same_weights():
  x, w = _rand(1, 12, 12, 2), _rand(3, 3, 2, 2)
  wd = conv.dilate_kernel(w, 2)
  assert wd.shape == (5, 5, 2, 2) and np.count_nonzero(np.asarray(wd)) == np.count_nonzero(w)
  np.testing.assert_array_equal(np.asarray(wd)[1::2], 0)
  np.testing.assert_allclose(conv.conv2d(x, w, dilation=2), conv.conv2d(x, wd), rtol=1e-5, atol=1e-5)
  assert conv.receptive_field([(3, 1, 2)])[-1]['r'] == 5


def test_depthwise_pointwise_separable_against_torch_and_dense_and_their_counts():
  x = _rand(2, 7, 7, 3)
  wdw, wpw = _rand(3, 3, 1, 6), _rand(6, 4)                  # depth multiplier 2
  dw = conv.depthwise_conv2d(x, wdw, 1, 'VALID')
  if F is not None:
    np.testing.assert_allclose(dw, _back(F.conv2d(_t(x), _tw(wdw), groups=3)), rtol=1e-4, atol=1e-4)
  # NumPy: output channel o sees only input channel o // 2 (groups = channels, multiplier 2).
  per_group = np.concatenate([_np_conv(x[..., g:g + 1], wdw[..., 2 * g:2 * g + 2]) for g in range(3)], axis=-1)
  np.testing.assert_allclose(dw, per_group, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(conv.pointwise_conv2d(dw, wpw), np.asarray(dw) @ wpw, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(conv.pointwise_conv2d(dw, wpw), conv.conv2d(dw, wpw[None, None]), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(conv.separable_conv2d(x, wdw, wpw), _np_conv(np.asarray(dw), wpw[None, None]),
                             rtol=1e-4, atol=1e-4)
  c_in, c_out = 8, 16
  dwl = conv.layer_param_count(nn.Conv(c_in * 2, (3, 3), feature_group_count=c_in), (6, 6, c_in))
  pwl = conv.layer_param_count(nn.Conv(c_out, (1, 1)), (6, 6, c_in * 2))
  assert conv.depthwise_separable_params(3, c_in, c_out, multiplier=2) == dwl + pwl
  assert conv.conv_params(3, c_in, c_out) == conv.layer_param_count(nn.Conv(c_out, (3, 3)), (6, 6, c_in))
  assert conv.conv_params(3, c_in, c_in * 2, groups=c_in) == dwl


# --------------------------------------------------------------------------------------------- C3, pooling

def test_c3_notes_pooling_examples():
  a = np.array([[2, 3, 2, 0], [5, -2, 2, 8], [-1, -6, 7, 3], [-4, -5, 4, 2]], np.float32)
  b = np.array([[3, 1, 3, 5], [6, 0, 7, 9], [3, 2, 1, 4], [0, 2, 4, 3]], np.float32)
  np.testing.assert_array_equal(pooling.max_pool(a, 2), [[5, 8], [-1, 7]])
  np.testing.assert_array_equal(pooling.avg_pool(a, 2), [[2, 3], [-4, 4]])
  np.testing.assert_array_equal(pooling.max_pool(b, 2, 2), [[6, 9], [3, 4]])


@needs_torch
@pytest.mark.parametrize('window, stride, pad', [(2, 2, 0), (3, 2, 1), (3, 1, 0), ((2, 3), (1, 2), 1)])
def test_pooling_matches_torch(window, stride, pad):
  x = _rand(2, 9, 10, 3)
  kw = dict(kernel_size=window, stride=stride, padding=pad)
  np.testing.assert_allclose(pooling.max_pool(x, window, stride, pad), _back(F.max_pool2d(_t(x), **kw)), rtol=1e-5)
  for inc in (True, False):
    np.testing.assert_allclose(pooling.avg_pool(x, window, stride, pad, count_include_pad=inc),
                               _back(F.avg_pool2d(_t(x), count_include_pad=inc, **kw)), rtol=1e-5, atol=1e-6)
  if pad == 0:
    np.testing.assert_allclose(pooling.l2_pool(x, window, stride),
                               _back(F.lp_pool2d(_t(x), 2, window, stride)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooling.L2Pool(conv._pair(window), conv._pair(stride)).apply({}, x),
                               pooling.l2_pool(x, window, stride), rtol=1e-6)


def test_global_pooling():
  x = _rand(3, 5, 4, 6)
  np.testing.assert_allclose(pooling.global_avg_pool(x), x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(pooling.global_max_pool(x), x.max(axis=(1, 2)))
  np.testing.assert_allclose(pooling.global_avg_pool(x), pooling.avg_pool(x, (5, 4))[:, 0, 0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- upsampling

@pytest.mark.parametrize('factor', [2, 3, (2, 3)])
def test_upsampling_matches_torch_interpolate_and_jax_image_resize(factor):
  x = _rand(2, 4, 5, 3)
  sf = conv._pair(factor)
  np.testing.assert_allclose(conv.upsample_nearest(x, factor),
                             np.repeat(np.repeat(x, sf[0], axis=1), sf[1], axis=2), rtol=1e-6)
  for ac in (False, True) if F is not None else ():
    ref = _back(F.interpolate(_t(x), scale_factor=sf, mode='bilinear', align_corners=ac))
    np.testing.assert_allclose(conv.upsample_bilinear(x, factor, align_corners=ac), ref, rtol=1e-5, atol=1e-5)
  shape = (2, 4 * sf[0], 5 * sf[1], 3)
  np.testing.assert_allclose(conv.upsample_bilinear(x, factor), jax.image.resize(x, shape, 'bilinear'),
                             rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------- flax layers

def test_locally_connected_matches_a_loop_with_one_kernel_per_position_and_its_count():
  x = _rand(2, 7, 6, 3)
  layer = conv.LocallyConnected2D(4, (3, 2), strides=(2, 1), padding=1)
  params = layer.init(jax.random.PRNGKey(0), x)['params']
  params = {'kernel': jnp.asarray(_rand(*params['kernel'].shape)), 'bias': jnp.asarray(_rand(*params['bias'].shape))}
  y = layer.apply({'params': params}, x)
  k, b = np.asarray(params['kernel']), np.asarray(params['bias'])
  xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
  ref = np.zeros(y.shape)
  for i in range(y.shape[1]):
    for j in range(y.shape[2]):
      ref[:, i, j] = np.einsum('nabc,abcf->nf', xp[:, 2 * i:2 * i + 3, j:j + 2], k[i, j]) + b[i, j]
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
  assert conv.layer_param_count(layer, x.shape[1:]) == conv.locally_connected_params(y.shape[1:3], (3, 2), 3, 4)
  # With every position sharing one kernel it is a convolution.
  w = _rand(3, 2, 3, 4)
  shared = {'kernel': jnp.broadcast_to(w, k.shape), 'bias': jnp.zeros_like(params['bias'])}
  np.testing.assert_allclose(layer.apply({'params': shared}, x), conv.conv2d(x, w, (2, 1), 1), rtol=1e-4, atol=1e-4)


def test_c4_counts_of_fc_locally_connected_and_conv_on_200x200():
  fc = conv.layer_param_count(nn.Dense(40_000, use_bias=False), (200 * 200,))
  lc = conv.layer_param_count(conv.LocallyConnected2D(1, (10, 10), padding='SAME', use_bias=False), (200, 200, 1))
  cv = conv.layer_param_count(nn.Conv(100, (10, 10), use_bias=False), (200, 200, 1))
  assert (fc, lc, cv) == (1_600_000_000, 4_000_000, 10_000)
  assert (conv.dense_params(40_000, 40_000, False), conv.locally_connected_params((200, 200), 10, 1, 1, False),
          conv.conv_params(10, 1, 100, False)) == (fc, lc, cv)


def test_spatial_dropout_drops_whole_maps_and_preserves_the_expectation():
  rate = 0.25
  x = jnp.ones((256, 4, 4, 16))
  y = np.asarray(conv.SpatialDropout(rate).apply({}, x, deterministic=False, rngs={'dropout': jax.random.PRNGKey(3)}))
  per_map = y.transpose(0, 3, 1, 2).reshape(256, 16, 16)              # (example, channel, pixels)
  assert np.all(per_map.min(-1) == per_map.max(-1))                      # constant per (example, channel)
  np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - rate)], rtol=1e-6)           # dropped or scaled up
  dropped = (per_map[..., 0] == 0).mean()
  assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / per_map[..., 0].size)
  assert abs(y.mean() - 1.0) < 4 * np.sqrt(rate / (1 - rate) / per_map[..., 0].size)  # inverted scaling: E[y] = x
  np.testing.assert_array_equal(conv.SpatialDropout(rate).apply({}, x, deterministic=True), x)


# ----------------------------------------------------------------------------------------- summary view

class _Net(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(4, (3, 3), padding='VALID')(x)
    x = nn.Conv(4, (3, 3), padding='VALID')(x)
    x = pooling.L2Pool((2, 2))(x)
    x = nn.Conv(4, (3, 3), padding='SAME')(x)
    x = nn.Conv(4, (3, 3), strides=2, padding='SAME', kernel_dilation=2)(x)
    x = conv.SpatialDropout(0.1)(x, deterministic=not train)
    return nn.Dense(3)(x.reshape(x.shape[0], -1))


def test_summary_layer_outputs_shapes_and_receptive_fields():
  rows = summary.layer_outputs(_Net(), (28, 28, 1))
  by = {r['name']: r for r in rows}
  assert [by[n]['output_shape'] for n in ('Conv_0', 'Conv_1', 'L2Pool_0', 'Conv_2', 'Conv_3', 'Dense_0')] == \
      [[26, 26, 4], [24, 24, 4], [12, 12, 4], [12, 12, 4], [6, 6, 4], [3]]
  assert [by[n]['receptive_field'] for n in ('Conv_0', 'Conv_1', 'L2Pool_0', 'Conv_2', 'Conv_3')] == \
      [[3, 3], [5, 5], [6, 6], [10, 10], [18, 18]]
  assert by['Conv_3']['jump'] == [4, 4] and 'receptive_field' not in by['Dense_0']
  text = summary.format_layer_outputs(rows)
  assert 'L2Pool_0' in text and '18×18' in text
  t = summary.parameter_table(_Net(), (28, 28, 1))
  assert set(t) == {'total_params', 'layers', 'non_trainable'}
