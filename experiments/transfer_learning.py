"""Transfer learning on the built-in digits: pretrain a CNN on digits 0–4, reuse it for digits 5–9 from 50 examples.

Reproduces: TL1 (a jaxdl check of the mechanism, not a CLAIMS.md number; seed 000 "transfer learning": reuse a
            network trained on a source task, replace its head, then freeze the trunk or fine-tune it), and reports
            how the transferred networks compare with training from scratch at 10 and 50 target examples.
Mechanism:  `train.init_from=RUN` copies every parameter and BN statistic of RUN's latest checkpoint by path, except
            the paths named in `train.init_from_exclude` (here the new 'head', freshly initialised for the target's
            classes); `optimizer.freeze` gives the trunk no update, `optimizer.lr_multipliers` scales it
            (per-layer learning rates through optax.multi_transform).
Command:    jaxdl train --config=experiments/transfer_learning.py --workdir=runs/tl_source        (the source task)
            jaxdl train --config=experiments/transfer_learning.py --workdir=runs/tl_finetune \\
                --config.data.classes='(5, 6, 7, 8, 9)' --config.data.train_examples=50 \\
                --config.train.init_from=runs/tl_source --config.train.init_from_exclude="('head',)" \\
                --config.optimizer.lr_multipliers="(('conv', 0.1), ('dense', 0.1))"
            jaxdl reproduce transfer_learning --out=report/
Expected:   TL1 passes (exact checks). Accuracies are measured, not judged: on these easy digits a network trained
            from scratch on 50 images already reaches ≈ 91%, and the transferred ones do not beat it (frozen ≈ 82%,
            fine-tuned ≈ 89%); the comparison at 10 images is in the report.
CPU time:   ≈ 1 min.
"""
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'TL1': Claim('TL1', 'transfer learning: restore a run, replace the head, freeze the trunk or fine-tune it with '
                 'per-layer learning rates', 'seed 000 (transfer learning); jaxdl check',
                 'the target run starts from the source trunk bit for bit with a fresh head; a frozen trunk ends '
                 'unchanged; with the head at 10× the rate, its first Adam step moves it 10× as far as the trunk\'s',
                 own=True),
}
TARGET = dict(classes=(5, 6, 7, 8, 9), train_examples=50)


def get_config():
  """The source task: a small CNN on digits 0–4 (all 720 training images)."""
  c = base_config()
  c.model.name = 'simple_cnn'
  c.model.channels = (16, 32)
  c.model.dense = (64,)
  c.data.name = 'digits28'
  c.data.classes = (0, 1, 2, 3, 4)
  c.data.train_examples = 0
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.freeze = ()
  c.optimizer.lr_multipliers = ()
  c.train.num_steps = 300
  c.train.batch_size = 32
  c.train.log_every = 50
  c.train.eval_every = 150
  c.train.checkpoint_every = 300
  c.train.init_from_exclude = ()
  return c


def target_config(mode: str, source: str = ''):
  """The target task (digits 5–9 from 50 images): 'scratch', 'frozen' (trunk frozen) or 'finetune' (trunk 0.1×)."""
  c = get_config()
  c.data.classes = TARGET['classes']
  c.data.train_examples = TARGET['train_examples']
  c.train.num_steps = 200
  c.train.eval_every = 100
  c.train.checkpoint_every = 200
  if mode != 'scratch':
    c.train.init_from = source
    c.train.init_from_exclude = ('head',)
  # The new head starts from scratch on top of features it must learn to read: it gets 10× the base rate.
  if mode == 'frozen':
    c.optimizer.freeze = ('conv', 'dense')
    c.optimizer.lr_multipliers = (('head', 10.0),)
  elif mode == 'finetune':
    c.optimizer.lr_multipliers = (('head', 10.0),)
  return c


