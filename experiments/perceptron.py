"""Rosenblatt's perceptron on AND, OR and XOR, trained online by the one trainer.

Reproduces: L1 (the online rule converges in finitely many steps on AND and OR, never on XOR) and L2 (the rule is
the delta rule w ← w + ½(y − ŷ)φ(x), i.e. SGD with step 1 on J(w) = 1/N Σ max(0, −y wᵀφ(x))).
Model:      `linear` from w = 0, φ(x) = [1; x], g(s) = +1 iff s ≥ 0; loss `perceptron`; SGD lr 1, batch 1 (online).
Command:    jaxdl train --config=experiments/perceptron.py --workdir=runs/perceptron --config.data.name=logic_or
            jaxdl reproduce perceptron --out=report/
Expected:   AND and OR reach 0 mistakes within a few epochs; XOR makes mistakes in every one of 50 epochs; the
            trainer's θ equals an independent implementation of the delta rule; J(θ) = 0 at convergence.
CPU time:   ≈ 10 s.
"""
import numpy as np

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.data.pipeline import epoch_permutation
from jaxdl.models import linear, perceptron
from jaxdl.reproduce import Claim, ClaimResult, vec, verdict

CLAIMS = {
    'L1': Claim('L1', 'online rule converges in finite steps on AND and OR; never on XOR', '000 ~L160–260, 001',
                'an epoch with 0 mistakes is reached on AND and OR; XOR still errs in each of 50 epochs'),
    'L2': Claim('L2', 'perceptron rule = delta rule w ← w + ½(y−ŷ)φ(x); minimises J(w)=1/N Σ max(0, −y wᵀφ(x))', '000',
                "trainer's θ = independent delta-rule θ (|Δ| < 1e-6); J(θ) = 0 after convergence"),
}
EPOCHS = 50


def get_config():
  c = base_config()
  c.model.name = 'linear'
  c.model.num_outputs = 1
  c.model.zero_init = True
  c.data.name = 'logic_and'
  c.loss.name = 'perceptron'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 1.0
  c.train.num_steps = 4 * EPOCHS      # 4 points, batch 1: one epoch is 4 steps
  c.train.batch_size = 1
  c.train.log_every = 4               # the logged accuracy is 1 − mistakes/4 of that epoch
  c.train.eval_every = 0
  c.train.checkpoint_every = 0
  c.train.best_metric = ''
  return c


def reproduce(ctx):
  results, panels, notes, l2_ok, l2_dev = {}, [], [], True, 0.0
  for name in ('logic_and', 'logic_or', 'xor'):
    c = get_config()
    c.data.name = name
    _, state = ctx.train(c, name, return_state=True)
    _, acc = plots.metric_history(ctx.workdir(name), 'train', 'accuracy')
    mistakes = [round(4 * (1 - a)) for a in acc]
    first_clean = next((i + 1 for i, m in enumerate(mistakes) if m == 0), None)
    theta = np.asarray(linear.theta_from_params(state.params))[:, 0]
    x, y = data_lib.split_arrays(data_lib.get_dataset(c.data), 'train')
    ys = np.where(y > 0, 1.0, -1.0)
    phi = np.c_[np.ones(len(x)), x]
    # Independent reference: the delta rule over the same (seeded) sample order.
    w = np.zeros(3)
    for e in range(EPOCHS):
      for i in epoch_permutation(len(x), c.train.seed, e):
        y_hat = 1.0 if w @ phi[i] >= 0 else -1.0
        w = w + 0.5 * (ys[i] - y_hat) * phi[i]
    l2_dev = max(l2_dev, float(np.max(np.abs(w - theta))))
    j = float(np.mean(np.maximum(0.0, -ys * (phi @ theta))))
    if name != 'xor':
      l2_ok &= j == 0.0
    results[name] = (first_clean, mistakes, j)
    notes.append(f'{name}: mistakes per epoch {mistakes[:8]}… → first clean epoch {first_clean}; θ = {vec(theta, 3)}, J(θ) = {j:.3g}')
    panels.append((f'{name}: θ={np.round(theta, 1).tolist()}', x, ys, lambda g, t=theta: g @ t[1:] + t[0]))
  fig = plots.decision_boundaries(panels, ctx.figure('boundaries'), lim=(-0.5, 1.5, -0.5, 1.5))
  a, o, x = results['logic_and'], results['logic_or'], results['xor']
  ok1 = a[0] is not None and o[0] is not None and x[0] is None and min(x[1]) > 0
  return [
      ClaimResult('L1', f'AND clean at epoch {a[0]}, OR at epoch {o[0]}; XOR ≥ {min(x[1])} mistakes in every one of '
                  f'{EPOCHS} epochs', verdict(ok1), '; '.join(notes), [fig]),
      ClaimResult('L2', f'max |θ_trainer − θ_delta-rule| = {l2_dev:.1e}; J(θ) = {a[2]:.3g} (AND), {o[2]:.3g} (OR)',
                  verdict(l2_ok and l2_dev < 1e-6),
                  'The trainer runs SGD (lr 1, batch 1) on the perceptron criterion; the reference applies '
                  'w ← w + ½(y − ŷ)φ(x) in NumPy over the same sample order.', [fig]),
  ]
