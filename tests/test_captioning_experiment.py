"""experiments/captioning.py (R4, R12): the config validates and declares its claims; the whole reproduce path
(two trainings, beams 1/3/20, the preset's parameter table, the penalty check, attention-in-box, the figure) runs
at a tiny size in the slow tier."""
import pathlib

import pytest

from helpers import REPO
from jaxdl import config as config_lib
from jaxdl import reproduce as reproduce_lib


def _module():
  return config_lib.load_module(REPO / 'experiments' / 'captioning.py')


def test_config_validates_and_declares_r4_r12():
  m = _module()
  config_lib.validate(m.get_config('show_and_tell'))      # show_attend_tell (the default): tests/test_config.py
  assert set(m.CLAIMS) == {'R4', 'R12'} and not any(c.own for c in m.CLAIMS.values())
  assert 'CPU time' in m.__doc__ and 'Reproduces' in m.__doc__


@pytest.mark.slow
def test_reproduce_path_runs_at_a_tiny_size(tmp_path):
  m = _module()
  configs = {}
  for name in ('show_and_tell', 'show_attend_tell'):
    c = m.get_config(name, num_steps=4)
    c.model.update(encoder_channels=(4, 8), embed_dim=8, hidden_size=12)
    c.data.update(num_train=48, num_test=12)
    c.train.update(batch_size=8, eval_batch_size=12)
    configs[name] = c
  results = m.measure(reproduce_lib.Context(tmp_path, 'captioning', quiet=True), configs)
  assert [r.id for r in results] == ['R4', 'R12']
  assert all(r.status in ('pass', 'fail') and r.measured for r in results)
  assert 'beam 20' in results[0].measured and 'chance' in results[1].measured
  assert all(pathlib.Path(f).stat().st_size > 1000 for f in results[1].figures)
