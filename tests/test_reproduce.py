"""`jaxdl reproduce` and `jaxdl summary` end to end on cheap experiments."""
import json

import ml_collections
import pytest

from jaxdl import cli, reproduce
from jaxdl.models import build_model, count_params
from jaxdl.registry import MODELS
from jaxdl.inspect.summary import parameter_table
from jaxdl.train.state import init_variables


def test_reproduce_writes_claims_and_report(tmp_path, capsys):
  assert cli.main(['reproduce', 'param_counts', '--claims=L1', f'--out={tmp_path}', '--quiet']) == 0
  rows = json.loads((tmp_path / 'claims.json').read_text())
  assert {r['id'] for r in rows} == {'L1', 'L12'}   # the named experiment's claims + the requested one
  for r in rows:
    assert set(r) >= {'id', 'experiment', 'expected', 'measured', 'status', 'note'}
    assert r['status'] == 'pass', r
  report = (tmp_path / 'report.md').read_text()
  assert '| L12 | param_counts |' in report and '![L1](figures/perceptron_boundaries.png)' in report
  assert (tmp_path / 'figures' / 'perceptron_boundaries.png').stat().st_size > 1000
  out = capsys.readouterr().out
  assert 'L12' in out and 'pass' in out


def test_unknown_claim_is_exit_2(tmp_path, capsys):
  assert cli.main(['reproduce', '--claims=L99', f'--out={tmp_path}']) == 2
  assert 'unknown claim' in capsys.readouterr().err


def test_needs_data_claims_are_reported_with_the_prepare_command(tmp_path, monkeypatch):
  mod = type('M', (), {'CLAIMS': {'X1': reproduce.Claim('X1', 'needs mnist', needs='mnist')},
                       'reproduce': staticmethod(lambda ctx: [])})
  monkeypatch.setattr(reproduce, 'experiments_with_claims', lambda: {'fake': mod})
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'empty'))
  rows = reproduce.run(['fake'], None, tmp_path / 'out', quiet=True)
  assert rows[0]['status'] == 'needs-data' and 'download_and_prepare --datasets=mnist' in rows[0]['note']


def test_every_experiment_claim_id_is_in_claims_md():
  import pathlib  # pylint: disable=g-import-not-at-top
  claims_md = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'CLAIMS.md'
  if not claims_md.exists():
    pytest.skip('../shared/CLAIMS.md is not beside this checkout')
  text = claims_md.read_text()
  for cid, (_, claim) in reproduce.claim_index().items():
    # The course's claims carry their CLAIMS.md ID; jaxdl's own checks (own=True) must not collide with one.
    assert (f'| {cid} |' in text) != claim.own, cid


def _models_by_weight():
  return [pytest.param(n, marks=pytest.mark.slow) if MODELS.meta(n).get('heavy') else n for n in MODELS.names()]


@pytest.mark.parametrize('name', _models_by_weight())
def test_summary_total_equals_initialised_parameter_count(name):
  shape = MODELS.meta(name)['example_input_shape']
  model = build_model(ml_collections.ConfigDict({'name': name}))
  import jax  # pylint: disable=g-import-not-at-top
  params, _ = init_variables(model, jax.random.PRNGKey(0), shape)
  assert parameter_table(model, shape)['total_params'] == count_params(params)


def test_summary_cli_json(capsys):
  assert cli.main(['summary', 'mlp', '--input-shape=3', '--model.hidden=(4,)', '--model.num_outputs=2', '--json']) == 0
  table = json.loads(capsys.readouterr().out)
  assert table['total_params'] == 26
  assert [l['params'] for l in table['layers']] == [16, 10]


def test_summary_cli_flops_and_layers(capsys):
  """simple_cnn (conv3×3 32, conv3×3 64, pool 2, dense 128, dense 10) on 28×28×1: MACs counted by hand."""
  assert cli.main(['summary', 'simple_cnn', '--flops', '--layers', '--json']) == 0
  table = json.loads(capsys.readouterr().out)
  hand = 26 * 26 * 9 * 1 * 32 + 24 * 24 * 9 * 32 * 64 + 12 * 12 * 64 * 128 + 128 * 10
  assert table['flops'] == hand
  convs = [r for r in table['layer_outputs'] if r['type'] == 'Conv']
  assert [r['output_shape'] for r in convs] == [[26, 26, 32], [24, 24, 64]]
  assert [r['receptive_field'] for r in convs] == [[3, 3], [5, 5]]   # r = 1 + Σ (k − 1)
