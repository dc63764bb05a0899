"""`jaxdl bench`: the JSON record's structure and sanity (never its speed), and argument errors."""
import dataclasses
import importlib.util
import json
import math
import re

import numpy as np
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
    (['--cpu-devices', '0'], '--cpu-devices=0'),
    (['--cpu-devices', 'two'], 'bad arguments'),
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


# ------------------------------------------------------------------ seq2seq workloads, decoding throughput
def test_seq2seq_batches_are_padded_like_the_dataset():
  from jaxdl.text.vocab import BOS, EOS
  b = bench.seq2seq_batch(np.random.default_rng(0), 6, 9, 14)
  assert b['inputs'].shape == (6, 9) and b['targets'].shape == b['decoder_inputs'].shape == (6, 10)
  for i in range(6):
    n = int((b['inputs_paddings'][i] == 0).sum())       # source length L: L tokens, then PAD
    assert bench.SEQ2SEQ_MIN_LENGTH <= n <= 9 and (b['inputs'][i, :n] >= 4).all() and (b['inputs'][i, n:] == 0).all()
    np.testing.assert_array_equal(b['targets_paddings'][i], np.arange(10) > n)       # L targets + EOS
    np.testing.assert_array_equal(b['decoder_inputs_paddings'][i], b['targets_paddings'][i])
    assert b['targets'][i, n] == EOS and (b['targets'][i, :n] >= 4).all() and (b['targets'][i, n + 1:] == 0).all()
    assert b['decoder_inputs'][i, 0] == BOS and (b['decoder_inputs'][i, n + 1:] == 0).all()
    np.testing.assert_array_equal(b['decoder_inputs'][i, 1:n + 1], b['targets'][i, :n])   # shifted right


def test_masked_cross_entropy_is_the_mean_over_valid_tokens():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(0)
  logits, targets = rng.standard_normal((3, 5, 7)), rng.integers(0, 7, (3, 5))
  pads = (np.arange(5)[None] >= np.array([[2], [5], [1]])).astype(np.float32)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
  want = (nll * (1 - pads)).sum() / (1 - pads).sum()
  loss = bench._torch_masked_cross_entropy(torch)  # pylint: disable=protected-access
  got = loss(torch.from_numpy(logits), (torch.from_numpy(targets), torch.from_numpy(pads)))
  assert float(got) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize('attention', ['additive', pytest.param('general', marks=pytest.mark.slow),
                                       pytest.param('none', marks=pytest.mark.slow)])
