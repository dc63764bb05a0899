"""Bad input never costs work: every mistake in configs, overrides, CLI arguments, data, workdirs, checkpoints and
permissions is ONE line on stderr (what was wrong; expected ...; what to do), exit code 2, no traceback, and the
workdir's existing files are byte-for-byte unchanged (README, "What jaxdl promises").

The default tier calls `jaxdl.cli.main` in-process (a subprocess costs seconds of imports); a few true subprocess
cases check the real entry point and the permission cases, which run the CLI as user `nobody` (root may write
anywhere). Cases that need a trained run share one tiny run, copied per test.
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from helpers import REPO
from jaxdl import cli
from jaxdl.errors import UserError
from jaxdl.train import preemption

CFG = f'--config={REPO / "experiments" / "mlp_digits.py"}'
# mlp_digits shrunk: a mistake that slips through validation trains for seconds, not minutes.
TINY = [CFG, '--config.model.hidden=(8,)', '--config.model.dropout_rate=0.0', '--config.train.num_steps=4',
        '--config.train.batch_size=16', '--config.train.log_every=2', '--config.train.eval_every=4',
        '--config.train.checkpoint_every=2']


def snapshot(root: pathlib.Path) -> dict[str, str]:
  """Every file and folder below root: relative path -> sha256 of its bytes ('dir' for folders)."""
  out = {}
  for p in sorted(root.rglob('*')):
    rel = str(p.relative_to(root))
    out[rel] = 'dir' if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
  return out


def assert_one_line_error(code: int, err: str, needle: str) -> str:
  assert code == 2, err
  assert 'Traceback' not in err, err
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  line = lines[0]
  assert line.startswith('jaxdl: error: '), line
  assert '; expected ' in line and line.count('; ') >= 2, f'not "what; expected ...; what to do": {line}'
  assert needle.lower() in line.lower(), f'{needle!r} not in {line!r}'
  return line


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
  """Runs in tmp_path (a stray relative path writes nowhere else); conftest restores SIGTERM handling."""
  monkeypatch.chdir(tmp_path)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """One tiny run of TINY (4 steps, checkpoints 2 and 4), trained once and copied by each test that needs it."""
  from jaxdl.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp('trained') / 'run'
  summary = train_and_evaluate(cli.load_config(TINY), workdir, quiet=True)
  assert summary['status'] == 'completed'
  preemption.disarm()
  return workdir


def _steps(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())


# ------------------------------------------------------------------------------------- workdir preparations
def _file(path, text=''):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)


def _config_file(text):
  def prep(d):
    _file(d / 'bad_config.py', text)
  return prep


def _base(body):
  return _config_file('from jaxdl.config import base_config\n\n\ndef get_config():\n  c = base_config()\n'
                      "  c.model.name = 'mlp'\n  c.data.name = 'digits'\n  c.optimizer.name = 'sgd'\n"
                      + ''.join(f'  {line}\n' for line in body) + '  return c\n')


def _corrupt_all_checkpoints(w):
  for p in (w / 'checkpoints').rglob('*'):
    if p.is_file() and '/state/' in str(p):
      p.write_bytes(b'garbage')


def _other_experiment(d):
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  _file(d / 'w' / 'config.json', config_lib.to_json(config_lib.get_config(REPO / 'experiments' / 'xor_init.py')))


def _other_config_json(w):
  cfg = json.loads((w / 'config.json').read_text())
  cfg['optimizer']['learning_rate'] = 0.5
  (w / 'config.json').write_text(json.dumps(cfg))


BADCFG = '--config={d}/bad_config.py'
W = '--workdir={w}'
# (id, argv, what the one line must name, preparation of tmp dir d / workdir w, needs the trained run)
CASES = [
    # --- config files
    ('config-missing', ['train', '--config={d}/nope.py', W], 'does not exist', None, False),
    ('config-is-dir', ['train', '--config={d}', W], 'does not exist', None, False),
    ('config-syntax-error', ['train', BADCFG, W], 'SyntaxError', _config_file('def get_config(:\n'), False),
    ('config-null-bytes', ['train', BADCFG, W], 'failed to load', _config_file('x = 1\0\n'), False),
    ('config-import-error', ['train', BADCFG, W], 'ModuleNotFoundError',
     _config_file('import jaxdl_no_such_module\n'), False),
    ('config-no-get-config', ['train', BADCFG, W], 'defines no get_config', _config_file('X = 1\n'), False),
    ('get-config-raises', ['train', BADCFG, W], 'boom',
     _config_file("def get_config():\n  raise RuntimeError('boom')\n"), False),
    ('get-config-returns-dict', ['train', BADCFG, W], 'returned a dict',
     _config_file("def get_config():\n  return {'model': 1}\n"), False),
    ('get-config-needs-arg', ['train', BADCFG, W], 'get_config',
     _config_file('def get_config(x):\n  return x\n'), False),
    ('config-not-py-suffix', ['train', '--config={d}/bad_config.txt', W], 'bad_config.txt',
     lambda d: _file(d / 'bad_config.txt', 'def get_config():\n  return None\n'), False),
    ('config-unknown-top-key', ['train', BADCFG, W], 'foo', _base(['c.foo = 1']), False),
    ('config-unknown-train-key', ['train', BADCFG, W], 'num_stepz', _base(['c.train.num_stepz = 3']), False),
    ('config-missing-section', ['train', BADCFG, W], 'loss', _base(["del c['loss']"]), False),
    ('config-wrong-type-in-file', ['train', BADCFG, W], 'num_steps', _base(["c.train.num_steps = 'many'"]), False),
    ('config-no-model-name', ['train', BADCFG, W], 'model.name', _base(["c.model.name = ''"]), False),
    ('config-dropout-in-file', ['train', BADCFG, W], 'dropout_rate', _base(['c.model.dropout_rate = 1.5']), False),
    ('no-config', ['train', W], 'no --config', None, False),
    # --- overrides
    ('unknown-train-key', ['train', *TINY, W, '--config.train.num_stepz=3'], 'num_stepz', None, False),
    ('unknown-section', ['train', *TINY, W, '--config.foo.bar=1'], 'foo', None, False),
    ('unknown-model-key', ['train', *TINY, W, '--config.model.widht=3'], 'widht', None, False),
    ('lr-not-a-number', ['train', *TINY, W, '--config.optimizer.learning_rate=fast'], 'learning_rate', None, False),
    ('lr-negative', ['train', *TINY, W, '--config.optimizer.learning_rate=-1'], 'learning_rate', None, False),
    ('lr-zero', ['train', *TINY, W, '--config.optimizer.learning_rate=0'], 'learning_rate', None, False),
    ('lr-nan', ['train', *TINY, W, '--config.optimizer.learning_rate=nan'], 'learning_rate', None, False),
    ('num-steps-negative', ['train', *TINY, W, '--config.train.num_steps=-5'], 'num_steps', None, False),
    ('num-steps-zero', ['train', *TINY, W, '--config.train.num_steps=0'], 'num_steps', None, False),
    ('num-steps-float', ['train', *TINY, W, '--config.train.num_steps=1.5'], 'num_steps', None, False),
    ('batch-size-zero', ['train', *TINY, W, '--config.train.batch_size=0'], 'batch_size', None, False),
    ('batch-size-negative', ['train', *TINY, W, '--config.train.batch_size=-3'], 'batch_size', None, False),
    ('batch-not-divisible-by-accum', ['train', *TINY, W, '--config.train.grad_accum_steps=5'], 'grad_accum_steps',
     None, False),
    ('batch-larger-than-data', ['train', *TINY, W, '--config.train.batch_size=100000'], 'batch', None, False),
    ('dropout-1.5', ['train', *TINY, W, '--config.model.dropout_rate=1.5'], 'dropout_rate', None, False),
    ('dropout-negative', ['train', *TINY, W, '--config.model.dropout_rate=-0.5'], 'dropout_rate', None, False),
    ('hidden-negative', ['train', *TINY, W, '--config.model.hidden=(-4,)'], 'hidden', None, False),
    ('hidden-zero', ['train', *TINY, W, '--config.model.hidden=(0,)'], 'hidden', None, False),
    ('hidden-wrong-type', ['train', *TINY, W, '--config.model.hidden=abc'], 'hidden', None, False),
    ('activation-unknown', ['train', *TINY, W, '--config.model.activation=nope'], 'nope', None, False),
    ('best-metric-unknown', ['train', *TINY, W, '--config.train.best_metric=nope'], 'best_metric', None, False),
    ('best-mode-unknown', ['train', *TINY, W, '--config.train.best_mode=up'], 'best_mode', None, False),
    ('model-unknown', ['train', *TINY, W, '--config.model.name=resnet9000'], 'resnet9000', None, False),
    ('loss-unknown', ['train', *TINY, W, '--config.loss.name=nope'], 'nope', None, False),
    ('optimizer-unknown', ['train', *TINY, W, '--config.optimizer.name=nope'], 'nope', None, False),
    ('schedule-unknown', ['train', *TINY, W, '--config.optimizer.schedule=nope'], 'nope', None, False),
    ('schedule-kwarg-unknown', ['train', *TINY, W, '--config.optimizer.schedule=cosine',
                                '--config.optimizer.schedule_kwargs.bogus=1'], 'bogus', None, False),
    ('clip-negative', ['train', *TINY, W, '--config.optimizer.clip_global_norm=-1.0'], 'clip_global_norm', None,
     False),
    ('dataset-unknown', ['train', *TINY, W, '--config.data.name=imagenet'], 'imagenet', None, False),
    ('ema-decay-out-of-range', ['train', *TINY, W, '--config.train.ema_decay=1.5'], 'ema_decay', None, False),
    ('averaging-unknown', ['train', *TINY, W, '--config.train.averaging=bogus'], 'averaging', None, False),
    ('compute-dtype-unknown', ['train', *TINY, W, '--config.train.compute_dtype=float8'], 'compute_dtype', None,
     False),
    ('log-every-zero', ['train', *TINY, W, '--config.train.log_every=0'], 'log_every', None, False),
    ('keep-checkpoints-zero', ['train', *TINY, W, '--config.train.keep_checkpoints=0'], 'keep_checkpoints', None,
     False),
    ('seed-negative', ['train', *TINY, W, '--config.train.seed=-1'], 'seed', None, False),
    ('eval-batch-negative', ['train', *TINY, W, '--config.train.eval_batch_size=-1'], 'eval_batch_size', None,
     False),
    ('override-without-value', ['train', *TINY, W, '--config.train.num_steps'], 'num_steps', None, False),
    ('init-from-missing', ['train', *TINY, W, '--config.train.init_from={d}/no_such_run'], 'no_such_run', None,
     False),
    # --- data
    ('data-classes-out-of-range', ['train', *TINY, W, '--config.data.classes=(11,)'], 'classes', None, False),
    ('data-train-examples-negative', ['train', *TINY, W, '--config.data.train_examples=-1'], 'train_examples', None,
     False),
    ('data-eval-split-unknown', ['train', *TINY, W, '--config.data.eval_split=nope'], 'nope', None, False),
    ('data-train-split-unknown', ['train', *TINY, W, '--config.data.train_split=nope'], 'nope', None, False),
    ('data-prefetch-negative', ['train', *TINY, W, '--config.data.prefetch=-5'], 'prefetch', None, False),
    ('data-augment-unknown', ['train', *TINY, W, "--config.data.augment=('nope',)"], 'nope', None, False),
    ('data-unknown-kwarg', ['train', *TINY, W, '--config.data.colour=1'], 'colour', None, False),
    ('data-function-unknown', ['train', *TINY, W, '--config.data.name=noisy_function',
                               '--config.data.function=nope', '--config.loss.name=mse'], 'nope', None, False),
    ('data-home-missing', ['train', *TINY, W, '--config.data.name=california_housing',
                           '--config.data.data_home={d}/no_sklearn_data', '--config.loss.name=mse'],
     'california_housing', None, False),
    ('data-dir-missing', ['train', *TINY, W, '--config.data.name=mnist', '--config.data.data_dir={d}/no_mnist'],
     'mnist', None, False),
    # --- command line
    ('unknown-command', ['frobnicate'], 'unknown command', None, False),
    ('train-no-workdir', ['train', *TINY], '--workdir', None, False),
    ('train-empty-workdir', ['train', *TINY, '--workdir='], 'workdir', None, False),
    ('train-unknown-flag', ['train', *TINY, W, '--frob'], '--frob', None, False),
    ('train-positional', ['train', *TINY, W, 'extra'], 'extra', None, False),
    ('eval-unknown-flag', ['eval', *TINY, W, '--frob'], '--frob', None, False),
    ('eval-no-checkpoints', ['eval', *TINY, W], 'no checkpoints', None, False),
    ('summary-no-model', ['summary'], 'needs a model', None, False),
    ('summary-unknown-model', ['summary', 'nope9'], 'nope9', None, False),
    ('summary-input-shape-negative', ['summary', 'lenet5', '--input-shape=-3'], 'input-shape', None, False),
    ('summary-input-shape-zero', ['summary', 'lenet5', '--input-shape=0,0,1'], 'input-shape', None, False),
    ('summary-input-shape-text', ['summary', 'lenet5', '--input-shape=a,b'], 'input-shape', None, False),
    ('summary-unknown-model-field', ['summary', 'mlp', '--model.widht=3'], 'widht', None, False),
    ('summary-bad-model-field', ['summary', 'mlp', '--model.hidden=(-4,)'], 'hidden', None, False),
    ('summary-bad-config', ['summary', CFG, '--config.model.dropout_rate=2.0'], 'dropout_rate', None, False),
    ('summary-unknown-flag', ['summary', 'mlp', '--frob'], '--frob', None, False),
    ('list-unknown-flag', ['list', '--losss'], '--losss', None, False),
    ('list-positional', ['list', 'models'], 'models', None, False),
    ('reproduce-no-out', ['reproduce', 'mlp_digits'], '--out', None, False),
    ('reproduce-nothing', ['reproduce', '--out={d}/out'], 'nothing to reproduce', None, False),
    ('reproduce-unknown-experiment', ['reproduce', 'nope_exp', '--out={d}/out'], 'nope_exp', None, False),
    ('reproduce-unknown-claim', ['reproduce', '--claims=ZZZ9', '--out={d}/out'], 'ZZZ9', None, False),
    ('bench-unknown-workload', ['bench', 'nope_workload'], 'nope_workload', None, False),
    ('bench-repeats-negative', ['bench', '--repeats=-1'], 'repeats', None, False),
    ('bench-repeats-text', ['bench', '--repeats=abc'], 'repeats', None, False),
    ('bench-unknown-flag', ['bench', '--frob'], '--frob', None, False),
    # --- workdirs
    ('workdir-is-file', ['train', *TINY, W], 'is a file', lambda d: _file(d / 'w'), False),
    ('workdir-below-file', ['train', *TINY, '--workdir={d}/f/sub/w'], 'below a file', lambda d: _file(d / 'f'),
     False),
    ('checkpoints-is-file', ['train', *TINY, W], 'checkpoints', lambda d: _file(d / 'w' / 'checkpoints'), False),
    ('config-json-garbage', ['train', *TINY, W], 'config.json', lambda d: _file(d / 'w' / 'config.json', '{oops'),
     False),
    ('workdir-of-other-experiment', ['train', *TINY, W], 'different config', _other_experiment, False),
    ('workdir-of-other-config', ['train', *TINY, W], 'different config', _other_config_json, True),
    ('workdir-of-other-seed', ['train', *TINY, W, '--config.train.seed=3'], 'seed', None, True),
    ('workdir-other-model-size', ['train', *TINY, W, '--config.model.hidden=(16,)'], 'different config', None,
     True),
    # --- checkpoints
    ('all-checkpoints-corrupted', ['train', *TINY, W], 'no checkpoint', _corrupt_all_checkpoints, True),
    ('eval-all-checkpoints-corrupted', ['eval', *TINY, W], 'no checkpoint', _corrupt_all_checkpoints, True),
    ('eval-checkpoint-missing-step', ['eval', *TINY, W, '--checkpoint=99'], 'checkpoint=99', None, True),
    ('eval-checkpoint-garbage', ['eval', *TINY, W, '--checkpoint=abc'], 'checkpoint=abc', None, True),
    ('eval-checkpoint-negative', ['eval', *TINY, W, '--checkpoint=-2'], 'checkpoint=-2', None, True),
    ('eval-split-unknown', ['eval', *TINY, W, '--split=nope'], 'nope', None, True),
    ('eval-other-model-size', ['eval', *TINY, W, '--config.model.hidden=(16,)'], 'restore', None, True),
    ('eval-ensemble-missing', ['eval', *TINY, W, '--ensemble={d}/nope_run'], 'nope_run', None, True),
]
assert len({c[0] for c in CASES}) == len(CASES)


def _expand(argv, d, w):
  return [a.replace('{d}', str(d)).replace('{w}', str(w)) for a in argv]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, capsys, tmp_path, request):
  name, argv, needle, prep, needs_run = case
  d, w = tmp_path / 'd', tmp_path / 'd' / 'w'
  d.mkdir()
  if needs_run:
    shutil.copytree(request.getfixturevalue('trained'), w)
  if prep is not None:
    prep(w if needs_run else d)
  before = snapshot(tmp_path)
  capsys.readouterr()
  code = cli.main(_expand(argv, d, w))
  err = capsys.readouterr().err
  assert_one_line_error(code, err, needle.replace('{d}', str(d)))
  assert snapshot(tmp_path) == before, f'{name}: files changed'


# ----------------------------------------------------------------------------- inputs that must NOT fail
@pytest.mark.parametrize('damage', ['garbage-line', 'torn-last-line', 'binary-line'])
def test_damaged_metrics_file_does_not_block_resuming(damage, trained, capsys, tmp_path):
  """A garbage or torn line in metrics.jsonl (as after a crash) is set aside with a warning; the run resumes."""
  w = tmp_path / 'w'
  shutil.copytree(trained, w)
  metrics = w / 'metrics.jsonl'
  good = [json.loads(l) for l in metrics.read_text().splitlines()]
  extra = {'garbage-line': 'this is not json\n', 'torn-last-line': '{"step": 4, "split": "tr',
           'binary-line': '\udcff\x00\x01{]\n'}[damage]
  metrics.write_text(metrics.read_text() + extra, errors='surrogateescape')
  code = cli.main(['train', *TINY, f'--workdir={w}', '--quiet', '--config.train.num_steps=6'])
  err = capsys.readouterr().err
  assert code == 0, err
  assert 'Traceback' not in err and 'unreadable line' in err, err
  records = [json.loads(l) for l in metrics.read_text().splitlines()]   # every line parses again
  assert records[:len(good)] == good and max(r['step'] for r in records) == 6
  assert (w / 'metrics.jsonl.unreadable').exists()


@pytest.mark.parametrize('override', ['--config.optimizer.schedule=cosine', '--config.model.batch_norm=True'])
def test_documented_keys_override_every_experiment(override, capsys, tmp_path):
  """Keys the shared schema documents are accepted even where the experiment's file leaves them out."""
  code = cli.main(['train', *TINY, f'--workdir={tmp_path / "w"}', '--quiet', override])
  err = capsys.readouterr().err
  assert code == 0 and 'Traceback' not in err, err
  key, value = override[len('--config.'):].split('=')
  section, name = key.split('.')
  assert str(json.loads((tmp_path / 'w' / 'config.json').read_text())[section][name]) == value


