"""Sequence models of the zoo (jaxdl/models/sequence.py): shapes, the last-valid-step readout under padding,
parameter counts against PyTorch's formula, the IRNN init, and the ESN's fixed reservoir under the trainer."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.losses import build_loss
from jaxdl.models import build_model, check_config, count_params
from jaxdl.models.sequence import ESN, RNNManyToMany, RNNManyToOne, last_valid
from jaxdl.nn.recurrent import spectral_radius, torch_param_count
from jaxdl.optim import build_optimizer
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step

B, T, D, H, K = 3, 5, 4, 6, 7


def n_params(model, x):
  return count_params(jax.eval_shape(model.init, jax.random.PRNGKey(0), x)['params'])


@pytest.mark.parametrize('cell,kind', [('elman', 'rnn'), ('irnn', 'rnn'), ('lstm', 'lstm'), ('gru', 'gru')])
@pytest.mark.parametrize('layers,bi', [(1, False), (2, True)])
def test_param_count_is_torch_rnn_plus_head(cell, kind, layers, bi):
  x = jnp.zeros((B, T, D))
  m = RNNManyToOne(cell=cell, hidden_size=H, num_layers=layers, bidirectional=bi, num_outputs=K)
  feat = (2 if bi else 1) * H
  assert n_params(m, x) == torch_param_count(kind, D, H, layers, bi) + feat * K + K
  # per step: the same parameters
  assert n_params(RNNManyToMany(cell=cell, hidden_size=H, num_layers=layers, bidirectional=bi, num_outputs=K), x) == \
      n_params(m, x)


def test_output_shapes_for_every_input_kind():
  key = jax.random.PRNGKey(0)
  cases = [(RNNManyToOne(hidden_size=H, num_outputs=K), jnp.ones((B, T, D)), (B, K)),
           (RNNManyToOne(hidden_size=H, num_outputs=K), jnp.ones((B, T)), (B, K)),              # scalar per step
           (RNNManyToOne(hidden_size=H, num_outputs=K), jnp.ones((B, 8, 8, 1)), (B, K)),        # image: rows
           (RNNManyToMany(hidden_size=H, num_outputs=K, bidirectional=True), jnp.ones((B, T, D)), (B, T, K)),
           (RNNManyToMany(hidden_size=H, num_outputs=K, vocab_size=11), jnp.ones((B, T)), (B, T, K)),
           (RNNManyToMany(hidden_size=H, num_outputs=K, vocab_size=11, embed_dim=3), jnp.ones((B, T)), (B, T, K))]
  for model, x, shape in cases:
    v = jax.eval_shape(model.init, key, x)
    assert jax.eval_shape(model.apply, v, x).shape == shape
  # one-hot ids equal the same one-hot vectors given as features
  m = RNNManyToOne(hidden_size=H, num_outputs=K, vocab_size=11)
  ids = jnp.array([[1, 4, 10, 0, 2]] * B, jnp.float32)
  v = m.init(key, ids)
  plain = RNNManyToOne(hidden_size=H, num_outputs=K)
  a, b = jax.jit(lambda v, ids: (m.apply(v, ids), plain.apply(v, jax.nn.one_hot(ids.astype(int), 11))))(v, ids)
  np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize('cell,layers,bi', [('lstm', 1, True), ('gru', 2, False)])
def test_many_to_one_reads_the_last_valid_step(cell, layers, bi):
  """A padded batch gives, for each sequence, exactly what the sequence gives alone (at its own length)."""
  m = RNNManyToOne(cell=cell, hidden_size=H, num_layers=layers, bidirectional=bi, num_outputs=K)
  x = jax.random.normal(jax.random.PRNGKey(1), (B, 3, D))
  lengths = jnp.array([3, 1, 2])
  v = jax.jit(m.init)(jax.random.PRNGKey(0), x)
  apply = jax.jit(m.apply)
  padded = apply(v, x, lengths)
  for i, n in enumerate(lengths.tolist()):
    alone = apply(v, x[i:i + 1, :n])
    np.testing.assert_allclose(padded[i], alone[0], rtol=1e-5, atol=1e-6)
  # garbage in the padding changes nothing
  noisy = x.at[1, 1:].set(100.0)
  np.testing.assert_allclose(apply(v, noisy, lengths), padded, rtol=1e-5, atol=1e-6)


def test_last_valid_against_numpy():
  ys = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
  np.testing.assert_array_equal(last_valid(jnp.asarray(ys)), ys[:, -1])
  np.testing.assert_array_equal(last_valid(jnp.asarray(ys), jnp.array([2, 4])), np.stack([ys[0, 1], ys[1, 3]]))
  out = last_valid(jnp.asarray(ys), jnp.array([2, 4]), backward_from=3)
  np.testing.assert_array_equal(out, np.stack([np.r_[ys[0, 1, :3], ys[0, 0, 3:]], np.r_[ys[1, 3, :3], ys[1, 0, 3:]]]))


def test_irnn_init_is_identity_and_zero_bias():
  m = RNNManyToOne(cell='irnn', hidden_size=H, num_outputs=K)
  p = jax.jit(m.init)(jax.random.PRNGKey(0), jnp.zeros((1, T, D)))['params']['rnn']['layer0']['cell']
  np.testing.assert_array_equal(p['kernel_hh'], np.eye(H))
  np.testing.assert_array_equal(p['bias_ih'], 0.0)
  np.testing.assert_array_equal(p['bias_hh'], 0.0)
  assert 0.0 < float(jnp.std(p['kernel_ih'])) < 0.3
  # ReLU: h_t = relu(W_in x_t + h_{t−1}) with W_h = I, b = 0, by hand
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (1, T, D)))
  h = np.zeros(H, np.float32)
  for t in range(T):
    h = np.maximum(x[0, t] @ np.asarray(p['kernel_ih']) + h, 0.0)
  m2 = RNNManyToMany(cell='irnn', hidden_size=H, num_outputs=K)
  v = jax.jit(m2.init)(jax.random.PRNGKey(0), x)
  head = v['params']['head']
  np.testing.assert_allclose(jax.jit(m2.apply)(v, x)[0, -1], h @ np.asarray(head['kernel']) + np.asarray(head['bias']),
                             rtol=1e-5, atol=1e-6)


def test_config_validation():
  cfg = lambda **kw: ml_collections.ConfigDict({'name': 'rnn_many_to_one', **kw})
  check_config(cfg(cell='gru', hidden_size=8, num_layers=2, bidirectional=True))
  for bad in ({'hidden_size': 0}, {'num_layers': -1}, {'dropout': 1.0}, {'unknown_key': 1}):
    with pytest.raises(UserError):
      check_config(cfg(**bad))
  for bad in ({'cell': 'transformer'}, {'recurrent_init': 'random'}, {'embed_dim': 4}):
    with pytest.raises(UserError):
      build_model(cfg(**bad))
  with pytest.raises(UserError):
    check_config(ml_collections.ConfigDict({'name': 'esn', 'leak_rate': 1.5}))


def test_per_step_cross_entropy_averages_over_batch_and_time():
  logits = jax.random.normal(jax.random.PRNGKey(0), (B, T, K))
  targets = np.random.default_rng(0).integers(0, K, (B, T))
  out = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))(logits, {'targets': targets})
  logp = np.asarray(jax.nn.log_softmax(logits))
  nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
  assert out['loss'].shape == (B,)
  np.testing.assert_allclose(np.mean(out['loss']), nll.mean(), rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'], (logp.argmax(-1) == targets).mean(-1))


def test_esn_reservoir_is_model_state_and_stays_fixed():
  m = ESN(reservoir_size=20, spectral_radius=0.7, num_outputs=2)
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 0.1}), 1)
  state = create_train_state(m, tx, jax.random.PRNGKey(0), (T, 1))
  res = state.model_state['reservoir']['reservoir']
  assert abs(spectral_radius(res['kernel_hh']) - 0.7) < 1e-4
  assert count_params(state.params) == (1 + 20 + 1) * 2            # only the readout of [u; x] is trained
  loss = build_loss(ml_collections.ConfigDict({'name': 'squared_error'}))
  batch = {'inputs': np.ones((4, T, 1), np.float32), 'targets': np.zeros((4, T, 2), np.float32)}
  new, _ = jax.jit(make_train_step(m, loss, tx))(state, batch, jax.random.PRNGKey(0))
  jax.tree.map(np.testing.assert_array_equal, new.model_state, state.model_state)
  assert not np.array_equal(new.params['readout']['kernel'], state.params['readout']['kernel'])
