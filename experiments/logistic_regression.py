"""Logistic regression: cross entropy vs an L2 loss on a sigmoid (binary classification, two Gaussian blobs).

Reproduces: L7 (the cross-entropy gradient is −(y − ŷ)x; with an L2 loss on a sigmoid the gradient vanishes for
            strongly misclassified samples).
Model:      `linear` (one logit), loss `sigmoid_binary_cross_entropy`, SGD.
Command:    jaxdl train --config=experiments/logistic_regression.py --workdir=runs/logistic_regression
            jaxdl reproduce logistic_regression --out=report/
Expected:   autodiff gradient = −(y − ŷ)x to float precision; at wᵀx = −10 with y = 1 the CE gradient is ≈ 1·x while
            the L2-on-sigmoid gradient is ≈ 4.5e-5·x; from a badly wrong start CE recovers, L2 stalls.
CPU time:   ≈ 10 s.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxdl import losses, plots
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'L7': Claim('L7', 'logistic regression: CE gradient −(y−ŷ)x; with an L2 loss on a sigmoid the gradient vanishes for '
                'strongly misclassified samples', '000',
                'autodiff = formula (1e-6); |∇L2| / |∇CE| < 1e-3 at wᵀx = −10; from a wrong start CE reaches ≥ 95% '
                'accuracy while L2 on the sigmoid is still below it'),
}


def get_config():
  c = base_config()
  c.model.name = 'linear'
  c.model.num_outputs = 1
  c.data.name = 'two_blobs'
  c.loss.name = 'sigmoid_binary_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.5
  c.train.num_steps = 300
  c.train.batch_size = 20
  c.train.log_every = 10
  c.train.eval_every = 100
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def _grad(name, w, x, y):
  fn = losses.build_loss(ml_collections.ConfigDict({'name': name}))
  f = lambda w: jnp.sum(fn((x @ w)[:, None], {'targets': y})['loss'])
  return np.asarray(jax.grad(f)(w))


def reproduce(ctx):
  rng = np.random.default_rng(0)
  x = np.c_[np.ones(8), rng.normal(size=(8, 2))].astype(np.float32)     # φ₀ = 1
  y = rng.integers(0, 2, 8).astype(np.float32)
  w = rng.normal(size=3).astype(np.float32)
  y_hat = 1 / (1 + np.exp(-(x @ w)))
  formula = -((y - y_hat)[:, None] * x).sum(0)
  auto = _grad('sigmoid_binary_cross_entropy', jnp.asarray(w), jnp.asarray(x), jnp.asarray(y))
  err = float(np.max(np.abs(auto - formula)))
  # A strongly misclassified sample: y = 1, wᵀx = −10.
  xs = np.array([[1.0, 1.0]], np.float32)
  ws = np.array([-5.0, -5.0], np.float32)
  g_ce = np.linalg.norm(_grad('sigmoid_binary_cross_entropy', jnp.asarray(ws), jnp.asarray(xs), jnp.ones(1)))
  g_l2 = np.linalg.norm(_grad('sigmoid_squared_error', jnp.asarray(ws), jnp.asarray(xs), jnp.ones(1)))
  # Gradient magnitude along wᵀx for y = 1 (figure).
  s = np.linspace(-10, 10, 201)
  sig = 1 / (1 + np.exp(-s))
  fig1 = plots.curves({'cross entropy |y − ŷ|': (s, 1 - sig), 'L2 on sigmoid |(ŷ − y) ŷ (1 − ŷ)|': (s, (1 - sig) * sig * (1 - sig))},
                      ctx.figure('gradient'), xlabel='wᵀx (true label y = 1)', ylabel='gradient factor', logy=True)
  # Training from a badly wrong start (θ = −3 × the right direction): CE recovers, L2-on-sigmoid crawls.
  accs, series = {}, {}
  for loss in ('sigmoid_binary_cross_entropy', 'sigmoid_squared_error'):
    c = get_config()
    c.loss.name = loss
    c.model.init_std = 0.0
    first = ctx.train(c, loss + '_warm', return_state=True)[1]
    # Flip the learned direction to start strongly wrong, then train again from there.
    c2 = get_config()
    c2.loss.name = loss
    c2.train.init_from = str(_flip_run(ctx, first, loss))
    summ = ctx.train(c2, loss)
    accs[loss] = summ['eval']['accuracy']
    series[loss] = plots.metric_history(ctx.workdir(loss), 'train', 'accuracy')
  fig2 = plots.curves(series, ctx.figure('training_from_wrong_start'), ylabel='train accuracy',
                      title='from θ = −5 × a good θ')
  ce, l2 = accs['sigmoid_binary_cross_entropy'], accs['sigmoid_squared_error']
  ok = err < 1e-5 and g_l2 / g_ce < 1e-3 and ce >= 0.95 and l2 < ce
  return [ClaimResult('L7', f'|autodiff − (−(y−ŷ)x)| = {err:.1e}; at wᵀx = −10: |∇CE| = {g_ce:.3f}, |∇L2| = {g_l2:.1e} '
                      f'(ratio {g_l2 / g_ce:.1e}); from a wrong start: CE {100 * ce:.1f}% vs L2 {100 * l2:.1f}% test accuracy',
                      verdict(ok), 'The L2 gradient carries the factor ŷ(1 − ŷ) ≈ 0 when the sigmoid saturates on the '
                      'wrong side; the cross-entropy gradient is proportional to the error.', [fig1, fig2])]


def _flip_run(ctx, state, loss):
  """Writes a run whose parameters are −5 × `state`'s (a strongly wrong classifier) and returns its workdir."""
  from jaxdl.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  wd = ctx.workdir(loss + '_flipped')
  shutil.rmtree(wd, ignore_errors=True)
  flipped = state.replace(params=jax.tree.map(lambda p: -5.0 * p, state.params))
  ck = Checkpointer(wd / 'checkpoints', keep=1)
  ck.save(0, flipped, {}, {})
  ck.close()
  return wd
