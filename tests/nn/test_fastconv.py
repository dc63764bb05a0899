"""jaxdl.nn.fastconv, conv.Conv and pooling.max_pool: equal to lax (values, gradients, jvp, vmap) over the zoo's cases."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxdl.nn import fastconv, conv, pooling

NHWC = ('NHWC', 'HWIO', 'NHWC')

# (input (N, H, W, C), kernel (kh, kw, C/groups, O), strides, padding, lhs_dilation, rhs_dilation, groups)
CASES = {
    'valid_32_64_routed': ((2, 26, 26, 32), (3, 3, 32, 64), (1, 1), 'VALID', None, None, 1),
    'same_32_64': ((2, 10, 10, 32), (3, 3, 32, 64), (1, 1), 'SAME', None, None, 1),
    'stride2_same': ((2, 12, 12, 24), (3, 3, 24, 40), (2, 2), 'SAME', None, None, 1),
    'stride2_valid_odd': ((2, 13, 11, 20), (3, 3, 20, 24), (2, 2), 'VALID', None, None, 1),
    'explicit_asym_pad': ((2, 11, 9, 24), (3, 5, 24, 32), (1, 1), ((2, 0), (1, 3)), None, None, 1),
    'rhs_dilation': ((2, 14, 14, 24), (3, 3, 24, 32), (1, 1), 'VALID', None, (2, 2), 1),
    'rect_kernel_stride': ((2, 15, 12, 24), (5, 3, 24, 32), (2, 1), ((1, 1), (0, 2)), None, (1, 2), 1),
    'one_by_one_s2': ((2, 8, 8, 16), (1, 1, 16, 32), (2, 2), 'VALID', None, None, 1),
    'few_channels': ((2, 16, 16, 1), (5, 5, 1, 6), (1, 1), 'VALID', None, None, 1),
    'few_channels_patch_dot': ((4, 12, 12, 1), (3, 3, 1, 32), (1, 1), 'VALID', None, None, 1),
    'rgb_s2_same': ((3, 15, 15, 3), (3, 3, 3, 24), (2, 2), 'SAME', None, None, 1),
    'two_ch_dilated_asym': ((4, 14, 13, 2), (3, 3, 2, 24), (1, 1), ((1, 2), (0, 1)), None, (2, 2), 1),
    'depthwise_fallback': ((2, 9, 9, 24), (3, 3, 1, 24), (1, 1), 'SAME', None, None, 24),
    'grouped_fallback': ((2, 9, 9, 24), (3, 3, 12, 32), (1, 1), 'VALID', None, None, 2),
    'lhs_dilation': ((2, 6, 6, 24), (3, 3, 24, 32), (1, 1), ((2, 2), (2, 2)), (2, 2), None, 1),
}


def _args(name, seed=0):
  xs, ws, *_ = CASES[name]
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.standard_normal(xs), jnp.float32),
          jnp.asarray(rng.standard_normal(ws) / np.sqrt(np.prod(ws[:3])), jnp.float32))


def _convs(name, dn=NHWC):
  _, _, s, p, ld, rd, g = CASES[name]
  kw = dict(lhs_dilation=ld, rhs_dilation=rd, dimension_numbers=dn, feature_group_count=g)
  return (lambda x, w: lax.conv_general_dilated(x, w, s, p, **kw),
          lambda x, w: fastconv.conv_general_dilated(x, w, s, p, **kw))


def _close(a, b, tol=2e-5):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol * float(jnp.abs(b).max()))


@pytest.mark.parametrize('name', sorted(CASES))
def test_forward_and_gradients_equal_lax(name):
  x, w = _args(name)
  ref, fast = _convs(name)
  y = jax.jit(ref)(x, w)
  _close(jax.jit(fast)(x, w), y)
  dy = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
  grads = lambda f: jax.jit(lambda x, w: jax.vjp(f, x, w)[1](dy))(x, w)
  for a, b in zip(grads(fast), grads(ref)):
    _close(a, b)


@pytest.mark.parametrize('name', ['valid_32_64_routed', 'stride2_same'])
def test_jvp_hessian_vector_and_vmap(name):
  x, w = _args(name)
  ref, fast = _convs(name)
  tx, tw = _args(name, seed=2)
  _close(jax.jvp(fast, (x, w), (tx, tw))[1], jax.jvp(ref, (x, w), (tx, tw))[1])
  hvp = lambda f: jax.jvp(jax.grad(lambda w: jnp.sum(jnp.tanh(f(x, w)))), (w,), (tw,))[1]  # jvp of grad
  _close(hvp(fast), hvp(ref), tol=1e-4)
  xs = jnp.stack([x, tx])  # vmap over a leading axis of the input
  _close(jax.vmap(fast, (0, None))(xs, w), jax.vmap(ref, (0, None))(xs, w))
  _close(jax.vmap(fast, (None, 0))(x, jnp.stack([w, tw])), jax.vmap(ref, (None, 0))(x, jnp.stack([w, tw])))


def test_other_dimension_numbers():
  x, w = _args('valid_32_64_routed')
  ref, fast = _convs('valid_32_64_routed', dn=('NCHW', 'OIHW', 'NCHW'))
  xc, wc = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
  _close(jax.jit(fast)(xc, wc), ref(xc, wc))
  gf = jax.grad(lambda x, w: jnp.sum(fast(x, w) ** 2), (0, 1))(xc, wc)
  gr = jax.grad(lambda x, w: jnp.sum(ref(x, w) ** 2), (0, 1))(xc, wc)
  for a, b in zip(gf, gr):
    _close(a, b)


def test_jaxpr_is_a_conv_general_dilated():
  """Same primitive name and parameters as lax: jaxdl.inspect.flops and other jaxpr readers see a convolution."""
  x, w = _args('valid_32_64_routed')
  eqn = jax.make_jaxpr(_convs('valid_32_64_routed')[1])(x, w).jaxpr.eqns[0]
  assert eqn.primitive.name == 'conv_general_dilated'
  assert eqn.params['padding'] == ((0, 0), (0, 0)) and eqn.params['window_strides'] == (1, 1)


def test_routing_plan_and_cpu_lowering(monkeypatch):
  # the small CNN's second layer: VALID 26x26 -> 24x24, 32 -> 64 channels: grow the output by 3 rows
  assert fastconv.plan((26, 26), (3, 3), ((0, 0), (0, 0)), (1, 1), (1, 1), 32, 64) == ('out', 0, 3, False)
  # its weight gradient (input 26x26, kernel = dy 24x24, 128 examples contracted): grow the kernel
  assert fastconv.plan((26, 26), (24, 24), ((0, 0), (0, 0)), (1, 1), (1, 1), 128, 64)[:3] == ('kernel', 0, 3)
  # a SAME weight gradient also pads the other dimension explicitly (else XLA swaps the operands)
  assert fastconv.plan((16, 16), (16, 16), ((1, 1), (1, 1)), (1, 1), (1, 1), 128, 32) == ('kernel', 0, 1, True)
  # left to XLA: SAME-sized outputs, few channels, small features, strided (too costly), not YNNPACK's anyway
  assert fastconv.plan((16, 16), (3, 3), ((1, 1), (1, 1)), (1, 1), (1, 1), 32, 32) is None
  assert fastconv.plan((28, 28), (3, 3), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, 32) is None
  assert fastconv.plan((28, 28), (3, 3), ((0, 0), (0, 0)), (1, 1), (1, 1), 16, 16) is None
  assert fastconv.plan((32, 32), (3, 3), ((1, 1), (1, 1)), (2, 2), (1, 1), 32, 64) is None
  assert fastconv.plan((24, 24), (3, 3), ((2, 2), (2, 2)), (1, 1), (1, 1), 64, 32) is None
  x, w = _args('valid_32_64_routed')
  fast = _convs('valid_32_64_routed')[1]
  if jax.default_backend() == 'cpu':
    assert 'tensor<2x27x24x64xf32>' in jax.jit(fast).lower(x, w).as_text()  # one row more than the input
  monkeypatch.setenv('JAXDL_FASTCONV', '0')
  assert 'tensor<2x27x24x64xf32>' not in jax.jit(lambda x, w: fast(x, w) + 0).lower(x, w).as_text()


@pytest.mark.parametrize('shape', [(4, 12, 12, 1), (2, 12, 12, 32)])
def test_negative_padding_crops(shape):
  """Negative padding crops the input. XLA:CPU's own convolution gets this wrong (jaxlib 0.10 returns values read
  out of bounds), so the reference is the explicit crop followed by a VALID convolution."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, shape[3], 16)) / 3, jnp.float32)
  fast = lambda x, w: fastconv.conv_general_dilated(x, w, (1, 1), ((-1, 1), (0, -2)), dimension_numbers=NHWC)
  ref = lambda x, w: lax.conv_general_dilated(jnp.pad(x[:, 1:, :-2], ((0, 0), (0, 1), (0, 0), (0, 0))), w, (1, 1),
                                              'VALID', dimension_numbers=NHWC)
  y = ref(x, w)
  _close(jax.jit(fast)(x, w), y)
  dy = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
  for a, b in zip(jax.jit(lambda x, w: jax.vjp(fast, x, w)[1](dy))(x, w), jax.vjp(ref, x, w)[1](dy)):
    _close(a, b)


