"""Chapter-3 training experiments: configs validate offline, the convblock net's counts, the visualisation claim
at reduced size, and the needs-data / on-paper claims report as such without the stock datasets."""
from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import REPO, run_jaxdl
from jaxdl import config as config_lib
from jaxdl import reproduce as reproduce_lib
from jaxdl.models import build_model, count_params
from jaxdl.models.convblock import CIFAR100_2M, ConvBlockNet

EXPERIMENTS = ('fashion_mnist_ladder', 'cifar100_ablation', 'mcdnn', 'cifar10_zoo', 'cnn_visualisation')


def module(name):
  return config_lib.load_module(REPO / 'experiments' / f'{name}.py')


def n_params(model, shape=(32, 32, 3)) -> int:
  v = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape))))
  return count_params(v['params'])


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_get_config_validates_offline(name):
  m = module(name)
  c = m.get_config()
  config_lib.validate(c)
  assert c.data.name in ('digits28', 'shapes')
  assert m.__doc__ and 'CPU time' in m.__doc__ and 'Command' in m.__doc__
  assert m.CLAIMS


def test_claim_ids_are_the_expected_ones():
  ids = {cid: name for name in EXPERIMENTS for cid in module(name).CLAIMS}
  assert ids == {'C13': 'fashion_mnist_ladder', 'C12': 'cifar100_ablation', 'C14': 'mcdnn', 'C15': 'cifar10_zoo',
                 'V1': 'cnn_visualisation'}
  assert module('cnn_visualisation').CLAIMS['V1'].own         # jaxdl's own check, not a CLAIMS.md ID
  assert not any(c.own for name in EXPERIMENTS[:4] for c in module(name).CLAIMS.values())


def test_convblock_counts_against_the_text():
  """The notes' table (32/128) is 0.55M; the author's widths (96/192 + 3 × 1×1 512) are the "≃ 2M" of the text."""
  assert n_params(ConvBlockNet()) == 549_156
  assert n_params(ConvBlockNet(batch_norm=True)) == 550_596
  two_m = n_params(ConvBlockNet(**CIFAR100_2M))
  assert two_m == 2_009_402 and abs(two_m - 2e6) / 2e6 < 0.01
  assert n_params(ConvBlockNet(batch_norm=True, **CIFAR100_2M)) == 2_013_353


def test_convblock_shapes_dropout_and_batch_norm():
  m = ConvBlockNet(stages=(2, 4), head=(8,), batch_norm=True, dropout_rate=0.5, num_outputs=7)
  x = jnp.ones((2, 8, 8, 3))
  # Shapes only (tests/test_registry.py trains every registered model, this one included, for a step).
  v = jax.eval_shape(m.init, jax.random.PRNGKey(0), x)
  assert jax.eval_shape(m.apply, v, x).shape == (2, 7)
  out, upd = jax.eval_shape(lambda v, x, r: m.apply(v, x, train=True, mutable=['batch_stats'], rngs={'dropout': r}),
                            v, x, jax.random.PRNGKey(1))
  assert out.shape == (2, 7) and 'batch_stats' in upd
  # 'sqrt': the block's first conv has cin·⌊√(cout/cin)⌋ channels (the author's code), e.g. 3 → 96: 15.
  from jaxdl.models.convblock import inter_width  # pylint: disable=g-import-not-at-top
  assert inter_width(3, 96, 'sqrt') == 15 and inter_width(96, 192, 'sqrt') == 96 and inter_width(3, 32, 'out') == 32


def test_ablation_levels_add_up():
  a = module('cifar100_ablation')
  base, bn, aug, reg = (a.level_config(level) for level in a.LEVELS)
  assert (base.model.batch_norm, bn.model.batch_norm) == (False, True)
  assert not bn.data.augment and aug.data.augment == a.AUGMENT and reg.data.augment == a.AUGMENT
  assert (aug.loss.l2, reg.loss.l2, reg.model.dropout_rate, reg.loss.label_smoothing) == (0.0, 0.0025, 0.5, 0.1)
  for c in (base, reg):
    config_lib.validate(c)
  big = a.cifar100_config('+reg')
  assert big.train.batch_size == 32 and big.optimizer.learning_rate == 0.01 and big.optimizer.momentum == 0.9
  steps_per_epoch = 40000 // 32
  assert big.optimizer.schedule == 'step' and big.optimizer.schedule_kwargs.step_size == 50 * steps_per_epoch
  assert big.optimizer.schedule_kwargs.gamma == 0.5


