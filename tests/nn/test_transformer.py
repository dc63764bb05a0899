"""Transformer: sinusoidal encodings and the warm-up schedule against the paper's formulas, encoder/decoder
layers == torch's with copied weights (post- and pre-norm), cached one-token decoding == the teacher-forced pass,
encoder padding invariance, causality by gradients, and beam search over the cached decoder scoring what the full
pass scores."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.nn import attention as A
from jaxdl.nn import transformer as T
from jaxdl.text import beam_search as bs

RNG = np.random.default_rng(0)
D, H, FF = 8, 2, 16


def test_sinusoidal_encoding_formula():
  pe = T.sinusoidal_encoding(12, 6)
  for pos in range(12):
    for i in range(3):
      assert pe[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / 6)), abs=1e-6)
      assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / 6)), abs=1e-6)
  assert T.sinusoidal_encoding(4, 5).shape == (4, 5)


def test_transformer_schedule_formula():
  d, w = 64, 100
  sched = T.transformer_schedule(d, w)
  for count in (0, 1, 49, 99, 100, 500, 10_000):
    step = count + 1                                                  # the paper counts steps from 1
    want = d ** -0.5 * min(step ** -0.5, step * w ** -1.5)
    assert float(sched(count)) == pytest.approx(want, rel=1e-5)
  lrs = np.array([float(sched(c)) for c in range(300)])
  assert lrs.argmax() == w - 1                                         # peak at step_num = warmup
  with pytest.raises(UserError):
    T.transformer_schedule(64, 0)


def _randomise(torch, module):
  with torch.no_grad():
    for p in module.parameters():
      p.copy_(torch.randn_like(p) * 0.3)


@pytest.mark.parametrize('norm_first', [False, True])
def test_layers_equal_torch(norm_first):
  torch = pytest.importorskip('torch')
  b, s, t = 2, 5, 4
  src_len, tgt_len = np.array([5, 3]), np.array([4, 2])
  enc_t = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
  dec_t = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
  _randomise(torch, enc_t)
  _randomise(torch, dec_t)
  x = RNG.normal(size=(b, s, D)).astype(np.float32)
  y = RNG.normal(size=(b, t, D)).astype(np.float32)
  src_pad = np.arange(s)[None] >= src_len[:, None]                    # torch: True = padding
  tgt_pad = np.arange(t)[None] >= tgt_len[:, None]
  with torch.no_grad():
    enc_want = enc_t(torch.tensor(x), src_key_padding_mask=torch.tensor(src_pad)).numpy()
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)   # torch: True = not allowed
    dec_want = dec_t(torch.tensor(y), torch.tensor(x), tgt_mask=causal, tgt_key_padding_mask=torch.tensor(tgt_pad),
                     memory_key_padding_mask=torch.tensor(src_pad)).numpy()
  enc = T.EncoderLayer(D, H, FF, dropout_rate=0.0, norm_first=norm_first)
  dec = T.DecoderLayer(D, H, FF, dropout_rate=0.0, norm_first=norm_first)
  src_mask = A.padding_mask(src_len, s)
  enc_got = jax.jit(enc.apply)({'params': T.layer_params_from_torch(enc_t.state_dict())}, x, src_mask)
  self_mask = A.combine_masks(A.causal_mask(t), A.padding_mask(tgt_len, t))
  dec_got = jax.jit(dec.apply)({'params': T.layer_params_from_torch(dec_t.state_dict())}, y, x, self_mask, src_mask)
  valid_s, valid_t = ~src_pad, ~tgt_pad                                # torch's fast path zeroes padded rows
  np.testing.assert_allclose(np.asarray(enc_got)[valid_s], enc_want[valid_s], atol=2e-5)
  np.testing.assert_allclose(np.asarray(dec_got)[valid_t], dec_want[valid_t], atol=2e-5)


B, S, N = 3, 6, 7


@pytest.fixture(scope='module')
def tiny():
  """A 2+2-layer post-norm encoder-decoder, its params, a padded batch and its jitted full pass (log-probs), shared
  by the tests (jitted: XLA compiles one program faster than eager mode compiles every op)."""
  model = T.Transformer(vocab_size=9, src_vocab_size=11, d_model=D, num_heads=H, d_ff=FF, num_encoder_layers=2,
                        num_decoder_layers=2, dropout_rate=0.1, max_len=16)
  src = jnp.asarray(RNG.integers(0, 11, (B, S)))
  src_valid = jnp.arange(S)[None] < jnp.array([6, 4, 1])[:, None]
  tgt = jnp.asarray(RNG.integers(0, 9, (B, N)))
  params = jax.jit(model.init)(jax.random.key(0), src, tgt, src_valid)['params']
  full_logp = jax.jit(lambda p, s, t, v: jax.nn.log_softmax(model.apply({'params': p}, s, t, v)))
  return model, params, src, src_valid, tgt, full_logp


def test_cached_decoding_equals_full_pass(tiny):
  model, params, src, src_valid, tgt, full_logp = tiny
  full = full_logp(params, src, tgt, src_valid)

  @jax.jit
  def cached(params, src, src_valid, tgt):
    memory = model.apply({'params': params}, src, src_valid, method=T.Transformer.encode)
    state = T.init_decode_state(model, B, N, memory, src_valid)
    return _scan_steps(T.make_step_fn(model, params), state, tgt)
  got = cached(params, src, src_valid, tgt)
  np.testing.assert_allclose(np.asarray(got), np.asarray(full), atol=2e-5)


def _scan_steps(step, state, tokens):
  """Feed tokens [B, T] one at a time through the cached step (lax.scan); the log-probs [B, T, V]."""
  def body(state, tok):
    logp, state = step(tok, state)
    return state, logp
  return jnp.swapaxes(jax.lax.scan(body, state, tokens.T)[1], 0, 1)


def test_decoder_only_learned_positions_cached_equals_full():
  dec = T.Decoder(1, D, H, FF, vocab_size=7, dropout_rate=0.0, positional='learned', max_len=8, norm_first=True)
  toks = jnp.asarray(RNG.integers(0, 7, (2, 8)))
  params = jax.jit(dec.init)(jax.random.key(0), toks)['params']
  assert params['position']['embedding'].shape == (8, D)
  full = jax.nn.log_softmax(jax.jit(dec.apply)({'params': params}, toks))
  step = jax.jit(T.make_step_fn(dec, params))                           # host loop, as interactive sampling runs
  state = T.init_decode_state(dec, 2, 8)
  for i in range(8):
    logp, state = step(toks[:, i], state)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(full[:, i]), atol=2e-5)


def test_encoder_padding_invariance():
  enc = T.Encoder(2, D, H, FF, vocab_size=11, dropout_rate=0.0)
  src = RNG.integers(0, 11, (3, 6))
  lengths = np.array([6, 4, 2])
  valid = np.arange(6)[None] < lengths[:, None]
  params = jax.jit(enc.init)(jax.random.key(0), jnp.asarray(src), valid)['params']
  apply = jax.jit(enc.apply)
  out = np.asarray(apply({'params': params}, jnp.asarray(src), valid))
  src2 = np.where(valid, src, (src + 5) % 11)                          # other tokens at padded positions
  out2 = np.asarray(apply({'params': params}, jnp.asarray(src2), valid))
  np.testing.assert_allclose(out2[valid], out[valid], atol=1e-5)
  assert not np.allclose(out2[~valid], out[~valid])                    # the change did reach the padded rows
  # dropout acts only when asked for (deterministic=False and a 'dropout' rng)
  noisy = jax.jit(lambda p, k: enc.clone(dropout_rate=0.3).apply({'params': p}, jnp.asarray(src), valid,
                                                                  deterministic=False, rngs={'dropout': k}))
  assert not np.allclose(np.asarray(noisy(params, jax.random.key(1))), out)


def test_decoder_is_causal_by_gradient():
  t, f = 5, 3
  dec = T.Decoder(1, D, H, FF, vocab_size=4, dropout_rate=0.0)          # float inputs: features [B, T, F]
  x = jnp.asarray(RNG.normal(size=(1, t, f)).astype(np.float32))
  params = jax.jit(dec.init)(jax.random.key(0), x)['params']
  jac = jax.jit(jax.jacrev(lambda x: dec.apply({'params': params}, x)[0]))(x)   # [T, V, 1, T, F]
  influence = np.abs(np.asarray(jac)).sum(axis=(1, 2, 4))              # [t_out, t_in]
  assert np.all(influence[np.triu_indices(t, 1)] == 0.0)               # no path from the future
  assert np.all(influence[np.tril_indices(t)] > 0.0)                   # and a path from every past input


def test_beam_search_over_cached_decoder_scores_like_full_pass(tiny):
  model, params, src, src_valid, _, full_logp = tiny
  b, w, n, bos, eos = B, 3, 6, 1, 2

  @jax.jit
  def decode(params, src, src_valid):
    memory = model.apply({'params': params}, src, src_valid, method=T.Transformer.encode)
    state = bs.tile_beams(T.init_decode_state(model, b, n, memory, src_valid), w)
    return bs.beam_search(T.make_step_fn(model, params), state, batch_size=b, beam_width=w, max_len=n,
                          bos_id=bos, eos_id=eos, length_penalty_alpha=0.6, n_best=2)
  seqs, scores, lengths = (np.asarray(a) for a in decode(params, src, src_valid))
  # teacher-force each returned hypothesis through the full pass (one batch: causal, so the padding after the
  # hypothesis does not matter) and rescore it: log p(y) / ((5 + |y|)/6)^0.6
  ys = seqs.reshape(b * 2, n)
  tgt_in = np.concatenate([np.full((b * 2, 1), bos), ys[:, :-1]], axis=1)
  logp = np.asarray(full_logp(params, jnp.repeat(src, 2, 0), jnp.asarray(tgt_in), jnp.repeat(src_valid, 2, 0)))
  for r, (y, length, score) in enumerate(zip(ys, lengths.reshape(-1), scores.reshape(-1))):
    assert y[length - 1] == eos or length == n
    total = sum(logp[r, k, y[k]] for k in range(length))
    assert score == pytest.approx(total / ((5 + length) / 6) ** 0.6, abs=1e-4)
  assert np.all(scores[:, 0] >= scores[:, 1])
