"""Chapter-5 experiments (CTC and DeepSpeech2): configs validate offline, claim IDs, a reduced `ctc_basics`
reproduce (S1-S3), the preset counts (S4, S5, S10) and the needs-data claims (S6, S9) as such."""
from __future__ import annotations

import json

import pytest

from helpers import REPO
from jaxdl import config as config_lib
from jaxdl import data as data_lib
from jaxdl import reproduce as reproduce_lib
from jaxdl.errors import UserError

EXPERIMENTS = ('ctc_basics', 'deepspeech2_paper', 'deepspeech2_lab', 'algoperf_deepspeech')


def module(name):
  return config_lib.load_module(REPO / 'experiments' / f'{name}.py')


def _kwargs_only(data_config):
  """get_dataset without building: the local corpora need their folders, espeak_speech its synthesis."""
  cfg = dict(data_config)
  name = cfg.pop('name')
  known = set(data_lib.dataset_kwargs(name)) | set(data_lib.PIPELINE_KEYS)
  unknown = set(cfg) - known
  if unknown:
    raise UserError(f'unknown data keys {unknown}', 'known keys', 'fix')


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_get_config_validates_offline(name, monkeypatch):
  monkeypatch.setattr(data_lib, 'get_dataset', _kwargs_only)
  m = module(name)
  c = m.get_config()
  config_lib.validate(c)
  assert c.loss.name == 'ctc' and c.model.name in ('ds2_small', 'ds2_paper', 'ds2_lab', 'algoperf_deepspeech')
  assert m.__doc__ and 'CPU time' in m.__doc__ and 'Command' in m.__doc__


def test_recipes_follow_the_notes():
  for name in ('deepspeech2_paper', 'deepspeech2_lab'):
    c = module(name).get_config()
    o = c.optimizer
    assert (o.name, o.momentum, o.learning_rate, o.clip_global_norm) == ('nesterov', 0.99, 1e-4, 400.0)
    assert o.schedule == 'step' and o.schedule_kwargs['gamma'] == 0.8 and c.data.sorta_grad
  assert module('deepspeech2_lab').get_config().data.n_mels == 20


def test_claim_ids():
  ids = {cid: name for name in EXPERIMENTS for cid in module(name).CLAIMS}
  assert ids == {'S1': 'ctc_basics', 'S2': 'ctc_basics', 'S3': 'ctc_basics', 'S4': 'deepspeech2_paper',
                 'S6': 'deepspeech2_paper', 'S5': 'deepspeech2_lab', 'S9': 'algoperf_deepspeech',
                 'S10': 'algoperf_deepspeech'}


def test_ctc_basics_reduced_reproduce(tmp_path):
  results = module('ctc_basics').reproduce(reproduce_lib.Context(tmp_path, 'ctc_basics', quiet=True),
                                           num_problems=8)
  assert [r.id for r in results] == ['S1', 'S2', 'S3']
  assert all(r.status == 'pass' for r in results), [(r.id, r.measured) for r in results]
  assert all(f and (tmp_path / 'figures').joinpath(f.split('/')[-1]).exists() for r in results for f in r.figures)


def test_count_experiments_and_needs_data(tmp_path):
  rows = reproduce_lib.run(['deepspeech2_paper', 'deepspeech2_lab', 'algoperf_deepspeech'], None, tmp_path,
                           quiet=True)
  status = {r['id']: r['status'] for r in rows}
  assert status == {'S4': 'pass', 'S5': 'pass', 'S6': 'needs-data', 'S9': 'needs-data', 'S10': 'pass'}
  measured = {r['id']: r['measured'] for r in rows}
  assert '65,271,116' in measured['S5'] and '18,381,312' in measured['S10'] and '146,008,189' in measured['S4']
  assert all('jaxdl train --config=experiments/' in r['note'] for r in rows if r['status'] == 'needs-data')
  assert json.loads((tmp_path / 'claims.json').read_text())
