"""The classic CNN zoo (LeNet-5, AlexNet, ZFNet, VGG, All-CNN, NIN, GoogLeNet, Inception v3) against the papers.

Every parameter count is checked twice: against the PUBLISHED number (the paper's table, the course's table in
seed 000, or torchvision's published `num_params`) and against an independent closed-form count written here from
the papers' layer tables (k_h·k_w·c_in/groups·c_out + c_out per convolution, n_in·n_out + n_out per dense layer,
2·c per batch norm). Counts come from `jaxdl.inspect.summary.parameter_table` (jax.eval_shape: nothing is allocated).
Claims C6 (LeNet-5), C7 (AlexNet), C8 (VGG), C9 (GoogLeNet).
"""
from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl import cli
from jaxdl.losses import build_loss
from jaxdl.models import build_model, count_params, lenet
from jaxdl.optim import build_optimizer
from jaxdl.registry import MODELS
from jaxdl.inspect.summary import abstract_variables, parameter_table
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step

CLASSIC = ('lenet5', 'alexnet', 'zfnet', 'vgg11', 'vgg11_lrn', 'vgg13', 'vgg16_c', 'vgg16', 'vgg19', 'vgg11_bn',
           'vgg13_bn', 'vgg16_c_bn', 'vgg16_bn', 'vgg19_bn', 'allcnn_c', 'strided_cnn_c', 'convpool_cnn_c', 'nin',
           'googlenet', 'inception_v3')


# ---- independent closed-form counts ----------------------------------------------------------------------------

