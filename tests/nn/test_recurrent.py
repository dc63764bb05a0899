"""Recurrent cells and layers (jaxdl.nn.recurrent) against independent references: NumPy transcriptions of the notes'
equations, torch.nn.LSTM / GRU / RNN with copied weights (outputs, final states and gradients, padded and
bidirectional), central finite differences in float64 (the hand-derived VJPs), per-sequence runs without padding
(padding invariance), PyTorch's parameter-count formula, numpy's eig (ESN spectral radius) and lstsq (ridge
readout)."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.nn import recurrent as R

B, T, D, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 1])


def _x(seed=0, shape=(B, T, D)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _init(module, *args):
  """module.init under jit (an eager init runs its scans op by op)."""
  return jax.jit(module.init)(jax.random.key(0), *args)


def _perturbed(params, seed=1, scale=0.3):
  """Random values in every parameter (zeros/ones inits would hide mistakes in LN gains, h0, ...)."""
  leaves, tree = jax.tree.flatten(params)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(tree, [jnp.asarray(l + scale * rng.normal(size=l.shape), l.dtype) for l in leaves])


# ------------------------------------------------------------------------------------------------ NumPy references
def sig(x):
  return 1.0 / (1.0 + np.exp(-x))


def ln(x, g, b=0.0, eps=1e-5):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * g + b


def np_lstm(p, xs, h, c, *, peep=False, layer_norm=False, clip=None, zone_h=0.0, zone_c=0.0):
  """The notes' LSTM (gate order i, f, n, o), one (B, T, D) batch, per time step."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  b = p['bias_ih'] + p['bias_hh'] if 'bias_ih' in p else p['bias']
  ys = []
  for t in range(xs.shape[1]):
    ax, ah = xs[:, t] @ p['kernel_ih'], h @ p['kernel_hh']
    if layer_norm:
      ax, ah = ln(ax, p['ln_ih_scale']), ln(ah, p['ln_hh_scale'])
    zi, zf, zn, zo = np.split(ax + ah + b, 4, axis=-1)
    if peep:
      zi, zf = zi + p['peephole_i'] * c, zf + p['peephole_f'] * c
    c_new = sig(zf) * c + sig(zi) * np.tanh(zn)
    if clip is not None:
      c_new = np.clip(c_new, -clip, clip)
    if peep:
      zo = zo + p['peephole_o'] * c_new
    c_out = ln(c_new, p['ln_c_scale'], p['ln_c_bias']) if layer_norm else c_new
    h_new = sig(zo) * np.tanh(c_out)
    c = zone_c * c + (1 - zone_c) * c_new                   # zoneout at evaluation: the expectation
    h = zone_h * h + (1 - zone_h) * h_new
    ys.append(h)
  return np.stack(ys, 1), (h, c)


def np_gru(p, xs, h, *, layer_norm=False):
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  if 'bias_ih' in p:
    bx, bh = p['bias_ih'], p['bias_hh']
  else:
    bx, bh = p['bias'], np.concatenate([np.zeros(2 * h.shape[-1]), p['bias_hn']])
  ys = []
  for t in range(xs.shape[1]):
    ax, ah = xs[:, t] @ p['kernel_ih'] + bx, h @ p['kernel_hh']
    if layer_norm:
      ah = ln(ah, p['ln_hh_scale'])
    ah = ah + bh
    xr, xz, xn = np.split(ax, 3, -1)
    hr, hz, hn = np.split(ah, 3, -1)
    r, z = sig(xr + hr), sig(xz + hz)
    n = np.tanh(xn + r * hn)                               # reset gate on W_n^h h + b_nh
    h = z * h + (1 - z) * n
    ys.append(h)
  return np.stack(ys, 1), h


ACT = {'tanh': np.tanh, 'relu': lambda a: np.maximum(a, 0), 'linear': lambda a: a,
       'sigmoid': sig}


