"""Visualisation on tiny hand-built flax classifiers: saliency against finite differences, guided backpropagation
against a NumPy backward pass with the guided ReLU rule, Grad-CAM against a NumPy convolution, α and map, and the
figures (PNG files)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.inspect import visualize
from jaxdl.nn import activations
from jaxdl.errors import UserError

RNG = np.random.default_rng(0)


class TinyCNN(nn.Module):
  """conv(3×3, 4) -> act -> conv(3×3, 5) 'feat' -> ReLU -> global mean -> Dense(3)."""
  act: str = 'relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(4, (3, 3), name='conv0')(x)
    x = jnp.tanh(x) if self.act == 'tanh' else nn.relu(x)
    x = nn.Conv(5, (3, 3), name='feat')(x)
    x = nn.relu(x)
    return nn.Dense(3, name='head')(jnp.mean(x, axis=(1, 2)))


class MLP(nn.Module):
  """x -> Dense(h) -> ReLU (spelled several ways) -> ... -> Dense(K)."""
  hidden: tuple = (6,)
  spelling: str = 'nn.relu'

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    for i, h in enumerate(self.hidden):
      x = nn.Dense(h, name=f'dense{i}')(x)
      if self.spelling == 'nn.relu':
        x = nn.relu(x)
      elif self.spelling == 'maximum':
        x = jnp.maximum(x, 0.0)
      elif self.spelling == 'maximum_zeros':
        x = jnp.maximum(jnp.zeros_like(x), x)
      else:
        x = activations.Activation('relu')(x)
    return nn.Dense(3, name='head')(x)


X = RNG.normal(size=(3, 6, 6, 2)).astype(np.float32)


def _init(model, x):
  return model.init(jax.random.key(0), jnp.asarray(x))


def test_saliency_is_the_max_abs_finite_difference_gradient():
  model = TinyCNN(act='tanh')
  v = _init(model, X)
  target = np.array([0, 2, 1])
  sal = np.asarray(visualize.saliency(model, v, X, target))
  grad = np.asarray(visualize.input_gradient(model, v, X, target))
  f = lambda x: np.asarray(model.apply(v, jnp.asarray(x, jnp.float32)), np.float64)
  eps = 1e-2
  d = X[0].size
  steps = eps * np.eye(d, dtype=np.float32).reshape(d, 1, *X.shape[1:])      # every coordinate, all examples at once
  up = f((X[None] + steps).reshape(-1, *X.shape[1:])).reshape(d, 3, -1)
  down = f((X[None] - steps).reshape(-1, *X.shape[1:])).reshape(d, 3, -1)
  fd = ((up - down)[:, np.arange(3), target] / (2 * eps)).T.reshape(X.shape)   # central differences
  np.testing.assert_allclose(grad, fd, atol=2e-3, rtol=2e-2)
  np.testing.assert_allclose(sal, np.abs(fd).max(-1), atol=2e-3, rtol=2e-2)
  assert sal.shape == (3, 6, 6)
  # target None = the predicted class
  pred = np.argmax(f(X), -1)
  np.testing.assert_allclose(visualize.saliency(model, v, X), visualize.saliency(model, v, X, pred), atol=1e-6)


def _guided_numpy(x, layers, head, c):
  """Forward through Dense+ReLU layers, then the guided backward pass R_l = (f_l > 0)(R_{l+1} > 0) R_{l+1}."""
  h = x.reshape(len(x), -1).astype(np.float64)
  pres = []
  for w, b in layers:
    pre = h @ w + b
    pres.append(pre)
    h = np.maximum(pre, 0)
  g = np.asarray(head)[:, c].T            # ∂y_c/∂h_last per example (B, h)
  for (w, _), pre in zip(layers[::-1], pres[::-1]):
    g = g * (pre > 0) * (g > 0)
    g = g @ w.T
  return g.reshape(x.shape)


@pytest.mark.parametrize('spelling', ['nn.relu', 'maximum', 'maximum_zeros', 'jaxdl.nn.activations'])
def test_guided_backprop_one_hidden_layer_by_hand(spelling):
  x = RNG.normal(size=(5, 4)).astype(np.float32)
  model = MLP(hidden=(6,), spelling=spelling)
  v = _init(model, x)
  p = v['params']
  w1, b1, w2 = (np.asarray(a, np.float64) for a in (p['dense0']['kernel'], p['dense0']['bias'], p['head']['kernel']))
  c = np.array([0, 1, 2, 1, 0])
  # by hand: R_x = W1 [(x W1 + b1 > 0) · (W2[:, c] > 0) · W2[:, c]]
  pre = x @ w1 + b1
  g = w2[:, c].T
  ref = (g * (pre > 0) * (g > 0)) @ w1.T
  out = np.asarray(visualize.guided_backprop(model, v, x, c))
  np.testing.assert_allclose(out, ref, atol=1e-5)
  plain = np.asarray(visualize.input_gradient(model, v, x, c))
  np.testing.assert_allclose(plain, (g * (pre > 0)) @ w1.T, atol=1e-5)
  assert not np.allclose(out, plain, atol=1e-3)


def test_guided_backprop_two_hidden_layers_and_jit():
  x = RNG.normal(size=(4, 2, 3, 1)).astype(np.float32)
  model = MLP(hidden=(7, 5))
  v = _init(model, x)
  p = v['params']
  layers = [(np.asarray(p[f'dense{i}']['kernel'], np.float64), np.asarray(p[f'dense{i}']['bias'], np.float64))
            for i in range(2)]
  c = np.array([2, 0, 1, 2])
  ref = _guided_numpy(x, layers, np.asarray(p['head']['kernel'], np.float64), c)
  np.testing.assert_allclose(visualize.guided_backprop(model, v, x, c), ref, atol=1e-5)
  jitted = jax.jit(lambda v, x: visualize.guided_backprop(model, v, x, c))(v, x)
  np.testing.assert_allclose(jitted, ref, atol=1e-5)
  # the forward values do not change
  f = lambda x: model.apply(v, x)
  np.testing.assert_allclose(visualize.with_guided_relus(f)(jnp.asarray(x)), f(jnp.asarray(x)), atol=1e-6)


def _conv_same(x, k, b):
  """NumPy cross-correlation with SAME zero padding (flax's nn.Conv): x (B, H, W, I), k (kh, kw, I, O)."""
  kh, kw = k.shape[:2]
  xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  out = np.zeros(x.shape[:3] + (k.shape[-1],))
  for i in range(kh):
    for j in range(kw):
      out += np.einsum('bhwi,io->bhwo', xp[:, i:i + x.shape[1], j:j + x.shape[2]], k[i, j])
  return out + b


def test_grad_cam_matches_numpy():
  model = TinyCNN()
  v = _init(model, X)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), v['params'])
  h = np.maximum(_conv_same(X.astype(np.float64), p['conv0']['kernel'], p['conv0']['bias']), 0)
  a = _conv_same(h, p['feat']['kernel'], p['feat']['bias'])                 # A: the 'feat' conv's output
  logits = np.maximum(a, 0).mean((1, 2)) @ p['head']['kernel'] + p['head']['bias']
  c = np.argmax(logits, -1)
  # y_c = Σ_k W[k, c] mean_ij ReLU(A^k_ij) + b_c  =>  ∂y_c/∂A^k_ij = W[k, c] [A^k_ij > 0] / (h w)
  grads = p['head']['kernel'][:, c].T[:, None, None, :] * (a > 0) / (6 * 6)
  alpha = grads.mean((1, 2))
  cam = np.maximum(np.einsum('bk,bhwk->bhw', alpha, a), 0)

  res = visualize.grad_cam(model, v, X, layer='feat')
  assert res.layer == 'feat'
  np.testing.assert_array_equal(res.target, c)
  np.testing.assert_allclose(res.activations, a, atol=1e-4)
  np.testing.assert_allclose(res.weights, alpha, atol=1e-6)
  np.testing.assert_allclose(res.cam, cam, atol=1e-5)
  np.testing.assert_allclose(res.heatmap, cam, atol=1e-5)       # same size: the resize is the identity
  # the default layer is the last nn.Conv
  np.testing.assert_allclose(visualize.grad_cam(model, v, X).cam, cam, atol=1e-5)
  assert visualize.conv_layers(model, v, X) == ['conv0', 'feat']
  np.testing.assert_allclose(visualize.feature_maps(model, v, X, 'feat'), a, atol=1e-4)