def test_ladder_rungs_have_the_lab_sizes():
  f = module('fashion_mnist_ladder')
  info = type('Info', (), {'num_outputs': 10})()
  counts = {r: n_params(build_model(f.rung_config(r).model, info), (28, 28, 1)) for r in f.RUNGS}
  assert counts['linear'] == 7_850
  assert counts['fc'] == 269_322                       # "≈ 270K"
  assert 0.9e6 < counts['fancy'] < 1.25e6              # "≈ 1M"
  assert counts['vanilla'] < counts['fancy']
  assert f.rung_config('fancy').data.augment and not f.rung_config('fc').data.augment


def test_ladder_rungs_are_overrides_of_the_offline_config():
  f = module('fashion_mnist_ladder')
  c = f.get_config()
  for rung in f.RUNGS.values():
    assert set(rung) <= set(c.model.keys())


def test_zoo_parameter_counts_are_exact():
  z = module('cifar10_zoo')
  ok, text = z.check_counts()
  assert ok, text


def test_mcdnn_arithmetic_and_on_paper():
  m = module('mcdnn')
  assert m.column_params() == 76_040 == m.COLUMN_PARAMS
  (r,) = m.reproduce(None)
  assert r.status == 'on-paper' and '2,661,400' in r.measured and '23 errors' in r.measured


def test_peak_in_box_and_chance():
  v = module('cnn_visualisation')
  maps = np.zeros((3, 8, 8))
  maps[0, 2, 3] = maps[1, 7, 7] = maps[2, 0, 0] = 1.0
  boxes = np.array([[1, 1, 4, 4], [0, 0, 6, 6], [0, 0, 0, 0]])
  np.testing.assert_array_equal(v.peak_in_box(maps, boxes), [True, False, True])
  chance, centre = v.chance_rates(np.array([[0, 0, 3, 3], [4, 4, 7, 7]]), 8)
  assert chance == pytest.approx(0.25) and centre == 0.5


@pytest.mark.slow  # the methods are unit-tested in tests/test_visualize.py
def test_cnn_visualisation_reproduces_at_reduced_size(tmp_path):
  v = module('cnn_visualisation')
  c = v.get_config()
  c.data.num_train, c.data.num_test = 500, 100
  c.train.num_steps, c.train.eval_every = 100, 0
  ctx = reproduce_lib.Context(tmp_path, 'cnn_visualisation', quiet=True)
  (r,) = v.measure(ctx, c, num_eval=100, num_shown=3)
  assert r.id == 'V1' and r.status in ('pass', 'fail')
  assert 'saliency' in r.measured and 'Grad-CAM' in r.measured and 'chance' in r.measured
  assert len(r.figures) == 3 and all(pathlib.Path(f).stat().st_size > 1000 for f in r.figures)


def test_needs_data_and_on_paper_statuses(tmp_path):
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  if any(stock.is_prepared(d) for d in ('fashion_mnist', 'cifar100', 'cifar10')):
    pytest.skip('a stock dataset is prepared here: reproduce would train on it')
  out = tmp_path / 'report'
  p = run_jaxdl(['reproduce', 'fashion_mnist_ladder', 'cifar100_ablation', 'cifar10_zoo', 'mcdnn', f'--out={out}'])
  assert p.returncode == 0, p.stderr[-2000:]
  rows = {r['id']: r for r in json.loads((out / 'claims.json').read_text())}
  assert {k: r['status'] for k, r in rows.items()} == {'C12': 'needs-data', 'C13': 'needs-data',
                                                        'C14': 'on-paper', 'C15': 'needs-data'}
  assert 'parameter-count check: pass' in rows['C15']['note']
  assert 'cifar10' in rows['C15']['note'] and 'cifar100' in rows['C12']['note']