def np_rnn(p, xs, h, y=None, *, act='tanh', out_act='linear', clip=None, layer_norm=False):
  """h(t) = f(W_in x + W_h h(t−1) + W_back y(t−1) + b_h), y(t) = g(W_out h + b_y) (row-vector convention)."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  b = p['bias_ih'] + p['bias_hh'] if 'bias_ih' in p else p['bias']
  outs = []
  for t in range(xs.shape[1]):
    a = xs[:, t] @ p['kernel_ih'] + b
    if 'kernel_hh' in p:
      a = a + h @ p['kernel_hh']
    if 'kernel_back' in p:
      a = a + y @ p['kernel_back']
    if layer_norm:
      a = ln(a, p['ln_scale'], p['ln_bias'])
    h = ACT[act](a)
    if clip is not None:
      h = np.clip(h, -clip, clip)
    if 'kernel_out' in p:
      y = ACT[out_act](h @ p['kernel_out'] + p['bias_out'])
      outs.append(y)
    else:
      outs.append(h)
  return np.stack(outs, 1), (h, y)


# ------------------------------------------------------------------------------------------------ cells vs NumPy
LSTM_CASES = {
    'plain': dict(),
    'one_bias_forget': dict(two_bias=False, forget_bias=1.0),
    'peepholes_clip': dict(peepholes=True, cell_clip=0.5),
    'layer_norm_zoneout': dict(layer_norm=True, zoneout=0.3, zoneout_cell=0.2),
}


@pytest.mark.parametrize('case', sorted(LSTM_CASES))
def test_lstm_matches_numpy_equations(case):
  kw = LSTM_CASES[case]
  cell = R.LSTMCell(H, learn_initial_state=True, **kw)
  xs = _x()
  params = _perturbed(_init(R.RNN(cell), xs)['params'])
  ys, (h, c) = jax.jit(lambda p, x: R.RNN(cell).apply({'params': p}, x))(params, xs)
  p = params['cell']
  h0 = np.broadcast_to(np.asarray(p['h0'], np.float64), (B, H))
  c0 = np.broadcast_to(np.asarray(p['c0'], np.float64), (B, H))
  ref, (rh, rc) = np_lstm(p, xs.astype(np.float64), h0, c0, peep=kw.get('peepholes', False),
                          layer_norm=kw.get('layer_norm', False), clip=kw.get('cell_clip'),
                          zone_h=kw.get('zoneout', 0.0), zone_c=kw.get('zoneout_cell', 0.0))
  np.testing.assert_allclose(ys, ref, atol=2e-5)
  np.testing.assert_allclose(h, rh, atol=2e-5)
  np.testing.assert_allclose(c, rc, atol=2e-5)
  # one step of the cell by itself is the notes' equations too
  step = cell.apply({'params': p}, (jnp.asarray(h0, jnp.float32), jnp.asarray(c0, jnp.float32)), xs[:, 0])
  np.testing.assert_allclose(step[1], ref[:, 0], atol=2e-5)


@pytest.mark.parametrize('two_bias, layer_norm', [(True, False), (False, False), (True, True)])
def test_gru_matches_numpy_equations(two_bias, layer_norm):
  cell = R.GRUCell(H, two_bias=two_bias, layer_norm=layer_norm)
  xs = _x(1)
  params = _perturbed(_init(R.RNN(cell), xs)['params'])
  ys, h = _jit_apply(R.RNN(cell))(params, xs)
  p = dict(params['cell'])
  if layer_norm:                                            # the input-side LN (outside the NumPy loop)
    xp = ln(xs.astype(np.float64) @ np.asarray(p['kernel_ih'], np.float64), np.asarray(p['ln_ih_scale']))
    p['kernel_ih'] = None
  ref, rh = (np_gru(p, xs.astype(np.float64), np.zeros((B, H))) if not layer_norm
             else _np_gru_ln(p, xp, np.zeros((B, H))))
  np.testing.assert_allclose(ys, ref, atol=2e-5)
  np.testing.assert_allclose(h, rh, atol=2e-5)


def _np_gru_ln(p, xp, h):
  """GRU with Ba et al.'s LN on both projections; xp = LN(x W^x) given."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items() if v is not None}
  ys = []
  for t in range(xp.shape[1]):
    ax = xp[:, t] + p['bias_ih']
    ah = ln(h @ p['kernel_hh'], p['ln_hh_scale']) + p['bias_hh']
    xr, xz, xn = np.split(ax, 3, -1)
    hr, hz, hn = np.split(ah, 3, -1)
    r, z = sig(xr + hr), sig(xz + hz)
    h = z * h + (1 - z) * np.tanh(xn + r * hn)
    ys.append(h)
  return np.stack(ys, 1), h


