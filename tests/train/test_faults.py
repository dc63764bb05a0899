"""Faults never cost more than the steps since the last checkpoint: kill -9 at any moment (mid-save included) and
SIGTERM at every phase resume to the uninterrupted run's parameters, bit for bit; a damaged checkpoint of any kind
is set aside and the newest good one used; a diverging run stops with one line and never saves a non-finite state;
an unwritable checkpoint folder fails in seconds (README, "What jaxdl promises").

Interrupted runs are subprocesses (tests/train/fault_runner.py pauses them inside a chosen phase, so the signal
lands there); resuming runs in-process through `jaxdl.cli.main`. The randomized trials are in the slow tier.
"""
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO
from jaxdl import cli
from jaxdl.train import preemption

RUNNER = pathlib.Path(__file__).with_name('fault_runner.py')
# mlp_digits shrunk: 40 steps, checkpoints every 10 (keep 3 + best), an eval at 20 and 40.
ARGS = [f'--config={REPO / "experiments" / "mlp_digits.py"}', '--config.model.hidden=(8,)',
        '--config.model.dropout_rate=0.0', '--config.train.num_steps=40', '--config.train.batch_size=16',
        '--config.train.log_every=5', '--config.train.eval_every=20', '--config.train.checkpoint_every=10']


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """The uninterrupted run: (workdir, params fingerprint)."""
  w = tmp_path_factory.mktemp('faults') / 'reference'
  assert cli.main(['train', *ARGS, f'--workdir={w}', '--quiet']) == 0
  preemption.disarm()
  return w, _fingerprint(w)


def _fingerprint(workdir) -> str:
  return json.loads((pathlib.Path(workdir) / 'summary.json').read_text())['params_fingerprint']


def _steps(workdir) -> list[int]:
  ck = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.exists() else []


def _resume(capsys, workdir, *extra) -> str:
  """Reruns the same command in-process; it must complete. Returns its stderr."""
  capsys.readouterr()
  code = cli.main(['train', *ARGS, f'--workdir={workdir}', '--quiet', *extra])
  err = capsys.readouterr().err
  assert code == 0, err
  assert 'Traceback' not in err, err
  return err


