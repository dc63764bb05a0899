"""Label smoothing (Szegedy et al. 2016): soft targets and what they do to a classifier's confidence.

Reproduces: T12 (in a k-class problem the smoothed targets are α/k and 1 − α(k − 1)/k).
Model:      MLP 64→128→10 on the digits, `softmax_cross_entropy` with `label_smoothing` α = 0.1 vs 0.
Command:    jaxdl train --config=experiments/label_smoothing.py --workdir=runs/label_smoothing
            jaxdl reproduce label_smoothing --out=report/
Expected:   targets equal the formula exactly (the loss's smoothing = optax.smooth_labels); the smoothed model is less
            over-confident (lower mean max-probability on the test set) at similar accuracy.
CPU time:   ≈ 20 s.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import data as data_lib
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'T12': Claim('T12', 'label smoothing targets α/k and 1−α(k−1)/k', '000',
                 'smoothed one-hot = formula (exact) for k = 10, α = 0.1; the jaxdl loss equals CE against those '
                 'targets; smoothing lowers the mean test confidence'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (128,)
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.loss.label_smoothing = 0.1
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.num_steps = 1500
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def reproduce(ctx):
  k, alpha = 10, 0.1
  onehot = jax.nn.one_hot(jnp.arange(k), k)
  smooth = np.asarray(optax.smooth_labels(onehot, alpha))
  expected = np.where(np.eye(k) > 0, 1 - alpha * (k - 1) / k, alpha / k)
  err = float(np.max(np.abs(smooth - expected)))
  from jaxdl.losses import build_loss  # pylint: disable=g-import-not-at-top
  logits = jax.random.normal(jax.random.PRNGKey(0), (5, k))
  labels = jnp.array([0, 3, 9, 2, 2])
  ours = build_loss(get_config().loss)(logits, {'targets': labels})['loss']
  ref = -jnp.sum(jnp.asarray(expected)[labels] * jax.nn.log_softmax(logits), -1)
  loss_err = float(jnp.max(jnp.abs(ours - ref)))
  conf = {}
  for a in (0.0, alpha):
    c = get_config()
    c.loss.label_smoothing = a
    s, state = ctx.train(c, f'alpha{a}', return_state=True)
    ds = data_lib.get_dataset(c.data)
    x, _ = data_lib.split_arrays(ds, 'test')
    p = jax.nn.softmax(build_model(c.model, ds.info).apply({'params': state.params}, x))
    conf[a] = (float(jnp.mean(jnp.max(p, -1))), s['eval']['accuracy'])
  ok = err < 1e-7 and loss_err < 1e-5 and conf[alpha][0] < conf[0.0][0]
  return [ClaimResult('T12', f'targets {expected[0, 0]:.2f} / {expected[0, 1]:.2f} (|Δ| = {err:.0e}); loss vs CE on '
                      f'those targets |Δ| = {loss_err:.0e}; mean test confidence {conf[0.0][0]:.3f} → {conf[alpha][0]:.3f} '
                      f'(accuracy {conf[0.0][1]:.3f} → {conf[alpha][1]:.3f})', verdict(ok))]
