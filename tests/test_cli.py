"""The `jaxdl` command line: list/train/eval work; every user error is ONE line on stderr with exit code 2."""
import json

import pytest

from helpers import REPO, overrides, run_jaxdl, summary
from jaxdl import cli
from jaxdl import runtime

CFG = f'--config={REPO / "experiments" / "mlp_digits.py"}'


def _one_line_error(capsys, argv, needle):
  code = cli.main(argv)
  err = capsys.readouterr().err
  assert code == 2, err
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith('jaxdl: error: ') and needle in lines[0], lines[0]
  assert 'Traceback' not in err
  return lines[0]


@pytest.mark.parametrize('argv, needle', [
    (['train', '--config=experiments/nope.py', '--workdir=x'], 'does not exist'),
    (['train', CFG, '--workdir=x', '--config.optimizer.learning_rate=fast'], 'learning_rate'),
    (['train', CFG, '--workdir=x', '--config.data.name=imagenet'], "unknown dataset 'imagenet'"),
    (['train', CFG, '--workdir=x', '--config.train.num_stepz=3'], 'num_stepz'),
    (['train', CFG, '--workdir=x', '--config.train.num_steps=-5'], 'num_steps'),
    (['train', CFG, '--workdir=x', '--config.model.name=resnet9000'], 'unknown model'),
    (['train', CFG], '--workdir'),
    (['train', '--workdir=x'], 'no --config'),
    (['frobnicate'], 'unknown command'),
])
def test_user_errors_are_one_line_exit_2(capsys, tmp_path, argv, needle):
  argv = [a.replace('--workdir=x', f'--workdir={tmp_path / "w"}') for a in argv]
  _one_line_error(capsys, argv, needle)
  assert not (tmp_path / 'w' / 'checkpoints').exists()  # nothing ran


def test_eval_without_checkpoints_is_a_user_error(capsys, tmp_path):
  _one_line_error(capsys, ['eval', CFG, f'--workdir={tmp_path}'], 'no checkpoints')


def test_list_shows_experiments_with_claims_and_datasets(capsys):
  assert cli.main(['list', '--json']) == 0
  rows = {r['experiment']: r for r in json.loads(capsys.readouterr().out)}
  assert rows['mlp_digits']['dataset'] == 'digits'
  assert rows['linear_regression']['claims'] == ['L4', 'L5', 'L6']


def test_batch_not_divisible_by_devices_is_one_line_exit_2(tmp_path):
  r = run_jaxdl(['train', *overrides(num_steps=5), '--config.train.batch_size=12', f'--workdir={tmp_path}'], devices=8)
  assert r.returncode == 2, r.stderr
  assert r.stderr.strip().count('\n') == 0 and 'divide across 8 devices' in r.stderr, r.stderr


def test_train_then_eval_from_the_command_line(tmp_path):
  r = run_jaxdl(['train', *overrides(num_steps=20), f'--workdir={tmp_path}'])
  assert r.returncode == 0, r.stderr
  out = json.loads(r.stdout)
  assert out['step'] == 20 and out['status'] == 'completed'
  policy = summary(tmp_path)['host_memory']                  # jaxdl.runtime's, set by the program before JAX starts
  assert policy == ('keep' if runtime._glibc() else 'unsupported')  # pylint: disable=protected-access
  r = run_jaxdl(['eval', *overrides(num_steps=20), f'--workdir={tmp_path}', '--checkpoint=best'])
  assert r.returncode == 0, r.stderr
  assert 0.0 <= json.loads(r.stdout)['eval']['accuracy'] <= 1.0
