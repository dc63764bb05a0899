"""The course lab's FashionMNIST ladder: linear → fully connected → vanilla CNN → "fancy" CNN → ensemble of 6.

Reproduces: C13 — needs data: linear ≈ 85%; FC 784-256-256-10 (≈ 270K params) ≈ 89% test; vanilla CNN ≈ 92%;
            "fancy" CNN (≈ 1M params, 50 epochs) ≈ 93%; ensemble of 6 → 94.59%.
Models:     every rung is `simple_cnn` (jaxdl/models/cnn.py) with other fields, after the lab's models.py
            (github.com/jeremyfix/deeplearning-lectures, LabsSolutions/00-pytorch-FashionMNIST):
              linear   channels=(), dense=()                       784 → 10                         7,850 params
              fc       channels=(), dense=(256, 256)               784-256-256-10                 269,322
              vanilla  conv5×5 16/32/64 'SAME', max-pool after each, dropout 0.5, dense 128-256  173,962
              fancy    conv3×3 64,64 | 128,128 | 256,256 + BN, max-pool after each pair, dropout 0.5,
                       linear head (the lab ends in a 7×7 average pool; simple_cnn flattens the
                       3×3×256 maps instead)                                                   1,168,202
            fancy is trained with flips and affine jitter (±10°, ±2.8 px: the lab's RandomAffine(10, 0.1)).
            ensemble: 6 fancy CNNs (seeds 0-5), class probabilities averaged (jaxdl.inspect.ensemble).
Recipe:     the lab's: batch 128, 20% of the training set held out for validation, the checkpoint with the best
            validation loss is the one tested; 10 epochs (fancy: 50). Adam 1e-3 (the lab uses 1e-2).
Data:       fashion_mnist through tfds.data_source once prepared (`needs-data` until then). The default config runs
            offline on the built-in digits at 28×28 (`digits28`): the vanilla rung, small. Every rung is a
            set of overrides of that config, e.g. on digits28:
Command:    jaxdl train --config=experiments/fashion_mnist_ladder.py --workdir=runs/ladder_vanilla
            jaxdl train --config=experiments/fashion_mnist_ladder.py --workdir=runs/ladder_linear \
                --config.model.channels='()' --config.model.dense='()' --config.model.dropout_rate=0.0
            jaxdl train --config=experiments/fashion_mnist_ladder.py --workdir=runs/ladder_fc \
                --config.model.channels='()' --config.model.dense='(256, 256)' --config.model.dropout_rate=0.0
            jaxdl train --config=experiments/fashion_mnist_ladder.py --workdir=runs/ladder_fancy \
                --config.model.channels='(64, 64, 128, 128, 256, 256)' --config.model.kernel_size=3 \
                --config.model.pool_every=2 --config.model.dense='()' --config.model.batch_norm=True
            (add --config.data.name=fashion_mnist --config.train.num_steps=3750 for the real data: 10 epochs.)
            jaxdl reproduce fashion_mnist_ladder --out=report/   (the whole ladder once the data exists)
Expected:   each rung within 1.5 points of the lab's accuracy (85 / 89 / 92 / 93 / 94.59%).
CPU time:   ≈ 40 s offline (get_config on digits28: 44,362 params, 99.2% test accuracy). On FashionMNIST:
            3 × 3,750 steps + 6 fancy runs × 18,750 steps: many hours on 2 CPU cores, ≈ 30-60 min on a GPU.
"""
from __future__ import annotations

from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

LAB = {'linear': 85.0, 'fc': 89.0, 'vanilla': 92.0, 'fancy': 93.0, 'ensemble': 94.59}
TOLERANCE = 1.5
ENSEMBLE_SIZE = 6

CLAIMS = {
    'C13': Claim('C13', 'FashionMNIST lab: linear ≈85%; FC 784-256-256-10 (≈270K params) ≈89%; vanilla CNN ≈92%; '
                 '"fancy" CNN (≈1M params, 50 epochs) ≈93%; ensemble of 6 → 94.59%', 'lab',
                 f'each rung within {TOLERANCE} points of the lab value', needs='fashion_mnist'),
}

