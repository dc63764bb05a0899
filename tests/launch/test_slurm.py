"""launch/slurm.sbatch through a real one-node SLURM cluster (issue 15): every job goes through `sbatch`.

Needs the cluster of launch/slurm_local_cluster.sh (slurmctld + slurmd + munge on localhost); .ci/run starts it and
sets JAXDL_SLURM=1. Without it every test here SKIPS, printing why. The preemption contract under test is the one
written in launch/slurm.sbatch: SIGTERM -> both ranks save -> the job requeues itself when it is requeueable, else
ends FAILED with exit code 75; either way the run resumes to the uninterrupted run's parameters.
"""
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO, overrides

pytestmark = pytest.mark.slurm

STEPS = dict(num_steps=200, eval_every=0, checkpoint_every=50, log_every=20)
# The documented override of the script's GPU defaults for a CPU cluster (README, "Cluster"; launch/slurm.sbatch).
CPU_CLUSTER = ['--nodes=1', '--ntasks-per-node=2', '--gpus-per-node=0', '--cpus-per-task=1', '--time=10']
ENDED = ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE')


@pytest.fixture(scope='module', autouse=True)
def cluster():
  if os.environ.get('JAXDL_SLURM') != '1':
    reason = os.environ.get('JAXDL_SLURM_SKIP_REASON') or (
        'no SLURM cluster: run `launch/slurm_local_cluster.sh start` as root, then set JAXDL_SLURM=1 '
        '(.ci/run does both)')
    pytest.skip(reason)
  os.environ.setdefault('SLURM_CONF', os.path.join(os.environ.get('JAXDL_SLURM_DIR', '/tmp/jaxdl-slurm'),
                                                   'slurm.conf'))
  r = subprocess.run(['sinfo', '-h', '-N', '-o', '%t'], capture_output=True, text=True, timeout=30)
  assert r.returncode == 0 and r.stdout.strip(), f'JAXDL_SLURM=1 but the cluster does not answer: {r.stderr}'


