"""Encoder–decoder models (jaxdl/models/seq2seq.py): teacher-forced logits against a NumPy transcription of the
equations, padding invariance, generation (greedy = beam width 1, EOS handling, cached = recomputed), attention
weights over valid positions, and the Sutskever preset's parameter count against the formula."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.models import build_model, count_params
from jaxdl.models.seq2seq import Seq2Seq, TransformerSeq2Seq, seq2seq_param_count
from jaxdl.text.vocab import BOS, EOS, PAD

V = 9
LAYERS = 1   # the NumPy reference runs any number; one layer keeps the default tier's compiles short


def _batch():
  rng = np.random.default_rng(0)
  x = rng.integers(4, V, (3, 6)).astype(np.int32)
  pads = np.zeros((3, 6), np.float32)
  pads[1, 4:] = 1.0                                      # example 1 has 4 valid source tokens
  pads[2, 2:] = 1.0
  x[pads > 0] = PAD
  d = np.concatenate([np.full((3, 1), BOS), rng.integers(4, V, (3, 4))], 1).astype(np.int32)
  return x, pads, d


@pytest.fixture(scope='module')
def att():
  m = Seq2Seq(num_outputs=V, hidden_size=6, embed_dim=4, num_layers=LAYERS, attention='additive', reverse_source=True,
              init_scale=0.5, max_decode_length=5)
  x, pads, d = _batch()
  return m, jax.jit(m.init)(jax.random.key(0), x, pads, d)


# ------------------------------------------------------------------------------------------------ NumPy reference
def _np_lstm(p, xs, h, c):
  out = []
  for x in xs:
    z = x @ p['kernel_ih'] + h @ p['kernel_hh'] + p['bias']
    i, f, g, o = np.split(z, 4)
    sig = lambda a: 1 / (1 + np.exp(-a))
    c = sig(f) * c + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    out.append(h)
  return np.array(out), h, c


def _np_forward(params, x, n_valid, d, num_layers=LAYERS):
  """One example: reversed valid source → stacked LSTM encoder → decoder from its final states → additive attn.
  over the valid encoder states → tanh(W_c [c; s]) → logits."""
  p = jax.tree.map(np.asarray, params)
  xs = p['src_embed']['embedding'][x[:n_valid][::-1]]
  hs, cs = [], []
  for l in range(num_layers):
    xs, h, c = _np_lstm(p['encoder'][f'layer{l}']['cell'], xs, np.zeros(6), np.zeros(6))
    hs.append(h)
    cs.append(c)
  memory = xs
  ys = p['tgt_embed']['embedding'][d]
  for l in range(num_layers):
    ys, _, _ = _np_lstm(p['decoder'][f'layer{l}']['cell'], ys, hs[l], cs[l])
  a = p['attend']
  e = np.tanh((ys @ a['query']['kernel'])[:, None] + memory @ a['key']['kernel'] + a['key']['bias']) @ a['energy'][
      'kernel']
  e = e[..., 0]
  w = np.exp(e - e.max(1, keepdims=True))
  w /= w.sum(1, keepdims=True)
  s = np.tanh(np.concatenate([w @ memory, ys], 1) @ p['combine']['kernel'])
  return s @ p['head']['kernel'] + p['head']['bias'], w


def test_teacher_forced_logits_match_numpy_on_the_valid_part(att):
  """The reference reads only each example's valid source tokens: equality is also padding invariance."""
  m, v = att
  x, pads, d = _batch()
  logits = np.asarray(jax.jit(lambda v, x, p, d: m.apply(v, x, p, d))(v, x, pads, d))
  for b in range(3):
    n = int((pads[b] == 0).sum())
    ref, _ = _np_forward(v['params'], x[b], n, d[b])
    np.testing.assert_allclose(logits[b], ref, rtol=2e-4, atol=2e-5)


