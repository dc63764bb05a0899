"""TDNN and GLU (jaxdl.nn.temporal) against NumPy loops over the output frames, padding invariance (each sequence of
a padded batch alone), causality by perturbation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.nn.temporal import GLU, TDNN

B, T, D, F = 3, 11, 4, 5
LENGTHS = np.array([11, 7, 2])


def _x(seed=0):
  return np.random.default_rng(seed).normal(size=(B, T, D)).astype(np.float32)


def np_tdnn(x, kernel, bias, lo, hi, dilation, stride):
  """y[j] = b + Σ_{k=lo..hi} W_k x[j·s + k·d], zero outside [0, T) (Waibel et al. 1989 as a convolution)."""
  x, kernel = x.astype(np.float64), np.asarray(kernel, np.float64)
  Tx = x.shape[1]
  T_out = -(-Tx // stride)
  y = np.tile(np.asarray(bias, np.float64), (x.shape[0], T_out, 1))
  for j in range(T_out):
    for i, k in enumerate(range(lo, hi + 1)):
      t = j * stride + k * dilation
      if 0 <= t < Tx:
        y[:, j] += x[:, t] @ kernel[i]
  return y


@pytest.mark.parametrize('context, dilation, stride', [((-2, 2), 1, 1), ((-1, 1), 3, 2), ((-3, 0), 1, 3)])
def test_tdnn_matches_numpy_and_is_padding_aware(context, dilation, stride):
  layer = TDNN(F, context=context, dilation=dilation, stride=stride)
  x = _x(1)
  params = jax.jit(layer.init)(jax.random.key(0), x)['params']
  params = jax.tree.map(lambda a: a + 0.1, params)          # a non-zero bias
  run = jax.jit(lambda p, x, n: layer.apply({'params': p}, x, n))
  y, _ = jax.jit(lambda p, x: layer.apply({'params': p}, x))(params, x)
  ref = np_tdnn(x, params['conv']['kernel'], params['conv']['bias'], *context, dilation, stride)
  np.testing.assert_allclose(y, ref, atol=1e-5)
  assert params['conv']['kernel'].shape == (context[1] - context[0] + 1, D, F)
  # padding: garbage in the padded frames changes nothing; each sequence as computed alone; zeros at padding
  xg = x.copy()
  for i, n in enumerate(LENGTHS):
    xg[i, n:] = 100.0
  y, out_len = run(params, xg, jnp.asarray(LENGTHS))
  assert list(np.asarray(out_len)) == [-(-n // stride) for n in LENGTHS]       # ⌈L/s⌉
  for i, n in enumerate(LENGTHS):
    m = -(-n // stride)
    alone = np_tdnn(x[i:i + 1, :n], params['conv']['kernel'], params['conv']['bias'], *context, dilation, stride)
    np.testing.assert_allclose(y[i, :m], alone[0], atol=1e-5)
    assert np.all(np.asarray(y)[i, m:] == 0.0)
  # paddings in, paddings out (subsampled with the stride)
  pad = (np.arange(T)[None] >= LENGTHS[:, None]).astype(np.float32)
  y2, out_pad = layer.apply({'params': params}, xg, paddings=jnp.asarray(pad))
  np.testing.assert_allclose(y2, y, atol=1e-6)
  np.testing.assert_array_equal(out_pad, pad[:, ::stride])


def np_glu(x, kernel, bias, causal, dilation):
  """(X∗W + b) ⊗ σ(X∗V + c) with kernel (k, D, 2F) = [W | V] (Dauphin et al. 2017, eq. 1)."""
  x, kernel, bias = x.astype(np.float64), np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
  k = kernel.shape[0]
  span = (k - 1) * dilation
  left = span if causal else span // 2
  h = np.tile(bias, (x.shape[0], x.shape[1], 1))
  for t in range(x.shape[1]):
    for i in range(k):
      s = t - left + i * dilation
      if 0 <= s < x.shape[1]:
        h[:, t] += x[:, s] @ kernel[i]
  a, g = np.split(h, 2, -1)
  return a / (1 + np.exp(-g))


@pytest.mark.parametrize('causal, kernel_size, dilation', [(True, 3, 1), (False, 4, 2)])
def test_glu_matches_numpy(causal, kernel_size, dilation):
  layer = GLU(F, kernel_size=kernel_size, dilation=dilation, causal=causal)
  x = _x(2)
  params = jax.jit(layer.init)(jax.random.key(0), x)['params']
  params = jax.tree.map(lambda a: a + 0.05, params)
  run = jax.jit(lambda p, x, n=None: layer.apply({'params': p}, x, n))
  y, none = run(params, x)
  assert none is None
  ref = np_glu(x, params['conv']['kernel'], params['conv']['bias'], causal, dilation)
  np.testing.assert_allclose(y, ref, atol=1e-5)
  x2 = x.copy()
  x2[:, 6:] += 1.0                                         # change the future of frame 5
  y2, _ = run(params, x2)
  changed = np.any(np.asarray(y2) != np.asarray(y), axis=(0, 2))
  if causal:
    assert not changed[:6].any() and changed[6:].all()     # y[t] depends on x[≤ t] only
  else:
    assert changed[:6].any()
  # padding
  xg = x.copy()
  for i, n in enumerate(LENGTHS):
    xg[i, n:] = -50.0
  yp, out_len = run(params, xg, jnp.asarray(LENGTHS))
  np.testing.assert_array_equal(out_len, LENGTHS)
  for i, n in enumerate(LENGTHS):
    alone = np_glu(x[i:i + 1, :n], params['conv']['kernel'], params['conv']['bias'], causal, dilation)
    np.testing.assert_allclose(yp[i, :n], alone[0], atol=1e-5)
    assert np.all(np.asarray(yp)[i, n:] == 0.0)


def test_bad_configurations_raise_user_errors():
  x = jnp.zeros((1, 4, 2))
  with pytest.raises(UserError, match='context'):
    TDNN(3, context=(1, 2)).init(jax.random.key(0), x)
  with pytest.raises(UserError, match='dilation'):
    TDNN(3, dilation=0).init(jax.random.key(0), x)
  with pytest.raises(UserError, match='batch, time, features'):
    GLU(3).init(jax.random.key(0), jnp.zeros((4, 2)))
  with pytest.raises(UserError, match='paddings'):
    GLU(3).init(jax.random.key(0), x, paddings=jnp.zeros((1, 5)))
