"""jaxdl.inspect.flops: multiply-accumulates from the jaxpr against hand counts, XLA's cost analysis and He et al. Table 1."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxdl.inspect.flops import count_macs, forward_flops, xla_flops
from jaxdl.nn.conv import Conv
from jaxdl.models import resnet


class Tiny(nn.Module):
  """Unpadded, bias-free convs (one strided, one grouped) and a dense layer: nothing but contractions."""
  conv: type = Conv

  @nn.compact
  def __call__(self, x, train=False):
    x = self.conv(8, (3, 3), padding='VALID', use_bias=False)(x)                            # 17 → 15
    x = self.conv(16, (3, 3), strides=2, padding='VALID', use_bias=False)(x)                # 15 → 7
    x = self.conv(16, (3, 3), padding='VALID', use_bias=False, feature_group_count=4)(x)    # 7 → 5
    return nn.Dense(10, use_bias=False)(x.reshape(x.shape[0], -1))


TINY_HAND = 15 * 15 * 8 * (9 * 3) + 7 * 7 * 16 * (9 * 8) + 5 * 5 * 16 * (9 * 16 // 4) + (5 * 5 * 16) * 10


def test_tiny_net_matches_hand_count_and_half_of_xla_flops():
  shape = (17, 17, 3)
  assert forward_flops(Tiny(), shape) == TINY_HAND
  assert forward_flops(Tiny(), shape, batch=3) == 3 * TINY_HAND
  # XLA counts a multiply-add as 2 flops; with no padding and no element-wise ops the counts agree exactly.
  # (flax's own Conv here: jaxdl.nn.conv.Conv may lower a conv with an extra row that XLA would count.)
  plain = Tiny(conv=nn.Conv)
  assert forward_flops(plain, shape) == TINY_HAND
  v = plain.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
  assert xla_flops(lambda v, x: plain.apply(v, x), v, jnp.zeros((2, *shape))) == 2 * 2 * TINY_HAND


def test_by_primitive_splits_convs_and_dense():
  t = forward_flops(Tiny(), (17, 17, 3), by_primitive=True)
  assert t['dot_general'] == 400 * 10
  assert t['conv_general_dilated'] + t['dot_general'] == t['total'] == TINY_HAND


def test_patch_extraction_convs_are_not_counted():
  # A conv lowered as im2col patches (a conv with a constant one-hot kernel) + matmul counts as the matmul only.
  class Patches(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      p = jax.lax.conv_general_dilated_patches(x, (3, 3), (1, 1), 'VALID',
                                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      return p @ self.param('k', nn.initializers.lecun_normal(), (p.shape[-1], 8))
  assert forward_flops(Patches(), (17, 17, 3)) == 15 * 15 * 8 * 27


def test_scan_bodies_count_once_per_iteration():
  def f(w, x):
    return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=7)[0]
  closed = jax.make_jaxpr(f)(jnp.zeros((16, 16)), jnp.zeros((4, 16)))
  assert count_macs(closed.jaxpr) == 7 * 4 * 16 * 16
  a = forward_flops(resnet.ResNet(depth=50, scan=True), (64, 64, 3))
  assert a == forward_flops(resnet.ResNet(depth=50, scan=False), (64, 64, 3))


def resnet_hand_macs(depth, stride_in_1x1, shortcut):
  """He et al. 2015 Table 1 at 224×224, written out: MACs of every conv and the fc (no flax involved)."""
  kind, counts = resnet.DEPTHS[depth]
  macs = 112 * 112 * 7 * 7 * 3 * 64                         # conv1 7×7/2
  h, c_in = 56, 64                                          # after the 3×3/2 max-pool
  for i, n in enumerate(counts):
    w = 64 * 2 ** i
    for j in range(n):
      s = 2 if i > 0 and j == 0 else 1
      ho = h // s
      if kind == 'basic':
        out = w
        macs += ho * ho * 9 * c_in * w + ho * ho * 9 * w * w
      else:
        out = 4 * w
        macs += (ho if stride_in_1x1 else h) ** 2 * c_in * w   # the first 1×1 runs at the input or output grid
        macs += ho * ho * 9 * w * w + ho * ho * w * out
      if (s != 1 or c_in != out) and shortcut == 'B':
        macs += ho * ho * c_in * out                        # projection shortcut
      h, c_in = ho, out
  return macs + c_in * 1000


# He et al. 2015, Table 1 "FLOPs" (multiply-adds). The paper's nets: v1 (stride on the first 1×1 of a bottleneck),
# zero-padding shortcuts (option A) for 18/34 ("no extra parameter", §4.1), projections (B) for 50/101/152.
PAPER = {18: ('A', 1.8), 34: ('A', 3.6), 50: ('B', 3.8), 101: ('B', 7.6), 152: ('B', 11.3)}


@pytest.mark.parametrize('depth', sorted(PAPER))
def test_resnet_flops_reproduce_he_et_al_table_1(depth):
  shortcut, paper = PAPER[depth]
  macs = forward_flops(resnet.ResNet(depth=depth, stride_in_1x1=True, shortcut=shortcut), (224, 224, 3))
  assert macs == resnet_hand_macs(depth, True, shortcut)
  if depth == 50:
    # 3.858e9: 0.008e9 above the rounding boundary — the paper's 3.8 is 1.5% low (truncated, unlike 7.57 → 7.6).
    assert round(macs / 1e9, 2) == 3.86
  else:
    assert round(macs / 1e9, 1) == paper


def test_torchvision_v1_5_costs_more_than_v1():
  # Striding the 3×3 instead of the first 1×1 runs three 1×1 convs at 4× the resolution: +231M MACs, and
  # ResNet-50 v1.5 = 4.09e9 (the "4.1 GFLOPs" quoted for torchvision's model, e.g. in the ResNeXt paper).
  v15 = forward_flops(resnet.ResNet(depth=50), (224, 224, 3))
  assert v15 == resnet_hand_macs(50, False, 'B')
  assert v15 - resnet_hand_macs(50, True, 'B') == 3 * 3 * 56 * 56 * 256 * 128 // 4
  assert round(v15 / 1e9, 1) == 4.1
