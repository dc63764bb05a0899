"""The residual half of the CNN zoo (ResNet v1/v2, CIFAR ResNets, highway, DenseNet, MobileNetV2, Xception, the UvA
tutorial-5 CIFAR models) against published parameter counts and independent hand counts (claims C10, C15)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.losses import build_loss
from jaxdl.models import build_model, cifar_small, count_params, highway, resnet
from jaxdl.optim import build_optimizer
from jaxdl.registry import MODELS
from jaxdl.inspect.summary import abstract_variables, parameter_table
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step

jax.config.update('jax_enable_x64', False)


def bn(c):
  return 2 * c                                 # γ and β


def preact_hand_count(depth):
  """He et al. 2016b / fb.resnet.torch preresnet.lua, bias-free convs, written out from Table 1 (no flax)."""
  kind, counts = resnet.DEPTHS[depth]
  exp = 1 if kind == 'basic' else 4
  n = 7 * 7 * 3 * 64 + bn(64)                  # stem conv + BN
  c_in = 64
  for i, reps in enumerate(counts):
    w = 64 * 2 ** i
    for j in range(reps):
      if not (i == 0 and j == 0):
        n += bn(c_in)                          # the block's pre-activation BN
      if kind == 'basic':
        n += 9 * c_in * w + bn(w) + 9 * w * w
      else:
        n += c_in * w + bn(w) + 9 * w * w + bn(w) + w * 4 * w
      if c_in != w * exp:
        n += c_in * w * exp                    # 1×1 projection, no BN
      c_in = w * exp
  return n + bn(c_in) + c_in * 1000 + 1000     # final BN, fc


def cifar_hand_count(depth, shortcut):
  n_blocks = (depth - 2) // 6
  n = 27 * 16 + bn(16)
  c_in = 16
  for w in (16, 32, 64):
    for _ in range(n_blocks):
      n += 9 * c_in * w + bn(w) + 9 * w * w + bn(w)
      if c_in != w and shortcut == 'B':
        n += c_in * w + bn(w)
      c_in = w
  return n + 64 * 10 + 10


def highway_hand_count(d_in, width, depth, classes, coupled=True):
  gates = 2 if coupled else 3                  # H, T (, C): each width × width + width
  return d_in * width + width + depth * gates * (width * width + width) + width * classes + classes


# name → (published count, source).
PUBLISHED = {
    'resnet18': (11_689_512, 'torchvision'),
    'resnet34': (21_797_672, 'torchvision'),
    'resnet50': (25_557_032, 'torchvision'),
    'resnet101': (44_549_160, 'torchvision'),
    'resnet152': (60_192_808, 'torchvision'),
    'densenet121': (7_978_856, 'torchvision'),
    'mobilenet_v2': (3_504_872, 'torchvision'),
    'xception': (22_855_952, 'Keras applications, trainable'),
    'googlenet_cifar': (259_338, 'UvA tutorial 5'),
    'resnet_cifar_uva': (272_378, 'UvA tutorial 5'),
    'preact_resnet_cifar_uva': (272_250, 'UvA tutorial 5'),
    'densenet_cifar_uva': (239_146, 'UvA tutorial 5'),
}
PUBLISHED.update({f'preact_resnet{d}': (preact_hand_count(d), 'hand count')
                  for d in (18, 34, 50, 101, 152)})
PUBLISHED.update({f'resnet{d}': (cifar_hand_count(d, 'A'), 'hand count, option A')
                  for d in (20, 32, 44, 56, 110)})
PUBLISHED['highway'] = (highway_hand_count(64, 50, 10, 10), 'hand count')
OURS = sorted(PUBLISHED) + ['highway_conv']


def _model(name, **kw):
  return build_model(ml_collections.ConfigDict({'name': name, **kw}))


@pytest.mark.parametrize('name', OURS)
def test_parameter_count_equals_published_and_output_shape(name):
  meta = MODELS.meta(name)
  assert meta['description']
  shape = meta['example_input_shape']      # global average pooling: the count does not depend on the input size
  model = _model(name)
  total = parameter_table(model, shape)['total_params']
  variables = abstract_variables(model, shape, batch=2)
  assert count_params(variables['params']) == total
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, *shape)), train=False), variables)
  assert out.shape == (2, model.num_outputs)
  if name in PUBLISHED:
    assert total == PUBLISHED[name][0], PUBLISHED[name][1]


def test_paper_cifar_resnet_sizes_and_option_b():
  # He et al. 2015 §4.2: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M; ResNet-20 with projections (option B): 272,474.
  for depth, paper in zip((20, 32, 44, 56, 110), (0.27, 0.46, 0.66, 0.85, 1.7)):
    n = PUBLISHED[f'resnet{depth}'][0]
    assert round(n / 1e6, 2 if paper < 1 else 1) == paper
  assert PUBLISHED['resnet20'][0] == 269_722
  assert parameter_table(_model('resnet20', shortcut='B'), (32, 32, 3))['total_params'] == 272_474
  assert cifar_hand_count(20, 'B') == 272_474


def test_resnet50_23m_is_the_backbone_without_the_fc_head():
  # Seed 000: "ResNet-50 has 23M parameters" = 25,557,032 − (2048·1000 + 1000) = 23,508,032 (conv trunk).
  table = parameter_table(_model('resnet50'), (224, 224, 3))
  fc = sum(r['params'] for r in table['layers'] if r['name'] == 'fc')
  assert fc == 2_049_000
  assert table['total_params'] - fc == 23_508_032


def test_v1_and_v1_5_have_the_same_parameters():
  a = parameter_table(resnet.ResNet(depth=50, stride_in_1x1=True), (64, 64, 3))['total_params']
  assert a == resnet.TORCHVISION_PARAMS[50]


def test_scan_stacks_the_repeated_blocks():
  table = parameter_table(resnet.ResNet(depth=152), (64, 64, 3))
  shapes = {r['name']: r['shapes'] for r in table['layers']}
  assert shapes['layer3_rest/conv2']['kernel'] == [35, 3, 3, 256, 256]
  assert shapes['layer3_0/conv2']['kernel'] == [3, 3, 256, 256]
  unrolled = parameter_table(resnet.ResNet(depth=152, scan=False), (64, 64, 3))
  assert 'layer3_35/conv2' in {r['name'] for r in unrolled['layers']}
  assert unrolled['total_params'] == table['total_params']
  xc = {r['name']: r['shapes'] for r in parameter_table(_model('xception'), (64, 64, 3))['layers']}
  assert xc['middle/sep1/depthwise']['kernel'] == [8, 3, 3, 1, 728]


class _Stage(nn.Module):
  """One stage of 4 basic blocks through `resnet.run_stage` (scanned or unrolled), as the ResNets build it."""
  scan: bool

  @nn.compact
  def __call__(self, x, train=False):
    return resnet.run_stage(lambda first, name: resnet.BasicBlock(4, name=name), x, 4, train, 'layer', self.scan)


def _stack_rest(tree):
  """Unrolled layout (layer_1, layer_2, layer_3) → the scanned one (layer_rest: leaves stacked on axis 0)."""
  rest = [tree.pop(f'layer_{j}') for j in (1, 2, 3)]
  return {**tree, 'layer_rest': jax.tree.map(lambda *xs: jnp.stack(xs), *rest)}


def test_scanned_blocks_compute_the_unrolled_network():
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 4))
  v = _Stage(scan=False).init(jax.random.PRNGKey(0), x)
  v_scan = {k: _stack_rest(dict(c)) for k, c in v.items()}
  assert jax.tree.map(jnp.shape, v_scan) == jax.tree.map(jnp.shape, _Stage(scan=True).init(jax.random.PRNGKey(0), x))
  y, st = _Stage(scan=False).apply(v, x, train=True, mutable=['batch_stats'])
  y_scan, st_scan = _Stage(scan=True).apply(v_scan, x, train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(y_scan, y, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               st_scan['batch_stats'], _stack_rest(dict(st['batch_stats'])))


def test_option_a_shortcut_zero_pads_both_sides():
  x = jnp.arange(2 * 4 * 4 * 2, dtype=jnp.float32).reshape(2, 4, 4, 2)
  y = resnet.zero_pad_shortcut(x, 6, 2)
  assert y.shape == (2, 2, 2, 6)
  np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
  assert not np.any(y[..., :2]) and not np.any(y[..., 4:])


@pytest.mark.slow  # BN train/eval switching is unit-tested in tests/train/test_step.py
def test_small_cifar_resnet_trains_and_batch_norm_switches_statistics():
  rng = np.random.default_rng(0)
  batch = {'inputs': (3.0 + 2.0 * rng.normal(size=(32, 16, 16, 3))).astype(np.float32),
           'targets': rng.integers(0, 10, size=32).astype(np.int32)}
  model = resnet.CifarResNet(depth=8, width=8)
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 0.01}), 1)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), (16, 16, 3))
  evaluate = jax.jit(lambda s, x: model.apply({'params': s.params, **s.model_state}, x, train=False))
  eval_loss0 = float(loss(evaluate(state, batch['inputs']), batch)['loss'].mean())
  stem = jax.lax.conv_general_dilated(batch['inputs'], state.params['conv1']['kernel'], (1, 1), ((1, 1), (1, 1)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  step = jax.jit(make_train_step(model, loss, tx))
  losses = []
  for i in range(25):
    state, metrics = step(state, batch, jax.random.PRNGKey(0))
    losses.append(float(metrics['loss']))
    if i == 0:
      # Training normalises with the batch's statistics (not the initial running averages 0 and 1, which eval
      # uses) and moves the running mean 0.9·0 + 0.1·(batch mean of the stem conv's output).
      assert abs(losses[0] - eval_loss0) > 1e-3
      np.testing.assert_allclose(state.model_state['batch_stats']['bn1']['mean'], 0.1 * stem.mean(axis=(0, 1, 2)),
                                 rtol=1e-4, atol=1e-6)
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses
  # Eval uses the running averages: each example's output is independent of the rest of the batch.
  x, x_other = batch['inputs'], np.concatenate([batch['inputs'][:2], -batch['inputs'][2:]])
  np.testing.assert_allclose(evaluate(state, x_other)[:2], evaluate(state, x)[:2], rtol=1e-5, atol=1e-5)


def test_highway_layer_computes_the_gated_sum_with_negative_gate_bias():
  model = highway.HighwayNet(width=6, depth=2, num_outputs=3, gate_bias_init=-3.0, activation='tanh')
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
  v = model.init(jax.random.PRNGKey(1), x)
  assert set(v) == {'params'}                                  # gates are recorded on request, not at init
  p = v['params']
  np.testing.assert_array_equal(p['highway0']['T']['bias'], -3.0 * np.ones(6))
  h = np.tanh(np.asarray(x) @ p['plain']['kernel'] + p['plain']['bias'])
  for i in range(2):
    hw = p[f'highway{i}']
    t = 1 / (1 + np.exp(-(h @ hw['T']['kernel'] + hw['T']['bias'])))
    h = np.tanh(h @ hw['H']['kernel'] + hw['H']['bias']) * t + h * (1 - t)   # y = H·T + x·(1 − T)
  ref = h @ p['head']['kernel'] + p['head']['bias']
  out, inter = model.apply(v, x, mutable=['intermediates'])
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  assert float(inter['intermediates']['gate0'][0]) < 0.2       # T ≈ σ(−3): the layers start by carrying


def test_highway_with_closed_gates_is_the_identity_and_separate_carry_gate_counts():
  model = highway.HighwayNet(width=5, depth=4, num_outputs=2, gate_bias_init=-30.0)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 4))
  p = model.init(jax.random.PRNGKey(1), x)['params']
  feats = jax.nn.relu(x @ p['plain']['kernel'] + p['plain']['bias'])
  ref = feats @ p['head']['kernel'] + p['head']['bias']
  np.testing.assert_allclose(model.apply({'params': p}, x), ref, rtol=1e-5, atol=1e-5)
  un = highway.HighwayNet(width=5, depth=3, num_outputs=2, coupled=False)
  assert parameter_table(un, (4,))['total_params'] == highway_hand_count(4, 5, 3, 2, coupled=False)
  conv = {r['name']: r['shapes'] for r in parameter_table(highway.HighwayConvNet(), (32, 32, 3))['layers']}
  assert conv['highway0/T'] == {'kernel': [3, 3, 16, 16], 'bias': [16]}


def test_depthwise_convs_have_one_filter_per_channel():
  rows = {r['name']: r['shapes'] for r in parameter_table(_model('mobilenet_v2'), (64, 64, 3))['layers']}
  assert rows['block1/depthwise/conv']['kernel'] == [3, 3, 1, 96]      # 16 · 6 expanded channels
  assert rows['block1/expand/conv']['kernel'] == [1, 1, 16, 96]


def test_uva_resnet_shortcut_choices_explain_the_counts():
  # The tutorial's plain ResNet = option A ResNet-20 (269,722) + biased 1×1/2 projection convs without BN.
  assert 272_378 - cifar_hand_count(20, 'A') == (16 * 32 + 32) + (32 * 64 + 64)
  rows = {r['name']: r['shapes'] for r in parameter_table(cifar_small.UvaResNet(), (32, 32, 3))['layers']}
  assert set(rows['block2_0/downsample']) == {'kernel', 'bias'}


@pytest.mark.parametrize('kw', [{'name': 'resnet50', 'depth': 42}, {'name': 'resnet20', 'depth': 21},
                                {'name': 'resnet20', 'shortcut': 'C'}, {'name': 'highway', 'activation': 'prelu'}])
def test_bad_configs_are_user_errors(kw):
  with pytest.raises(UserError):
    _model(**kw)