RNN_CASES = {
    'elman_tanh': (R.ElmanCell, dict()),
    'elman_clipped_relu': (R.ElmanCell, dict(activation='relu', clip=1.0, recurrent_init='identity')),
    'elman_layer_norm': (R.ElmanCell, dict(layer_norm=True, two_bias=False)),
    'jordan': (R.JordanCell, dict(out_features=2, output_activation='sigmoid')),
    'general': (R.RNNCell, dict(out_features=2, feedback=True)),
}


@pytest.mark.parametrize('case', sorted(RNN_CASES))
def test_rnn_cells_match_numpy_equations(case):
  cls, kw = RNN_CASES[case]
  cell = cls(H, **kw)
  xs = _x(2)
  params = _perturbed(_init(R.RNN(cell), xs)['params'])
  if kw.get('clip'):                                        # relu + identity: keep activations in the clip's range
    params = jax.tree.map(lambda a: a * 0.5, params)
  ys, _ = _jit_apply(R.RNN(cell))(params, xs)
  y0 = np.zeros((B, kw['out_features'])) if 'out_features' in kw else None
  ref, _ = np_rnn(params['cell'], xs.astype(np.float64), np.zeros((B, H)), y0, act=kw.get('activation', 'tanh'),
                  out_act=kw.get('output_activation', 'linear'), clip=kw.get('clip'),
                  layer_norm=kw.get('layer_norm', False))
  np.testing.assert_allclose(ys, ref, atol=2e-5)
  assert ('kernel_hh' in params['cell']) == (cls is not R.JordanCell)   # Jordan: W_h = 0
  assert ('kernel_back' in params['cell']) == (case in ('jordan', 'general'))


# ------------------------------------------------------------------------------------------------ PyTorch
def _torch_to_stacked(module, layers, bidirectional, two_bias=True):
  """torch.nn.LSTM/GRU/RNN state -> StackedRNN params (params_from_torch per layer and direction)."""
  sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
  out = {}
  for l in range(layers):
    dirs = {}
    for name, sfx in [('forward', ''), ('backward', '_reverse')][:2 if bidirectional else 1]:
      dirs[name] = {'cell': R.params_from_torch(sd[f'weight_ih_l{l}{sfx}'], sd[f'weight_hh_l{l}{sfx}'],
                                                sd[f'bias_ih_l{l}{sfx}'], sd[f'bias_hh_l{l}{sfx}'])}
    out[f'layer{l}'] = dirs if bidirectional else dirs['forward']
  return out


