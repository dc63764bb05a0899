"""`jaxdl bench`: the JSON record's structure and sanity (never its speed), and argument errors."""
import importlib.util
import json
import math
import re

import pytest

from jaxdl import bench, cli
from jaxdl.errors import UserError

HAS_TORCH = importlib.util.find_spec('torch') is not None


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  out = tmp_path_factory.mktemp('bench') / 'bench.json'
  code = bench.main(['mlp_digits', '--repeats', '1', '--steps', '2', '--warmup', '1', '--peak-tflops', '1',
                     '--out', str(out)])
  return code, json.loads(out.read_text())


def _positive(x):
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _check_timing(t, repeats=1):
  for key in ('steps_per_s', 'step_time_ms', 'examples_per_s'):
    assert _positive(t[key]), (key, t)
  assert len(t['block_times_s']) == repeats and all(map(_positive, t['block_times_s']))
  assert math.isfinite(t['final_loss'])
  assert _positive(t['peak_memory']['bytes']) and t['peak_memory']['kind']


def test_json_record(run):
  code, results = run
  assert code == 0
  assert isinstance(results, list) and len(results) == 1
  r = results[0]
  assert r['workload'] == 'mlp_digits' and r['batch_size'] == 128
  assert r['input_shape'] == [8, 8, 1] and r['num_outputs'] == 10
  assert (r['repeats'], r['steps'], r['warmup']) == (1, 2, 1)
  assert r['jax_version'] and r['platform'] and r['num_devices'] >= 1
  assert _positive(r['num_params'])
  _check_timing(r['jax'])
  assert _positive(r['jax']['compile_time_s'])
  assert abs(r['jax']['examples_per_s'] - 128 * r['jax']['steps_per_s']) < 1e-6 * r['jax']['examples_per_s']


@pytest.mark.skipif(not HAS_TORCH, reason='torch is not installed')
def test_torch_twin_matches(run):
  r = run[1][0]
  assert r['torch_version']
  assert r['num_params_torch'] == r['num_params'] and r['param_count_match'] is True
  _check_timing(r['torch'])
  assert r['torch']['num_threads'] >= 1
  assert _positive(r['ratio'])
  assert math.isclose(r['ratio'], r['jax']['steps_per_s'] / r['torch']['steps_per_s'])


@pytest.mark.skipif(not HAS_TORCH, reason='torch is not installed')
@pytest.mark.parametrize('name', sorted(bench.WORKLOADS))
def test_every_torch_twin_has_the_flax_parameter_count(name):
  import torch  # pylint: disable=g-import-not-at-top
  from jaxdl.models import count_params  # pylint: disable=g-import-not-at-top
  wl = bench.WORKLOADS[name]
  config, setup, _ = bench.build_setup(wl)
  flax_n = count_params(setup.abstract_state.params)  # shapes only: nothing initialised
  shape, num_out = tuple(setup.info.input_shape), int(setup.info.num_outputs)
  twin = (wl.torch_model or bench.torch_mlp)(config.model, shape, num_out)
  assert sum(p.numel() for p in twin.parameters()) == flax_n
  assert isinstance(twin, torch.nn.Module)


def test_no_torch_and_table(capsys):
  code = bench.main(['mlp_digits', '--repeats', '1', '--steps', '1', '--warmup', '0', '--no-torch'])
  captured = capsys.readouterr()
  assert code == 0
  r = json.loads(captured.out)[0]
  assert r['torch'] is None and r['ratio'] is None and r['torch_skipped'] == '--no-torch'
  assert 'mlp_digits' in captured.err and 'jax steps/s' in captured.err


@pytest.mark.parametrize('argv, needle', [
    (['resnet9000'], "unknown workload 'resnet9000'"),
    (['--repeats', '0'], '--repeats=0'),
    (['--steps', 'many'], 'bad arguments'),
    (['--frobnicate'], 'bad arguments'),
    (['--batch-size', '0'], '--batch-size=0'),
    (['--peak-tflops', '-3'], '--peak-tflops=-3.0'),
])
def test_bad_arguments_are_user_errors(argv, needle):
  with pytest.raises(UserError, match=re.escape(needle)):
    bench.main(argv)


def test_cli_reports_one_line(capsys):
  assert cli.main(['bench', 'resnet9000']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('jaxdl: error: unknown workload')


def test_unloadable_dataset_falls_back_to_its_shapes(monkeypatch, tmp_path):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))  # nothing prepared there
  def config():
    c = bench._mlp784_config()  # pylint: disable=protected-access
    c.data.name = 'fashion_mnist'
    return c
  wl = bench.Workload('unprepared TFDS data', config, data_shape=((28, 28, 1), 10))
  _, setup, source = bench.build_setup(wl)
  assert source.startswith('stand-in') and 'fashion_mnist' in source
  assert tuple(setup.info.input_shape) == (28, 28, 1) and setup.info.num_outputs == 10
  runner = bench.JaxRunner(setup, bench.synthetic_batches('softmax_cross_entropy', (28, 28, 1), 10, 256, n=1))
  assert _positive(runner.run(1)) and math.isfinite(runner.loss())


