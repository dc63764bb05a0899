"""Attention over padded keys: masks by construction, every layer against a NumPy transcription of its paper's
formula, weights = 0 on padding and summing to 1 elsewhere, invariance to padded keys/values, no NaN on fully
masked rows, multi-head attention == torch.nn.MultiheadAttention with copied weights, the doubly stochastic
penalty against a loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.nn import attention as A

RNG = np.random.default_rng(0)
B, TQ, TK, DQ, DK, DV = 3, 4, 6, 5, 7, 3
LENGTHS = np.array([6, 3, 0])          # example 2 has no valid key at all
Q = RNG.normal(size=(B, TQ, DQ)).astype(np.float32)
K = RNG.normal(size=(B, TK, DK)).astype(np.float32)
V = RNG.normal(size=(B, TK, DV)).astype(np.float32)
VALID = np.arange(TK)[None] < LENGTHS[:, None]                         # [B, TK]


def np_softmax_valid(scores, valid):
  """softmax over valid keys (NumPy), zeros elsewhere and on fully masked rows."""
  s = np.where(valid, scores, -np.inf)
  m = np.max(s, -1, keepdims=True)
  e = np.where(valid, np.exp(s - np.where(np.isfinite(m), m, 0)), 0.0)
  z = e.sum(-1, keepdims=True)
  return np.divide(e, z, out=np.zeros_like(e), where=z > 0)


def test_masks_by_construction():
  m = np.asarray(A.padding_mask(LENGTHS, TK))
  assert m.shape == (B, 1, TK) and m.dtype == bool
  np.testing.assert_array_equal(m[:, 0], VALID)
  np.testing.assert_array_equal(np.asarray(A.padding_mask(paddings=~VALID)), m)
  np.testing.assert_array_equal(np.asarray(A.padding_mask(paddings=(~VALID).astype(np.float32))), m)
  c = np.asarray(A.causal_mask(5))[0]
  want = np.array([[j <= i for j in range(5)] for i in range(5)])
  np.testing.assert_array_equal(c, want)
  both = np.asarray(A.combine_masks(A.causal_mask(TK), None, A.padding_mask(LENGTHS, TK)))
  assert both.shape == (B, TK, TK)
  for b in range(B):
    for i in range(TK):
      for j in range(TK):
        assert both[b, i, j] == (j <= i and j < LENGTHS[b])
  assert A.combine_masks(None, None) is None
  with pytest.raises(ValueError):
    A.padding_mask(LENGTHS)                                            # max_len missing


def np_additive(p, q, k, v, valid):
  """Bahdanau eq. 6: e_ij = vᵀ tanh(W_q q_i + W_k k_j + b)."""
  wq = q @ np.asarray(p['query']['kernel'])
  wk = k @ np.asarray(p['key']['kernel']) + np.asarray(p['key']['bias'])
  e = np.tanh(wq[:, :, None] + wk[:, None]) @ np.asarray(p['energy']['kernel'])[:, 0]
  w = np_softmax_valid(e, valid[:, None])
  return w @ v, w


def np_luong(score, p, q, k, v, valid):
  """Luong eq. 8: dot qᵀk, general qᵀ W k, concat vᵀ tanh(W [q; k])."""
  if score == 'dot':
    e = q @ k.transpose(0, 2, 1)
  elif score == 'general':
    e = q @ (k @ np.asarray(p['W']['kernel'])).transpose(0, 2, 1)
  else:
    w = np.asarray(p['W']['kernel'])
    e = np.zeros((q.shape[0], q.shape[1], k.shape[1]))
    for b in range(q.shape[0]):
      for i in range(q.shape[1]):
        for j in range(k.shape[1]):
          e[b, i, j] = np.tanh(np.concatenate([q[b, i], k[b, j]]) @ w) @ np.asarray(p['v']['kernel'])[:, 0]
  w = np_softmax_valid(e, valid[:, None])
  return w @ v, w


def np_scaled(q, k, v, valid):
  """Vaswani eq. 1."""
  w = np_softmax_valid(q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1]), valid[:, None])
  return w @ v, w


LAYERS = {
    'additive': (lambda: A.AdditiveAttention(8), np_additive, K),
    'dot': (lambda: A.MultiplicativeAttention('dot'), lambda p, *a: np_luong('dot', p, *a), None),
    'general': (lambda: A.MultiplicativeAttention('general'), lambda p, *a: np_luong('general', p, *a), K),
    'concat': (lambda: A.MultiplicativeAttention('concat', features=6), lambda p, *a: np_luong('concat', p, *a), K),
}


@pytest.mark.parametrize('name', list(LAYERS))
def test_layer_matches_formula_and_ignores_padding(name):
  make, ref, keys = LAYERS[name]
  keys = K[..., :DQ] if keys is None else keys                       # 'dot' needs dq == dk
  layer = make()
  mask = A.padding_mask(LENGTHS, TK)
  params = layer.init(jax.random.key(0), Q, keys, V, mask).get('params', {})
  ctx, w = layer.apply({'params': params}, Q, keys, V, mask)
  want_ctx, want_w = ref(params, Q.astype(np.float64), keys.astype(np.float64), V.astype(np.float64), VALID)
  np.testing.assert_allclose(np.asarray(w), want_w, atol=1e-5)
  np.testing.assert_allclose(np.asarray(ctx), want_ctx, atol=1e-5)
  w = np.asarray(w)
  assert np.all(w[~np.broadcast_to(VALID[:, None], w.shape)] == 0.0)    # exactly 0 on padding
  np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-6)             # rows with a valid key sum to 1
  assert np.all(w[2] == 0) and np.all(np.asarray(ctx)[2] == 0)           # fully masked: zeros, no NaN
  # changing padded keys and values changes nothing
  k2, v2 = keys.copy(), V.copy()
  k2[~VALID], v2[~VALID] = 1e3, -1e3
  ctx2, w2 = layer.apply({'params': params}, Q, k2, v2, mask)
  np.testing.assert_array_equal(np.asarray(w2), w)
  np.testing.assert_allclose(np.asarray(ctx2), np.asarray(ctx), atol=1e-6)
  # a single query [B, dq] gives [B, dv] and [B, Tk]; a [B, Tk] key mask is accepted
  c1, w1 = layer.apply({'params': params}, Q[:, 1], keys, V, VALID)
  np.testing.assert_allclose(np.asarray(w1), w[:, 1], atol=1e-6)
  np.testing.assert_allclose(np.asarray(c1), np.asarray(ctx)[:, 1], atol=1e-6)


def test_scaled_dot_product_and_gradients_on_masked_rows():
  q, k = Q[..., :4], K[..., :4]
  mask = A.combine_masks(A.padding_mask(LENGTHS, TK), jnp.ones((1, TQ, TK), bool))
  ctx, w = A.dot_product_attention(q, k, V, mask)
  want_ctx, want_w = np_scaled(q.astype(np.float64), k.astype(np.float64), V.astype(np.float64), VALID)
  np.testing.assert_allclose(np.asarray(w), want_w, atol=1e-6)
  np.testing.assert_allclose(np.asarray(ctx), want_ctx, atol=1e-5)
  g = jax.grad(lambda q, k, v: A.dot_product_attention(q, k, v, mask)[0].sum(), argnums=(0, 1, 2))(q, k, V)
  assert all(np.all(np.isfinite(np.asarray(x))) for x in g)
  assert np.all(np.asarray(g[1])[~VALID] == 0) and np.all(np.asarray(g[2])[~VALID] == 0)
  # dropout on the weights: inverted (mean preserved), returned weights are the pre-dropout ones
  ctx_d, w_d = A.dot_product_attention(q, k, V, mask, dropout_rate=0.5, dropout_rng=jax.random.key(1),
                                       deterministic=False)
  np.testing.assert_array_equal(np.asarray(w_d), np.asarray(w))
  assert not np.allclose(np.asarray(ctx_d)[:2], np.asarray(ctx)[:2])


def test_multi_head_padding_and_causal():
  x = RNG.normal(size=(B, TK, 8)).astype(np.float32)
  mha = A.MultiHeadAttention(num_heads=2)
  mask = A.combine_masks(A.causal_mask(TK), A.padding_mask(LENGTHS, TK))
  params = mha.init(jax.random.key(0), x, mask=mask)['params']
  out, w = mha.apply({'params': params}, x, mask=mask)
  w = np.asarray(w)
  assert w.shape == (B, 2, TK, TK)
  allowed = np.asarray(mask)[:, None]
  assert np.all(w[~np.broadcast_to(allowed, w.shape)] == 0.0)
  rows = allowed.any(-1)                                               # query rows with at least one key
  np.testing.assert_allclose(w.sum(-1)[np.broadcast_to(rows, w.shape[:-1])], 1.0, atol=1e-6)
  x2 = x.copy()
  x2[~VALID] = 50.0
  out2, _ = mha.apply({'params': params}, x, x2, mask=mask)           # keys/values from the perturbed input
  np.testing.assert_allclose(np.asarray(out2), np.asarray(out), atol=1e-5)
  assert np.all(np.isfinite(np.asarray(out)))


@pytest.mark.parametrize('kdim', [None, 5])
def test_multi_head_equals_torch(kdim):
  torch = pytest.importorskip('torch')
  e, h, tq, tk = 8, 2, 4, 6
  kd = kdim or e
  tm = torch.nn.MultiheadAttention(e, h, batch_first=True, kdim=kd, vdim=kd).eval()
  with torch.no_grad():                                                # random biases too
    for name, p in tm.named_parameters():
      p.copy_(torch.randn_like(p) * 0.3)
  state = {k: v.numpy() for k, v in tm.state_dict().items()}
  params = A.from_torch_mha(state)
  q = RNG.normal(size=(B, tq, e)).astype(np.float32)
  kv = RNG.normal(size=(B, tk, kd)).astype(np.float32)
  lengths = np.array([6, 2, 4])
  key_pad = np.arange(tk)[None] >= lengths[:, None]                   # torch: True = ignore
  attn_block = np.triu(np.ones((tq, tk), bool), k=3)                  # torch: True = not allowed
  with torch.no_grad():
    t_out, t_w = tm(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=torch.tensor(key_pad),
                    attn_mask=torch.tensor(attn_block), average_attn_weights=False)
  mask = A.combine_masks(A.padding_mask(lengths, tk), ~attn_block[None])
  out, w = A.MultiHeadAttention(h).apply({'params': params}, q, kv, mask=mask)
  np.testing.assert_allclose(np.asarray(out), t_out.numpy(), atol=1e-5)
  np.testing.assert_allclose(np.asarray(w), t_w.numpy(), atol=1e-6)
  # and back: our params into a fresh torch module
  tm2 = torch.nn.MultiheadAttention(e, h, batch_first=True, kdim=kd, vdim=kd).eval()
  tm2.load_state_dict({k: torch.as_tensor(v) for k, v in A.to_torch_mha(params, packed=kdim is None).items()})
  with torch.no_grad():
    t_out2, _ = tm2(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=torch.tensor(key_pad))
  out2, _ = A.MultiHeadAttention(h).apply({'params': params}, q, kv, mask=A.padding_mask(lengths, tk))
  np.testing.assert_allclose(np.asarray(out2), t_out2.numpy(), atol=1e-5)


def test_doubly_stochastic_penalty_against_loop():
  t, l = 5, 4
  logits = RNG.normal(size=(B, t, l))
  alpha = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)     # Σ_i α_ti = 1 by construction
  step_valid = np.arange(t)[None] < np.array([5, 3, 1])[:, None]
  loc_valid = np.arange(l)[None] < np.array([4, 4, 2])[:, None]
  want = np.zeros(B)
  for b in range(B):
    for i in range(l):
      if loc_valid[b, i]:
        want[b] += 0.7 * (1.0 - sum(alpha[b, s, i] for s in range(t) if step_valid[b, s])) ** 2
  got = A.doubly_stochastic_penalty(alpha, step_mask=step_valid, location_mask=loc_valid, lam=0.7)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
  # zero exactly when every location receives total attention 1 (T = L, α = identity)
  np.testing.assert_allclose(np.asarray(A.doubly_stochastic_penalty(np.eye(4)[None])), [0.0])