@pytest.mark.parametrize('kind', ['lstm', 'gru'])
def test_matches_torch_padded_bidirectional_stacked_with_gradients(kind):
  torch = pytest.importorskip('torch')
  torch.manual_seed(0)
  tmod = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU}[kind](D, H, num_layers=2, bidirectional=True, batch_first=True)
  cell = {'lstm': R.LSTMCell, 'gru': R.GRUCell}[kind](H)
  layer = R.StackedRNN(cell, num_layers=2, bidirectional=True)
  params = _torch_to_stacked(tmod, 2, True)
  assert sum(a.size for a in jax.tree.leaves(params)) == sum(p.numel() for p in tmod.parameters())
  xs = _x(3)
  w_out = np.random.default_rng(4).normal(size=(B, T, 2 * H)).astype(np.float32)

  # torch: packed (padded) sequences; loss = Σ outputs·w + Σ final h
  xt = torch.tensor(xs, requires_grad=True)
  packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
  out, state = tmod(packed)
  out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
  h_n = state[0] if kind == 'lstm' else state
  loss = (out * torch.tensor(w_out)).sum() + h_n.sum()
  loss.backward()

  def f(p, x):
    ys, carries = layer.apply({'params': p}, x, jnp.asarray(LENGTHS))
    hs = [c[0] if kind == 'lstm' else c for layer_c in carries for c in layer_c]   # (l0 fwd, l0 bwd, l1 fwd, l1 bwd)
    return (ys * w_out).sum() + sum(h.sum() for h in hs), (ys, hs)
  (jl, (ys, hs)), (gp, gx) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(params, xs)
  np.testing.assert_allclose(ys, out.detach().numpy(), atol=1e-5)
  np.testing.assert_allclose(np.stack(hs), h_n.detach().numpy(), atol=1e-5)
  assert np.all(np.asarray(ys)[1, 3:] == 0) and np.all(np.asarray(ys)[2, 1:] == 0)
  np.testing.assert_allclose(gx, xt.grad.numpy(), atol=1e-5)
  tgrads = _torch_to_stacked(_GradView(tmod), 2, True)
  for a, b in zip(jax.tree.leaves(gp), jax.tree.leaves(tgrads)):
    np.testing.assert_allclose(a, b, atol=2e-5)


class _GradView:
  """A module-like whose state_dict holds the parameters' .grad (to map torch gradients like its weights)."""

  def __init__(self, module):
    self.module = module

  def state_dict(self):
    return {k: p.grad for k, p in self.module.named_parameters()}


@pytest.mark.parametrize('nonlinearity', ['tanh', 'relu'])
def test_elman_matches_torch_rnn(nonlinearity):
  torch = pytest.importorskip('torch')
  torch.manual_seed(1)
  tmod = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True)
  cell = R.ElmanCell(H, activation=nonlinearity)
  params = _torch_to_stacked(tmod, 1, False)['layer0']
  xs = _x(5)
  out, h_n = tmod(torch.tensor(xs))
  ys, h = _jit_apply(R.RNN(cell))(params, xs)
  np.testing.assert_allclose(ys, out.detach().numpy(), atol=1e-5)
  np.testing.assert_allclose(h, h_n[0].detach().numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize('cell', [R.LSTMCell(3), R.GRUCell(3), R.ElmanCell(3, layer_norm=True)],
                         ids=['lstm', 'gru', 'elman_layer_norm'])
def test_gradients_match_finite_differences_float64(cell):
  """The hand-derived (LSTM, GRU) and generic (Elman) custom VJPs, with padding, both directions, central
  differences in float64 (jax.test_util.check_grads: a random direction, eps 1e-4)."""
  from jax.test_util import check_grads
  with jax.enable_x64(True):
    xs = jnp.asarray(_x(6, (2, 4, 2)), jnp.float64)
    lengths = jnp.array([4, 2])
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                          _init(R.Bidirectional(cell), xs, lengths)['params'])
    w = jnp.asarray(np.random.default_rng(7).normal(size=(2, 4, 6)))

    def f(p, x):
      ys, carries = R.Bidirectional(cell).apply({'params': p}, x, lengths)
      return (jnp.sin(ys) * w).sum() + sum(jnp.cos(c).sum() for c in jax.tree.leaves(carries))
    check_grads(jax.jit(f), (params, xs), order=1, modes=['rev'], eps=1e-4, atol=1e-6, rtol=1e-6)