def test_group_names_expand():
  assert bench.parse_args(['cnn']).workloads == ['cnn_small', 'lenet5', 'resnet20']
  assert bench.parse_args(['lenet5', 'cnn']).workloads == ['lenet5', 'cnn_small', 'resnet20']
  with pytest.raises(UserError, match="unknown workload 'cnnn'"):
    bench.parse_args(['cnnn'])


@pytest.mark.skipif(not HAS_TORCH, reason='torch is not installed')
def test_cnn_twin_runs_channels_first():
  import torch  # pylint: disable=g-import-not-at-top
  wl = bench.WORKLOADS['cnn_small']
  config, setup, _ = bench.build_setup(wl)
  host = bench.synthetic_batches('softmax_cross_entropy', (28, 28, 1), 10, 8, n=1)
  runner = bench.TorchRunner(torch, wl, config, (28, 28, 1), 10, host, torch.device('cpu'))
  assert tuple(runner.batches[0][0].shape) == (8, 1, 28, 28)
  assert _positive(runner.run(1)) and math.isfinite(runner.loss())


def test_proc_stat_parsing_and_contention():
  text = ('cpu  100 5 20 800 10 1 2 7 0 0\n'
          'cpu0 50 2 10 400 5 0 1 3 0 0\n')
  busy, steal = bench.parse_proc_stat(text)
  assert (busy, steal) == (100 + 5 + 20 + 1 + 2 + 7, 7)  # idle (800) and iowait (10) are not busy
  assert bench.parse_proc_stat('intr 1 2 3\n') is None
  # 2 cores for 10 s = 20 CPU-seconds; the machine was busy 15 of them, 9 by this process, 1 stolen
  a = bench.CpuSnapshot(wall=0.0, own=1.0, busy=100.0, steal=3.0)
  b = bench.CpuSnapshot(wall=10.0, own=10.0, busy=115.0, steal=4.0)
  c = bench.contention(a, b, num_cpus=2)
  assert c['other_processes'] == pytest.approx(6 / 20) and c['stolen'] == pytest.approx(1 / 20)
  no_proc = bench.CpuSnapshot(wall=10.0, own=10.0, busy=None, steal=None)
  assert bench.contention(a, no_proc, 2) == {'other_processes': None, 'stolen': None}


def test_record_names_the_cpu_and_the_contention(run):
  r = run[1][0]
  assert isinstance(r['cpu'], str) and r['cpu']
  c = r['cpu_contention']
  assert set(c) == {'other_processes', 'stolen'}
  assert all(v is None or 0.0 <= v <= 1.0 for v in c.values())


def test_model_flops_and_mfu(run):
  r = run[1][0]
  macs = 64 * 256 + 256 * 128 + 128 * 10  # mlp_digits: 64-256-128-10, per example (biases are not MACs)
  assert r['model_flops_per_step'] == 3 * 2 * macs * 128
  assert r['peak_tflops'] == 1.0
  assert r['mfu'] == pytest.approx(r['model_flops_per_step'] * r['jax']['steps_per_s'] / 1e12)
  assert r['compute_dtype'] == 'float32'


def test_peak_flops_by_device_kind():
  assert bench.peak_flops('NVIDIA H200') == 989.4e12
  assert bench.peak_flops('NVIDIA H100 80GB HBM3') == 989.4e12
  assert bench.peak_flops('NVIDIA A100-SXM4-80GB') == 312e12
  assert bench.peak_flops('TPU v5 lite') == 197e12
  assert bench.peak_flops('cpu') is None


def test_batch_size_override_and_default_workloads(capsys):
  assert bench.main(['mlp_digits', '--batch-size', '16', '--repeats', '1', '--steps', '1', '--warmup', '0',
                     '--no-torch']) == 0
  r = json.loads(capsys.readouterr().out)[0]
  assert r['batch_size'] == 16 and r['mfu'] is None and 'peak' in r['mfu_note']
  assert r['jax']['examples_per_s'] == pytest.approx(16 * r['jax']['steps_per_s'])
  default = bench.parse_args([]).workloads
  assert 'resnet50' not in default and 'cnn_small' in default  # the GPU workload runs only when named
  assert bench.WORKLOADS['resnet50'].make_config().train.compute_dtype == 'bfloat16'
