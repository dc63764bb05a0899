"""Softmax regression (multinomial logistic regression) on the 8×8 digits, with cross entropy or the multiclass hinge.

Reproduces: L8 (softmax is shift-invariant; log-softmax via log-sum-exp never overflows; the softmax-regression
            gradient is −(δ_jy − ŷ_j)x; ∂L/∂o = p − y) and L9 (multiclass hinge Σ_{k≠y} max(0, s_k − s_y + 1)).
Model:      `linear` with 10 outputs on the flattened 64 pixels; loss `softmax_cross_entropy` (or `multiclass_hinge`).
Command:    jaxdl train --config=experiments/softmax_regression.py --workdir=runs/softmax_regression
            jaxdl reproduce softmax_regression --out=report/
Expected:   identities to float precision, finite losses at logits ±1e4; ≈ 95–97% test accuracy with either loss.
CPU time:   ≈ 15 s.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxdl import losses, plots
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'L8': Claim('L8', 'softmax shift-invariant; log-softmax via log-sum-exp never overflows; gradient −(δ_jy − ŷ_j)x; '
                '∂L/∂o = p − y', '000, 003, 004 F18',
                'identities hold to 1e-6; loss finite at logits ±1e4 (naive formula overflows); softmax regression '
                'reaches ≥ 93% on the digits'),
    'L9': Claim('L9', 'multiclass hinge Σ_{k≠y} max(0, s_k − s_y + 1)', '004 F19',
                'jaxdl loss = the formula evaluated in NumPy (1e-5); training with it reaches ≥ 93% on the digits'),
}


def get_config():
  c = base_config()
  c.model.name = 'linear'
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.5
  c.train.num_steps = 1500
  c.train.batch_size = 64
  c.train.log_every = 50
  c.train.eval_every = 250
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def _ce():
  return losses.build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))


def reproduce(ctx):
  rng = np.random.default_rng(0)
  o = rng.normal(size=(5, 10)).astype(np.float32)
  # A shift of 7: in float32 a large shift (say 1000) would round the inputs themselves (ulp(1000) ≈ 6e-5).
  shift = float(np.max(np.abs(np.asarray(jax.nn.softmax(o + 7.0)) - np.asarray(jax.nn.softmax(o)))))
  huge = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
  lse = np.asarray(_ce()(huge, {'targets': jnp.array([1, 2])})['loss'])
  with np.errstate(over='ignore', invalid='ignore', divide='ignore'):
    naive = -np.log(np.exp(np.float32(-1e4)) / np.exp(np.asarray(huge, np.float32)).sum(-1)[0])
  # ∂L/∂o = p − y and ∇_{w_j} L = −(δ_jy − ŷ_j) x for o = Wx.
  x = rng.normal(size=(64,)).astype(np.float32)
  W = rng.normal(size=(10, 64)).astype(np.float32) * 0.1
  y = 3
  loss = lambda W: _ce()((W @ x)[None], {'targets': jnp.array([y])})['loss'][0]
  g = np.asarray(jax.grad(loss)(jnp.asarray(W)))
  p = np.asarray(jax.nn.softmax(W @ x))
  formula = -((np.eye(10)[y] - p)[:, None] * x[None, :])
  dodo = np.asarray(jax.grad(lambda o_: _ce()(o_[None], {'targets': jnp.array([y])})['loss'][0])(jnp.asarray(W @ x)))
  id_err = max(float(np.max(np.abs(g - formula))), float(np.max(np.abs(dodo - (p - np.eye(10)[y])))))
  # Training with both losses through the one trainer.
  accs, series = {}, {}
  for name in ('softmax_cross_entropy', 'multiclass_hinge'):
    c = get_config()
    c.loss.name = name
    if name == 'multiclass_hinge':
      c.optimizer.learning_rate = 0.05
    accs[name] = ctx.train(c, name)['eval']['accuracy']
    series[name] = plots.metric_history(ctx.workdir(name), 'eval', 'accuracy')
  fig = plots.curves(series, ctx.figure('accuracy'), ylabel='test accuracy', title='softmax regression on digits')
  ok8 = shift < 1e-6 and np.all(np.isfinite(lse)) and id_err < 1e-5 and accs['softmax_cross_entropy'] >= 0.93
  # L9 against the formula.
  s = rng.normal(size=(6, 4)).astype(np.float32)
  t = rng.integers(0, 4, 6)
  ref = [sum(max(0.0, s[i, k] - s[i, t[i]] + 1) for k in range(4) if k != t[i]) for i in range(6)]
  hinge = losses.build_loss(ml_collections.ConfigDict({'name': 'multiclass_hinge'}))
  h_err = float(np.max(np.abs(np.asarray(hinge(jnp.asarray(s), {'targets': jnp.asarray(t)})['loss']) - ref)))
  ok9 = h_err < 1e-5 and accs['multiclass_hinge'] >= 0.93
  return [
      ClaimResult('L8', f'softmax(o + 7) − softmax(o): {shift:.1e}; loss at ±1e4 logits = {lse.tolist()} (naive: {float(naive)}); '
                  f'gradient identities error {id_err:.1e}; test accuracy {100 * accs["softmax_cross_entropy"]:.1f}%',
                  verdict(ok8), 'log ŷ_i = o_i − o* − log Σ_j exp(o_j − o*): every exponent is ≤ 0.', [fig]),
      ClaimResult('L9', f'|jaxdl − formula| = {h_err:.1e}; test accuracy with the hinge {100 * accs["multiclass_hinge"]:.1f}%',
                  verdict(ok9), '', [fig]),
  ]