def conv(k, cin, cout, groups=1, bias=True, bn=False):
  kh, kw = (k, k) if isinstance(k, int) else k
  return kh * kw * (cin // groups) * cout + (cout if bias else 0) + (2 * cout if bn else 0)


def dense(n_in, n_out):
  return n_in * n_out + n_out


def model(name, **cfg):
  return build_model(ml_collections.ConfigDict({'name': name, **cfg}))


def table(name, input_shape=None, **cfg):
  return parameter_table(model(name, **cfg), tuple(input_shape or MODELS.meta(name)['example_input_shape']))


def per_layer(t, depth=1):
  """Parameters per layer, the layer being the first `depth` components of the module path."""
  out: dict[str, int] = {}
  for r in t['layers']:
    key = '/'.join(r['name'].split('/')[:depth])
    out[key] = out.get(key, 0) + r['params']
  return out


def weights_only(t, prefix):
  return sum(math.prod(s) for r in t['layers'] if r['name'].startswith(prefix)
             for p, s in r['shapes'].items() if p == 'kernel')


def intermediates(name, input_shape=None, **cfg):
  """Shapes of what the model sows into 'intermediates' (eval_shape: no compute)."""
  m = model(name, **cfg)
  shape = tuple(input_shape or MODELS.meta(name)['example_input_shape'])
  variables = abstract_variables(m, shape)
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  _, state = jax.eval_shape(lambda v, x: m.apply(v, x, mutable=['intermediates']), variables, x)
  return {k: v[0].shape for k, v in state['intermediates'].items()}


# ---- LeNet-5 (C6) ------------------------------------------------------------------------------------------------

LENET5_PUBLISHED = {'C1': 156, 'S2': 12, 'C3': 1_516, 'S4': 32, 'C5': 48_120, 'F6': 10_164}   # seed 000, C6


def test_lenet5_per_layer_counts_are_the_papers():
  t = table('lenet5')
  closed = {'C1': conv(5, 1, 6), 'S2': 2 * 6, 'C3': 25 * 60 + 16, 'S4': 2 * 16, 'C5': conv(5, 16, 120),
            'F6': dense(120, 84)}
  assert per_layer(t) == LENET5_PUBLISHED == closed
  assert t['total_params'] == sum(LENET5_PUBLISHED.values()) == 60_000          # "≈60K"
  assert t['non_trainable'] == {'constants': 84 * 10}                           # the fixed RBF centres
  learned = table('lenet5', rbf_centres='learned')
  assert per_layer(learned)['output'] == 840 and learned['total_params'] == 60_840


def test_lenet5_summary_cli_shows_the_layers(capsys):
  assert cli.main(['summary', 'lenet5', '--json']) == 0
  out = json.loads(capsys.readouterr().out)
  assert out['total_params'] == 60_000
  assert {r['name']: r['params'] for r in out['layers']} == LENET5_PUBLISHED


def test_lenet5_connection_table_is_table_one():
  t = lenet.C3_TABLE
  assert t.shape == (6, 16) and t.sum() == 60 and len(lenet.C3_CONNECTIONS) == 60
  inputs = [set(np.flatnonzero(t[:, o])) for o in range(16)]
  cyclic = lambda s, n: any(s == {(a + j) % 6 for j in range(n)} for a in range(6))   # noqa: E731
  # §II-B: the first six C3 maps take 3 contiguous S2 maps, the next six 4 contiguous, the next three 4
  # discontinuous ones, the last all six.
  assert all(len(s) == 3 and cyclic(s, 3) for s in inputs[:6])
  assert all(len(s) == 4 and cyclic(s, 4) for s in inputs[6:12])
  assert all(len(s) == 4 and not cyclic(s, 4) for s in inputs[12:15])
  assert inputs[15] == set(range(6))


def test_lenet5_c3_is_the_sparse_convolution():
  # NumPy reference: C3 map o = Σ_{i connected to o} (S2 map i ⋆ its own 5×5 kernel) + b_o.
  layer = lenet.ConnectionTableConv(tuple(map(tuple, lenet.C3_TABLE.tolist())))
  x = np.random.default_rng(0).normal(size=(2, 14, 14, 6)).astype(np.float32)
  params = layer.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + 0.1, params)                              # non-zero biases
  y = np.asarray(layer.apply(params, x))
  k, b = np.asarray(params['params']['kernel']), np.asarray(params['params']['bias'])
  windows = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(1, 2))    # (2, 10, 10, 6, 5, 5)
  ref = np.zeros((2, 10, 10, 16), np.float32) + b
  for c, (i, o) in enumerate(lenet.C3_CONNECTIONS):
    ref[..., o] += np.einsum('nhwuv,uv->nhw', windows[..., i, :, :], k[:, :, c])
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_lenet5_output_is_minus_the_rbf_distance_to_the_digit_bitmaps():
  m = model('lenet5')
  x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 28, 28, 1)), jnp.float32)   # MNIST size, padded
  variables = jax.jit(m.init)(jax.random.PRNGKey(0), x)
  centres = np.asarray(variables['constants']['output']['centres'])
  assert centres.shape == (10, 84) and set(np.unique(centres)) == {-1.0, 1.0}
  np.testing.assert_array_equal(centres, lenet.DIGIT_BITMAPS.reshape(10, 84))
  logits, state = jax.jit(lambda v, x: m.apply(v, x, capture_intermediates=True, mutable=['intermediates']))(
      variables, x)
  f6 = np.asarray(state['intermediates']['F6']['__call__'][0])
  f6 = 1.7159 * np.tanh(2.0 / 3.0 * f6)                                         # F6's squashing
  np.testing.assert_allclose(np.asarray(logits), -((f6[:, None] - centres[None]) ** 2).sum(-1), rtol=1e-5)


def test_lenet5_learns():
  # The ten digit bitmaps themselves, doubled to 24×14 on a 28×28 field (paper: background −0.1, ink 1.175).
  rng = np.random.default_rng(0)
  y = np.arange(40) % 10
  img = np.kron(lenet.DIGIT_BITMAPS[y], np.ones((2, 2), np.float32))
  x = np.full((40, 28, 28, 1), -0.1, np.float32)
  x[:, 2:26, 7:21, 0] = np.where(img > 0, 1.175, -0.1)
  x += 0.1 * rng.normal(size=x.shape).astype(np.float32)
  losses = _train(model('lenet5'), x, y, steps=12)
  assert losses[0] == pytest.approx(math.log(10), abs=0.1)
  assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow  # the default tier keeps test_lenet5_learns
def test_small_allcnn_learns():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 16, 16, 3)).astype(np.float32)                       # 16 → 8 → 4 → 2 (valid 3×3)
  y = np.arange(16) % 2
  x[y == 1, ::4] += 2.0                                                          # class 1: horizontal stripes
  m = model('allcnn_c', widths=(8, 16), input_dropout_rate=0.0, dropout_rate=0.0, num_outputs=2)
  losses = _train(m, x, y, steps=10)
  assert losses[-1] < 0.6 * losses[0]