def _first_step_ratio(source_dir):
  """|Δθ| of the head over |Δθ| of the trunk after one Adam step (Adam's first step is ±lr per coordinate)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxdl.data import split_arrays  # pylint: disable=g-import-not-at-top
  from jaxdl.train.setup import TrainSetup  # pylint: disable=g-import-not-at-top
  setup = TrainSetup(target_config('finetune', source_dir))
  state = setup.init_state()
  before = jax.tree.map(np.asarray, state.params)
  x, y = split_arrays(setup.dataset, 'train', 32)
  batch = jax.device_put({'inputs': x, 'targets': y}, setup.data_sharding)
  new, _ = setup.train_step(state, batch, setup.step_rng)
  step = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b).max(), new.params, before)
  return float(step['head']['kernel'] / step['conv0']['kernel']), before


def reproduce(ctx):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxdl.train.pretrained import load_run  # pylint: disable=g-import-not-at-top
  src = ctx.train(get_config(), 'source')
  ctx.log(f"source (digits 0–4): test accuracy {src['eval']['accuracy']:.3f}")
  source_dir = str(ctx.workdir('source'))
  _, _, src_vars = load_run(source_dir)
  ratio, start = _first_step_ratio(source_dir)
  trunk = [k for k in src_vars['params'] if k != 'head']
  restored = all(np.array_equal(np.asarray(src_vars['params'][k][p]), start[k][p]) for k in trunk
                 for p in src_vars['params'][k])
  fresh_head = start['head']['kernel'].shape != np.asarray(src_vars['params']['head']['kernel']).shape or not \
      np.array_equal(start['head']['kernel'], np.asarray(src_vars['params']['head']['kernel']))
  acc, curves = {}, {}
  for n in (10, 50):
    for mode in ('scratch', 'frozen', 'finetune'):
      c = target_config(mode, source_dir)
      c.data.train_examples = n
      c.train.batch_size = min(n, c.train.batch_size)
      s = ctx.train(c, f'{mode}_{n}')
      acc[mode, n] = 100 * s['eval']['accuracy']
      curves[mode, n] = _eval_curve(ctx.workdir(f'{mode}_{n}'))
      ctx.log(f'{n} examples, {mode}: test accuracy {acc[mode, n]:.1f}%')
  _, _, frozen_vars = load_run(str(ctx.workdir('frozen_50')))
  frozen_kept = all(np.array_equal(np.asarray(frozen_vars['params'][k][p]), np.asarray(src_vars['params'][k][p]))
                    for k in trunk for p in src_vars['params'][k])
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
  for ax, n in zip(axes, (10, 50)):
    for mode in ('scratch', 'frozen', 'finetune'):
      steps, accs = curves[mode, n]
      ax.plot(steps, accs, marker='o', label=f'{mode} ({acc[mode, n]:.1f}%)')
    ax.set_xlabel('step')
    ax.set_title(f'{n} target examples')
    ax.legend()
  axes[0].set_ylabel('test accuracy, digits 5–9')
  fig.tight_layout()
  path = ctx.figure('curves')
  fig.savefig(path, dpi=110)
  plt.close(fig)
  ok = restored and fresh_head and frozen_kept and abs(ratio - 10) < 0.5
  table = '; '.join(f'{n} examples: ' + ', '.join(f'{m} {acc[m, n]:.1f}%' for m in ('scratch', 'frozen', 'finetune'))
                    for n in (10, 50))
  return [ClaimResult('TL1', f'trunk restored bit for bit: {restored}; head re-initialised: {fresh_head}; frozen trunk '
                      f'unchanged after 200 steps: {frozen_kept}; first-step head/trunk move ratio {ratio:.2f}',
                      verdict(ok),
                      f'Test accuracy on digits 5–9 (180 images) — {table}. Source task (digits 0–4): '
                      f"{100 * src['eval']['accuracy']:.1f}%. simple_cnn (conv 16, conv 32, pool, dense 64), 200 Adam "
                      'steps (1e-3; the new head 10×). On these easy digits training from scratch is a strong '
                      'baseline; features from the other five digits do not beat it here.', [path])]


def _eval_curve(workdir):
  import json  # pylint: disable=g-import-not-at-top
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines() if l.strip()]
  ev = [r for r in rows if r.get('split') == 'eval']
  return [r['step'] for r in ev], [100 * r['accuracy'] for r in ev]
