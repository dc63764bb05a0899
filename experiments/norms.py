"""Batch, layer, instance and group normalisation: which axes each reduces over; batch norm at test time.

Reproduces: T18 (seed 001 "Norms, Norms, Norms": BN all instances / one var, LN one instance / all vars, IN one instance
            / one var, GN one instance / N vars; seed 004 §VIII.3–4, F25: BN statistics over the mini-batch in training,
            exponentially averaged running statistics at test time; Wu & He 2018, Fig. 2).
Setup:      (a) jaxdl.nn.norms' flax layers on x of shape (N, H, W, C) = (8, 6, 5, 12) whose every (n, c) slice has its own
            mean and scale: after each layer, the mean / std over the axes of the notes' table must be 0 / 1 for
            every group those axes define (BN: per c over (N, H, W); LN: per n over (H, W, C); IN: per (n, c) over
            (H, W); GN, G = 4: per (n, g) over (H, W, C/G)), and must NOT be over the other candidate axes; the layers
            also equal jaxdl.nn.norms.reference. (b) The `mlp` with norm = batch trained on the digits through
            `jaxdl train` (600 steps): in eval mode the BN layer is the fixed affine map γ(z − m)/√(v + ε) + β with the
            running (m, v); an example's eval output does not depend on the rest of the batch (in training mode it
            does); m tracks the population mean of z over the training set. LN and GN MLPs train too (reported).
Command:    jaxdl reproduce norms --out=report/
            jaxdl train --config=experiments/norms.py --workdir=runs/norms      (BN MLP; --config.model.norm=layer|group)
Expected:   each layer normalises exactly its own axes (|mean| < 1e-5, |std − 1| < 1e-3) and no others; eval BN = the
            affine map to 1e-5; batch-independent in eval, not in training; running mean within a few % of the
            population mean.
CPU time:   ≈ 20 s.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.inspect import diagnostics
from jaxdl.nn import norms
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

SHAPE = (8, 6, 5, 12)     # N, H, W, C
GROUPS = 4
KINDS = ('batch', 'layer', 'instance', 'group')
# Normalising over a partition also normalises every coarser partition made of its blocks (a union of sets with mean 0
# and variance 1 has mean 0 and variance 1): instance blocks (n, c) make up the group, layer and batch blocks; group
# blocks make up the layer blocks. kind -> the kinds whose blocks its output is normalised over.
NORMALISED = {'batch': {'batch'}, 'layer': {'layer'}, 'instance': set(KINDS), 'group': {'group', 'layer'}}

CLAIMS = {
    'T18': Claim('T18', 'BN / LN / IN / GN reduce over the axes in the notes; BN uses running statistics at test time',
                 '001, 004 F25',
                 'per group of the notes\' axes |mean| < 1e-4, |std − 1| < 1e-3 (so also over coarser partitions made of '
                 'those groups) and > 0.05 off over every other kind\'s groups; layer = reference (1e-4); eval BN = γ(z − m)/√(v + ε) + β (1e-4) and independent of the '
                 'batch, training BN not; running mean within 10% (of the population std) of the population mean'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (64, 64)
  c.model.activation = 'relu'
  c.model.norm = 'batch'
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.1
  c.train.num_steps = 600
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 300
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def _groups(kind, y):
  """y (N, H, W, C) -> (groups, members): the sets the notes' table normalises together."""
  n, h, w, c = y.shape
  if kind == 'batch':
    return y.transpose(3, 0, 1, 2).reshape(c, -1)
  if kind == 'layer':
    return y.reshape(n, -1)
  if kind == 'instance':
    return y.transpose(0, 3, 1, 2).reshape(n * c, -1)
  return y.reshape(n, h, w, GROUPS, c // GROUPS).transpose(0, 3, 1, 2, 4).reshape(n * GROUPS, -1)


def axes_check():
  rng = np.random.default_rng(0)
  n, h, w, c = SHAPE
  # Every (n, c) slice with its own offset and scale, so any wrong axis shows.
  x = (rng.normal(size=SHAPE) * rng.uniform(0.2, 5, size=(n, 1, 1, c)) + rng.normal(size=(n, 1, 1, c)) * 3)
  x = x.astype(np.float32)
  out = {}
  for kind in KINDS:
    layer = norms.make_norm(kind, 4, train=True, groups=GROUPS)
    v = layer.init(jax.random.PRNGKey(0), x)
    y = layer.apply(v, x, mutable=['batch_stats'])[0] if kind == 'batch' else layer.apply(v, x)
    y = np.asarray(y, np.float64)
    ref = float(np.max(np.abs(y - np.asarray(norms.reference(kind, x, groups=GROUPS)))))
    stats = {}
    for other in KINDS:
      g = _groups(other, y)
      stats[other] = (float(np.max(np.abs(g.mean(1)))), float(np.max(np.abs(g.std(1) - 1))))
    out[kind] = (stats, ref)
  return out


def reproduce(ctx):
  ax = axes_check()
  ok_axes = True
  for kind, (stats, ref) in ax.items():
    m, s = stats[kind]
    ok_axes &= ref < 1e-4 and all(max(stats[o]) < 1e-3 for o in NORMALISED[kind])
    # ... and over no partition that is not made of its blocks (every (n, c) of x has its own mean and scale).
    ok_axes &= all(max(stats[o]) > 0.05 for o in KINDS if o not in NORMALISED[kind])
  # (b) Batch norm in a trained MLP.
  c = get_config()
  _, state = ctx.train(c, 'batch', return_state=True)
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  ds = data_lib.get_dataset(c.data)
  model = build_model(c.model, ds.info)
  xt, _ = data_lib.split_arrays(ds, 'test')
  xtr, _ = data_lib.split_arrays(ds, 'train')
  variables = {'params': state.params, **state.model_state}
  p, bs = jax.device_get(state.params), jax.device_get(state.model_state['batch_stats'])
  rec = diagnostics.record(model, variables, {'inputs': xt})                # eval mode
  z = xt.reshape(len(xt), -1) @ np.asarray(p['dense0']['kernel'], np.float64)   # dense0 has no bias under BN
  m, v = np.asarray(bs['bn0']['mean'], np.float64), np.asarray(bs['bn0']['var'], np.float64)
  g, b = np.asarray(p['bn0']['scale'], np.float64), np.asarray(p['bn0']['bias'], np.float64)
  affine_err = float(np.max(np.abs(np.asarray(rec.values['pre0']) - (g * (z - m) / np.sqrt(v + 1e-5) + b))))
  out_all = np.asarray(model.apply(variables, xt))
  out_one = np.concatenate([np.asarray(model.apply(variables, xt[i:i + 1])) for i in range(8)])
  eval_dep = float(np.max(np.abs(out_all[:8] - out_one)))
  tr = lambda xs: np.asarray(model.apply(variables, xs, train=True, mutable=['batch_stats'])[0])
  train_dep = float(np.max(np.abs(tr(xt)[:8] - tr(xt[:8]))))
  ztr = xtr.reshape(len(xtr), -1) @ np.asarray(p['dense0']['kernel'], np.float64)
  mean_gap = float(np.max(np.abs(m - ztr.mean(0)) / (ztr.std(0) + 1e-8)))
  ok_bn = affine_err < 1e-4 and eval_dep < 1e-5 and train_dep > 1e-2 and mean_gap < 0.1
  # LN and GN MLPs train too (reported).
  accs = {}
  for kind in ('layer', 'group'):
    ck = get_config()
    ck.model.norm = kind
    accs[kind] = ctx.train(ck, kind)['eval']['accuracy']
  fig = _figure(ctx, ax)
  meas = ('own axes: ' + ', '.join(f'{k} |mean| {ax[k][0][k][0]:.0e} |std−1| {ax[k][0][k][1]:.0e}' for k in KINDS) +
          '; over partitions not made of its blocks: min deviation ' +
          f'{min(max(ax[k][0][o]) for k in KINDS for o in KINDS if o not in NORMALISED[k]):.2f}' +
          f'; layer vs reference ≤ {max(r for _, r in ax.values()):.0e}. BN eval = affine with running stats to '
          f'{affine_err:.1e}; eval output batch-dependence {eval_dep:.0e} vs training {train_dep:.2f}; running mean vs '
          f'population mean ≤ {mean_gap:.3f} population std')
  note = ('Figure: rows = the layer, columns = the groups of the notes\' table the output is checked over (max of '
          '|mean|, |std − 1|). Instance norm is the finest partition, so its output is also normalised over the '
          'coarser group / layer / batch blocks; group norm\'s blocks make up layer norm\'s. BN MLP test accuracy via `jaxdl train`: ' + f'{100 * _last_acc(ctx, "batch"):.1f}%; LN '
          f'{100 * accs["layer"]:.1f}%, GN {100 * accs["group"]:.1f}% (reported).')
  return [ClaimResult('T18', meas, verdict(ok_axes and ok_bn), note, [fig])]


def _last_acc(ctx, name):
  return plots.metric_history(ctx.workdir(name), 'eval', 'accuracy')[1][-1]


def _figure(ctx, ax):
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={'width_ratios': [1.3, 1]})
  dev = np.array([[max(ax[k][0][o]) for o in KINDS] for k in KINDS])
  im = axes[0].imshow(np.log10(dev + 1e-8), cmap='viridis_r')
  for i in range(4):
    for j in range(4):
      axes[0].text(j, i, f'{dev[i, j]:.0e}', ha='center', va='center', color='k' if dev[i, j] < 1e-2 else 'w', fontsize=8)
  labels = [f'{k}\n{norms.AXES[k]}' for k in KINDS]
  axes[0].set_xticks(range(4), labels, fontsize=8)
  axes[0].set_yticks(range(4), [f'{k} norm' for k in KINDS], fontsize=8)
  axes[0].set_xlabel('checked over the groups of')
  axes[0].set_title('max(|mean|, |std − 1|) after each layer')
  fig.colorbar(im, ax=axes[0], label='log10')
  # The notes' picture: which (N, C) cells share one mean (H·W collapsed), for n = 1, c = 2.
  n, c = 6, 8
  for k, kind in enumerate(KINDS):
    grid = np.zeros((n, c))
    if kind == 'batch':
      grid[:, 2] = 1
    elif kind == 'layer':
      grid[1, :] = 1
    elif kind == 'instance':
      grid[1, 2] = 1
    else:
      grid[1, 0:c // GROUPS] = 1
    sub = axes[1].inset_axes([k * 0.25 + 0.01, 0.1, 0.22, 0.75])
    sub.imshow(grid, cmap='Blues', vmin=0, vmax=1.3)
    sub.set_xticks([])
    sub.set_yticks([])
    sub.set_title(f'{kind}\n{norms.AXES[kind]}', fontsize=8)
    sub.set_xlabel('C', fontsize=8)
    sub.set_ylabel('N', fontsize=8)
  axes[1].axis('off')
  axes[1].set_title('cells sharing one μ, σ (H, W along each cell)')
  return plots.save(fig, ctx.figure('axes'))