@pytest.mark.slow
def test_two_layers_and_each_example_alone():
  m = Seq2Seq(num_outputs=V, hidden_size=6, embed_dim=4, num_layers=2, attention='additive', reverse_source=True,
              init_scale=0.5)
  x, pads, d = _batch()
  v = m.init(jax.random.key(0), x, pads, d)
  logits = np.asarray(m.apply(v, x, pads, d))
  for b in range(3):
    n = int((pads[b] == 0).sum())
    np.testing.assert_allclose(logits[b], _np_forward(v['params'], x[b], n, d[b], 2)[0], rtol=2e-4, atol=2e-5)
    alone = m.apply(v, x[b:b + 1, :n], pads[b:b + 1, :n], d[b:b + 1])
    np.testing.assert_allclose(logits[b], np.asarray(alone)[0], rtol=1e-5, atol=1e-6)


def test_attention_weights_sum_to_one_on_valid_positions(att):
  m, v = att
  x, pads, d = _batch()
  w = np.asarray(jax.jit(lambda v: m.apply(v, x, pads, d, method='attention_weights'))(v))
  assert w.shape == (3, 5, 6)
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
  assert np.all(w[pads[:, None, :].repeat(5, 1) > 0] == 0.0)
  n = int((pads[1] == 0).sum())
  _, ref = _np_forward(v['params'], x[1], n, d[1])
  np.testing.assert_allclose(w[1, :, :n], ref[:, ::-1], rtol=2e-4, atol=1e-6)   # original source order


def _host_greedy(logits_fn, n):
  """Greedy decoding by full recomputation: the teacher-forced model on the prefix, argmax of its last step."""
  seq = np.full((3, n + 1), PAD, np.int32)
  seq[:, 0] = BOS
  done = np.zeros(3, bool)
  for t in range(n):
    tok = np.asarray(logits_fn(seq[:, :n]))[:, t].argmax(-1)     # causal: positions > t do not matter
    tok = np.where(done, PAD, tok)
    seq[:, t + 1] = tok
    done |= tok == EOS
  return seq[:, 1:]


def test_generate_is_greedy_recomputation_and_beam_width_one(att):
  m, v = att
  x, pads, _ = _batch()
  gen, beam1 = jax.jit(lambda v: (m.apply(v, x, pads, beam_width=1, max_length=5, method='generate'),
                                   m.apply(v, x, pads, beam_width=1, max_length=5, method='beam').sequences))(v)
  tf = jax.jit(lambda d: m.apply(v, x, pads, d))
  np.testing.assert_array_equal(np.asarray(gen), _host_greedy(tf, 5))
  np.testing.assert_array_equal(np.asarray(beam1)[:, 0], np.asarray(gen))


def test_generate_stops_at_eos(att):
  m, v = att
  x, pads, _ = _batch()
  params = jax.tree.map(lambda a: a, v['params'])
  bias = np.zeros(V, np.float32)
  bias[EOS] = 50.0
  params['head'] = {**params['head'], 'bias': jnp.asarray(bias)}
  out = jax.jit(lambda p: m.apply({'params': p}, x, pads, beam_width=3, max_length=5, method='generate'))(params)
  np.testing.assert_array_equal(np.asarray(out), np.tile([EOS, PAD, PAD, PAD, PAD], (3, 1)))


def test_beam_width_zero_and_bad_options_are_user_errors(att):
  m, v = att
  x, pads, _ = _batch()
  with pytest.raises(UserError, match='beam width'):
    m.apply(v, x, pads, beam_width=0, method='generate')
  with pytest.raises(UserError, match='attention'):
    Seq2Seq(attention='bahdanau')


def test_transformer_cached_decoding_equals_recomputation():
  m = TransformerSeq2Seq(num_outputs=V, d_model=8, num_heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1,
                         max_len=16)
  x, pads, d = _batch()
  v = jax.jit(m.init)(jax.random.key(1), x, pads, d)
  gen = np.asarray(jax.jit(lambda v: m.apply(v, x, pads, beam_width=1, max_length=5, method='generate'))(v))
  tf = jax.jit(lambda d: m.apply(v, x, pads, d))
  np.testing.assert_array_equal(gen, _host_greedy(tf, 5))


