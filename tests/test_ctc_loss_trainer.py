"""The `ctc` loss through the trainer's own train and eval steps on a tiny DeepSpeech2: its metrics equal the CTC
loss computed directly (jaxdl.speech.ctc) and an independent brute force over alignments; an infeasible utterance
is masked (weight 0, zero gradient) and counted; eval metric names come out of eval_shape."""
from __future__ import annotations

import itertools
import math

import jax
import ml_collections
import numpy as np

from jaxdl.losses import build_loss
from jaxdl.models.deepspeech import DeepSpeech2
from jaxdl.optim import build_optimizer
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_eval_step, make_train_step

K = 4


def brute_force_nll(log_probs, labels) -> float:
  """−log Σ_{π: B(π) = labels} Π_t p(π_t): every alignment enumerated, NumPy float64, own collapse."""
  total = 0.0
  for path in itertools.product(range(K), repeat=log_probs.shape[0]):
    merged = [k for k, _ in itertools.groupby(path)]
    if tuple(k for k in merged if k != 0) == tuple(labels):
      total += math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
  return -math.log(total)


def setup(reduction='utterance'):
  model = DeepSpeech2(num_outputs=K, conv_features=(2,), conv_kernels=((3, 3),), conv_strides=((2, 2),),
                      rnn_features=4, rnn_layers=1)
  loss = build_loss(ml_collections.ConfigDict({'name': 'ctc', 'reduction': reduction}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1}), 1)
  rng = np.random.default_rng(0)
  T, F = 10, 5                                  # 10 frames -> 5 output frames; lengths 10, 7, 4 -> 5, 4, 2
  lengths = np.array([10, 7, 4])
  labels = [[1, 2, 2], [3], [1, 2, 3]]          # the last needs 3 frames but has 2: infeasible
  targets = np.zeros((3, 3), np.int32)
  tpad = np.ones((3, 3), np.float32)
  for i, y in enumerate(labels):
    targets[i, :len(y)], tpad[i, :len(y)] = y, 0.0
  batch = {'inputs': rng.normal(size=(3, T, F)).astype(np.float32),
           'inputs_paddings': (np.arange(T)[None] >= lengths[:, None]).astype(np.float32),
           'targets': targets, 'targets_paddings': tpad}
  state = jax.jit(lambda r: create_train_state(model, tx, r, (T, F), example=batch))(jax.random.PRNGKey(0))
  return model, loss, tx, state, batch, labels


def test_ctc_loss_through_the_train_step_equals_brute_force_and_masks_infeasible():
  model, loss, tx, state, batch, labels = setup()
  step = jax.jit(make_train_step(model, loss, tx))
  new, metrics = step(state, batch, jax.random.PRNGKey(0))
  # The same forward pass (training mode: batch statistics) outside the trainer.
  variables = {'params': state.params, **state.model_state}
  out, _ = jax.jit(lambda b: model.apply(variables, b['inputs'], train=True, inputs_paddings=b['inputs_paddings'],
                                         mutable=['batch_stats']))(batch)
  lp = np.asarray(jax.nn.log_softmax(out['logits']), np.float64)
  frames = (np.asarray(out['paddings']) < 0.5).sum(1)
  assert frames.tolist() == [5, 4, 2]
  nll = [brute_force_nll(lp[b, :frames[b]], labels[b]) for b in range(2)]
  np.testing.assert_allclose(float(metrics['loss']), np.mean(nll), rtol=1e-4)
  assert abs(float(metrics['infeasible']) - 0.5) < 1e-6      # 1 infeasible per 2 feasible utterances
  assert np.isfinite(float(metrics['grad_norm'])) and int(new.step) == 1
  per = loss(out, batch)
  np.testing.assert_array_equal(per['weight'], [1.0, 1.0, 0.0])
  # Zero gradient from the infeasible utterance: with its label changed to another infeasible one, the step makes
  # exactly the same update.
  other = dict(batch, targets=batch['targets'].copy())
  other['targets'][2] = [3, 3, 3]
  new2, _ = step(state, other, jax.random.PRNGKey(0))
  jax.tree.map(np.testing.assert_array_equal, new.params, new2.params)


def test_per_token_reduction_and_eval_step():
  model, loss, tx, state, batch, labels = setup('token')
  out = jax.jit(lambda b: model.apply({'params': state.params, **state.model_state}, b['inputs'],
                                     inputs_paddings=b['inputs_paddings']))(batch)
  lp = np.asarray(jax.nn.log_softmax(out['logits']), np.float64)
  nll = [brute_force_nll(lp[b, :f], labels[b]) for b, f in ((0, 5), (1, 4))]
  eval_step = make_eval_step(model, loss)
  batch = dict(batch, mask=np.array([1.0, 1.0, 1.0], np.float32))
  names = jax.eval_shape(eval_step, state, batch)
  assert set(names) == {'loss', 'infeasible', 'count'}
  sums = jax.jit(eval_step)(state, batch)
  # per token: Σ −log p / Σ |y| over the feasible utterances (3 + 1 tokens)
  np.testing.assert_allclose(float(sums['loss'] / sums['count']), sum(nll) / 4, rtol=1e-4)
  assert float(sums['count']) == 4.0 and abs(float(sums['infeasible']) - 1.0) < 1e-6   # the count of infeasible
