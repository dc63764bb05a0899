"""Internal covariate shift: the inputs of the last hidden layer's sigmoids drift during training without batch
normalisation and stay put with it; BN trains faster (Ioffe & Szegedy 2015, Fig. 1, on the digits).

Reproduces: T4 (seed 000, "INTERNAL COVARIATE SHIFT": 3 fully connected layers of 100 sigmoid units, softmax output;
            test accuracy, and the {15, 50, 85}th percentiles of the last hidden layer's activations during training).
Model:      `mlp` hidden (100, 100, 100), sigmoid, default (LeCun) init; `norm` none vs batch (BN after the Dense,
            before the sigmoid). SGD lr 0.5, batch 60, 3000 steps on the 8×8 digits (1,437 train / 360 test).
Measured:   every 100 steps, on the 360 test digits: the test accuracy, and per unit of the last hidden layer the
            {15, 50, 85}th percentiles over the examples of the sigmoid's input ('pre2'; BN: the normalised,
            γ/β-shifted value, computed with batch statistics as in training). Drift = the range (max − min) over
            training of each percentile, averaged over the three percentiles and the 100 units. The loop is the
            trainer's own (TrainSetup: same data order, jitted step and evaluation as `jaxdl train`).
Command:    jaxdl reproduce covariate_shift --out=report/
            jaxdl train --config=experiments/covariate_shift.py --workdir=runs/covariate_shift      (with BN)
            jaxdl train --config=experiments/covariate_shift.py --workdir=runs/covariate_shift_nobn --config.model.norm=none
Expected:   drift without BN several times the drift with BN; BN reaches 95% test accuracy in fewer steps.
CPU time:   ≈ 20 s for `reproduce`; ≈ 10 s for `train`.
"""
import jax
import numpy as np

from jaxdl import data as data_lib
from jaxdl import plots
from jaxdl.inspect import diagnostics
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.train import sharding
from jaxdl.train.setup import TrainSetup

EVERY = 100
LAYER = 'pre2'          # the input of the last hidden layer's sigmoids
TARGET_ACC = 0.95

CLAIMS = {
    'T4': Claim('T4', 'Covariate shift: 3 FC layers of 100 sigmoid units + softmax on digits; activation percentiles '
                '{15,50,85} drift without BN, stay put with BN; BN trains faster', '000',
                'mean drift (range over training of the per-unit 15/50/85th percentiles of the last hidden layer\'s '
                'sigmoid input) without BN ≥ 2× with BN; BN reaches 95% test accuracy in fewer steps; the recording loop '
                'matches `jaxdl train`'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (100, 100, 100)
  c.model.activation = 'sigmoid'
  c.model.norm = 'batch'
  c.data.name = 'digits'
  c.loss.name = 'softmax_cross_entropy'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.5
  c.train.num_steps = 3000
  c.train.batch_size = 60
  c.train.log_every = 100
  c.train.eval_every = EVERY
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def train_recording(config):
  """Runs the trainer's step on the trainer's data; every EVERY steps records test accuracy and the percentiles."""
  s = TrainSetup(config)
  t = config.train
  xt, yt = data_lib.split_arrays(s.dataset, 'test')
  probe = {'inputs': xt, 'targets': yt}
  it = data_lib.train_iterator(s.dataset, 'train', global_batch_size=t.batch_size, seed=t.seed)
  record = jax.jit(lambda st: diagnostics.record(s.model, {'params': st.params, **st.model_state}, probe,
                                                 train=True).values[LAYER])
  state = s.init_state()
  steps, acc, pct = [], [], []

  def measure(step):
    steps.append(step)
    acc.append(s.evaluate(state)['accuracy'])
    pct.append(diagnostics.unit_percentiles(jax.device_get(record(state))))     # (3, units)

  measure(0)
  for step in range(1, t.num_steps + 1):
    state, _ = s.train_step(state, sharding.to_global(next(it), s.data_sharding), s.step_rng)
    if step % EVERY == 0:
      measure(step)
  return np.asarray(steps), np.asarray(acc), np.asarray(pct)                       # pct: (T, 3, units)


def _steps_to(steps, acc, target):
  hit = np.nonzero(acc >= target)[0]
  return int(steps[hit[0]]) if len(hit) else None


def reproduce(ctx):
  runs = {}
  for label, norm in (('without BN', 'none'), ('with BN', 'batch')):
    c = get_config()
    c.model.norm = norm
    runs[label] = train_recording(c)
  # The same BN config through `jaxdl train`: its eval history must be the recorded one (same trainer).
  ctx.train(get_config(), 'with_bn')
  cli_steps, cli_acc = plots.metric_history(ctx.workdir('with_bn'), 'eval', 'accuracy')
  s_bn, a_bn, _ = runs['with BN']
  same = list(cli_steps) == list(s_bn[1:]) and np.allclose(cli_acc, a_bn[1:], atol=1e-6)
  drift = {k: float(np.mean(p.max(0) - p.min(0))) for k, (_, _, p) in runs.items()}
  reach = {k: _steps_to(s, a, TARGET_ACC) for k, (s, a, _) in runs.items()}
  final = {k: float(a[-1]) for k, (_, a, _) in runs.items()}
  # A typical unit (the one with the median drift without BN), as in the paper's figure.
  p_no = runs['without BN'][2]
  unit = int(np.argsort(np.mean(p_no.max(0) - p_no.min(0), 0))[p_no.shape[2] // 2])
  fig = diagnostics.plot_percentile_history(
      {f'{k}: unit {unit}': (s, p[:, :, unit]) for k, (s, _, p) in runs.items()}, ctx.figure('percentiles'),
      ylabel='input of a last-layer sigmoid',
      extra=('test accuracy', {k: (s, a) for k, (s, a, _) in runs.items()}))
  ratio = drift['without BN'] / drift['with BN']
  nb, wb = reach['without BN'], reach['with BN']
  faster = wb is not None and (nb is None or wb < nb)
  ok = ratio >= 2 and faster and same
  fmt = lambda v: 'never' if v is None else f'step {v}'
  return [ClaimResult('T4', f'percentile drift {drift["without BN"]:.2f} without BN vs {drift["with BN"]:.2f} with BN '
                      f'(×{ratio:.1f}); 95% test accuracy: {fmt(wb)} with BN vs {fmt(nb)} without; final '
                      f'{100 * final["with BN"]:.1f}% vs {100 * final["without BN"]:.1f}%', verdict(ok),
                      'Percentiles per unit over the 360 test digits, every 100 steps; BN statistics from the batch '
                      '(training mode). Drift: range over training, averaged over {15, 50, 85} and the 100 units. `jaxdl train` on '
                      f'the BN config gives the same test-accuracy history: {same}.',
                      [fig])]
