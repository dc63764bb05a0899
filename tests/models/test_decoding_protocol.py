"""The decoding protocol (jaxdl/models/decoding.py): a toy model that implements only `decode_start` gets `generate`
(greedy = a NumPy argmax loop, also as the trainer calls it with its batch fields) and `beam` (n-best = the eager
NumPy beam_search_reference over the same decoder); bad options and the transformer's cache limit are UserErrors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.models.decoding import Decoder, bound_step_fn
from jaxdl.models.seq2seq import TransformerSeq2Seq
from jaxdl.text import beam_search as bs
from jaxdl.text.vocab import BOS, EOS, PAD

V, L = 6, 4


def _table_init(key, shape, dtype=jnp.float32):
  return 1.5 * jax.random.normal(key, shape, dtype) - 20.0 * (jnp.arange(V) < 2)      # PAD, BOS hardly ever chosen


class _Toy(Decoder, nn.Module):
  """log p(y_t | y_<t, x) = log_softmax(table[t, y_{t−1}] + Σ_s E[x_s]): a decoder whose start state reads the
  source. Only `decode_start` (and its step) is written here; generate and beam come from the protocol."""
  max_decode_length: int = L

  def setup(self):
    self.table = self.param('table', _table_init, (L, V, V))
    self.src = nn.Embed(V, V, embedding_init=nn.initializers.normal(1.0))

  def __call__(self, inputs):
    return self.src(inputs)

  def _step(self, tokens, state):
    pos = state['position']
    return jax.nn.log_softmax(self.table[pos, tokens] + state['bias']), {**state, 'position': pos + 1}

  def decode_start(self, inputs, inputs_paddings=None, max_len: int = 0):
    del inputs_paddings, max_len
    bias = jnp.sum(self.src(inputs), axis=1)
    return bound_step_fn(self, _Toy._step), {'position': jnp.zeros(inputs.shape[0], jnp.int32), 'bias': bias}


@pytest.fixture(scope='module')
def toy():
  x = np.random.default_rng(0).integers(3, V, (3, 5)).astype(np.int32)
  m = _Toy()
  v = m.init(jax.random.key(1), x)
  table = np.asarray(v['params']['table'], np.float64)
  bias = np.asarray(v['params']['src']['embedding'], np.float64)[x].sum(1)
  return m, v, x, table, bias


def test_generate_is_greedy_decoding_also_with_the_trainers_batch_fields(toy):
  m, v, x, table, bias = toy
  pads, dec = np.zeros(x.shape, np.float32), np.full((3, 2), BOS, np.int32)
  plain, trainer = jax.jit(lambda v: (
      m.apply(v, x, method='generate'),
      m.apply(v, x, method='generate', beam_width=1, max_length=0, length_penalty=0.0,
              **{'inputs_paddings': pads, 'decoder_inputs': dec})))(v)
  ref = np.full((3, L), PAD, np.int32)                     # NumPy greedy: argmax until EOS, PAD after
  for b in range(3):
    last = BOS
    for t in range(L):
      last = int(np.argmax(table[t, last] + bias[b]))
      ref[b, t] = last
      if last == EOS:
        break
  np.testing.assert_array_equal(np.asarray(plain), ref)
  np.testing.assert_array_equal(np.asarray(trainer), ref)


def test_beam_n_best_equals_the_reference_search(toy):
  m, v, x, table, bias = toy
  got = jax.jit(lambda v: m.apply(v, x, beam_width=3, max_length=L, length_penalty=0.6, n_best=2, method='beam'))(v)
  tab, bia = jnp.asarray(table, jnp.float32), jnp.asarray(bias, jnp.float32)

  def step_fn(tokens, st):                                 # the same decoder, written outside the model
    return jax.nn.log_softmax(tab[st['position'], tokens] + st['bias']), {**st, 'position': st['position'] + 1}
  state = bs.tile_beams({'position': jnp.zeros(3, jnp.int32), 'bias': bia}, 3)
  ref = bs.beam_search_reference(step_fn, state, batch_size=3, beam_width=3, max_len=L, bos_id=BOS, eos_id=EOS,
                                 length_penalty_alpha=0.6, n_best=2, pad_id=PAD)
  np.testing.assert_array_equal(np.asarray(got.sequences), np.asarray(ref.sequences))
  np.testing.assert_allclose(np.asarray(got.scores), np.asarray(ref.scores), rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(got.lengths), np.asarray(ref.lengths))


@pytest.mark.parametrize('kw, match', [(dict(beam_width=0), 'beam width'), (dict(max_length=-1), 'max_length'),
                                       (dict(beam_width=2, length_penalty=-1.0), 'length penalty')])
def test_bad_options_are_user_errors(toy, kw, match):
  m, v, x, _, _ = toy
  with pytest.raises(UserError, match=match):
    m.apply(v, x, method='generate', **kw)


def test_transformer_max_len_is_the_caches_limit():
  m = TransformerSeq2Seq(num_outputs=V, d_model=8, num_heads=2, d_ff=16, max_len=4)
  x = jnp.zeros((2, 3), jnp.int32)
  v = jax.eval_shape(m.init, jax.random.key(0), x)          # shapes only: the error comes before any compile
  with pytest.raises(UserError, match="exceeds the model's max_len 4"):
    jax.eval_shape(lambda v: m.apply(v, x, max_length=5, method='generate'), v)
  with pytest.raises(UserError, match="exceeds the model's max_len 4"):
    jax.eval_shape(lambda v: m.apply(v, x, beam_width=2, method='beam'), v)     # max_decode_length 32
  assert jax.eval_shape(lambda v: m.apply(v, x, max_length=4, method='generate'), v).shape == (2, 4)
