"""char_rnn (claim R1): the notes' parameter count, the forward pass against a NumPy transcription of the notes'
LSTM equations and against PyTorch with copied weights (where installed), and one-step sampling = the full pass."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.models import build_model, count_params
from jaxdl.models.char_rnn import CharRNN, expected_param_count

SMALL = dict(num_outputs=11, embed_dim=8, hidden_size=6, dense=(5,))


def _count(**fields) -> int:
  model = build_model(ml_collections.ConfigDict({'name': 'char_rnn', **fields}))
  return count_params(jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 60))))['params'])


def test_r1_parameter_count_is_the_notes():
  # Embedding 105·64 + 2 × (4·64·128 + 2·256) + 64·128 + 128 + 128·128 + 128 + 128·105 + 105, written out
  by_hand = 105 * 64 + 2 * (4 * 64 * (64 + 64) + 2 * 4 * 64) + (64 * 128 + 128) + (128 * 128 + 128) + (128 * 105 + 105)
  assert by_hand == 111_657
  assert _count(num_outputs=105) == 111_657


@pytest.mark.parametrize('fields', [dict(cell='gru'), dict(bidirectional=True), dict(two_bias=False)])
def test_variant_counts(fields):
  got = _count(num_outputs=105, **fields)
  if fields.get('two_bias') is False:          # one bias per gate: 2 layers × 4·64 fewer
    assert got == 111_657 - 2 * 4 * 64
  else:
    assert got == expected_param_count(105, **fields)


def test_bad_cell_is_a_user_error():
  with pytest.raises(UserError, match='cell'):
    build_model(ml_collections.ConfigDict({'name': 'char_rnn', 'cell': 'elman'}))


def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _numpy_forward(p, ids):
  """The notes' equations: i, f, o = σ(W^x x + W^h h + b), n = tanh(...), c = f⊙c + i⊙n, h = o⊙tanh(c)."""
  h = p['embed']['embedding'][ids].astype(np.float64)                # (B, T, E)
  B, T, _ = h.shape
  for layer in ('layer0', 'layer1'):
    w = p['rnn'][layer]['cell']
    H = w['kernel_hh'].shape[0]
    hs, ht, ct = [], np.zeros((B, H)), np.zeros((B, H))
    for t in range(T):
      z = h[:, t] @ w['kernel_ih'] + ht @ w['kernel_hh'] + w['bias_ih'] + w['bias_hh']
      i, f, o = _np_sigmoid(z[:, :H]), _np_sigmoid(z[:, H:2 * H]), _np_sigmoid(z[:, 3 * H:])
      n = np.tanh(z[:, 2 * H:3 * H])
      ct = f * ct + i * n
      ht = o * np.tanh(ct)
      hs.append(ht)
    h = np.stack(hs, 1)
  h = np.maximum(h @ p['dense0']['kernel'] + p['dense0']['bias'], 0)
  return h @ p['head']['kernel'] + p['head']['bias']


@pytest.fixture(scope='module')
def small():
  model = CharRNN(**SMALL)
  ids = np.random.default_rng(0).integers(0, 11, (3, 7)).astype(np.int32)
  variables = jax.jit(model.init)(jax.random.key(1), ids)        # jitted: one compilation, not one per op
  return model, variables, ids


def test_forward_equals_numpy_transcription(small):
  model, variables, ids = small
  p = jax.tree.map(np.asarray, variables['params'])
  np.testing.assert_allclose(np.asarray(jax.jit(model.apply)(variables, ids)), _numpy_forward(p, ids), rtol=1e-4,
                             atol=1e-5)


def test_pytorch_initialisation(small):
  _, variables, _ = small
  p = jax.tree.map(np.asarray, variables['params'])
  assert 0.7 < p['embed']['embedding'].std() < 1.3                       # nn.Embedding: N(0, 1)
  for leaf in jax.tree.leaves(p['rnn']):                                 # nn.LSTM: U(±1/√H), H = 6
    assert np.abs(leaf).max() <= 1 / np.sqrt(6) and leaf.std() > 0.5 / np.sqrt(3 * 6)
  for name, fan_in in (('dense0', 6), ('head', 5)):                      # nn.Linear: U(±1/√fan_in)
    for leaf in p[name].values():
      assert np.abs(leaf).max() <= 1 / np.sqrt(fan_in) and leaf.std() > 0.5 / np.sqrt(3 * fan_in)


def test_step_by_step_equals_the_full_pass(small):
  model, variables, ids = small
  full = jax.jit(model.apply)(variables, ids)
  step = jax.jit(lambda tokens, state: model.apply(variables, tokens, state, method=CharRNN.step))
  state, outs = model.zero_state(3), []
  for t in range(ids.shape[1]):
    logits, state = step(jnp.asarray(ids[:, t]), state)
    outs.append(logits)
  np.testing.assert_allclose(np.stack(outs, 1), full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('fields', [dict(cell='lstm'), dict(cell='gru'), dict(cell='lstm', bidirectional=True)])
def test_forward_equals_pytorch_with_copied_weights(fields):
  torch = pytest.importorskip('torch')
  from jaxdl.bench import torch_char_rnn  # the bench's twin: checked here to be the same model
  from jaxdl.nn.recurrent import params_from_torch
  cfg = {**SMALL, **fields}
  torch.manual_seed(0)
  twin = torch_char_rnn(cfg, (7,), 11).eval()
  model = CharRNN(**cfg)
  sd = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
  rnn = {}
  for layer in range(2):
    cells = {}
    for direction, suffix in (('forward', ''), ('backward', '_reverse')):
      if direction == 'backward' and not cfg.get('bidirectional'):
        continue
      cells[direction] = {'cell': params_from_torch(*(sd[f'rnn.{k}_l{layer}{suffix}'] for k in
                                                        ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')))}
    rnn[f'layer{layer}'] = cells if cfg.get('bidirectional') else cells['forward']
  params = {'embed': {'embedding': sd['embed.weight']}, 'rnn': rnn,
            'dense0': {'kernel': sd['head.0.weight'].T, 'bias': sd['head.0.bias']},
            'head': {'kernel': sd['head.2.weight'].T, 'bias': sd['head.2.bias']}}
  ours = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 7), jnp.int32)))['params']
  assert jax.tree.structure(ours) == jax.tree.structure(params)
  ids = np.random.default_rng(1).integers(0, 11, (3, 7))
  with torch.no_grad():
    want = twin(torch.from_numpy(ids)).numpy()
  got = jax.jit(model.apply)({'params': jax.tree.map(jnp.asarray, params)}, ids)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
  assert count_params(params) == sum(p.numel() for p in twin.parameters())


@pytest.mark.parametrize('workload', ['char_rnn', 'char_gru', 'char_bilstm'])
def test_bench_workloads_and_twins_have_the_same_size(workload):
  from jaxdl import bench
  wl = bench.WORKLOADS[workload]
  cfg = wl.make_config()
  fields = {k: v for k, v in cfg.model.to_dict().items() if k != 'name'}
  want = expected_param_count(105, cell=fields['cell'], bidirectional=fields['bidirectional'])
  assert _count(**fields) == want and (workload != 'char_rnn' or want == 111_657)
  b = bench.synthetic_batches(cfg.loss.name, (60,), 105, 32, n=1, tokens=wl.tokens)[0]
  assert b['inputs'].shape == b['targets'].shape == (32, 60) and b['inputs'].dtype == np.int32
  assert 0 <= b['inputs'].min() and b['inputs'].max() < 105
  torch = pytest.importorskip('torch')
  del torch
  assert sum(p.numel() for p in bench.torch_char_rnn(cfg.model, (60,), 105).parameters()) == want
