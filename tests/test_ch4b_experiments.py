"""Chapter-4b sequence-to-sequence experiments: configs validate offline, the Sutskever preset's count, and each
experiment's measurement at reduced size (the full reproductions are slow)."""
from __future__ import annotations

import pathlib

import pytest

from helpers import REPO
from jaxdl import config as config_lib
from jaxdl import reproduce as reproduce_lib

EXPERIMENTS = ('transformer_reverse', 'seq2seq_sutskever', 'attention_length')


def module(name):
  return config_lib.load_module(REPO / 'experiments' / f'{name}.py')


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_get_config_validates_offline(name):
  m = module(name)
  config_lib.validate(m.get_config())
  assert m.__doc__ and 'CPU time' in m.__doc__ and 'Command' in m.__doc__
  assert m.CLAIMS


def test_claim_ids():
  ids = {cid: name for name in EXPERIMENTS for cid in module(name).CLAIMS}
  assert ids == {'R9': 'transformer_reverse', 'R3': 'seq2seq_sutskever', 'R11': 'seq2seq_sutskever',
                 'R10': 'attention_length'}


def test_sutskever_preset_count_is_the_papers():
  m = module('seq2seq_sutskever')
  n = m.preset_param_count()
  assert n == 384_112_000 and abs(n - m.PAPER_PARAMS) / m.PAPER_PARAMS < 0.001


def _tiny(c, steps=3, num_train=64, num_test=16):
  c.data.num_train, c.data.num_test = num_train, num_test
  c.train.update(num_steps=steps, batch_size=8, eval_batch_size=16, log_every=steps, eval_every=0)
  return c


def test_transformer_reverse_measures_at_reduced_size(tmp_path):
  m = module('transformer_reverse')
  ctx = reproduce_lib.Context(tmp_path, 'transformer_reverse', quiet=True)
  (r,) = m.measure(ctx, _tiny(m.get_config()))
  assert r.id == 'R9' and r.status == 'fail' and 'exact match' in r.measured   # 3 steps learn nothing


@pytest.mark.slow
def test_r11_measures_at_reduced_size(tmp_path):
  m = module('seq2seq_sutskever')
  ctx = reproduce_lib.Context(tmp_path, 'seq2seq_sutskever', quiet=True)
  configs = {k: _tiny(m.small_config(k == 'reversed')) for k in ('forward', 'reversed')}
  r = m.measure_r11(ctx, {**configs, 'transformer': _tiny(m.transformer_config())})
  assert r.id == 'R11' and r.status in ('pass', 'fail') and 'perplexity' in r.measured
  assert 'transformer (441,920 params)' in r.note


@pytest.mark.slow
def test_attention_length_measures_at_reduced_size(tmp_path):
  m = module('attention_length')
  ctx = reproduce_lib.Context(tmp_path, 'attention_length', quiet=True)
  (r,) = m.measure(ctx, {k: _tiny(m.get_config(k), num_test=60) for k in ('none', 'additive')})
  assert r.id == 'R10' and r.status in ('pass', 'fail') and 'attention' in r.measured
  assert len(r.figures) == 2 and all(pathlib.Path(f).stat().st_size > 1000 for f in r.figures)


@pytest.mark.slow
@pytest.mark.parametrize('name', EXPERIMENTS)
def test_full_reproduction(name, tmp_path):
  m = module(name)
  results = m.reproduce(reproduce_lib.Context(tmp_path, name, quiet=True))
  assert {r.id for r in results} == set(m.CLAIMS)
  assert all(r.status == 'pass' for r in results if r.id in ('R3', 'R9', 'R10'))