def test_fused_kernels_equal_autodiff():
  """fused=True (hand-derived LSTM/GRU VJPs, the generic custom VJP for the Elman cell) and fused=False (lax.scan +
  autodiff): same gradients, with padding."""
  xs = _x(8)
  lengths = jnp.asarray(LENGTHS)
  for cell in [R.LSTMCell(H, learn_initial_state=True), R.GRUCell(H, two_bias=False), R.ElmanCell(H, zoneout=0.2)]:
    params = _perturbed(_init(R.RNN(cell), xs)['params'])

    def f(p, x, fused, cell=cell):
      ys, c = R.RNN(cell, fused=fused).apply({'params': p}, x, lengths)
      return (ys ** 2).sum() + sum((a ** 3).sum() for a in jax.tree.leaves(c))
    grad = jax.jit(jax.grad(f, argnums=(0, 1)), static_argnums=2)
    g = {fused: grad(params, xs, fused) for fused in (True, False)}
    for a, b in zip(jax.tree.leaves(g[True]), jax.tree.leaves(g[False])):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ padding
def _jit_apply(module):
  """module.apply, jitted (eager scans compile their body at every call: 3x slower than one jit per shape)."""
  return jax.jit(lambda params, *args, **kw: module.apply({'params': params}, *args, **kw))


def _alone(run, params, xs, i):
  return run(params, xs[i:i + 1, :LENGTHS[i]])


PADDING_CASES = {
    'lstm_forward': lambda: R.RNN(R.LSTMCell(H)),
    'elman_backward': lambda: R.RNN(R.ElmanCell(H), reverse=True),
    'lstm_layer_norm_backward': lambda: R.RNN(R.LSTMCell(H, layer_norm=True), reverse=True),
    'gru_bidirectional': lambda: R.Bidirectional(R.GRUCell(H)),
    'lstm_stacked_bidirectional_sum': lambda: R.StackedRNN(R.LSTMCell(H), num_layers=2, bidirectional=True,
                                                           merge='sum'),
    'flax_gru_cell': lambda: R.RNN(nn.GRUCell(H)),
}


@pytest.mark.parametrize('case', sorted(PADDING_CASES))
def test_padded_batch_equals_each_sequence_alone(case):
  module = PADDING_CASES[case]()
  xs = _x(9)
  xs_garbage = xs.copy()
  for i, n in enumerate(LENGTHS):                            # what the padding holds must not matter
    xs_garbage[i, n:] = 1e3
  params = _init(module, xs)['params']
  run = _jit_apply(module)
  ys, carry = run(params, xs_garbage, jnp.asarray(LENGTHS))
  for i, n in enumerate(LENGTHS):
    y_i, c_i = _alone(run, params, xs, i)
    np.testing.assert_allclose(ys[i, :n], y_i[0], atol=1e-6)
    assert np.all(np.asarray(ys)[i, n:] == 0.0)              # exactly zero at padded steps
    for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(c_i)):
      np.testing.assert_allclose(a[i], b[0], atol=1e-6)      # final carry = the last valid step's
  # no gradient reaches the inputs at padded positions
  g = jax.grad(lambda x: sum((a ** 2).sum() for a in jax.tree.leaves(run(params, x, jnp.asarray(LENGTHS)))))(xs)
  for i, n in enumerate(LENGTHS):
    assert np.all(np.asarray(g)[i, n:] == 0.0)
    assert np.any(np.asarray(g)[i, :n] != 0.0)


@pytest.mark.slow
def test_pyramidal_halves_time_and_keeps_padding_invariance():
  module = R.Pyramidal(R.GRUCell(H), num_layers=2)           # T = 6 -> 3
  xs = _x(10)
  params = _init(module, xs)['params']
  run = _jit_apply(module)
  ys, _ = run(params, xs, jnp.asarray(LENGTHS))
  out_len = np.asarray(module.output_lengths(jnp.asarray(LENGTHS)))
  assert ys.shape == (B, 3, 2 * H) and list(out_len) == [3, 2, 1]
  for i in range(B):
    y_i, _ = _alone(run, params, xs, i)
    np.testing.assert_allclose(ys[i, :out_len[i]], y_i[0], atol=1e-6)
    assert np.all(np.asarray(ys)[i, out_len[i]:] == 0.0)


