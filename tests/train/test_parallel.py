"""Data parallelism: the same config on 1 device, 8 (forced CPU) devices and 2 processes gives the same run."""
import os
import subprocess

import numpy as np
import pytest

from helpers import REPO, overrides, run_jaxdl, small_digits_config, summary
from jaxdl.train.loop import train_and_evaluate

STEPS = 40


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  return train_and_evaluate(small_digits_config(num_steps=STEPS), tmp_path_factory.mktemp('one'), quiet=True)


def _close(a, b, rtol=1e-3):
  np.testing.assert_allclose(a['eval']['loss'], b['eval']['loss'], rtol=rtol)
  np.testing.assert_allclose(a['train']['loss'], b['train']['loss'], rtol=rtol)


def test_eight_devices_match_one(one_device, tmp_path):
  r = run_jaxdl(['train', *overrides(num_steps=STEPS), f'--workdir={tmp_path}', '--quiet'], devices=8)
  assert r.returncode == 0, r.stderr
  eight = summary(tmp_path)
  assert eight['devices'] == 8
  _close(eight, one_device)


@pytest.mark.slow  # the default tier keeps 8 devices = 1 device
def test_two_processes_match_one(one_device, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAXDL_CMD=f'{os.sys.executable} -m jaxdl')
  r = subprocess.run(['bash', str(REPO / 'launch' / 'local_multiprocess.sh'), '2', *overrides(num_steps=STEPS),
                      f'--workdir={tmp_path}', '--quiet'], env=env, capture_output=True, text=True, timeout=600,
                     cwd=REPO)
  assert r.returncode == 0, r.stderr[-3000:]
  two = summary(tmp_path)
  assert two['processes'] == 2
  _close(two, one_device)


def test_launcher_fails_if_a_process_fails(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAXDL_CMD=f'{os.sys.executable} -m jaxdl')
  r = subprocess.run(['bash', str(REPO / 'launch' / 'local_multiprocess.sh'), '2', '--config=missing.py',
                      f'--workdir={tmp_path}'], env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
  assert r.returncode == 2, r.stderr
