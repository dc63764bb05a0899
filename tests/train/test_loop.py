"""The training loop end to end on the built-in digits: outputs, determinism, exact resume, divergence."""
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO, overrides, run_jaxdl, small_digits_config, summary
from jaxdl.errors import UserError
from jaxdl.train.evaluation import evaluate_checkpoint
from jaxdl.train.loop import TrainingDiverged, train_and_evaluate


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """One uninterrupted 60-step run: the fingerprint every resumed run must reproduce."""
  workdir = tmp_path_factory.mktemp('ref')
  return workdir, train_and_evaluate(small_digits_config(), workdir, quiet=True)


def test_workdir_outputs(reference):
  workdir, summ = reference
  assert json.loads((workdir / 'config.json').read_text())['model']['name'] == 'mlp'
  records = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  train = [r for r in records if r['split'] == 'train']
  evals = [r for r in records if r['split'] == 'eval']
  assert [r['step'] for r in train] == [10, 20, 30, 40, 50, 60]
  assert [r['step'] for r in evals] == [30, 60]
  for r in train:
    assert r['examples_per_sec'] > 0 and r['step_time_ms'] > 0 and math.isfinite(r['loss'])
  assert {'loss', 'accuracy'} <= set(evals[-1])
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps[-1] == 60 and len(steps) <= 3 + 1  # latest 3 + the best
  s = summary(workdir)
  assert s == json.loads(json.dumps(summ, default=str)) or s['params_fingerprint'] == summ['params_fingerprint']
  assert s['step'] == 60 and s['status'] == 'completed' and len(s['params_fingerprint']) == 64
  assert s['eval']['accuracy'] > 0.5  # 60 steps already learn something


def test_same_config_twice_gives_same_fingerprint(reference, tmp_path):
  _, ref = reference
  again = train_and_evaluate(small_digits_config(), tmp_path, quiet=True)
  assert again['params_fingerprint'] == ref['params_fingerprint']


def test_different_seed_gives_different_fingerprint(reference, tmp_path):
  _, ref = reference
  other = train_and_evaluate(small_digits_config(seed=1), tmp_path, quiet=True)
  assert other['params_fingerprint'] != ref['params_fingerprint']


def test_resume_after_stop_is_exact(reference, tmp_path):
  _, ref = reference
  first = train_and_evaluate(small_digits_config(num_steps=40), tmp_path, quiet=True)
  assert first['step'] == 40
  resumed = train_and_evaluate(small_digits_config(num_steps=60), tmp_path, quiet=True)
  assert resumed['params_fingerprint'] == ref['params_fingerprint']
  records = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records if r['split'] == 'train'] == [10, 20, 30, 40, 50, 60]


def test_workdir_refuses_a_different_config(reference, tmp_path):
  train_and_evaluate(small_digits_config(num_steps=20), tmp_path, quiet=True)
  c = small_digits_config(num_steps=20)
  c.optimizer.learning_rate = 0.5
  with pytest.raises(UserError, match='different config'):
    train_and_evaluate(c, tmp_path, quiet=True)


def test_eval_restores_latest_and_best(reference):
  workdir, ref = reference
  out = evaluate_checkpoint(small_digits_config(), workdir, 'latest')
  assert out['step'] == 60 and out['params_fingerprint'] == ref['params_fingerprint']
  np.testing.assert_allclose(out['eval']['accuracy'], ref['eval']['accuracy'], rtol=1e-6)
  best = evaluate_checkpoint(small_digits_config(), workdir, 'best')
  assert best['eval']['accuracy'] == max(best['eval']['accuracy'], ref['eval']['accuracy'])


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  c = small_digits_config(num_steps=60, checkpoint_every=5)
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 1e30
  with pytest.raises(TrainingDiverged, match=r'at step (\d+)') as err:
    train_and_evaluate(c, tmp_path, quiet=True)
  bad_step = int(__import__('re').search(r'at step (\d+)', str(err.value)).group(1))
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert all(s < bad_step for s in steps)
  if steps:  # the latest checkpoint restores finite parameters
    out = evaluate_checkpoint(c, tmp_path, 'latest')
    assert math.isfinite(out['eval']['loss'])


def _wait_for_checkpoint(workdir: pathlib.Path, proc, timeout=120):
  t0 = time.time()
  while time.time() - t0 < timeout:
    ck = workdir / 'checkpoints'
    if ck.exists() and any(p.name.isdigit() for p in ck.iterdir()):
      return
    if proc.poll() is not None:
      raise AssertionError(f'training ended before its first checkpoint: {proc.stderr.read()}')
    time.sleep(0.05)
  raise AssertionError('no checkpoint appeared')


