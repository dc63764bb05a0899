"""A bidirectional LSTM "language model" cheats: its backward half reads the next character it is asked to predict.

Reproduces: R6 (seed 000, bidirectional RNNs: "With a bi-directional LSTM, the problem is easily solved by using the
            backward LSTM only"): trained to predict character t + 1 at every step t, a bidirectional LSTM is
            near-perfect — at step t its backward direction has just read x_{t+1}, the answer — while a
            unidirectional LSTM is limited by what the past predicts.
Model:      `rnn_many_to_many`: one-hot characters → LSTM(64) (or a bidirectional pair, concatenated) → Dense(vocab)
            at every step; cross entropy averaged over batch × time; Adam 5e-3, clip 1, batch 64, NUM_STEPS steps on
            `next_char` (windows of 32 characters of the standard library's pydoc topics text; 94 symbols; held-out
            windows from the last 10% of the text).
            Ablation: the trained bidirectional model's head with the forward (resp. backward) half of its input
            weights zeroed — which direction carries the prediction?
Command:    jaxdl reproduce bidirectional_cheat --out=report/
            jaxdl train --config=experiments/bidirectional_cheat.py --workdir=runs/bilstm_lm
            ... --config.model.bidirectional=False                          (the honest unidirectional model)
Expected:   bidirectional ≈ 99% next-character accuracy on held-out text, unidirectional ≈ 50%; the backward half
            alone keeps nearly all of the bidirectional accuracy, the forward half alone does not.
Measured:   (2026-12-03) bidirectional 0.982, unidirectional 0.538; backward half only 0.976, forward half only 0.279.
CPU time:   ≈ 1.5 min on 2 idle cores; 4.5 min measured under load.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict

HIDDEN = 64
NUM_STEPS = 1000

CLAIMS = {
    'R6': Claim('R6', '"With a bi-directional LSTM, the problem is easily solved by using the backward LSTM only": a '
                'BiLSTM next-character model reaches near-perfect accuracy, a unidirectional one cannot', '000',
                f'held-out next-character accuracy after {NUM_STEPS} steps: bidirectional ≥ 0.95, unidirectional '
                '≤ 0.75; '
                'the bidirectional model with its head reading the backward half only ≥ 0.9'),
}


def get_config():
  c = base_config()
  c.model.name = 'rnn_many_to_many'
  c.model.cell = 'lstm'
  c.model.hidden_size = HIDDEN
  c.model.bidirectional = True
  c.data.name = 'next_char'
  c.data.length = 32
  c.model.vocab_size = data_lib.get_dataset(c.data).info.num_outputs     # one-hot characters
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 5e-3
  c.optimizer.clip_global_norm = 1.0
  c.train.num_steps = NUM_STEPS
  c.train.batch_size = 64
  c.train.eval_every = NUM_STEPS // 5
  c.train.log_every = 50
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def half_accuracies(config, params) -> dict[str, float]:
  """Held-out accuracy of a trained bidirectional model whose head reads only the 'forward' (resp. 'backward') half
  of the concatenated states: the other half's rows of the head's kernel zeroed."""
  H = config.model.hidden_size
  data = data_lib.get_dataset(config.data)
  model = build_model(config.model, data.info)
  kernel = jnp.asarray(params['head']['kernel'])
  src = data.source(config.data.get('eval_split', 'test'))

  def predictions(x):
    out = {}
    for keep, zero in (('forward', slice(H, 2 * H)), ('backward', slice(0, H))):
      p = {**params, 'head': {**params['head'], 'kernel': kernel.at[zero].set(0.0)}}
      out[keep] = jnp.argmax(model.apply({'params': p}, x), -1)
    return out
  pred = jax.jit(predictions)(jnp.asarray(src.inputs))
  return {k: float(np.mean(np.asarray(v) == src.targets)) for k, v in pred.items()}


def reproduce(ctx, config=None):
  base = config or get_config()
  acc, curves, halves = {}, {}, {}
  for label, bi in (('unidirectional', False), ('bidirectional', True)):
    c = base.copy_and_resolve_references()
    c.model.bidirectional = bi
    name = 'bi' if bi else 'uni'
    summary, state = ctx.train(c, name, return_state=True)
    acc[label] = float(summary['eval']['accuracy'])
    curves[label] = plots.metric_history(ctx.workdir(name), 'eval', 'accuracy')
    if bi:
      params = jax.device_get(state.params)
      halves = half_accuracies(c, params)
    ctx.log(f'{label}: held-out accuracy {acc[label]:.3f}')
  ok = acc['bidirectional'] >= 0.95 and acc['unidirectional'] <= 0.75 and halves['backward'] >= 0.9
  measured = (f'held-out next-character accuracy: bidirectional {acc["bidirectional"]:.3f}, unidirectional '
              f'{acc["unidirectional"]:.3f}; bidirectional head reading the backward half only '
              f'{halves["backward"]:.3f}, the forward half only {halves["forward"]:.3f}')
  fig = plots.curves(curves, ctx.figure('accuracy'), ylabel='held-out next-character accuracy',
                     title='LSTM(64) next-character model')
  return [ClaimResult('R6', measured, verdict(ok),
                      'The bidirectional model is useless as a language model: at step t its backward direction '
                      'has read x_{t+1}, the very character it is asked to predict. A half-zeroed head is not '
                      'retrained, so "backward only" is a lower bound of what that half alone can do.', [fig])]
