"""Chapter-4a experiments (R2, R5–R8): configs validate, the R2 Jacobian check holds, every reproduce path runs at
reduced size (tiny step counts, few cells) with its figure; the full runs are in the slow tier."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from helpers import REPO
from jaxdl import config as config_lib
from jaxdl import reproduce as reproduce_lib

EXPERIMENTS = {'rnn_gradients': 'R2', 'echo_state': 'R5', 'bidirectional_cheat': 'R6', 'long_range': 'R7',
               'sequential_digits': 'R8'}


def module(name):
  return config_lib.load_module(REPO / 'experiments' / f'{name}.py')


def ctx_for(tmp_path, name):
  return reproduce_lib.Context(tmp_path, name, quiet=True)


def check_result(results, cid):
  (r,) = results
  assert r.id == cid and r.status in ('pass', 'fail') and r.measured
  assert r.figures and all(pathlib.Path(f).stat().st_size > 1000 for f in r.figures)
  return r


@pytest.mark.parametrize('name', sorted(EXPERIMENTS))
def test_configs_validate_and_declare_their_claim(name):
  m = module(name)
  config_lib.validate(m.get_config())
  assert m.__doc__ and 'CPU time' in m.__doc__ and 'Command' in m.__doc__ and 'Reproduces' in m.__doc__
  assert set(m.CLAIMS) == {EXPERIMENTS[name]} and not m.CLAIMS[EXPERIMENTS[name]].own


def test_rnn_gradients_jacobians_follow_lambda_to_the_t():
  g = module('rnn_gradients')
  norms = g.jacobian_norms()
  ok, text = g.check_norms(norms)
  assert ok, text
  t = np.arange(1, g.T_MAX + 1)
  np.testing.assert_allclose(norms['linear', 1.1], 1.1 ** t, rtol=1e-3)         # independent: λ^T
  # a broken expectation is caught: the linear norms are not λ^(T−1)
  bad = dict(norms)
  bad['linear', 0.9] = 0.9 ** (t - 1)
  assert not g.check_norms(bad)[0]


def _short(c, steps=3):
  c.train.num_steps = steps
  c.train.eval_every = steps
  c.train.log_every = 1
  return c


def test_rnn_gradients_reproduce_at_reduced_size(tmp_path, monkeypatch):
  g = module('rnn_gradients')
  monkeypatch.setattr(g, 'T_MAX', 10)
  c = _short(g.get_config())
  c.data.length, c.data.num_train, c.data.num_test = 6, 64, 16
  r = check_result(g.reproduce(ctx_for(tmp_path, 'rnn_gradients'), c), 'R2')
  assert 'without clipping' in r.measured and 'with clipping' in r.measured


def test_echo_state_reproduce_at_reduced_size(tmp_path, monkeypatch):
  e = module('echo_state')
  monkeypatch.setattr(e, 'TRAIN', 300)
  monkeypatch.setattr(e, 'TEST', 100)
  monkeypatch.setattr(e, 'WASHOUT', 50)
  c = _short(e.get_config())
  c.model.reservoir_size, c.data.window, c.data.num_train, c.data.num_test = 30, 40, 8, 4
  c.train.batch_size = 4
  r = check_result(e.reproduce(ctx_for(tmp_path, 'echo_state'), c, radii=(0.5, 0.9)), 'R5')
  assert 'persistence' in r.measured and 'ridge readout' in r.measured


def test_bidirectional_cheat_reproduce_at_reduced_size(tmp_path):
  b = module('bidirectional_cheat')
  c = _short(b.get_config())
  c.model.hidden_size = 8
  c.data.length, c.data.num_train, c.data.num_test = 8, 64, 16
  c.model.vocab_size = num_outputs(c)
  r = check_result(b.reproduce(ctx_for(tmp_path, 'bidirectional_cheat'), c), 'R6')
  assert 'backward half only' in r.measured


def num_outputs(c):
  from jaxdl.data import get_dataset  # pylint: disable=g-import-not-at-top
  return get_dataset(c.data).info.num_outputs


def test_long_range_reproduce_at_reduced_size(tmp_path, monkeypatch):
  lr = module('long_range')
  monkeypatch.setattr(lr, 'CELLS', ('gru',))
  monkeypatch.setattr(lr, 'LENGTHS', (6,))
  monkeypatch.setattr(lr, 'NUM_STEPS', 3)
  r = check_result(lr.reproduce(ctx_for(tmp_path, 'long_range')), 'R7')
  assert r.status == 'fail' and 'T=6: gru' in r.measured       # no Elman run: the claim cannot pass


def test_sequential_digits_reproduce_at_reduced_size(tmp_path, monkeypatch):
  s = module('sequential_digits')
  monkeypatch.setattr(s, 'CELLS', ())                          # the bidirectional LSTM only
  monkeypatch.setattr(s, 'MODES', ('rows28',))
  monkeypatch.setattr(s, 'NUM_STEPS', 3)
  r = check_result(s.reproduce(ctx_for(tmp_path, 'sequential_digits')), 'R8')
  assert r.status == 'fail' and 'bi-lstm' in r.measured


# R8 does not reproduce at the experiment's budget (last full run: the IRNN reads 64 pixels at 44%, Elman at 87%):
# its verdict is a measurement, not asserted here. The others passed.
MUST_PASS = {'R2', 'R5', 'R6', 'R7'}


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(EXPERIMENTS))
def test_full_reproduction(name, tmp_path):
  results = module(name).reproduce(ctx_for(tmp_path, name))
  r = check_result(results, EXPERIMENTS[name])
  if r.id in MUST_PASS:
    assert r.status == 'pass', r.measured