def test_sutskever_preset_parameter_count():
  cfg = {'name': 'seq2seq', 'num_layers': 4, 'hidden_size': 1000, 'embed_dim': 1000, 'src_vocab_size': 160000,
         'num_outputs': 80000, 'init_scale': 0.08, 'reverse_source': True}
  model = build_model(cfg)
  v = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))
  n = count_params(v['params'])
  # (160k + 80k)·1000 embeddings, 8 layers of 4·1000·(1000 + 1000) + 4·1000, softmax 1000·80k + 80k
  assert n == 240_000_000 + 8 * (4 * 1000 * 2000 + 4000) + 80_080_000 == seq2seq_param_count(160000, 80000, 1000,
                                                                                             1000, 4)
  assert abs(n - 384e6) / 384e6 < 0.001
  small = Seq2Seq(num_outputs=11, src_vocab_size=13, hidden_size=6, embed_dim=4, num_layers=2, attention='general')
  v = jax.eval_shape(lambda: small.init(jax.random.key(0), jnp.zeros((1, 3), jnp.int32)))
  assert count_params(v['params']) == seq2seq_param_count(13, 11, 4, 6, 2, 'general')


def test_scheduled_sampling_feeds_the_models_own_tokens(att):
  """ε → 0: every input after BOS is the model's own greedy token from the teacher-forced first pass."""
  m, v = att
  x, pads, d = _batch()
  ss = m.clone(teacher_forcing=1e-9)

  @jax.jit
  def both(v):
    out = ss.apply(v, x, pads, d, train=True, rngs={'dropout': jax.random.key(3)})
    own = jnp.argmax(m.apply(v, x, pads, d), -1).astype(jnp.int32)
    fed = jnp.concatenate([jnp.asarray(d[:, :1]), own[:, :-1]], 1)
    return out, m.apply(v, x, pads, fed)

  out, ref = both(v)
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-6)


def test_scheduled_sampling_decays_with_the_step_the_trainer_passes(att):
  """teacher_forcing_decay: ε_i = k^i (exponential) — at step 0 plain teacher forcing, at a late step the model's own
  tokens everywhere; the train step passes `step` to a model that takes it."""
  from jaxdl.train.step import model_kwargs
  m, v = att
  x, pads, d = _batch()
  ss = m.clone(teacher_forcing_decay='exponential', decay_k=0.5)
  kw = model_kwargs(ss, {'inputs_paddings': pads, 'decoder_inputs': d}, step=jnp.int32(0))
  assert set(kw) == {'inputs_paddings', 'decoder_inputs', 'step'}
  assert 'step' not in model_kwargs(ss, {'inputs_paddings': pads, 'decoder_inputs': d})   # eval: no step

  @jax.jit
  def run(v, step):
    return ss.apply(v, x, pads, d, train=True, step=step, rngs={'dropout': jax.random.key(3)})

  own = jnp.argmax(m.apply(v, x, pads, d), -1).astype(jnp.int32)
  fed = jnp.concatenate([jnp.asarray(d[:, :1]), own[:, :-1]], 1)
  np.testing.assert_allclose(np.asarray(run(v, 0)), np.asarray(m.apply(v, x, pads, d)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(run(v, 200)), np.asarray(m.apply(v, x, pads, fed)), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='training step'):
    ss.apply(v, x, pads, d, train=True, rngs={'dropout': jax.random.key(3)})
  with pytest.raises(UserError, match='0 < k < 1'):
    m.clone(teacher_forcing_decay='exponential', decay_k=2.0)
  with pytest.raises(UserError, match='slope c > 0'):
    m.clone(teacher_forcing_decay='linear')