def test_seq2seq_twin_computes_the_flax_model(attention):
  torch = pytest.importorskip('torch')
  import jax
  from jaxdl.models.seq2seq import Seq2Seq
  from jaxdl.nn.recurrent import params_from_torch
  cfg = dict(embed_dim=8, hidden_size=6, attention=attention, attention_features=5, two_bias=True)
  torch.manual_seed(0)
  twin = bench.torch_seq2seq(cfg, (9,), 14)
  sd = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
  lstm = lambda n: {'layer0': {'cell': params_from_torch(*(sd[f'{n}.{k}_l0'] for k in
                                                           ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')))}}
  dense = lambda n, bias=True: {'kernel': sd[n + '.weight'].T, **({'bias': sd[n + '.bias']} if bias else {})}
  params = {'src_embed': {'embedding': sd['src_embed.weight']}, 'tgt_embed': {'embedding': sd['tgt_embed.weight']},
            'encoder': lstm('encoder'), 'decoder': lstm('decoder'), 'head': dense('head')}
  if attention != 'none':
    params['combine'] = dense('combine', False)
    params['attend'] = ({'query': dense('query', False), 'key': dense('key'), 'energy': dense('energy', False)}
                        if attention == 'additive' else {'W': dense('w', False)})
  b = bench.seq2seq_batch(np.random.default_rng(1), 5, 9, 14)
  model = Seq2Seq(num_outputs=14, **cfg)
  got = jax.jit(model.apply)({'params': params}, b['inputs'], b['inputs_paddings'], b['decoder_inputs'])
  with torch.no_grad():
    want = twin(torch.from_numpy(b['inputs']).long(), torch.from_numpy(b['inputs_paddings']) > 0,
                torch.from_numpy(b['decoder_inputs']).long()).numpy()
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
  flax_n = sum(x.size for x in jax.tree.leaves(params))
  assert flax_n == sum(p.numel() for p in twin.parameters())


def test_transformer_twin_computes_the_flax_model():
  torch = pytest.importorskip('torch')
  import jax
  from jaxdl.models.seq2seq import TransformerSeq2Seq
  from jaxdl.nn.transformer import layer_params_from_torch
  cfg = dict(d_model=8, num_heads=2, d_ff=16, num_encoder_layers=2, num_decoder_layers=1, max_len=16)
  torch.manual_seed(0)
  twin = bench.torch_transformer_seq2seq(cfg, (9,), 14).train()   # dropout 0: deterministic, no fast path
  sd = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
  layers = lambda stack, n: {f'layer_{i}': layer_params_from_torch(
      {k[len(f'{stack}.layers.{i}.'):]: v for k, v in sd.items() if k.startswith(f'{stack}.layers.{i}.')})
                             for i in range(n)}
  params = {'transformer': {
      'encoder': {'embed': {'embedding': sd['src_embed.weight']}, **layers('encoder', 2)},
      'decoder': {'embed': {'embedding': sd['tgt_embed.weight']}, **layers('decoder', 1),
                  'logits': {'kernel': sd['out.weight'].T, 'bias': sd['out.bias']}}}}
  b = bench.seq2seq_batch(np.random.default_rng(1), 5, 9, 14)
  got = jax.jit(TransformerSeq2Seq(num_outputs=14, **cfg).apply)({'params': params}, b['inputs'],
                                                                  b['inputs_paddings'], b['decoder_inputs'])
  with torch.no_grad():
    want = twin(torch.from_numpy(b['inputs']).long(), torch.from_numpy(b['inputs_paddings']) > 0,
                torch.from_numpy(b['decoder_inputs']).long()).numpy()
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


SHRUNK = {'seq2seq_attention': dict(hidden_size=8, embed_dim=4),
          'transformer': dict(d_model=8, num_heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1)}


@pytest.mark.parametrize('name', sorted(SHRUNK))
def test_seq2seq_workloads_run_a_step_in_both_frameworks(name, monkeypatch):
  wl = bench.WORKLOADS[name]
  def shrunk():   # the workload's config and machinery at test size (compile time)
    c = wl.make_config()
    c.model.update(SHRUNK[name])
    return c
  monkeypatch.setitem(bench.WORKLOADS, name, dataclasses.replace(wl, make_config=shrunk, data_shape=((7,), 14)))
  r = bench.bench_workload(name, repeats=1, steps=1, warmup=0, use_torch=HAS_TORCH, batch_size=2)
  assert r['batch_size'] == 2 and r['input_shape'] == [7] and r['model']['name'] == wl.make_config().model.name
  _check_timing(r['jax'])
  if HAS_TORCH:
    assert r['param_count_match'] and r['num_params_torch'] == r['num_params']
    _check_timing(r['torch'])
    # an untrained model on random tokens: both losses near ln(vocabulary)
    assert abs(r['jax']['final_loss'] - math.log(14)) < 1.0 and abs(r['torch']['final_loss'] - math.log(14)) < 1.0


@pytest.mark.parametrize('name', ['beam_search_toy', pytest.param('beam_search', marks=pytest.mark.slow), 'ctc_decode',
                                  'frontend', 'ctc_grad'])
def test_throughputs_run_on_tiny_sizes(name):
  if name == 'beam_search_toy':   # the default tier skips compiling seq2seq generate (slow tier: all of it)
    records, name = bench.throughput_beam_search(1, True, with_model=False), 'beam_search'
  else:
    records = bench.THROUGHPUTS[name].run(1, True)
  assert records and all(r['workload'] == name and r['kind'] == 'throughput' for r in records)
  for r in records:
    assert _positive(r['jax']['per_s']) and _positive(r['items_per_run']) and r['unit'].endswith('/s')
    if r['reference'] is not None:           # librosa may be absent (the front end then has no reference)
      assert _positive(r['reference']['per_s']) and math.isclose(r['ratio'],
                                                                 r['jax']['per_s'] / r['reference']['per_s'])
    # the jit decoders and the references decode the same inputs to the same results
    assert r.get('same_result', True) and r.get('same_result_fraction', 1.0) == 1.0
    assert r.get('same_best_fraction', 1.0) == 1.0 and r.get('max_abs_diff', 0.0) < 1e-3
    # the CTC losses and gradients are torch's (where installed)
    assert r.get('loss_diff', 0.0) < 1e-4 and r.get('grad_max_abs_diff', 0.0) < 1e-4


def test_decoding_names_and_group_parse():
  assert bench.parse_args(['decoding']).workloads == ['beam_search', 'ctc_decode', 'frontend']
  assert bench.parse_args(['seq2seq', 'ctc_decode']).workloads == ['seq2seq_attention', 'transformer', 'ctc_decode']


def test_cpu_devices_after_jax_started_is_one_line_with_the_env_var(capsys):
  import jax
  jax.devices()  # this process's backend is up: the option can no longer take effect
  assert cli.main(['bench', 'mlp_digits', '--cpu-devices', '2', '--no-torch']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'JAX_NUM_CPU_DEVICES=2' in err[0], err


def test_cpu_devices_runs_data_parallel_and_says_so(tmp_path):
  """A fresh process: --cpu-devices 2 gives a 2-device mesh (recorded and printed); an odd batch is refused (the trainer's one-line error)."""
  import subprocess
  import sys
  from helpers import REPO
  out = tmp_path / 'b.json'
  env = {k: v for k, v in __import__('os').environ.items() if k != 'JAX_NUM_CPU_DEVICES'}
  r = subprocess.run([sys.executable, '-m', 'jaxdl', 'bench', 'mlp_digits', '--cpu-devices', '2', '--no-torch',
                      '--repeats', '1', '--steps', '1', '--warmup', '0', '--out', str(out)], env=env,
                     capture_output=True, text=True, timeout=300, cwd=REPO)
  assert r.returncode == 0, r.stderr[-2000:]
  rec = json.loads(out.read_text())[0]
  assert rec['num_devices'] == 2 and rec['settle_s'] > 0
  assert '2 cpu devices (a data-parallel mesh)' in r.stderr
  r = subprocess.run([sys.executable, '-m', 'jaxdl', 'bench', 'mlp_digits', '--cpu-devices', '2', '--no-torch',
                      '--batch-size', '7', '--repeats', '1', '--steps', '1'], env=env, capture_output=True, text=True,
                     timeout=300, cwd=REPO)
  assert r.returncode == 2 and 'does not divide across 2 devices' in r.stderr, r.stderr[-2000:]
  assert len(r.stderr.strip().splitlines()) == 1
