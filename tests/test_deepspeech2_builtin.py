"""experiments/deepspeech2_builtin.py (S7, S8): the config validates; the whole reproduce (training, greedy / beam /
beam + LM decoding with α, β tuned on validation, figures) runs at a tiny size (the claims need the full size:
`jaxdl reproduce deepspeech2_builtin`, slow tier)."""
import json
import pathlib

import pytest

from helpers import REPO
from jaxdl import config as config_lib
from jaxdl import reproduce as reproduce_lib


def module():
  return config_lib.load_module(REPO / 'experiments' / 'deepspeech2_builtin.py')


def test_config_validates_and_documents_itself():
  m = module()
  c = m.get_config()
  config_lib.validate(c)
  assert c.model.name == 'ds2_small' and c.data.name == 'espeak_speech' and c.loss.name == 'ctc'
  assert tuple(c.decode.metrics) == ('cer', 'wer')
  assert set(m.CLAIMS) == {'S7', 'S8'} and 'CPU time' in m.__doc__ and 'Command' in m.__doc__


def test_reduced_reproduce_runs_end_to_end(tmp_path, monkeypatch):
  pytest.importorskip('espeakng_loader')
  monkeypatch.setenv('JAXDL_CACHE', str(tmp_path / 'cache'))
  m = module()
  c = m.tiny_config(num_steps=2)
  ctx = reproduce_lib.Context(tmp_path, 'deepspeech2_builtin', quiet=True)
  s7, s8 = m.measure(ctx, c, alphas=(0.0, 0.5), betas=(0.0, 1.0), lms=(('char', 3),))
  assert (s7.id, s8.id) == ('S7', 'S8') and {s7.status, s8.status} <= {'pass', 'fail'}
  assert 'greedy test CER' in s7.measured and 'beam + char 3-gram LM' in s8.measured
  assert len(s7.figures) == 3 and all(pathlib.Path(f).stat().st_size > 1000 for f in s7.figures)
  d = json.loads((ctx.workdir() / 'decoding.json').read_text())
  assert len(d['grid']) == 4 and min(g[0] for g in d['grid']) == d['val_lm_wer']
  assert d['alpha'] in (0.0, 0.5) and 0.0 <= d['greedy_cer']


@pytest.mark.slow
def test_full_reproduce(tmp_path):
  pytest.importorskip('espeakng_loader')
  m = module()
  ctx = reproduce_lib.Context(tmp_path, 'deepspeech2_builtin', quiet=True)
  s7, s8 = m.reproduce(ctx)
  d = json.loads((ctx.workdir() / 'decoding.json').read_text())
  # measured 2026-12-03: greedy test CER 0.103 (S7 asks < 0.10: a near miss, reported as 'fail'); S8 passes
  assert s7.status == reproduce_lib.verdict(d['greedy_cer'] < 0.10) and d['greedy_cer'] < 0.12, s7.measured
  assert s8.status == 'pass', s8.measured
