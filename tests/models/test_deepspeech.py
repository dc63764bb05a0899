"""DeepSpeech2 (jaxdl/models/deepspeech.py): preset counts (S4, S5, S10) from independent formulas, output paddings,
masked batch norm, padded batch = each utterance alone, on-device greedy / beam decoding vs the host decoders.
The big presets are counted with jax.eval_shape only (nothing is allocated)."""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.inspect.summary import parameter_table
from jaxdl.models import build_model
from jaxdl.models.deepspeech import DeepSpeech2, MaskedBatchNorm, expected_param_count
from jaxdl.speech import best_path, prefix_beam_search


def preset(name, **kw):
  return build_model(ml_collections.ConfigDict({'name': name, **kw}))


def gru_torch(d_in, h):      # PyTorch nn.GRU, one direction of one layer: 3H(D + H) + 2·3H (two biases)
  return 3 * h * (d_in + h) + 6 * h


def tiny(**kw):
  base = dict(num_outputs=5, conv_features=(3,), conv_kernels=((5, 3),), conv_strides=((2, 2),), rnn_features=6,
              rnn_layers=2)
  base.update(kw)
  return DeepSpeech2(**base)


def init(m, seed, x, pad):
  """Variables from a jitted init (eager init runs the recurrent layers op by op: slower to run in tests)."""
  return jax.jit(lambda r: m.init(r, x, inputs_paddings=pad))(jax.random.PRNGKey(seed))


def padded_batch(lengths, T, F, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(len(lengths), T, F)).astype(np.float32)
  pad = (np.arange(T)[None] >= np.asarray(lengths)[:, None]).astype(np.float32)
  return x, pad


def test_ds2_lab_exact_counts_per_layer():
  """S5: conv1 14,464; conv2 236,576; GRU 64,929,792; linear 90,156; total 65,271,116 (+ 2 BN of 32 channels)."""
  table = parameter_table(preset('ds2_lab'), (50, 20))
  rows = {r['name']: r['params'] for r in table['layers']}
  assert rows['conv1'] == 41 * 11 * 1 * 32 + 32 == 14_464
  assert rows['conv2'] == 21 * 11 * 32 * 32 + 32 == 236_576
  gru = sum(v for k, v in rows.items() if k.startswith('rnn'))
  # 20 mels -> 10 -> 10 frequency bins: the first GRU reads 32 × 10 = 320 features, the next ones 2 × 1024.
  assert gru == 2 * gru_torch(320, 1024) + 3 * 2 * gru_torch(2048, 1024) == 64_929_792
  assert rows['output'] == 2048 * 44 + 44 == 90_156
  assert rows['conv1_bn/bn'] == rows['conv2_bn/bn'] == 64
  assert table['total_params'] == 65_271_116


def test_ds2_paper_and_algoperf_counts_vs_formulas():
  # DS2 (S4): 161 bins -> 81 -> 41 -> 21 (stride 2 in frequency), 96 × 21 = 2016 GRU inputs; one-bias GRU (+ b_hn).
  gru1 = lambda d, h: 3 * h * (d + h) + 3 * h + h
  paper = (11 * 41 * 32 + 64) + (11 * 21 * 32 * 32 + 64) + (11 * 21 * 32 * 96 + 192)
  paper += 2 * 2016 + 2 * gru1(2016, 1280) + 6 * (2 * 1280 + 2 * gru1(1280, 1280))
  paper += 1280 * 1280 + 2 * 1280 + 1280 * 29 + 29
  assert parameter_table(preset('ds2_paper'), (40, 161))['total_params'] == paper
  assert paper > 4 * 35e6                     # the notes' "35 M" is far from the configuration it lists
  # AlgoPerf (S10): 80 bins -> 40 -> 20; Dense(20·512 -> 512); LSTM one bias 4H(D + H) + 4H.
  lstm = lambda d, h: 4 * h * (d + h) + 4 * h
  ap = (9 * 512 + 512) + (9 * 512 * 512 + 512) + (20 * 512 * 512 + 512)
  ap += 6 * (2 * 512 + 2 * lstm(512, 256)) + 3 * (2 * 512 + 512 * 512 + 512) + 2 * 512 + 512 * 1024 + 1024
  assert parameter_table(preset('algoperf_deepspeech'), (40, 80))['total_params'] == ap
  # The count of AlgoPerf's own JAX model (models.Deepspeech(DeepspeechConfig()), jax.eval_shape on its code).
  assert ap == 18_381_312


@pytest.mark.parametrize('name,features', [('ds2_small', 80), ('ds2_lab', 20), ('ds2_paper', 161),
                                           ('algoperf_deepspeech', 80)])
def test_expected_param_count_agrees(name, features):
  m = preset(name)
  assert parameter_table(m, (24, features))['total_params'] == expected_param_count(m, features)