def _spawn(phase, workdir, marker, *, env=None, prefix=(), extra=()):
  e = dict(os.environ, JAX_PLATFORMS='cpu', **(env or {}))
  return subprocess.Popen([*prefix, sys.executable, str(RUNNER), phase, str(marker), 'train', *ARGS,
                           f'--workdir={workdir}', '--quiet', *extra], env=e, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for(marker: pathlib.Path, proc, timeout=180):
  t0 = time.time()
  while not marker.exists():
    if proc.poll() is not None:
      raise AssertionError(f'the run ended (code {proc.returncode}) before the phase: {proc.stderr.read()}')
    if time.time() - t0 > timeout:
      proc.kill()
      raise AssertionError('the phase was never reached')
    time.sleep(0.01)


# ------------------------------------------------------------------------------------------------- SIGTERM
def _sigterm_at(phase, tmp_path, env=None):
  w, marker = tmp_path / 'w', tmp_path / 'marker'
  proc = _spawn(phase, w, marker, env=env)
  _wait_for(marker, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=180)
  assert proc.returncode == preemption.EXIT_PREEMPTED, err
  assert 'Traceback' not in err and err.strip().splitlines()[-1].startswith('jaxdl: stopped by SIGTERM'), err
  assert not (w / 'summary.json').exists()
  return w, err


SIGTERM_PHASES = [('startup', {}), ('compile', {}), ('train', {'JAXDL_FAULT_STEP': '13', 'JAXDL_FAULT_SLEEP': '2'}),
                  ('eval', {}), ('save', {})]


@pytest.mark.parametrize('phase, env', [
    p if p[0] in ('startup', 'save') else pytest.param(*p, marks=pytest.mark.slow) for p in SIGTERM_PHASES],
    ids=[p[0] for p in SIGTERM_PHASES])
def test_sigterm_at_every_phase_saves_exits_75_and_resumes_exactly(phase, env, reference, tmp_path, capsys):
  w, err = _sigterm_at(phase, tmp_path, env)
  if phase == 'startup':
    assert 'before the first step' in err and _steps(w) == []
  else:
    stopped = int(err.split('at step ')[1].split(';')[0])
    assert stopped >= 1 and stopped in _steps(w), err       # the last completed step was saved
    if phase == 'train':
      assert stopped == 13
  _resume(capsys, w)
  assert _fingerprint(w) == reference[1]


@pytest.mark.slow
@pytest.mark.parametrize('delay', [0.3, 0.8, 1.5])
def test_sigterm_during_imports_is_a_clean_stop(delay, tmp_path):
  """The handler is armed before JAX is imported: SIGTERM in the first second is exit 75, not a silent death."""
  w = tmp_path / 'w'
  proc = subprocess.Popen([sys.executable, '-m', 'jaxdl', 'train', *ARGS, f'--workdir={w}', '--quiet'],
                          env=dict(os.environ, JAX_PLATFORMS='cpu'), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  time.sleep(delay)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=180)
  assert proc.returncode in (preemption.EXIT_PREEMPTED, 0), err
  assert 'Traceback' not in err and 'SIGTERM' in err, err


# ------------------------------------------------------------------------------------------------- kill -9
def _kill_at(phase, tmp_path, env=None, w=None):
  w, marker = w or tmp_path / 'w', tmp_path / 'marker'
  marker.unlink(missing_ok=True)
  proc = _spawn(phase, w, marker, env=env)
  _wait_for(marker, proc)
  proc.kill()
  proc.wait()
  return w


@pytest.mark.parametrize('phase, env', [
    ('finalize', {'JAXDL_FAULT_NTH': '1'}),                                     # an item being committed
    pytest.param('finalize', {'JAXDL_FAULT_NTH': '4'}, marks=pytest.mark.slow),  # the step being committed
    pytest.param('save', {}, marks=pytest.mark.slow),                             # asynchronous write in flight
    pytest.param('finalize', {'JAXDL_FAULT_NTH': '7'}, marks=pytest.mark.slow),   # the second checkpoint
], ids=['item-commit', 'step-commit', 'async-write', 'second-checkpoint'])
def test_kill_9_mid_save_resumes_exactly(phase, env, reference, tmp_path, capsys):
  w = _kill_at(phase, tmp_path, env)
  _resume(capsys, w)
  assert _fingerprint(w) == reference[1]
  assert not [p for p in (w / 'checkpoints').iterdir() if 'tmp' in p.name]   # half-written saves cleaned up


LONG = ['--config.train.num_steps=400', '--config.train.eval_every=100']   # 40 checkpoints, 4 evals


@pytest.fixture(scope='module')
def long_reference(tmp_path_factory):
  w = tmp_path_factory.mktemp('faults') / 'long'
  assert cli.main(['train', *ARGS, *LONG, f'--workdir={w}', '--quiet']) == 0
  preemption.disarm()
  return _fingerprint(w)


@pytest.mark.slow
@pytest.mark.parametrize('trial', range(10))
def test_kill_9_at_random_moments_resumes_exactly(trial, long_reference, tmp_path, capsys):
  """Each trial kills a 400-step run once or twice: during start-up (30%) or at a random time after a new
  checkpoint appeared (saves are in flight most of the time), then resumes."""
  rng = random.Random(1000 + trial)
  w = tmp_path / 'w'
  moments = []
  for _ in range(rng.choice([1, 2])):
    seen = max(_steps(w), default=0)
    proc = _spawn('none', w, tmp_path / 'unused', extra=LONG)
    if rng.random() < 0.3:
      time.sleep(rng.uniform(0.0, 3.0))
    else:
      t0 = time.time()
      while max(_steps(w), default=0) <= seen and proc.poll() is None and time.time() - t0 < 180:
        time.sleep(0.005)
      time.sleep(rng.uniform(0.0, 1.0))
    proc.kill()
    proc.wait()
    moments.append(max(_steps(w), default=0))
  print(f'trial {trial}: killed with the latest checkpoint at steps {moments}', file=sys.__stderr__)
  _resume(capsys, w, *LONG)
  assert _fingerprint(w) == long_reference


# ------------------------------------------------------------------------------------- damaged checkpoints
def _garbage(path: pathlib.Path, n=None):
  path.write_bytes(np.random.default_rng(0).bytes(n if n is not None else max(path.stat().st_size, 16)))


def _array_files(step_dir):
  return [p for p in (step_dir / 'state').rglob('*') if p.is_file() and p.parent.name == 'd']


def _truncate_arrays(d):
  for p in _array_files(d):
    p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])


def _garbage_arrays(d):
  for p in _array_files(d):
    _garbage(p)


def _bad_checksum(d):
  meta = json.loads((d / 'meta' / 'metadata').read_text())
  meta['checksums'][0] = (meta['checksums'][0] + 1) % 2**32
  (d / 'meta' / 'metadata').write_text(json.dumps(meta))


DAMAGE = {
    'array-data-truncated': _truncate_arrays,
    'array-data-garbage': _garbage_arrays,
    'manifest': lambda d: [_garbage(p) for p in (d / 'state').rglob('manifest.ocdbt')],
    'metadata': lambda d: _garbage(d / 'state' / '_METADATA'),
    'checksum-mismatch': _bad_checksum,
    'meta-garbage': lambda d: _garbage(d / 'meta' / 'metadata'),
    'data-position-garbage': lambda d: _garbage(d / 'data' / 'metadata'),
    'state-missing': lambda d: shutil.rmtree(d / 'state'),
    'empty-step-folder': lambda d: [shutil.rmtree(d), d.mkdir()],
}
FAST_DAMAGE = ('array-data-truncated', 'manifest', 'metadata', 'checksum-mismatch')


@pytest.mark.filterwarnings('error::pytest.PytestUnraisableExceptionWarning')  # no 'Event loop is closed' noise
@pytest.mark.parametrize('kind', [k if k in FAST_DAMAGE else pytest.param(k, marks=pytest.mark.slow)
                                  for k in DAMAGE])