def _popen(args, **env):
  e = dict(os.environ, JAX_PLATFORMS='cpu', **env)
  return subprocess.Popen([sys.executable, '-m', 'jaxdl', *args], env=e, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


LONG = dict(checkpoint_every=10, log_every=10, eval_every=100)


@pytest.fixture(scope='module')
def long_reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('long')
  r = run_jaxdl(['train', *overrides(num_steps=600, **LONG), f'--workdir={workdir}', '--quiet'])
  assert r.returncode == 0, r.stderr
  return summary(workdir)


@pytest.mark.slow  # the default tier keeps SIGTERM + resume; kill -9 at many moments is slow too
def test_kill_9_then_rerun_reproduces_uninterrupted_run(long_reference, tmp_path):
  args = ['train', *overrides(num_steps=600, **LONG), f'--workdir={tmp_path}', '--quiet']
  proc = _popen(args)
  _wait_for_checkpoint(tmp_path, proc)
  time.sleep(0.3)
  proc.kill()  # SIGKILL: no handler runs, an async save may be half-written
  proc.wait()
  r = run_jaxdl(args)
  assert r.returncode == 0, r.stderr
  assert summary(tmp_path)['params_fingerprint'] == long_reference['params_fingerprint']


def test_sigterm_saves_and_exits_cleanly_then_resumes(long_reference, tmp_path):
  args = ['train', *overrides(num_steps=600, **LONG), f'--workdir={tmp_path}', '--quiet']
  proc = _popen(args)
  _wait_for_checkpoint(tmp_path, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  # stopped, resumable (75, see jaxdl.train.preemption); 0 only if it had already finished
  assert proc.returncode in (0, 75), err
  if proc.returncode == 75:
    assert 'SIGTERM' in err and not (tmp_path / 'summary.json').exists()
  r = run_jaxdl(args)
  assert r.returncode == 0, r.stderr
  assert summary(tmp_path)['params_fingerprint'] == long_reference['params_fingerprint']


@pytest.mark.slow
@pytest.mark.parametrize('delay', [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2])
def test_kill_9_at_many_moments(long_reference, tmp_path, delay):
  args = ['train', *overrides(num_steps=600, **LONG), f'--workdir={tmp_path}', '--quiet']
  for _ in range(2):  # kill twice, at different points of the run
    proc = _popen(args)
    _wait_for_checkpoint(tmp_path, proc)
    time.sleep(delay)
    proc.kill()
    proc.wait()
  r = run_jaxdl(args)
  assert r.returncode == 0, r.stderr
  assert summary(tmp_path)['params_fingerprint'] == long_reference['params_fingerprint']


def test_polyak_and_ema_averages_are_evaluated_and_restore_best(tmp_path):
  c = small_digits_config(num_steps=60, eval_every=20)
  c.train.averaging = 'polyak'
  c.train.restore_best = True
  summ, state = train_and_evaluate(c, tmp_path, quiet=True, return_state=True)
  assert {'avg_loss', 'avg_accuracy'} <= set(summ['eval'])
  assert summ['best']['step'] in (20, 40, 60)
  if summ['best']['step'] != 60:
    assert summ['restored_best_step'] == summ['best']['step']
  # The run ends on the best model: its final evaluation is the best one recorded.
  np.testing.assert_allclose(summ['eval']['accuracy'], summ['best']['accuracy'], rtol=1e-6)


def test_polyak_average_is_the_mean_of_the_iterates():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxdl.train.step import average_weights  # pylint: disable=g-import-not-at-top
  iterates = [jnp.array([float(i), 2.0 * i]) for i in range(1, 6)]
  avg = iterates[0]
  for t, p in enumerate(iterates[1:], start=2):
    avg = average_weights(avg, p, jnp.asarray(t - 1), 'polyak', 0.0)
  np.testing.assert_allclose(avg, np.mean(np.stack(iterates), 0), rtol=1e-6)
  ema = average_weights(jnp.zeros(2), jnp.ones(2), jnp.asarray(1), 'ema', 0.9)
  np.testing.assert_allclose(ema, [0.1, 0.1], rtol=1e-6)


def test_a_run_from_before_a_new_train_field_still_resumes(tmp_path):
  """config.json written before train.compute_dtype existed: its default is assumed, so the run resumes."""
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxdl.train import workdir  # pylint: disable=g-import-not-at-top
  config = config_lib.base_config()
  old = json.loads(config_lib.to_json(config))
  del old['train']['compute_dtype']
  (tmp_path / 'config.json').write_text(json.dumps(old))
  workdir.check_config(tmp_path, config)
  config.train.compute_dtype = 'bfloat16'  # but a real change is still refused
  with pytest.raises(UserError, match='compute_dtype'):
    workdir.check_config(tmp_path, config)