def _train(m, x, y, steps):
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 1e-3}), steps)
  state = jax.jit(lambda r: create_train_state(m, tx, r, x.shape[1:]))(jax.random.PRNGKey(0))   # one compile
  step = jax.jit(make_train_step(m, loss, tx))
  batch = {'inputs': x, 'targets': y.astype(np.int32)}
  losses = []
  for _ in range(steps):
    state, metrics = step(state, batch, jax.random.PRNGKey(1))
    losses.append(float(metrics['loss']))
  return losses


# ---- AlexNet (C7) and ZFNet --------------------------------------------------------------------------------------

# Seed 000's SuperVision table (weights, as printed: 35K … 4M); conv4's 1.3M is the UNGROUPED count (see alexnet.py).
ALEXNET_SLIDE = {'conv1': 35e3, 'conv2': 307e3, 'conv3': 884e3, 'conv4': 1.3e6, 'conv5': 442e3,
                 'fc6': 37e6, 'fc7': 16e6, 'fc8': 4e6}
ALEXNET_PAPER = 60_965_224          # two-GPU network, "60 million parameters" (Krizhevsky et al. 2012)
ALEXNET_TORCHVISION = 61_100_840    # torchvision.models.alexnet (one tower, Krizhevsky 2014)


def test_alexnet_per_layer_matches_the_course_table_and_closed_form():
  t = table('alexnet')
  closed = {'conv1': conv(11, 3, 96), 'conv2': conv(5, 96, 256, 2), 'conv3': conv(3, 256, 384),
            'conv4': conv(3, 384, 384, 2), 'conv5': conv(3, 384, 256, 2), 'fc6': dense(6 * 6 * 256, 4096),
            'fc7': dense(4096, 4096), 'fc8': dense(4096, 1000)}
  assert per_layer(t) == closed
  assert t['total_params'] == sum(closed.values()) == ALEXNET_PAPER
  assert abs(t['total_params'] - 60e6) / 60e6 < 0.02
  for name, published in ALEXNET_SLIDE.items():
    w = weights_only(t, name)
    if name == 'conv4':                      # the slide's conv4 is 3·3·384·384; the paper's is grouped (half)
      assert abs(conv(3, 384, 384, bias=False) - published) / published < 0.05 and 2 * w == conv(3, 384, 384,
                                                                                                  bias=False)
    else:
      assert abs(w - published) / published < 0.05, (name, w, published)


def test_alexnet_one_tower_is_torchvisions():
  t = table('alexnet', variant='one_tower')
  closed = (conv(11, 3, 64) + conv(5, 64, 192) + conv(3, 192, 384) + conv(3, 384, 256) + conv(3, 256, 256)
            + dense(9216, 4096) + dense(4096, 4096) + dense(4096, 1000))
  assert t['total_params'] == closed == ALEXNET_TORCHVISION


def test_alexnet_and_zfnet_map_sizes_are_the_papers():
  a = intermediates('alexnet')
  assert [a[f'conv{i}_out'][1:] for i in (1, 2, 5)] == [(55, 55, 96), (27, 27, 256), (13, 13, 256)]
  assert a['features'][1:] == (6, 6, 256)
  z = intermediates('zfnet')                                                     # Zeiler & Fergus Fig. 3
  assert [z[f'conv{i}_out'][1:] for i in (1, 2, 5)] == [(110, 110, 96), (26, 26, 256), (13, 13, 256)]
  assert z['features'][1:] == (6, 6, 256)
  closed = (conv(7, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) + conv(3, 384, 256)
            + dense(9216, 4096) + dense(4096, 4096) + dense(4096, 1000))
  assert table('zfnet')['total_params'] == closed == 62_357_608


# ---- VGG (C8) ----------------------------------------------------------------------------------------------------

