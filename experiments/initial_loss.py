"""The initial-loss sanity check: an untrained softmax classifier's cross entropy is ≈ log C.

Reproduces: T15 (seed 004 W9, "Find a good learning rate": "Perform initial loss sanity check e.g., log(C) for softmax
            with C classes").
Setup:      the trainer's own initial state (TrainSetup(config).init_state(), i.e. what `jaxdl train` starts from) of
            the `mlp` (128 ReLU units, flax's default init), evaluated on the whole training split of the digits with
            C = 10 outputs, and with C = 100 and 1000 outputs (labels still 0–9: an untrained net's prediction is
            ≈ uniform whatever the labels). Also through `jaxdl train` itself: the first logged training loss (step 1,
            computed before the first update). Counter-examples the check exists to catch: N(0, 1) weights
            (kernel_init normal, σ = 1). Reported, not judged: a 2-class problem (two_moons) and a 5-layer He-init ReLU
            net, where the logits at init are not small.
Command:    jaxdl reproduce initial_loss --out=report/
            jaxdl train --config=experiments/initial_loss.py --workdir=runs/initial_loss   (first logged loss ≈ 2.30)
Expected:   L₀ = 2.30 ≈ log 10, 4.6 ≈ log 100, 6.9 ≈ log 1000 (within 10%); N(0, 1) weights: L₀ ≫ log C.
CPU time:   ≈ 10 s.
"""
import json

import numpy as np

from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.train.setup import TrainSetup

CLAIMS = {
    'T15': Claim('T15', 'Initial softmax loss ≈ log C', '004 W9',
                 '|L₀ − log C| ≤ 10% of log C for the default-init MLP on the digits with C = 10, 100, 1000 outputs and '
                 'for the first loss `jaxdl train` logs; a mis-scaled init (N(0, 1) weights) is off by > 50%'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (128,)
  c.model.activation = 'relu'
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.1
  c.train.num_steps = 500
  c.train.batch_size = 64
  c.train.log_every = 1
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def initial_loss(config):
  """(C, L₀ on the training split) for the state `jaxdl train` would start from."""
  s = TrainSetup(config)
  return s.model.num_outputs, s.evaluate(s.init_state(), 'train')['loss']


def _variant(data='digits', outputs=None, hidden=(128,), kernel_init='default', scale=1.0):
  c = get_config()
  c.data.name = data
  c.model.hidden = hidden
  c.model.kernel_init = kernel_init
  c.model.kernel_init_scale = scale
  if outputs:
    c.model.num_outputs = outputs
  return c


def reproduce(ctx):
  judged = {f'digits, C = {C}': _variant(outputs=C) for C in (10, 100, 1000)}
  others = {'N(0, 1) weights, C = 10': _variant(kernel_init='normal', scale=1.0),
            'two_moons, C = 2': _variant(data='two_moons'),
            '5 × 256 ReLU, He init, C = 10': _variant(hidden=(256,) * 5, kernel_init='he_normal')}
  res = {k: initial_loss(c) for k, c in {**judged, **others}.items()}
  rel = {k: (l - np.log(C)) / np.log(C) for k, (C, l) in res.items()}
  # The trainer itself: its first logged loss (step 1's metrics are computed before the update).
  c = get_config()
  c.train.num_steps = 1
  ctx.train(c, 'first_step')
  first = [json.loads(line) for line in (ctx.workdir('first_step') / 'metrics.jsonl').read_text().splitlines()]
  first = next(r['loss'] for r in first if r['split'] == 'train' and r['step'] == 1)
  rel_first = (first - np.log(10)) / np.log(10)
  ok = all(abs(rel[k]) <= 0.1 for k in judged) and abs(rel_first) <= 0.1 and rel['N(0, 1) weights, C = 10'] > 0.5
  fmt = lambda k: f'{k}: L₀ = {res[k][1]:.3f} vs log C = {np.log(res[k][0]):.3f} ({100 * rel[k]:+.1f}%)'
  return [ClaimResult('T15', '; '.join(fmt(k) for k in judged) + f'; `jaxdl train` step-1 loss {first:.3f} '
                      f'({100 * rel_first:+.1f}%); ' + fmt('N(0, 1) weights, C = 10'), verdict(ok),
                      'Not judged: ' + '; '.join(fmt(k) for k in list(others)[1:]) + '. With small logits o, '
                      'L = log Σ e^{o_k} − o_y ≈ log C + ½ var_k(o) − (o_y − mean_k o): larger logits (a deep He-init '
                      'net) raise L₀; on two_moons the untrained logits happen to favour the right class (o_y > mean_k o on '
                      'average), which lowers it.')]