def submit(workdir: pathlib.Path, *sbatch_args: str, quiet=True) -> str:
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAXDL_CMD=f'{sys.executable} -m jaxdl')
  r = subprocess.run(['sbatch', '--parsable', *CPU_CLUSTER, f'--output={workdir}.log', *sbatch_args,
                      str(REPO / 'launch' / 'slurm.sbatch'), *overrides(**STEPS), f'--workdir={workdir}',
                      *(['--quiet'] if quiet else [])],
                     env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
  assert r.returncode == 0, r.stderr
  return r.stdout.strip().split(';')[0]


def job(job_id: str) -> dict:
  r = subprocess.run(['scontrol', '-o', 'show', 'job', job_id], capture_output=True, text=True, timeout=30)
  return dict(re.findall(r'(\w+)=(\S*)', r.stdout))


def wait_end(job_id: str, timeout=240) -> dict:
  t0 = time.time()
  while time.time() - t0 < timeout:
    info = job(job_id)
    if info.get('JobState') in ENDED:
      return info
    time.sleep(0.5)
  subprocess.run(['scancel', '--signal=KILL', job_id])
  pytest.fail(f'job {job_id} did not end within {timeout} s: {job(job_id)}')


def wait_training(workdir: pathlib.Path, job_id: str, timeout=180) -> None:
  """Until the run logged a train record (it is past compile, mid-run)."""
  t0 = time.time()
  metrics = workdir / 'metrics.jsonl'
  while time.time() - t0 < timeout:
    if metrics.exists() and '"train"' in metrics.read_text():
      return
    assert job(job_id).get('JobState') not in ENDED, pathlib.Path(f'{workdir}.log').read_text()[-3000:]
    time.sleep(0.2)
  pytest.fail(f'job {job_id} did not start training within {timeout} s')


def summary(workdir: pathlib.Path) -> dict:
  return json.loads((workdir / 'summary.json').read_text())


def _task_pids(job_id: str, rank: int) -> list[int]:
  pids = []
  for p in pathlib.Path('/proc').iterdir():
    try:
      env = (p / 'environ').read_bytes().split(b'\0')
      cmd = (p / 'cmdline').read_bytes()
      if (f'SLURM_JOB_ID={job_id}'.encode() in env and f'SLURM_PROCID={rank}'.encode() in env
          and b'jaxdl' in cmd and b'train' in cmd and (p / 'comm').read_text().strip().startswith('python')):
        pids.append(int(p.name))
    except (OSError, ValueError):
      continue
  return pids


@pytest.fixture(scope='module')
def jobs(tmp_path_factory):
  """Four 2-task jobs at once (the cluster has CPUs for them): their waits overlap. Once the three to interrupt are
  training: SIGTERM to two (one requeueable, one not), SIGKILL to the third's rank 1."""
  root = tmp_path_factory.mktemp('slurm')
  w = {k: root / k for k in ('uninterrupted', 'requeue', 'no_requeue', 'killed', 'one')}
  # The 1-process reference trains meanwhile, outside SLURM.
  one = subprocess.Popen([sys.executable, '-m', 'jaxdl', 'train', *overrides(**STEPS), f'--workdir={w["one"]}',
                          '--quiet'], env=dict(os.environ, JAX_PLATFORMS='cpu'), cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  ids = {'uninterrupted': submit(w['uninterrupted'], quiet=False), 'requeue': submit(w['requeue'], '--requeue'),
         'no_requeue': submit(w['no_requeue'], '--no-requeue'), 'killed': submit(w['killed'])}
  for k in ('requeue', 'no_requeue', 'killed'):
    wait_training(w[k], ids[k])
  t = {}
  for k in ('requeue', 'no_requeue'):
    subprocess.run(['scancel', '--signal=TERM', ids[k]], check=True)
    t[k] = time.time()
  pids = _task_pids(ids['killed'], 1)
  assert pids, 'rank 1 of the job to kill not found'
  for pid in pids:
    os.kill(pid, 9)
  t['killed'] = time.time()
  # Not requeueable: it ends (FAILED, 75) within seconds; resubmitted now, it resumes while the others finish.
  t['no_requeue_end'] = wait_end(ids['no_requeue'])
  t['summary_when_stopped'] = (w['no_requeue'] / 'summary.json').exists()
  ids['resubmitted'] = submit(w['no_requeue'])
  assert one.wait(timeout=300) == 0, one.stderr.read()[-3000:]
  return w, ids, t


def log_of(workdir) -> str:
  return pathlib.Path(f'{workdir}.log').read_text()


def test_two_tasks_match_one_process_and_only_process_0_prints_the_summary(jobs):
  w, ids, _ = jobs
  info = wait_end(ids['uninterrupted'])
  log = log_of(w['uninterrupted'])
  assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), log[-3000:]
  two = summary(w['uninterrupted'])
  assert two['processes'] == 2 and two['status'] == 'completed'
  one = summary(w['one'])
  assert one['processes'] == 1
  np.testing.assert_allclose(two['train']['loss'], one['train']['loss'], rtol=1e-4)
  np.testing.assert_allclose(two['eval']['loss'], one['eval']['loss'], rtol=1e-4)
  assert log.count('"params_fingerprint"') == 1, log[-3000:]   # one JSON summary per job: process 0's


def test_a_killed_peer_fails_the_job_within_seconds(jobs):
  w, ids, t = jobs
  info = wait_end(ids['killed'])
  took = datetime.datetime.strptime(info['EndTime'], '%Y-%m-%dT%H:%M:%S').timestamp() - t['killed']   # 1 s resolution
  log = log_of(w['killed'])
  assert info['JobState'] == 'FAILED' and info['ExitCode'] != '0:0', log[-3000:]
  print(f'killed peer: the job failed {took:.0f} s after the SIGKILL')
  assert took < 15, f'the job took {took:.1f} s to fail'
  assert re.search(r'task 1: (Killed|Terminated|Exited)', log), log[-3000:]


def test_sigterm_saves_on_both_ranks_exits_75_and_resubmission_resumes_exactly(jobs):
  w, ids, t = jobs
  info = t['no_requeue_end']
  log = log_of(w['no_requeue'])
  # The contract: FAILED with exit code 75 ("stopped, resumable"), not COMPLETED; both ranks saved.
  assert (info['JobState'], info['ExitCode']) == ('FAILED', '75:0'), log[-3000:]
  assert log.count('stopped by SIGTERM at step') == 2, log[-3000:]
  assert not t['summary_when_stopped']
  info = wait_end(ids['resubmitted'])
  assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), log_of(w['no_requeue'])[-3000:]
  wait_end(ids['uninterrupted'])
  assert summary(w['no_requeue'])['params_fingerprint'] == summary(w['uninterrupted'])['params_fingerprint']


def test_sigterm_to_a_requeueable_job_requeues_it_and_it_resumes_exactly(jobs):
  w, ids, _ = jobs
  info = wait_end(ids['requeue'])
  log = log_of(w['requeue'])
  assert (info['JobState'], info['ExitCode'], info['Restarts']) == ('COMPLETED', '0:0', '1'), log[-3000:]
  assert log.count('stopped by SIGTERM at step') == 2 and 'requeued' in log, log[-3000:]
  wait_end(ids['uninterrupted'])
  assert summary(w['requeue'])['params_fingerprint'] == summary(w['uninterrupted'])['params_fingerprint']
