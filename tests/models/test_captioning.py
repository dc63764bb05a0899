"""show_and_tell / show_attend_tell: the image is the LSTM's first input, attention is a distribution, the doubly
stochastic penalty is Xu et al.'s formula and reaches the loss, decoding (greedy = beam 1), freezing the encoder, a
tiny end-to-end run with generating evaluation, bad input."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.losses import build_loss
from jaxdl.models import build_model
from jaxdl.optim import build_optimizer
from jaxdl.text.vocab import BOS, PAD
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step

V = 9
TINY = dict(num_outputs=V, encoder_channels=(4, 8), embed_dim=8, hidden_size=12, max_decode_length=6)


def _model(name, **kw):
  extra = dict(attention_features=6) if name == 'show_attend_tell' else {}
  return build_model(ml_collections.ConfigDict({'name': name, **TINY, **extra, **kw}))


def _batch(b=3, t=5, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.uniform(0, 1, (b, 16, 16, 3)).astype(np.float32)
  dec = rng.integers(4, V, (b, t)).astype(np.int32)
  dec[:, 0] = BOS
  dec[1, 3:] = PAD                                    # a shorter caption
  targets = np.concatenate([dec[:, 1:], np.full((b, 1), 2, np.int32)], 1)
  targets[1, 2], targets[1, 3:] = 2, PAD
  pads = (dec == PAD).astype(np.float32)
  return {'inputs': images, 'decoder_inputs': dec, 'targets': targets, 'targets_paddings': pads}


@pytest.fixture(scope='module')
def sat():
  m = _model('show_attend_tell', penalty=0.7)
  b = _batch()
  v = jax.jit(m.init)(jax.random.key(0), b['inputs'], b['decoder_inputs'])
  return m, v, b, jax.jit(m.apply)(v, b['inputs'], b['decoder_inputs'])


def test_attention_is_a_distribution_over_the_map(sat):
  m, v, b, out = sat
  alpha = np.asarray(out['attention'], np.float64)
  assert alpha.shape == (3, 5, 16)                    # 16×16 → two 2×2 pools → 4×4 cells
  np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
  assert (alpha >= 0).all()
  assert m.apply(v, b['inputs'][:1], method='feature_grid') == (4, 4)


def test_doubly_stochastic_penalty_is_the_formula(sat):
  _, _, b, out = sat
  alpha = np.asarray(out['attention'], np.float64)
  valid = (b['decoder_inputs'] != PAD).astype(np.float64)
  expected = np.zeros(3)
  for i in range(3):                                  # λ Σ_i (1 − Σ_t α_ti)², t over the caption's steps
    for loc in range(alpha.shape[2]):
      expected[i] += (1.0 - sum(alpha[i, t, loc] * valid[i, t] for t in range(5))) ** 2
  np.testing.assert_allclose(np.asarray(out['aux_loss']), 0.7 * expected, rtol=1e-5)


def test_the_penalty_is_added_to_the_per_token_loss(sat):
  _, _, b, out = sat
  metrics = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))(out, b)
  logits = np.asarray(out['logits'], np.float64)
  logp = logits - logits.max(-1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
  nll = -np.take_along_axis(logp, b['targets'][..., None], -1)[..., 0]
  valid = 1.0 - b['targets_paddings']
  n = valid.sum(1)
  expected = ((nll * valid).sum(1) + np.asarray(out['aux_loss'])) / n      # (Σ_t −log p + penalty) / tokens
  np.testing.assert_allclose(np.asarray(metrics['loss']), expected, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(metrics['aux_loss']), np.asarray(out['aux_loss']) / n, rtol=1e-5)


def test_show_and_tell_reads_the_image_first_then_the_words():
  m = _model('show_and_tell')
  b = _batch()
  v = jax.jit(m.init)(jax.random.key(1), b['inputs'], b['decoder_inputs'])
  apply = jax.jit(m.apply, static_argnames='method')
  logits = np.asarray(apply(v, b['inputs'], b['decoder_inputs']))

  def unrolled(mdl, x, dec):          # x_{−1} = W_I CNN(I) from a zero state, then W_e S_t, one cell step each
    carry, _ = mdl.lstm(None, mdl.image_embedding(x))
    outs = []
    for t in range(dec.shape[1]):
      carry, h = mdl.lstm(carry, mdl.embed(dec[:, t]))
      outs.append(mdl.head(h))
    return jnp.stack(outs, 1)
  np.testing.assert_allclose(logits, np.asarray(apply(v, b['inputs'], b['decoder_inputs'], method=unrolled)),
                             atol=1e-5)
  # another image changes the very first prediction; the word at t changes predictions t, t+1, … only
  other = np.asarray(apply(v, b['inputs'][::-1], b['decoder_inputs']))
  assert np.abs(other[0, 0] - logits[0, 0]).max() > 1e-6
  dec = b['decoder_inputs'].copy()
  dec[0, 2] = 4 if dec[0, 2] != 4 else 5
  changed = np.abs(np.asarray(apply(v, b['inputs'], dec)) - logits)[0].max(-1)
  assert (changed[:2] == 0).all() and (changed[2:] > 1e-7).all()


@pytest.mark.parametrize('name', ['show_and_tell', 'show_attend_tell'])
def test_generate_greedy_equals_beam_one_and_the_teacher_forced_argmax(name):
  m = _model(name)
  b = _batch()
  v = jax.jit(m.init)(jax.random.key(2), b['inputs'], b['decoder_inputs'])
  decode = jax.jit(lambda v, x, method: m.apply(v, x, beam_width=1, max_length=6, method=method),
                   static_argnames='method')
  greedy = np.asarray(decode(v, b['inputs'], 'generate'))
  beam1 = np.asarray(decode(v, b['inputs'], 'beam').sequences[:, 0])
  np.testing.assert_array_equal(greedy, beam1)
  # the decoder's step path agrees with the training forward: feeding the greedy prefix back, the teacher-forced
  # argmax at each step is the next greedy token
  prefix = np.concatenate([np.full((3, 1), BOS, np.int32), greedy[:, :3]], 1)
  out = jax.jit(m.apply)(v, b['inputs'], prefix)
  logits = out['logits'] if isinstance(out, dict) else out
  live = np.cumsum(greedy[:, :4] == 2, 1) - (greedy[:, :4] == 2) == 0          # up to and including the EOS
  np.testing.assert_array_equal(np.argmax(np.asarray(logits), -1)[live], greedy[:, :4][live])


def test_frozen_encoder_does_not_move():
  m = _model('show_and_tell')
  b = _batch()
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 0.01,
                                                     'freeze': ('encoder',)}), 1)
  state = create_train_state(m, tx, jax.random.key(3), (16, 16, 3), example=b)
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  new, metrics = jax.jit(make_train_step(m, loss, tx))(state, b, jax.random.key(4))
  assert np.isfinite(float(metrics['loss']))
  same = jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), state.params, new.params)
  assert all(jax.tree.leaves(same['encoder']))
  assert not any(jax.tree.leaves({k: s for k, s in same.items() if k != 'encoder'}))


def test_tiny_training_run_scores_its_generations(tmp_path):
  import sacrebleu
  from jaxdl.config import base_config
  from jaxdl.data import get_dataset
  from jaxdl.train.loop import train_and_evaluate
  c = base_config()
  c.model.name = 'show_attend_tell'
  c.model.update(encoder_channels=(4, 8), embed_dim=8, hidden_size=12, attention_features=6, max_decode_length=24)
  c.data.name = 'captioned_shapes'
  c.data.update(num_train=48, num_test=12, size=24, max_objects=2, bucket_width=16)
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-2
  c.train.update(num_steps=3, batch_size=8, eval_batch_size=12, eval_every=0, checkpoint_every=0, log_every=1,
                 best_metric='')
  c.decode.update(metrics=('bleu', 'exact_match'), beam_width=2, max_length=12)
  summary, state = train_and_evaluate(c, tmp_path / 'run', quiet=True, return_state=True)
  ev = summary['eval']
  assert {'bleu', 'exact_match', 'aux_loss', 'loss'} <= set(ev)
  ds = get_dataset(c.data)
  src = ds.source('test')
  model = build_model(c.model, ds.info)
  gen = jax.jit(lambda p, x: model.apply({'params': p}, x, beam_width=2, max_length=12, method='generate'))
  ids = gen(state.params, src.fields['inputs'])
  hyps = [ds.vocabulary.decode(row) for row in np.asarray(ids)]
  assert ev['bleu'] == pytest.approx(sacrebleu.corpus_bleu(hyps, [src.references]).score, abs=1e-6)
  assert ev['exact_match'] == pytest.approx(np.mean([h == r for h, r in zip(hyps, src.references)]))


@pytest.mark.parametrize('kw', [dict(encoder='vgg16'), dict(penalty=-1.0), dict(image_features='max'),
                                dict(encoder_channels=(4, 0))])
def test_bad_model_config_is_a_user_error(kw):
  name = 'show_and_tell' if 'image_features' in kw else 'show_attend_tell'
  with pytest.raises(UserError):
    _model(name, **kw)


@pytest.mark.parametrize('kw', [dict(beam_width=0), dict(beam_width=1, max_length=-1),
                                dict(beam_width=2, length_penalty=-1.0)])
def test_bad_decoding_options_are_user_errors(sat, kw):
  m, v, b, _ = sat
  with pytest.raises(UserError):
    m.apply(v, b['inputs'], method='generate', **kw)


@pytest.mark.parametrize('name', ['show_and_tell', 'show_attend_tell'])
def test_freeze_encoder_runs_the_trunk_in_inference_mode_without_gradient(name):
  # encoder BN makes the mode visible: in training mode it normalises with the batch's statistics and updates its own
  kw = dict(encoder_batch_norm=True, **(dict(image_batch_norm=False) if name == 'show_and_tell' else {}))
  frozen, free = _model(name, freeze_encoder=True, **kw), _model(name, **kw)
  b = _batch()
  v = free.init(jax.random.key(0), b['inputs'], b['decoder_inputs'])

  def run(model, params, train):
    out, new = model.apply({**v, 'params': params}, b['inputs'], b['decoder_inputs'], train=train,
                           mutable=['batch_stats'])
    return out['logits'] if isinstance(out, dict) else out, new

  def loss(params, model):
    logits, new = run(model, params, True)
    return jnp.sum(logits ** 2), new

  moved = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  for model, is_frozen in ((frozen, True), (free, False)):
    g, new = jax.grad(loss, has_aux=True)(v['params'], model)
    assert any(np.any(np.asarray(x) != 0) for x in jax.tree.leaves(g['encoder'])) != is_frozen
    assert any(np.any(np.asarray(x) != 0) for x in jax.tree.leaves(g['embed']))
    assert moved(v['batch_stats']['encoder'], new['batch_stats']['encoder']) != is_frozen
  # frozen, the training forward IS the inference forward (no other BN or dropout in these models); free, it is not
  train_frozen, eval_free = run(frozen, v['params'], True)[0], run(free, v['params'], False)[0]
  np.testing.assert_allclose(train_frozen, eval_free, rtol=1e-6, atol=1e-6)
  assert not np.allclose(run(free, v['params'], True)[0], eval_free, atol=1e-3)


def test_freeze_keeps_the_frozen_trunks_running_statistics():
  """make_train_step(freeze=...) leaves the mutable state under a frozen name (BN statistics) as it was."""
  m = _model('show_and_tell', encoder_batch_norm=True)
  b = _batch()
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'adam', 'learning_rate': 0.01,
                                                     'freeze': ('encoder',)}), 1)
  state = create_train_state(m, tx, jax.random.key(3), (16, 16, 3), example=b)
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  for freeze, moved in ((('encoder',), False), ((), True)):
    new, _ = jax.jit(make_train_step(m, loss, tx, freeze=freeze))(state, b, jax.random.key(4))
    enc_same = [np.array_equal(x, y) for x, y in zip(jax.tree.leaves(state.model_state['batch_stats']['encoder']),
                                                     jax.tree.leaves(new.model_state['batch_stats']['encoder']))]
    assert all(enc_same) != moved
    other_same = np.array_equal(state.model_state['batch_stats']['image_bn']['mean'],
                                new.model_state['batch_stats']['image_bn']['mean'])
    assert not other_same                                      # the decoder's own BN keeps learning its statistics