def test_paddings_and_lengths_are_the_same_thing():
  pad = np.asarray(R.lengths_to_paddings(jnp.asarray(LENGTHS), T))
  np.testing.assert_array_equal(pad, np.arange(T)[None] >= LENGTHS[:, None])
  np.testing.assert_array_equal(R.resolve_lengths(T, None, jnp.asarray(pad)), LENGTHS)
  np.testing.assert_array_equal(R.paddings_to_lengths(jnp.asarray(pad)), LENGTHS)
  module = R.RNN(R.GRUCell(H))
  xs = _x(14)
  params = _init(module, xs)['params']
  run = _jit_apply(module)
  np.testing.assert_array_equal(run(params, xs, jnp.asarray(LENGTHS))[0], run(params, xs, paddings=jnp.asarray(pad))[0])


def test_pyramid_concat_pairs_consecutive_states():
  xs = np.arange(2 * 5 * 2, dtype=np.float32).reshape(2, 5, 2)
  out, lengths = R.pyramid_concat(jnp.asarray(xs), jnp.array([5, 2]))
  ref = np.concatenate([xs, np.zeros((2, 1, 2), np.float32)], 1).reshape(2, 3, 4)   # [h_2i, h_2i+1]
  np.testing.assert_array_equal(out, ref)
  assert list(np.asarray(lengths)) == [3, 1]


def test_flip_valid_reverses_only_the_valid_part():
  xs = np.arange(B * T, dtype=np.float32).reshape(B, T)
  out = np.asarray(R.flip_valid(jnp.asarray(xs), jnp.asarray(LENGTHS)))
  for i, n in enumerate(LENGTHS):
    np.testing.assert_array_equal(out[i], np.concatenate([xs[i, :n][::-1], xs[i, n:]]))


# ------------------------------------------------------------------------------------------------ counts, inits
def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


class CharRNN(nn.Module):
  """Claim R1's model: Embedding(105, 64), 2×LSTM(64), Linear 64→128, 128→128, 128→105."""

  @nn.compact
  def __call__(self, x):
    h = nn.Embed(105, 64)(x)
    h, _ = R.StackedRNN(R.LSTMCell(64), num_layers=2)(h)
    h = nn.relu(nn.Dense(128)(h))
    h = nn.relu(nn.Dense(128)(h))
    return nn.Dense(105)(h)


def test_parameter_counts_equal_pytorch():
  v = jax.eval_shape(lambda: CharRNN().init(jax.random.key(0), jnp.zeros((1, 3), jnp.int32)))
  assert _count(v['params']) == 111_657
  # G·H·(D + H) + 2·G·H per layer and direction (torch's formula), for every kind, depth and direction
  for cls, kind in [(R.LSTMCell, 'lstm'), (R.GRUCell, 'gru'), (R.ElmanCell, 'rnn')]:
    for layers, bi in [(1, False), (3, True)]:
      m = R.StackedRNN(cls(7), num_layers=layers, bidirectional=bi)
      v = jax.eval_shape(lambda m=m: m.init(jax.random.key(0), jnp.zeros((1, 2, 11))))
      n = R.torch_param_count(kind, 11, 7, layers, bi)
      assert _count(v['params']) == n
      assert n == (2 if bi else 1) * sum({'lstm': 4, 'gru': 3, 'rnn': 1}[kind] * 7 * (d + 7 + 2)
                                         for d in [11] + [(2 if bi else 1) * 7] * (layers - 1))
  # options that add parameters add exactly their own
  v = jax.eval_shape(lambda: R.RNN(R.LSTMCell(7, peepholes=True, two_bias=False)).init(
      jax.random.key(0), jnp.zeros((1, 2, 11))))
  assert _count(v['params']) == 4 * 7 * (11 + 7) + 4 * 7 + 3 * 7


def test_parameter_counts_equal_torch_modules():
  torch = pytest.importorskip('torch')
  for tcls, cls in [(torch.nn.LSTM, R.LSTMCell), (torch.nn.GRU, R.GRUCell), (torch.nn.RNN, R.ElmanCell)]:
    tm = tcls(11, 7, num_layers=2, bidirectional=True)
    m = R.StackedRNN(cls(7), num_layers=2, bidirectional=True)
    v = jax.eval_shape(lambda m=m: m.init(jax.random.key(0), jnp.zeros((1, 2, 11))))
    assert _count(v['params']) == sum(p.numel() for p in tm.parameters())