# Simonyan & Zisserman Table 1, written out again: maps per conv ('M' = max pool; (1, c) = a 1×1 conv).
VGG_COLUMNS = {
    'A': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'B': [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'C': [64, 64, 'M', 128, 128, 'M', 256, 256, (1, 256), 'M', 512, 512, (1, 512), 'M', 512, 512, (1, 512), 'M'],
    'D': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    'E': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
}
VGG_NAMES = {'vgg11': 'A', 'vgg11_lrn': 'A', 'vgg13': 'B', 'vgg16_c': 'C', 'vgg16': 'D', 'vgg19': 'E'}
VGG_TORCHVISION = {'vgg11': 132_863_336, 'vgg13': 133_047_848, 'vgg16': 138_357_544, 'vgg19': 143_667_240,
                   'vgg11_bn': 132_868_840, 'vgg13_bn': 133_053_736, 'vgg16_bn': 138_365_992,
                   'vgg19_bn': 143_678_248}
VGG_TABLE2_MILLIONS = {'vgg11': 133, 'vgg11_lrn': 133, 'vgg13': 133, 'vgg16_c': 134, 'vgg16': 138, 'vgg19': 144}


def vgg_closed_form(column: str, bn: bool) -> int:
  total, cin = 0, 3
  for layer in VGG_COLUMNS[column]:
    if layer == 'M':
      continue
    k, c = layer if isinstance(layer, tuple) else (3, layer)
    total += conv(k, cin, c, bn=bn)
    cin = c
  return total + dense(7 * 7 * 512, 4096) + dense(4096, 4096) + dense(4096, 1000)


@pytest.mark.parametrize('name', sorted(VGG_TORCHVISION))
def test_vgg_matches_torchvision_exactly(name):
  base = name.removesuffix('_bn')
  closed = vgg_closed_form(VGG_NAMES[base], name.endswith('_bn'))
  assert table(name)['total_params'] == closed == VGG_TORCHVISION[name]


def test_vgg_table_two_in_millions():
  for name, millions in VGG_TABLE2_MILLIONS.items():
    n = table(name)['total_params']
    assert n == vgg_closed_form(VGG_NAMES[name], False)
    assert round(n / 1e6) == millions, (name, n)
  assert table('vgg16_c_bn')['total_params'] == vgg_closed_form('C', True)


def test_vgg_batch_norm_and_input_size():
  t = table('vgg16_bn')
  maps = sum(c for c in VGG_COLUMNS['D'] if c != 'M')
  assert t['total_params'] - table('vgg16')['total_params'] == 2 * maps         # γ, β per map
  assert t['non_trainable'] == {'batch_stats': 2 * maps}                         # running mean, variance
  assert intermediates('vgg16')['features'][1:] == (7, 7, 512)                  # 224 / 2⁵
  # The adaptive 7×7 pool: a CIFAR-sized input keeps every parameter.
  assert table('vgg16', input_shape=(32, 32, 3))['total_params'] == VGG_TORCHVISION['vgg16']


# ---- All-CNN and NIN ---------------------------------------------------------------------------------------------

def test_allcnn_counts():
  tail = conv(3, 192, 192) + conv(1, 192, 192) + conv(1, 192, 10)
  all_c = conv(3, 3, 96) + 2 * conv(3, 96, 96) + conv(3, 96, 192) + 2 * conv(3, 192, 192) + tail
  strided = conv(3, 3, 96) + conv(3, 96, 96) + conv(3, 96, 192) + conv(3, 192, 192) + tail
  assert table('allcnn_c')['total_params'] == all_c == 1_369_738
  assert table('convpool_cnn_c')['total_params'] == all_c                        # same layers, pooling kept
  assert table('strided_cnn_c')['total_params'] == strided == 954_730
  assert table('allcnn_c', variant='base')['total_params'] == strided            # model C
  assert round(all_c / 1e5) / 10 == 1.4 and 1.3e6 < all_c < 1.4e6              # Table 3's ≈1.4M; course ≈1.3M


def test_nin_count():
  closed = (conv(5, 3, 192) + conv(1, 192, 160) + conv(1, 160, 96) + conv(5, 96, 192) + 2 * conv(1, 192, 192)
            + conv(3, 192, 192) + conv(1, 192, 192) + conv(1, 192, 10))
  assert table('nin')['total_params'] == closed == 966_986


# ---- GoogLeNet (C9) and Inception v3 -----------------------------------------------------------------------------

# Szegedy et al. 2014 Table 1: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj, params in K).
GOOGLENET_TABLE1 = {
    'inception_3a': (64, 96, 128, 16, 32, 32, 159), 'inception_3b': (128, 128, 192, 32, 96, 64, 380),
    'inception_4a': (192, 96, 208, 16, 48, 64, 364), 'inception_4b': (160, 112, 224, 24, 64, 64, 437),
    'inception_4c': (128, 128, 256, 24, 64, 64, 463), 'inception_4d': (112, 144, 288, 32, 64, 64, 580),
    'inception_4e': (256, 160, 320, 32, 128, 128, 840), 'inception_5a': (256, 160, 320, 32, 128, 128, 1072),
    'inception_5b': (384, 192, 384, 48, 128, 128, 1388),
}
GOOGLENET_TABLE1_OTHER_K = {'conv1': 2.7, 'conv2': 112, 'fc': 1000}
GOOGLENET_TORCHVISION = 6_624_904
INCEPTION_V3_TORCHVISION = 27_161_264         # with the auxiliary classifier (torchvision's published num_params)


def googlenet_closed_form(bn=False, k5=5, bias=True):
  """(total, {block: weights}) from Table 1's columns."""
  c = lambda k, cin, cout: conv(k, cin, cout, bias=bias and not bn, bn=bn)   # noqa: E731
  total = c(7, 3, 64) + c(1, 64, 64) + c(3, 64, 192)
  weights, cin = {}, 192
  for name, (n1, r3, n3, r5, n5, pp, _) in GOOGLENET_TABLE1.items():
    weights[name] = cin * n1 + cin * r3 + 9 * r3 * n3 + cin * r5 + k5 * k5 * r5 * n5 + cin * pp
    total += c(1, cin, n1) + c(1, cin, r3) + c(3, r3, n3) + c(1, cin, r5) + c(k5, r5, n5) + c(1, cin, pp)
    cin = n1 + n3 + n5 + pp
  return total + dense(cin, 1000), weights


def test_googlenet_blocks_match_table_one():
  t = table('googlenet')
  total, block_weights = googlenet_closed_form()
  assert t['total_params'] == total == 6_998_552
  for name, row in GOOGLENET_TABLE1.items():
    w = weights_only(t, name + '/')
    assert w == block_weights[name]
    # The table: weights only, in K = 1,024, and approximate — within 1K for 3a, 3b, 4b; 7.5% off at worst (4c).
    tolerance = 1 / row[-1] if name in ('inception_3a', 'inception_3b', 'inception_4b') else 0.08
    assert abs(w / 1024 - row[-1]) / row[-1] <= tolerance, (name, w / 1024, row[-1])
  assert abs((weights_only(t, 'conv2_reduce') + weights_only(t, 'conv2/')) / 1024 - 112) < 1
  assert weights_only(t, 'fc') / 1024 == 1000
  assert weights_only(t, 'conv1') == 7 * 7 * 3 * 64                            # the table's 2.7K: an erratum
  column = sum(r[-1] for r in GOOGLENET_TABLE1.values()) + sum(GOOGLENET_TABLE1_OTHER_K.values())
  assert round(column / 1000, 1) == 6.8                                         # "6.8M parameters" (C9)
  ours = weights_only(t, '')                                                    # every kernel of the model
  assert abs(ours / 1024 - column) / column < 0.01                              # 6,826.4K vs 6,797.7K
  # 22 layers: conv1, conv2 (reduce + 3×3), nine blocks of depth 2, the linear layer.
  assert 1 + 2 + 2 * len(GOOGLENET_TABLE1) + 1 == 22


def test_googlenet_torchvision_variant_and_aux_heads():
  tv = table('googlenet', batch_norm=True, branch5x5_kernel=3, lrn=False)
  assert tv['total_params'] == googlenet_closed_form(bn=True, k5=3)[0] == GOOGLENET_TORCHVISION
  aux = table('googlenet', aux_heads=True)['total_params'] - table('googlenet')['total_params']
  head = lambda cin: conv(1, cin, 128) + dense(4 * 4 * 128, 1024) + dense(1024, 1000)   # noqa: E731
  assert aux == head(512) + head(528)
  # In training the aux logits are sown; the model returns the main logits only.
  m = model('googlenet', aux_heads=True, num_outputs=5)
  variables = abstract_variables(m, (224, 224, 3))
  x = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  out, state = jax.eval_shape(lambda v, x: m.apply(v, x, train=True, mutable=['intermediates'],
                                                   rngs={'dropout': jax.random.PRNGKey(0)}), variables, x)
  assert out.shape == (2, 5)
  assert {k: v[0].shape for k, v in state['intermediates'].items()} == {'aux1_logits': (2, 5), 'aux2_logits': (2, 5)}


def inception_v3_closed_form(aux: bool) -> int:
  b = lambda k, cin, cout: conv(k, cin, cout, bias=False, bn=True)             # noqa: E731
  n = b(3, 3, 32) + b(3, 32, 32) + b(3, 32, 64) + b(1, 64, 80) + b(3, 80, 192)
  cin = 192
  for pool in (32, 64, 64):                                                      # InceptionA
    n += b(1, cin, 64) + b(1, cin, 48) + b(5, 48, 64) + b(1, cin, 64) + b(3, 64, 96) + b(3, 96, 96) + b(1, cin, pool)
    cin = 64 + 64 + 96 + pool
  n += b(3, cin, 384) + b(1, cin, 64) + b(3, 64, 96) + b(3, 96, 96)              # InceptionB
  cin += 384 + 96
  for c7 in (128, 160, 160, 192):                                                # InceptionC
    n += (b(1, cin, 192) + b(1, cin, c7) + b((1, 7), c7, c7) + b((7, 1), c7, 192) + b(1, cin, c7)
          + 3 * b((7, 1), c7, c7) + b((1, 7), c7, 192) + b(1, cin, 192))
    cin = 4 * 192
  if aux:
    n += b(1, 768, 128) + b(5, 128, 768) + dense(768, 1000)
  n += b(1, cin, 192) + b(3, 192, 320) + b(1, cin, 192) + b((1, 7), 192, 192) + b((7, 1), 192, 192) + b(3, 192, 192)
  cin += 320 + 192                                                               # InceptionD
  for _ in range(2):                                                             # InceptionE
    n += (b(1, cin, 320) + b(1, cin, 384) + 2 * b((1, 3), 384, 384) + b(1, cin, 448) + b(3, 448, 384)
          + 2 * b((1, 3), 384, 384) + b(1, cin, 192))
    cin = 320 + 768 + 768 + 192
  return n + dense(cin, 1000)


def test_inception_v3_matches_torchvision():
  assert table('inception_v3', aux_heads=True)['total_params'] == inception_v3_closed_form(True) \
      == INCEPTION_V3_TORCHVISION
  assert table('inception_v3')['total_params'] == inception_v3_closed_form(False) == 23_834_568


# ---- every classic model: registration, output shape -------------------------------------------------------------

@pytest.mark.parametrize('name', CLASSIC)
def test_output_shape_and_registration(name):
  meta = MODELS.meta(name)
  shape = meta['example_input_shape']
  m = model(name)
  assert meta['description']
  assert bool(meta.get('heavy')) == (shape[0] >= 224)        # the ImageNet nets train in the slow tier only
  variables = abstract_variables(m, shape)
  out = jax.eval_shape(lambda v, x: m.apply(v, x), variables, jax.ShapeDtypeStruct((2, *shape), jnp.float32))
  assert out.shape == (2, m.num_outputs) and m.num_outputs == (10 if shape[0] <= 32 else 1000)
  assert count_params(variables['params']) == parameter_table(m, shape)['total_params']


@pytest.mark.slow
@pytest.mark.parametrize('name, cfg, shape', [
    ('googlenet', {'aux_heads': True, 'batch_norm': True}, (64, 64, 3)),
    ('inception_v3', {'aux_heads': True}, (75, 75, 3)),
    ('vgg11_bn', {'fc_width': 32}, (32, 32, 3)),
    ('vgg11_lrn', {'fc_width': 32}, (64, 64, 3)),
])
def test_variants_train_one_step(name, cfg, shape):
  # The paths the registry test (default configs) does not take: aux heads in training, batch statistics, LRN.
  m = model(name, num_outputs=3, **cfg)
  x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
  losses = _train(m, x, np.array([0, 1, 2, 0]), steps=1)
  assert np.isfinite(losses[0])
