"""RBF network on a smooth 1-D function: centres by k-means++, then two- and three-phase training.

Reproduces: L11 (a Gaussian RBF network — centres by k-means++, widths from the centres' spread — approximates a smooth
            1-D function; two phases: fix centres and widths, fit the weights; three phases: then fine-tune all by
            gradient ∇_μ L, ∇_σ L, ∇_w L).
Data:       30 samples of sin(πx) + N(0, 0.1²) on [−1, 1]; 200 held-out points.
Model:      `rbf_network` (10 Gaussian units + linear output); phase 1 = its data-dependent init (k-means++ in JAX).
Command:    jaxdl train --config=experiments/rbf_network.py --workdir=runs/rbf_phase2      (phase 2: centres frozen)
            jaxdl train --config=experiments/rbf_network.py --workdir=runs/rbf_phase3 \
                --config.optimizer.freeze='()' --config.train.init_from=runs/rbf_phase2      (phase 3)
            jaxdl reproduce rbf_network --out=report/
Expected:   held-out RMSE close to the noise level 0.1 (criterion < 0.15) after phase 2; phase 3 no worse.
CPU time:   ≈ 15 s.
"""
import numpy as np

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'L11': Claim('L11', 'RBF network (Gaussian units, centres by k-means++; two- and three-phase training) approximates '
                 'a smooth 1-D function', '000', 'held-out RMSE < 0.15 (noise σ = 0.1) after phase 2; phase 3 ≤ phase 2 + 0.01'),
}


def get_config():
  c = base_config()
  c.model.name = 'rbf_network'
  c.model.num_centers = 10
  c.data.name = 'noisy_function'
  c.data.function = 'sin'
  c.data.num_examples = 30
  c.data.noise = 0.1
  c.loss.name = 'squared_error'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 0.05
  c.optimizer.freeze = ('centers', 'log_width')     # phase 2: only the output weights learn
  c.train.num_steps = 2000
  c.train.batch_size = 30
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def reproduce(ctx):
  c2 = get_config()
  s2, st2 = ctx.train(c2, 'phase2', return_state=True)
  c3 = get_config()
  c3.optimizer.freeze = ()
  c3.optimizer.learning_rate = 0.01
  c3.train.init_from = str(ctx.workdir('phase2'))
  s3, st3 = ctx.train(c3, 'phase3', return_state=True)
  rmse2, rmse3 = float(np.sqrt(s2['eval']['mse'])), float(np.sqrt(s3['eval']['mse']))
  ds = data_lib.get_dataset(c2.data)
  x, y = data_lib.split_arrays(ds, 'train')
  model = build_model(c2.model, ds.info)
  grid = np.linspace(-1.2, 1.2, 300)[:, None].astype(np.float32)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 3.8))
  ax.scatter(x[:, 0], y[:, 0], c='k', s=12, label='train (noisy)')
  ax.plot(grid[:, 0], np.sin(np.pi * grid[:, 0]), 'k--', lw=1, label='sin(πx)')
  for name, st in (('two-phase', st2), ('three-phase', st3)):
    ax.plot(grid[:, 0], np.asarray(model.apply({'params': st.params}, grid))[:, 0], label=name)
  centres = np.asarray(st2.params['centers'])[:, 0]
  ax.plot(centres, np.full_like(centres, -1.3), 'r|', ms=12, label='k-means++ centres')
  ax.legend(fontsize=8)
  fig_path = plots.save(fig, ctx.figure('fit'))
  widths = np.exp(np.asarray(st2.params['log_width']))
  ok = rmse2 < 0.15 and rmse3 <= rmse2 + 0.01
  return [ClaimResult('L11', f'held-out RMSE two-phase {rmse2:.3f}, three-phase {rmse3:.3f} (noise σ = 0.1)', verdict(ok),
                      f'10 centres by k-means++ at {np.round(np.sort(centres), 2).tolist()}, σ = {widths[0]:.3f} '
                      '(d_max/√(2K)); phase 2 trains the output layer only (optimizer.freeze), phase 3 everything.',
                      [fig_path])]