def test_initialisers():
  p = _init(R.RNN(R.LSTMCell(8, recurrent_init='orthogonal', recurrent_gain=2.0, forget_bias=1.0)),
            jnp.zeros((1, 2, 3)))['params']['cell']
  for g in range(4):                                         # every gate block orthogonal × gain
    blk = np.asarray(p['kernel_hh'][:, 8 * g:8 * (g + 1)], np.float64)
    np.testing.assert_allclose(blk.T @ blk, 4.0 * np.eye(8), atol=1e-5)
  assert np.all(np.asarray(p['bias_ih'][8:16]) == 1.0) and np.all(np.asarray(p['bias_hh'][8:16]) == 0.0)
  assert np.all(np.abs(np.asarray(p['kernel_ih'])) <= 1 / math.sqrt(8))    # PyTorch's U(±1/√H)
  assert np.abs(np.asarray(p['kernel_ih'])).max() > 0.8 / math.sqrt(8)
  p = _init(R.RNN(R.ElmanCell(6, recurrent_init='identity', activation='relu')),
            jnp.zeros((1, 2, 3)))['params']['cell']
  np.testing.assert_array_equal(p['kernel_hh'], np.eye(6))   # IRNN (Le et al. 2015)
  with pytest.raises(UserError, match='recurrent_init'):
    _init(R.RNN(R.GRUCell(4, recurrent_init='xavier')), jnp.zeros((1, 2, 3)))
  with pytest.raises(UserError, match='activation'):
    _init(R.RNN(R.ElmanCell(4, activation='swish')), jnp.zeros((1, 2, 3)))


# ------------------------------------------------------------------------------------------------ train-time noise
def test_zoneout_and_variational_dropout_in_training():
  cell = R.LSTMCell(64, zoneout=0.3, input_dropout=0.5, recurrent_dropout=0.25)
  xs = _x(11, (8, 10, 6))
  module = R.RNN(cell)
  params = _init(module, xs)['params']
  run = jax.jit(lambda p, x, key: module.apply({'params': p}, x, train=True, rngs={'dropout': key}))
  ys_a, _ = run(params, xs, jax.random.key(1))
  ys_b, _ = run(params, xs, jax.random.key(1))
  ys_c, _ = run(params, xs, jax.random.key(2))
  ys_eval, _ = _jit_apply(module)(params, xs)
  np.testing.assert_array_equal(ys_a, ys_b)                 # the rng is the only source of noise
  assert not np.allclose(ys_a, ys_c) and not np.allclose(ys_a, ys_eval)
  # zoneout: a unit either keeps its previous value or takes a new one; about 30% keep
  ys = np.asarray(ys_a)
  kept = np.mean(ys[:, 1:] == ys[:, :-1])
  assert 0.22 < kept < 0.38
  # one dropout mask per sequence (Gal & Ghahramani 2016): constant over time, entries 0 or 1/(1 − p)
  seq, steps = cell.apply({'params': params['cell']}, 8, 10, 6, method='sample_noise',
                          rngs={'dropout': jax.random.key(3)})
  assert seq['in_mask'].shape == (8, 6) and seq['rec_mask'].shape == (8, 64) and steps['zone_h'].shape == (10, 8, 64)
  assert set(np.unique(np.asarray(seq['in_mask']))) <= {0.0, 2.0}
  assert set(np.unique(np.asarray(seq['rec_mask']))) <= {0.0, np.float32(1 / 0.75)}
  with pytest.raises(UserError, match='zoneout'):
    _init(R.RNN(R.GRUCell(4, zoneout=1.5)), jnp.zeros((1, 2, 3)))