def _lowered_ops(f, *args):
  text = jax.jit(f).lower(*args).as_text()
  return {op for op in ('convolution', 'dot_general') if f'stablehlo.{op}' in text}


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the routing is the CPU lowering')
@pytest.mark.parametrize('name', ['few_channels_patch_dot', 'rgb_s2_same', 'two_ch_dilated_asym'])
def test_few_channel_paths_replace_the_convolution(name):
  """Few input taps: the forward is a sum of shifted planes; with one input channel and many output channels
  the weight gradient is one matmul (no convolution at all)."""
  x, w = _args(name)
  fast = _convs(name)[1]
  assert fastconv.tap_sum_applies(x.shape[3], w.shape[:2], w.shape[3])
  assert _lowered_ops(fast, x, w) == set()
  wgrad = lambda x, w: jax.grad(lambda w: jnp.sum(fast(x, w) ** 2))(w)
  assert _lowered_ops(wgrad, x, w) == ({'dot_general'} if name == 'few_channels_patch_dot' else {'convolution'})


def test_layers_conv_is_nn_conv():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 10, 10, 20)), jnp.float32)
  for kw in (dict(features=32, kernel_size=(3, 3), padding='VALID'), dict(features=24, kernel_size=3, strides=2)):
    ours, theirs = conv.Conv(**kw), nn.Conv(**kw)
    v = theirs.init(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == jax.tree.map(jnp.shape, v)
    _close(ours.apply(v, x), theirs.apply(v, x))
    g1 = jax.grad(lambda v: jnp.sum(ours.apply(v, x) ** 2))(v)
    g2 = jax.grad(lambda v: jnp.sum(theirs.apply(v, x) ** 2))(v)
    jax.tree.map(_close, g1, g2)

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      return conv.Conv(8, (3, 3))(nn.Conv(8, (3, 3))(x))
  assert set(Net().init(jax.random.PRNGKey(0), x)['params']) == {'Conv_0', 'Conv_1'}  # nn.Conv's auto-names


@pytest.mark.parametrize('shape, window', [((3, 8, 8, 5), (2, 2)), ((2, 9, 7, 3), (3, 3)), ((2, 6, 9, 4), (2, 3))])
def test_max_pool_equals_flax_with_ties(shape, window):
  x = jnp.maximum(jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32), 0)  # many ties at 0
  x = x.at[0, :2, :2, 0].set(1.0)  # a window whose maximum is tied
  ours = lambda x: pooling.max_pool(x, window, strides=window)
  ref = lambda x: nn.max_pool(x, window, strides=window)
  y = ref(x)
  np.testing.assert_array_equal(ours(x), y)
  g = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), jnp.float32)
  np.testing.assert_array_equal(jax.vjp(ours, x)[1](g)[0], jax.vjp(ref, x)[1](g)[0])
  np.testing.assert_array_equal(jax.jvp(ours, (x,), (x + 1,))[1], jax.jvp(ref, (x,), (x + 1,))[1])
  # overlapping windows and padding are flax's own
  np.testing.assert_array_equal(pooling.max_pool(x, (3, 3), (2, 2), 'SAME'), nn.max_pool(x, (3, 3), (2, 2), 'SAME'))