def test_switching_the_model_drops_the_files_keys_for_the_old_one():
  """--config.model.name=show_and_tell on the captioning file (written for show_attend_tell) runs: the file's
  attention keys go; a key the command line sets for the wrong model is still reported."""
  cap = f'--config={REPO / "experiments" / "captioning.py"}'
  base = cli.load_config([cap])
  assert {'attention_features', 'penalty'} <= set(base.model.keys())
  c = cli.load_config([cap, '--config.model.name=show_and_tell'])
  assert c.model.name == 'show_and_tell'
  assert set(c.model.keys()) == set(base.model.keys()) - {'attention_features', 'penalty'}
  assert all(c.model[k] == base.model[k] for k in c.model.keys() if k != 'name')
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  assert build_model(c.model).hidden_size == 128
  kept = cli.load_config([cap, '--config.model.name=show_and_tell', '--config.model.penalty=2.0'])
  with pytest.raises(UserError, match='penalty'):
    build_model(kept.model)


# --------------------------------------------------------------------------------- true subprocesses
def _run(args, *, unprivileged=False, timeout=120):
  """`python -m jaxdl args`; unprivileged: as root without the capabilities that override file permissions
  (setpriv drops CAP_DAC_OVERRIDE from the bounding set), so chmod a-w binds as it does for any user."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  prefix = []
  if unprivileged and os.geteuid() == 0:
    prefix = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner,-linux_immutable']
  return subprocess.run([*prefix, sys.executable, '-m', 'jaxdl', *args], env=env, capture_output=True, text=True,
                        timeout=timeout, cwd=REPO)


def test_no_arguments_subprocess():
  r = _run([])
  assert_one_line_error(r.returncode, r.stderr, 'no command given')
  assert r.stdout == ''


def test_bad_override_subprocess(tmp_path):
  r = _run(['train', *TINY, f'--workdir={tmp_path / "w"}', '--config.model.hidden=(-4,)'])
  assert_one_line_error(r.returncode, r.stderr, 'hidden')
  assert not (tmp_path / 'w').exists()


@pytest.mark.slow
@pytest.mark.parametrize('command', ['train', 'eval'])
def test_all_checkpoints_damaged_subprocess(command, trained, tmp_path):
  """The real entry point: one line, nothing else (Orbax's failed reads print no tracebacks), nothing changed."""
  w = tmp_path / 'w'
  shutil.copytree(trained, w)
  _corrupt_all_checkpoints(w)
  before = snapshot(tmp_path)
  r = _run([command, *TINY, f'--workdir={w}'])
  assert_one_line_error(r.returncode, r.stderr, 'no checkpoint')
  assert snapshot(tmp_path) == before


@pytest.fixture
def permissions(tmp_path):
  """Makes paths read-only for the test and writable again afterwards; skips where permissions cannot bind."""
  if os.geteuid() == 0 and not shutil.which('setpriv'):
    pytest.skip('root ignores file permissions and setpriv (util-linux) is missing to drop that power')
  changed = []

  def read_only(*paths, recursive=False):
    for path in paths:
      for p in ([path, *path.rglob('*')] if recursive else [path]):
        changed.append((p, p.stat().st_mode))
        p.chmod(0o555 if p.is_dir() else 0o444)
  yield read_only
  for p, mode in reversed(changed):
    p.chmod(mode)


def _train_unprivileged(workdir, *extra):
  return _run(['train', *TINY, f'--workdir={workdir}', '--quiet', *extra], unprivileged=True)


def test_unwritable_new_workdir(permissions, tmp_path):
  permissions(tmp_path)
  before = snapshot(tmp_path)
  r = _train_unprivileged(tmp_path / 'new' / 'w')
  assert_one_line_error(r.returncode, r.stderr, 'cannot be created')
  assert snapshot(tmp_path) == before


def test_read_only_existing_run(permissions, trained, tmp_path):
  w = tmp_path / 'run'
  shutil.copytree(trained, w)
  permissions(w, recursive=True)
  before = snapshot(tmp_path)
  r = _train_unprivileged(w, '--config.train.num_steps=6')
  assert_one_line_error(r.returncode, r.stderr, 'read-only run')
  assert snapshot(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize('what', ['checkpoints', 'metrics.jsonl'])
def test_unwritable_part_of_a_run(permissions, trained, tmp_path, what):
  """chmod a-w checkpoints/ or metrics.jsonl (the workdir itself writable): one line, within seconds."""
  w = tmp_path / 'run'
  shutil.copytree(trained, w)
  permissions(w / what)
  before = snapshot(tmp_path)
  r = _train_unprivileged(w, '--config.train.num_steps=6')
  assert_one_line_error(r.returncode, r.stderr, what)
  assert snapshot(tmp_path) == before