@pytest.mark.parametrize('variant', ['bigru', 'lstm_lookahead'])
def test_padded_batch_gives_each_utterance_as_alone(variant):
  """Evaluation (running statistics): each utterance of a padded batch (garbage in the padding) gives what it gives
  alone; the output paddings follow the time strides: L -> ⌈L / s⌉ per convolution."""
  if variant == 'bigru':
    m = tiny(conv_features=(2, 3), conv_kernels=((4, 3), (3, 3)), conv_strides=((2, 1), (3, 2)))
    strides = (2, 3)
  else:
    m = tiny(rnn_cell='lstm', bidirectional=False, lookahead=2, residual=True, proj_features=8, rnn_features=8,
             ffn_layers=1, final_norm='layer')
    strides = (2,)
  T, lengths = 13, [13, 8, 1]
  x, pad = padded_batch(lengths, T, 6)
  x[pad > 0] = 1e3                                                # garbage in the padding
  v = init(m, 1, x, pad)
  apply = jax.jit(lambda x, p: m.apply(v, x, inputs_paddings=p))
  out = apply(x, pad)
  ceil = lambda n: functools.reduce(lambda n, s: -(-n // s), strides, n)
  assert out['logits'].shape == (3, ceil(T), 5)
  want = [ceil(n) for n in lengths]
  np.testing.assert_array_equal(np.asarray(out['paddings']), np.arange(ceil(T))[None] >= np.array(want)[:, None])
  np.testing.assert_array_equal(m.output_lengths(np.array(lengths)), want)
  np.testing.assert_array_equal(m.output_paddings(pad), out['paddings'])
  for b, n in enumerate(lengths[1:], 1):
    alone = apply(x[b:b + 1, :n], pad[b:b + 1, :n])['logits'][0]
    np.testing.assert_allclose(out['logits'][b, :want[b]], alone, rtol=1e-5, atol=1e-5)


def test_masked_batch_norm_uses_valid_frames_only():
  rng = np.random.default_rng(2)
  x = rng.normal(2.0, 3.0, size=(3, 7, 4)).astype(np.float32)
  valid = np.arange(7)[None] < np.array([7, 4, 2])[:, None]
  bn = MaskedBatchNorm(momentum=0.5, epsilon=1e-5)
  v = bn.init(jax.random.PRNGKey(0), x, valid, False)
  y, st = bn.apply(v, x, valid, True, mutable=['batch_stats'])
  sel = x[valid]                                                  # NumPy reference over the valid frames
  mu, var = sel.mean(0), sel.var(0)
  np.testing.assert_allclose(np.asarray(y)[valid], (sel - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
  assert np.all(np.asarray(y)[~valid] == 0)
  np.testing.assert_allclose(st['batch_stats']['bn']['mean'], 0.5 * mu, rtol=1e-5)
  np.testing.assert_allclose(st['batch_stats']['bn']['var'], 0.5 + 0.5 * var, rtol=1e-5)


def test_training_outputs_at_valid_frames_ignore_padding_content_and_length():
  m = tiny()
  lengths = [9, 5]
  x, pad = padded_batch(lengths, 9, 6, seed=3)
  v = init(m, 0, x, pad)
  run = jax.jit(lambda x, p: m.apply(v, x, train=True, inputs_paddings=p, mutable=['batch_stats']))
  (o1, s1), (o2, s2) = run(x, pad), run(np.where(pad[..., None] > 0, -50.0, x).astype(np.float32), pad)
  x3 = np.concatenate([x, np.full((2, 6, 6), 7.0, np.float32)], 1)   # 6 more padded frames
  o3, s3 = run(x3, np.concatenate([pad, np.ones((2, 6), np.float32)], 1))
  for b, n in enumerate(lengths):
    k = int(m.output_lengths(n))
    np.testing.assert_allclose(o2['logits'][b, :k], o1['logits'][b, :k], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(o3['logits'][b, :k], o1['logits'][b, :k], rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), s1, s3)


def test_generate_greedy_and_beam_match_the_host_decoders():
  m = tiny(num_outputs=4, rnn_features=5)
  lengths = [10, 7, 2]
  x, pad = padded_batch(lengths, 10, 6, seed=4)
  v = init(m, 3, x, pad)
  v = jax.tree.map(lambda a: a * 3.0, v)                           # sharper, more varied frame distributions
  gen = jax.jit(lambda x, p, w, n: m.apply(v, x, inputs_paddings=p, method='generate', beam_width=w, max_length=n),
                static_argnums=(2, 3))
  out = jax.jit(lambda x, p: m.apply(v, x, inputs_paddings=p))(x, pad)
  lp = np.asarray(jax.nn.log_softmax(out['logits']), np.float64)
  greedy, beam = np.asarray(gen(x, pad, 1, 0)), np.asarray(gen(x, pad, 4, 0))
  assert greedy.dtype == np.int32 and greedy.shape == out['logits'].shape[:2]
  for b, n in enumerate(lengths):
    k = int(m.output_lengths(n))
    want = best_path(lp[b], length=k)[0][0]
    assert tuple(greedy[b, :len(want)]) == want and not greedy[b, len(want):].any()
    # own check of the collapse: frame argmax, merge repeats, drop blanks
    path = lp[b, :k].argmax(-1)
    assert want == tuple(c for c, _ in itertools.groupby(path) if c != 0)
    top = prefix_beam_search(lp[b], 4, length=k)[0][0]
    assert tuple(beam[b, :len(top)]) == top and not beam[b, len(top):].any()
  np.testing.assert_array_equal(gen(x, pad, 1, 2), greedy[:, :2])


def test_bad_configs_are_user_errors():
  with pytest.raises(UserError):
    tiny(conv_kernels=((5, 3), (3, 3)))
  with pytest.raises(UserError):
    tiny(lookahead=2)                         # bidirectional already sees the future
  with pytest.raises(UserError):
    tiny(rnn_cell='transformer')
  m = tiny()
  with pytest.raises(UserError):
    m.init(jax.random.PRNGKey(0), jnp.zeros((2, 5)))


def test_registered_and_paddings_optional():
  m = preset('ds2_small', num_outputs=7)
  x = jnp.ones((2, 16, 20))
  out = jax.eval_shape(lambda: m.init_with_output(jax.random.PRNGKey(0), x)[0])
  assert out['logits'].shape == (2, 8, 7) and out['paddings'].shape == (2, 8)
  assert type(m).batch_keys == ('inputs_paddings',)