# simple_cnn fields per rung (every key set in get_config, so each rung is a set of overrides).
_FLAT = {'channels': (), 'kernel_size': 3, 'pool_every': 0, 'dropout_rate': 0.0, 'batch_norm': False}
RUNGS = {
    'linear': dict(_FLAT, dense=()),
    'fc': dict(_FLAT, dense=(256, 256)),
    'vanilla': {'channels': (16, 32, 64), 'kernel_size': 5, 'pool_every': 1, 'dense': (128, 256),
                'dropout_rate': 0.5, 'batch_norm': False},
    'fancy': {'channels': (64, 64, 128, 128, 256, 256), 'kernel_size': 3, 'pool_every': 2, 'dense': (),
              'dropout_rate': 0.5, 'batch_norm': True},
}
FANCY_AUGMENT = ('flip', ('affine', {'degrees': 10.0, 'translate': 2.8}))
EPOCHS = {'linear': 10, 'fc': 10, 'vanilla': 10, 'fancy': 50}


def get_config():
  """Offline default: the vanilla rung, narrower (conv 8/16/32, dense 64-128), on digits28."""
  c = base_config()
  c.model.name = 'simple_cnn'
  c.model.channels = (8, 16, 32)
  c.model.kernel_size = 5
  c.model.padding = 'SAME'
  c.model.pool = 'max'
  c.model.pool_every = 1
  c.model.dense = (64, 128)
  c.model.dropout_rate = 0.3
  c.model.batch_norm = False
  c.data.name = 'digits28'
  c.data.augment = ()
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.num_steps = 1500
  c.train.batch_size = 128
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def rung_config(rung: str, dataset: str = 'fashion_mnist', seed: int = 0, train_examples: int = 60000):
  """The lab's recipe for one rung: 80/20 train/validation split, best validation loss kept, batch 128."""
  c = get_config()
  for k, v in RUNGS[rung].items():
    c.model[k] = v
  c.data.name = dataset
  c.data.train_split, c.data.eval_split = 'train[:80%]', 'train[80%:]'
  c.data.augment = FANCY_AUGMENT if rung == 'fancy' else ()
  steps_per_epoch = int(0.8 * train_examples) // c.train.batch_size
  c.train.num_steps = EPOCHS[rung] * steps_per_epoch
  c.train.eval_every = steps_per_epoch
  c.train.checkpoint_every = 0
  c.train.best_metric, c.train.best_mode = 'loss', 'min'
  c.train.restore_best = True
  c.train.seed = seed
  return c


def _train_and_test(ctx, config, name):
  """(summary, test metrics of the best-validation checkpoint, workdir, that step)."""
  from jaxdl.train.evaluation import evaluate_checkpoint  # pylint: disable=g-import-not-at-top
  summary = ctx.train(config, name)
  step = summary.get('restored_best_step') or summary['best'].get('step') or summary['step']
  test = evaluate_checkpoint(config, ctx.workdir(name), str(step), split='test')
  return summary, test['eval'], str(ctx.workdir(name)), step


def reproduce(ctx):
  from jaxdl.inspect.ensemble import evaluate_ensemble  # pylint: disable=g-import-not-at-top
  measured, params, members = {}, {}, []
  for rung in RUNGS:
    summary, test, wd, step = _train_and_test(ctx, rung_config(rung), rung)
    measured[rung], params[rung] = 100 * test['accuracy'], summary['num_params']
    ctx.log(f'{rung}: {measured[rung]:.2f}% ({params[rung]:,} params)')
    if rung == 'fancy':
      members.append((wd, str(step)))
  for seed in range(1, ENSEMBLE_SIZE):
    _, _, wd, step = _train_and_test(ctx, rung_config('fancy', seed=seed), f'fancy_seed{seed}')
    members.append((wd, str(step)))
  ens = evaluate_ensemble(rung_config('fancy'), members, split='test')
  measured['ensemble'] = 100 * ens['eval']['accuracy']
  ok = all(abs(measured[k] - LAB[k]) <= TOLERANCE for k in LAB)
  text = ', '.join(f'{k} {v:.2f}%' for k, v in measured.items())
  note = ('test accuracy of the best-validation checkpoint; params: ' +
          ', '.join(f'{k} {v:,}' for k, v in params.items()) +
          '; ensemble members: ' + ', '.join(f'{100 * m["accuracy"]:.2f}%' for m in ens['members']))
  return [ClaimResult('C13', text, verdict(ok), note)]
