"""Data parallelism: the same config on 1 device, 8 (forced CPU) devices and 2 processes gives the same run."""
import os
import subprocess

import numpy as np
import pytest

from helpers import REPO, bench_params_after, overrides, run_jaxdl, small_digits_config, summary
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


# Compiles each sequence workload's train step on a 2-device ('data',) mesh and reports the collectives in it.
_PARTITION_SCRIPT = r'''
import json, re, sys
import jax
import jax.numpy as jnp
import numpy as np
from jaxdl import bench, config as config_lib
from jaxdl.models.deepspeech import greedy_decode
from jaxdl.speech.ctc import collapse_padded
from jaxdl.text import beam_search as bs
from jaxdl.train import sharding
sys.path.insert(0, 'tests')
from helpers import bench_params_after

def irnn_config():   # a cell on the generic fused recurrence (not the plain LSTM / GRU kernels)
  c = config_lib.base_config()
  c.model.name, c.model.cell, c.model.hidden_size = 'rnn_many_to_one', 'irnn', 16
  c.data.name, c.train.batch_size = 'digits', 8
  return c

workloads = {name: bench.WORKLOADS[name] for name in sys.argv[2:]}
workloads['irnn'] = bench.Workload('IRNN', irnn_config, ((12, 4), 10), always_stand_in=True)
out = {'devices': jax.device_count()}
for name in ('char_bilstm', 'ds2_small'):   # one step, to compare with one device
  np.savez(f'{sys.argv[1]}/{name}.npz', **bench_params_after(name, 1))
for name, wl in workloads.items():
  config, setup, _ = bench.build_setup(wl)
  host = bench.synthetic_batches(config.loss.name, bench._input_shape(setup), int(setup.info.num_outputs),
                                 config.train.batch_size, n=1, tokens=wl.tokens, seq2seq=wl.seq2seq)
  runner = bench.JaxRunner(setup, host)
  hlo = setup.train_step.lower(runner.state, runner.batches[0], setup.step_rng).compile().as_text()
  out[name] = {op: len(re.findall(rf' {op}(-start)?\(', hlo)) for op in ('all-gather', 'all-reduce')}

# beam search traced under the trainer's mesh (as jaxdl.train.generation does), on a batch-sharded toy decoder
mesh = sharding.make_mesh()
b, w, n, v = 8, 3, 6, 7
tables = jax.device_put(np.random.default_rng(0).standard_normal((b, n, v, v)).astype(np.float32),
                        sharding.batch_sharding(mesh))

def decode(tables, under_mesh):
  def step_fn(last, st):   # each beam carries its example's table: log_softmax(table[position, last])
    logits = jax.vmap(lambda t, p, l: t[p, l])(st['table'], st['position'], last)
    return jax.nn.log_softmax(logits), {'table': st['table'], 'position': st['position'] + 1}
  init = bs.tile_beams({'table': tables, 'position': jnp.zeros(b, jnp.int32)}, w)
  run = lambda: bs.beam_search(step_fn, init, batch_size=b, beam_width=w, max_len=n, bos_id=1, eos_id=2, n_best=2)
  if under_mesh:
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      return run()
  return run()
beam = {}
for under in (True, False):
  f = jax.jit(lambda t, u=under: decode(t, u), in_shardings=sharding.batch_sharding(mesh))
  beam['all-gather' if under else 'all-gather-plain'] = len(re.findall(r' all-gather(-start)?\(',
                                                                       f.lower(tables).compile().as_text()))
  beam['sequences' if under else 'sequences-plain'] = np.asarray(f(tables).sequences).tolist()
out['beam_search'] = beam

# CTC best path (the left-packing scatter) on batch-sharded logits
logits = jax.device_put(np.random.default_rng(1).standard_normal((8, 12, 5)).astype(np.float32),
                        sharding.batch_sharding(mesh))
pads = jax.device_put(np.zeros((8, 12), np.float32), sharding.batch_sharding(mesh))
out['ctc_greedy'] = [len(re.findall(r' all-gather(-start)?\(', jax.jit(f).lower(logits, pads).compile().as_text()))
                     for f in (greedy_decode, lambda l, p: collapse_padded(jnp.argmax(l, -1), p))]
print(json.dumps(out))
'''


def test_sequence_models_split_the_batch_across_devices(tmp_path):
  """Data parallelism over a ('data',) mesh: each device runs the recurrences, CTC, attention and their gradients on
  its slice of the batch, and the only collective is the all-reduce of gradients and metrics. A (T, B, ...) ->
  (T·B, ...) reshape of a time-major array (the recurrences' weight gradients once took that shape) cannot keep the
  batch sharded: GSPMD then all-gathers the activations and every device computes the whole batch's gradient."""
  import json
  import sys
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2')
  names = ['char_rnn', 'char_gru', 'char_bilstm', 'ds2_small', 'seq2seq_attention', 'transformer']
  r = subprocess.run([sys.executable, '-c', _PARTITION_SCRIPT, str(tmp_path), *names], env=env, capture_output=True,
                     text=True, timeout=600, cwd=REPO)
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out.pop('devices') == 2
  beam = out.pop('beam_search')
  assert out.pop('ctc_greedy') == [0, 0]
  assert set(out) == {*names, 'irnn'}
  # beam search (top-k and beam reordering per example) keeps the batch sharded under the mesh; a plain top_k
  # (no mesh in the trace) all-gathers; both decode the same sequences
  assert beam['all-gather'] == 0 and beam['all-gather-plain'] > 0, beam
  assert beam['sequences'] == beam['sequences-plain']
  for name, ops in out.items():
    assert ops['all-gather'] == 0, (name, ops)
    assert ops['all-reduce'] >= 1, (name, ops)   # the gradients are summed across devices
  # and the sharded step computes what one device does (a bidirectional LSTM; DeepSpeech2: BiGRUs over padded
  # utterances, batch norm, CTC): one SGD step's update equal up to float rounding, per parameter. (One step: with
  # lr 0.1 on a CTC loss of ~100 the first update is large, and a second step amplifies the rounding chaotically.)
  for name in ('char_bilstm', 'ds2_small'):
    two = np.load(tmp_path / f'{name}.npz')
    init, one = bench_params_after(name, 0), bench_params_after(name, 1)
    assert sorted(two.files) == sorted(one)
    for k in one:
      update, diff = np.linalg.norm(one[k] - init[k]), np.linalg.norm(two[k] - one[k])
      assert update > 0 and diff <= 1e-4 * update + 1e-6, (name, k, update, diff)