def test_bad_inputs_raise_user_errors():
  m = R.RNN(R.GRUCell(4))
  with pytest.raises(UserError, match='batch, time, features'):
    m.init(jax.random.key(0), jnp.zeros((2, 3)))
  with pytest.raises(UserError, match='paddings'):
    m.init(jax.random.key(0), jnp.zeros((2, 3, 1)), paddings=jnp.zeros((2, 4)))
  with pytest.raises(UserError, match='merge'):
    _init(R.Bidirectional(R.GRUCell(4), merge='max'), jnp.zeros((2, 3, 1)))


# ------------------------------------------------------------------------------------------------ echo-state network
def test_esn_reservoir_spectral_radius_leaky_update_and_fixed_weights():
  esn = R.EchoStateNetwork(30, spectral_radius=0.8, leak_rate=0.3, sparsity=0.7, input_scaling=0.5, bias_scaling=0.2)
  u = _x(12, (2, 15, 3))
  v = _init(esn, u)
  assert 'params' not in v or not jax.tree.leaves(v['params'])   # nothing trainable
  res = {k: np.asarray(a, np.float64) for k, a in v['reservoir'].items()}
  assert np.max(np.abs(np.linalg.eigvals(res['kernel_hh']))) == pytest.approx(0.8, rel=1e-5)
  assert 0.55 < np.mean(res['kernel_hh'] == 0) < 0.85
  assert np.abs(res['kernel_in']).max() <= 0.5
  run = jax.jit(lambda v, u, *a: esn.apply(v, u, *a))
  states, final = run(v, u)
  x = np.zeros((2, 30))
  for t in range(15):                                        # x(t) = (1 − a) x(t−1) + a tanh(W_in u + W x + b)
    x = 0.7 * x + 0.3 * np.tanh(u[:, t] @ res['kernel_in'] + x @ res['kernel_hh'] + res['bias'])
    np.testing.assert_allclose(states[:, t], x, atol=1e-5)
  # padding as in the RNN layers
  s_pad, f_pad = run(v, u, jnp.array([15, 9]))
  np.testing.assert_allclose(f_pad[1], run(v, u[1:, :9])[1][0], atol=1e-6)
  assert np.all(np.asarray(s_pad)[1, 9:] == 0)
  # a gradient-trained readout is the only parameter
  esn_ro = R.EchoStateNetwork(30, readout_features=2)
  v = _init(esn_ro, u)
  assert _count(v['params']) == 30 * 2 + 2
  loss = lambda p: (esn_ro.apply({'params': p, 'reservoir': v['reservoir']}, u)[0] ** 2).sum()
  g = jax.jit(jax.grad(loss))(v['params'])
  assert jax.tree.structure(g) == jax.tree.structure(v['params'])


def test_fit_readout_equals_ridge_lstsq():
  rng = np.random.default_rng(13)
  states = rng.normal(size=(2, 40, 7)).astype(np.float32)
  targets = rng.normal(size=(2, 40, 3)).astype(np.float32)
  mask = np.ones((2, 40), np.float32)
  mask[1, 30:] = 0
  ridge, washout = 0.5, 5
  W, b = R.fit_readout(jnp.asarray(states), jnp.asarray(targets), ridge=ridge, washout=washout, mask=jnp.asarray(mask))
  keep = mask.astype(bool)
  keep[:, :washout] = False
  X = np.concatenate([np.ones((keep.sum(), 1)), states[keep].astype(np.float64)], 1)
  Y = targets[keep].astype(np.float64)
  A = np.concatenate([X, math.sqrt(ridge) * np.eye(8)])
  ref = np.linalg.lstsq(A, np.concatenate([Y, np.zeros((8, 3))]), rcond=None)[0]
  np.testing.assert_allclose(b, ref[0], atol=2e-4)
  np.testing.assert_allclose(W, ref[1:], atol=2e-4)
  # the same minimiser as the normal equations (X'X + λI) w = X'Y
  np.testing.assert_allclose(np.linalg.solve(X.T @ X + ridge * np.eye(8), X.T @ Y), ref, atol=1e-8)
  np.testing.assert_allclose(R.apply_readout(states, W, b), states @ np.asarray(W) + np.asarray(b), atol=1e-5)