class StridedCNN(nn.Module):
  """conv(3×3, stride 2) 'feat' -> ReLU -> global mean -> Dense: a 3×3 map for a 6×6 input."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Conv(4, (3, 3), strides=2, name='feat')(x))
    return nn.Dense(3, name='head')(jnp.mean(x, axis=(1, 2)))


def _bilinear_up(m, size):
  """Half-pixel-centre bilinear resize of (B, h, w) maps to (B, size, size), clamped at the borders."""
  def axis(n):
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, pos - lo
  (r0, r1, fr), (c0, c1, fc) = axis(m.shape[1]), axis(m.shape[2])
  rows = m[:, r0] * (1 - fr)[None, :, None] + m[:, r1] * fr[None, :, None]
  return rows[:, :, c0] * (1 - fc) + rows[:, :, c1] * fc


def test_grad_cam_upsamples_to_the_input_and_guided_grad_cam():
  model = StridedCNN()
  v = _init(model, X)
  res = visualize.grad_cam(model, v, X, target=1)
  assert res.cam.shape == (3, 3, 3) and res.heatmap.shape == (3, 6, 6)
  np.testing.assert_allclose(res.heatmap, _bilinear_up(np.asarray(res.cam, np.float64), 6), atol=1e-5)
  assert np.asarray(res.heatmap).min() >= 0
  ggc = visualize.guided_grad_cam(model, v, X, target=1)
  np.testing.assert_allclose(ggc, visualize.guided_backprop(model, v, X, 1) * res.heatmap[..., None], atol=1e-6)


def test_layer_errors_are_user_errors():
  model = TinyCNN()
  v = _init(model, X)
  with pytest.raises(UserError, match="no layer 'nope'.*conv0, feat"):
    visualize.grad_cam(model, v, X, layer='nope')
  with pytest.raises(UserError, match='feature maps'):
    visualize.grad_cam(model, v, X, layer='head')
  mlp = MLP()
  with pytest.raises(UserError, match='no nn.Conv'):
    visualize.grad_cam(mlp, _init(mlp, X), X)
  outputs = visualize.layer_outputs(model, v, X)
  assert outputs['feat'] == ('Conv', (3, 6, 6, 5)) and outputs[''] == ('TinyCNN', (3, 3))


def _is_png(path):
  with open(path, 'rb') as f:
    return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_filters_and_grids_write_pngs(tmp_path):
  class RGBNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
      x = nn.relu(nn.Conv(6, (5, 5), name='stem')(x))
      x = nn.relu(nn.Conv(4, (3, 3), name='conv1')(x))
      return nn.Dense(3)(x.mean((1, 2)))

  x = RNG.uniform(size=(2, 8, 8, 3)).astype(np.float32)
  model = RGBNet()
  v = _init(model, x)
  name, kernel = visualize.first_conv(model, v, x)
  assert name == 'stem' and kernel.shape == (5, 5, 3, 6)
  assert set(visualize.conv_kernels(v['params'])) == {'stem', 'conv1'}
  f = visualize.normalize_filters(kernel)
  assert f.shape == (6, 5, 5, 3)
  np.testing.assert_allclose(f.min((1, 2, 3)), 0.0)
  np.testing.assert_allclose(f.max((1, 2, 3)), 1.0)
  assert _is_png(visualize.plot_first_layer_filters(model, v, x, tmp_path / 'filters.png'))
  assert _is_png(visualize.plot_filters(np.asarray(v['params']['conv1']['kernel']), tmp_path / 'k1.png'))
  maps = {'saliency': visualize.saliency(model, v, x), 'guided backprop': visualize.guided_backprop(model, v, x),
          'Grad-CAM': visualize.grad_cam(model, v, x).heatmap}
  assert _is_png(visualize.plot_maps(x, maps, tmp_path / 'maps.png', titles=['a', 'b']))
  grey = X[:2, ..., :1]
  tiny = TinyCNN()
  tv = _init(tiny, X)
  assert _is_png(visualize.plot_maps(grey, visualize.grad_cam(tiny, tv, X[:2]).heatmap, tmp_path / 'one.png',
                                     overlay=False))
  assert _is_png(visualize.plot_feature_maps(visualize.feature_maps(model, v, x, 'conv1')[0], tmp_path / 'fm.png'))
  with pytest.raises(UserError, match='upsample'):
    visualize.plot_maps(x, {'cam': visualize.grad_cam(model, v, x).cam[:, :4, :4]}, tmp_path / 'bad.png')