def test_damaged_latest_checkpoint_falls_back_and_resumes_exactly(kind, reference, tmp_path, capsys):
  w = tmp_path / 'w'
  shutil.copytree(reference[0], w)
  (w / 'summary.json').unlink()
  latest = _steps(w)[-1]
  DAMAGE[kind](w / 'checkpoints' / str(latest))
  err = _resume(capsys, w)
  older = [s for s in _steps(reference[0]) if s < latest][-1]
  assert f'checkpoint {latest} ' in err and 'does not restore' in err, err
  assert f'resuming from checkpoint {older}' in err, err
  assert (w / 'checkpoints' / f'{latest}.unreadable').is_dir()   # set aside, not deleted
  assert _fingerprint(w) == reference[1]


def test_eval_falls_back_to_the_newest_good_checkpoint_and_renames_nothing(reference, tmp_path):
  """As a true subprocess: the warnings are the whole of stderr (no traceback from Orbax's failed reads)."""
  w = tmp_path / 'w'
  shutil.copytree(reference[0], w)
  latest = _steps(w)[-1]
  _truncate_arrays(w / 'checkpoints' / str(latest))
  r = subprocess.run([sys.executable, '-m', 'jaxdl', 'eval', *ARGS, f'--workdir={w}'], capture_output=True,
                     text=True, cwd=REPO, env=dict(os.environ, JAX_PLATFORMS='cpu'), timeout=300)
  code, out, err = r.returncode, r.stdout, r.stderr
  assert code == 0 and 'Traceback' not in err and len(err.strip().splitlines()) == 2, err
  older = [s for s in _steps(w) if s < latest][-1]
  assert json.loads(out)['step'] == older
  assert f'checkpoint {latest} ' in err and f'using checkpoint {older}' in err, err
  assert _steps(w)[-1] == latest and not list((w / 'checkpoints').glob('*.unreadable'))


# --------------------------------------------------------------------------------------------- divergence
def _restored_params_are_finite(w, step, overrides) -> bool:
  from jaxdl.train.setup import TrainSetup  # pylint: disable=g-import-not-at-top
  setup = TrainSetup(cli.load_config([*ARGS, *overrides]))
  ckpt = setup.checkpointer(w, read_only=True)
  try:
    state = ckpt.restore(step, setup.abstract_state)[0]
  finally:
    ckpt.close()
  import jax  # pylint: disable=g-import-not-at-top
  return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.params))


@pytest.mark.parametrize('lr, optimizer, first_bad', [('inf', 'adam', 1), ('1e30', 'sgd', None)],
                         ids=['inf-at-step-1', 'later-divergence'])
def test_nonfinite_training_stops_with_one_line_and_saves_only_finite_states(lr, optimizer, first_bad, tmp_path,
                                                                            capsys):
  w = tmp_path / 'w'
  capsys.readouterr()
  overrides = [f'--config.optimizer.learning_rate={lr}', f'--config.optimizer.name={optimizer}',
               '--config.train.checkpoint_every=1']
  code = cli.main(['train', *ARGS, f'--workdir={w}', '--quiet', *overrides])
  err = capsys.readouterr().err
  assert code == 2 and 'Traceback' not in err, err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('jaxdl: error: training diverged'), err
  bad = int(lines[0].split('at step ')[1].split(';')[0].split()[0])
  steps = _steps(w)
  if first_bad is not None:
    assert bad == first_bad
  if steps:
    assert f'the last good checkpoint (step {steps[-1]}) is kept' in lines[0], lines[0]
    assert steps[-1] < bad and all(_restored_params_are_finite(w, s, overrides) for s in steps)
  else:
    assert 'no checkpoint had been written' in lines[0], lines[0]
  if first_bad is None:
    assert steps, 'the later divergence should come after a saved finite checkpoint'


# ------------------------------------------------------------------------------------ unwritable checkpoints
def test_unwritable_checkpoints_folder_fails_in_seconds(reference, tmp_path):
  """The workdir check skipped, Orbax itself meets a read-only checkpoints/: one line, exit 2, well under 300 s."""
  if os.geteuid() == 0 and not shutil.which('setpriv'):
    pytest.skip('root ignores file permissions and setpriv (util-linux) is missing to drop that power')
  w = tmp_path / 'w'
  shutil.copytree(reference[0], w)
  (w / 'checkpoints').chmod(0o555)
  prefix = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner'] if os.geteuid() == 0 else []
  t0 = time.time()
  try:
    # 50 steps: the run resumes at 40 and must write a checkpoint
    proc = _spawn('no-writable-check', w, tmp_path / 'unused', prefix=prefix, extra=['--config.train.num_steps=50'])
    _, err = proc.communicate(timeout=240)
  finally:
    (w / 'checkpoints').chmod(0o755)
  took = time.time() - t0
  assert proc.returncode == 2, err
  assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
  assert 'cannot write checkpoint' in err and took < 120, (took, err)   # Orbax alone: 300 s, then a traceback
