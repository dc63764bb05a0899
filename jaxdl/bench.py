"""`jaxdl bench`: steps/s of the jaxdl trainer's jitted train step, against the same model in PyTorch eager.

jaxdl bench [WORKLOAD ...] [--repeats N] [--steps N] [--warmup N] [--no-torch] [--out FILE]
            [--batch-size N] [--peak-tflops X]

For each workload the step timed is `TrainSetup(config).train_step`, the donated, sharded, jitted step that
`jaxdl train` runs. Inputs are synthetic, pre-built global batches (no data pipeline in the timing). Protocol,
the same for both frameworks: the first step (JAX: compile + run), `--warmup` steps, then `--repeats` blocks of
`--steps` steps, each block ended by a device sync; JAX and torch blocks alternate (J, T, J, T, ...) so that
machine noise hits both. JSON (one record per workload) goes to stdout and --out; a table goes to stderr.

New workloads are a `Workload` in WORKLOADS: a config builder, and a torch twin for the comparison. A group name
stands for several workloads: `jaxdl bench cnn` = cnn_small, lenet5, resnet20 (their twins take NCHW images).
`jaxdl bench rnn` = char_rnn (the R1 char-RNN: 2×LSTM, 111,657 parameters), char_gru and char_bilstm: token-id
inputs (batch 32 × 60 characters) and one target per step; twins built from nn.LSTM / nn.GRU (`tokens=True`).
`ds2_small` is the DeepSpeech2 CTC step (200 frames × 80 features, full-length synthetic utterances, CTC loss;
twin: Conv2d + BatchNorm + Hardtanh, BatchNorm1d + bidirectional nn.GRU, F.ctc_loss; `ctc=True`).
`resnet50` is the accelerator workload (bfloat16 compute with float32 weights on both sides: jaxdl's
train.compute_dtype and torch.autocast; channels-last on CUDA); it runs only when named, and `--batch-size` shrinks
it for a CPU smoke test. Every record carries the model FLOPs of a train step (3 × 2 × forward MACs × batch, from
jaxdl.inspect.flops) and, where the device's bfloat16 peak is known (PEAK_BF16_FLOPS, or --peak-tflops), the MFU.

Caveat, measured on 2 shared cores: when other processes keep a core busy, PyTorch's OpenMP threads (which meet at
a barrier after every op) slow down 5-30x while XLA's work-stealing pool slows ~2x, so ratios taken under load
overstate JAX. Each record therefore carries `cpu_contention`: the share of the machine's CPU time that other
processes used ('other_processes', from /proc/stat minus this process's own CPU time) and that the hypervisor stole
('stolen') while the blocks were timed; a note is printed above 10%. Trust quiet runs, or compare on one core
(`taskset -c 0 jaxdl bench ...`: both frameworks then use one thread). Ratios also depend on the CPU: the record
names it (`cpu`, with its widest vector extension).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import resource
import statistics
import sys
import time
from typing import Any, Callable
from unittest import mock

import jax
import numpy as np

from jaxdl import config as config_lib
from jaxdl.errors import UserError

NUM_BATCHES = 4  # pre-built batches fed in rotation
CONTENTION_WARNING = 0.1  # warn when other processes (or other VMs) took this fraction of the CPU while timing


# ------------------------------------------------------------------------------------------------ workloads
@dataclasses.dataclass(frozen=True)
class Workload:
  """A trainer config, the shapes of its data, and the model's PyTorch twin."""
  description: str
  make_config: Callable[[], Any]
  data_shape: tuple[tuple[int, ...], int]  # (input_shape, num_outputs) if config.data does not load here
  torch_model: Callable[[Any, tuple[int, ...], int], Any] | None = None  # None: torch_mlp
  always_stand_in: bool = False  # use data_shape even where config.data would load (e.g. a 32×32 LeNet on MNIST)
  torch_nchw: bool = False  # the twin takes images channels-first (PyTorch's layout): inputs are transposed once
  tokens: bool = False  # inputs are token ids < num_outputs (B, T) with one target per step (B, T): a language model
  ctc: bool = False  # inputs are (B, T, F) features + inputs_paddings, targets (B, CTC_LABELS) chars + paddings


def _mlp_digits_config():
  c = config_lib.load_module(config_lib.experiments_dir() / 'mlp_digits.py').get_config()
  c.train.batch_size = 128  # what the experiment uses; pinned so the bench stays comparable
  return c


def _mlp784_config():
  c = config_lib.base_config()
  c.model.name = 'mlp'
  c.model.hidden = (512, 512)
  c.model.activation = 'relu'
  c.model.num_outputs = 10
  c.data.name = 'digits28'  # only its shapes (28x28x1, 10 classes): the bench feeds random inputs
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 256
  return c


def _cnn_config(model: str, data: str, batch_size: int = 128, **fields):
  c = config_lib.base_config()
  c.model.name = model
  for k, v in fields.items():
    c.model[k] = v
  c.model.num_outputs = 10
  c.data.name = data  # only its shapes: the bench feeds random inputs
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = batch_size
  return c


def _cnn_small_config():
  return _cnn_config('simple_cnn', 'digits28')


def _lenet5_config():
  return _cnn_config('lenet_modern', 'mnist')


def _resnet20_config():
  return _cnn_config('resnet20', 'cifar10')


def _char_rnn_config(cell: str = 'lstm', bidirectional: bool = False):
  """The R1 char-RNN (experiments/char_rnn.py's model) at the notes' vocabulary 105, batch 32 × 60 steps, Adam 0.01
  (no clipping or schedule: the twin's optimiser is plain torch.optim.Adam)."""
  c = config_lib.base_config()
  c.model.name = 'char_rnn'
  c.model.cell = cell
  c.model.bidirectional = bidirectional
  c.model.num_outputs = 105
  c.data.name = 'char_corpus'  # only its shapes: the bench feeds random token ids
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 0.01
  c.train.batch_size = 32
  return c


CTC_LABELS = 40  # characters per synthetic transcript (ds2 workloads: 200 frames -> 100 output frames)


def _ds2_small_config():
  """ds2_small (jaxdl/models/deepspeech.py; experiments/deepspeech2_builtin.py's model) on 200 frames × 80 log-mels,
  32 characters, CTC, Adam 1e-3, batch 16: full-length synthetic utterances (no padding), so the twin's plain
  BatchNorm and nn.GRU compute what the masked, padding-aware flax model computes."""
  c = config_lib.base_config()
  c.model.name = 'ds2_small'
  c.model.num_outputs = 32
  c.data.name = 'espeak_speech'  # only its shapes: the bench feeds random features and transcripts
  c.loss.name = 'ctc'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 16
  return c


def _ctc_loss_config():
  """The CTC loss forward + gradient through the trainer: `deepspeech2` reduced to one Dense (32 -> 32 classes) per
  frame (no convolution, no recurrent layer), 200 frames, 40 labels, batch 32, SGD: the step is mostly the loss."""
  c = _ds2_small_config()
  c.model.name = 'deepspeech2'
  c.model.conv_features, c.model.conv_kernels, c.model.conv_strides, c.model.rnn_layers = (), (), (), 0
  c.optimizer.name = 'sgd'
  c.train.batch_size = 32
  return c


def _resnet50_bf16_config():
  c = _cnn_config('resnet50', 'imagenet2012', batch_size=256)  # the GPU benchmark (issue: bf16, batch 256)
  c.model.num_outputs = 1000
  c.train.compute_dtype = 'bfloat16'
  return c


WORKLOADS: dict[str, Workload] = {
    'mlp_digits': Workload('experiments/mlp_digits.py (the flagship: 8x8 digits MLP), batch 128',
                           _mlp_digits_config, data_shape=((8, 8, 1), 10)),
    'mlp784': Workload('MLP 784-512-512-10, relu, no dropout, Adam 1e-3, batch 256', _mlp784_config,
                       data_shape=((28, 28, 1), 10)),
    'cnn_small': Workload('small CNN (simple_cnn: conv3×3 32, conv3×3 64, max-pool 2, dense 128, dense 10), '
                          '28×28×1, Adam 1e-3, batch 128', _cnn_small_config, data_shape=((28, 28, 1), 10),
                          torch_model=lambda *a: torch_simple_cnn(*a), torch_nchw=True),
    'lenet5': Workload('LeNet-5 modern (lenet_modern: tanh, avg-pool, 6/16 maps 5×5, 120-84-10), 32×32×1, Adam 1e-3, '
                       'batch 128', _lenet5_config, data_shape=((32, 32, 1), 10),
                       torch_model=lambda *a: torch_lenet_modern(*a), always_stand_in=True, torch_nchw=True),
    'resnet20': Workload('CIFAR ResNet-20 (resnet20: BN, option-A shortcuts, 0.27M), 32×32×3, Adam 1e-3, batch 128',
                         _resnet20_config, data_shape=((32, 32, 3), 10),
                         torch_model=lambda *a: torch_cifar_resnet(*a), always_stand_in=True, torch_nchw=True),
    'resnet50': Workload('ResNet-50 v1.5 (resnet50: torchvision layout, 25.6M), 224×224×3, 1000 classes, bfloat16 '
                         'compute (float32 weights), Adam 1e-3, batch 256 — a GPU workload; on CPU use --batch-size',
                         _resnet50_bf16_config, data_shape=((224, 224, 3), 1000),
                         torch_model=lambda *a: torch_resnet(*a), always_stand_in=True, torch_nchw=True),
    'char_rnn': Workload('char-RNN R1 (char_rnn: Embedding 64, 2×LSTM 64 two-bias, 2×Dense-ReLU 128, Dense 105; '
                         '111,657 params), batch 32 × 60 steps, Adam 0.01', _char_rnn_config, data_shape=((60,), 105),
                         torch_model=lambda *a: torch_char_rnn(*a), always_stand_in=True, tokens=True),
    'char_gru': Workload('char-RNN with 2×GRU 64 (95,017 params), batch 32 × 60, Adam 0.01',
                         lambda: _char_rnn_config('gru'), data_shape=((60,), 105),
                         torch_model=lambda *a: torch_char_rnn(*a), always_stand_in=True, tokens=True),
    'char_bilstm': Workload('char-RNN with 2×bidirectional LSTM 64 (219,177 params), batch 32 × 60, Adam 0.01',
                            lambda: _char_rnn_config('lstm', True), data_shape=((60,), 105),
                            torch_model=lambda *a: torch_char_rnn(*a), always_stand_in=True, tokens=True),
    'ds2_small': Workload('DeepSpeech2 small (ds2_small: conv 11×21/2×2 8 ch + BN + clipped ReLU, 2×[BN, BiGRU 128], '
                          'Dense 32; 653,288 params), 200 frames × 80 log-mels, CTC, Adam 1e-3, batch 16',
                          _ds2_small_config, data_shape=((200, 80), 32), torch_model=lambda *a: torch_ds2_small(*a),
                          always_stand_in=True, ctc=True),
    'ctc_loss': Workload('CTC loss forward + gradient (optax.ctc_loss via jaxdl.speech.ctc.ctc_loss) on 200 frames '
                         '× 32 classes, 40 labels, batch 32, behind one Dense(32 → 32) per frame; twin: nn.Linear + '
                         'F.ctc_loss', _ctc_loss_config, data_shape=((200, 32), 32),
                         torch_model=lambda *a: torch_ctc_linear(*a), always_stand_in=True, ctc=True),
}
GROUPS: dict[str, tuple[str, ...]] = {'cnn': ('cnn_small', 'lenet5', 'resnet20'), 'mlp': ('mlp_digits', 'mlp784'),
                                      'rnn': ('char_rnn', 'char_gru', 'char_bilstm')}
DEFAULT_WORKLOADS = ('mlp_digits', 'mlp784', 'cnn_small', 'lenet5', 'resnet20')  # `jaxdl bench` with none named

# Dense bfloat16 peak FLOP/s by device kind (vendor datasheets), for MFU; --peak-tflops overrides, CPUs have none.
PEAK_BF16_FLOPS = {'H200': 989.4e12, 'H100': 989.4e12, 'A100': 312e12, 'L40S': 362.1e12, 'L4': 121e12,
                   'A10G': 70e12, 'TPU v4': 275e12, 'TPU v5 lite': 197e12, 'TPU v5p': 459e12, 'TPU v6': 918e12}


def peak_flops(device_kind: str) -> float | None:
  """The bfloat16 dense peak of a device from PEAK_BF16_FLOPS (longest matching name), or None."""
  hits = [k for k in PEAK_BF16_FLOPS if k.lower() in device_kind.lower()]
  return PEAK_BF16_FLOPS[max(hits, key=len)] if hits else None


# ---------------------------------------------------------------------------------------------- the trainer
@contextlib.contextmanager
def _stand_in_dataset(name, input_shape, num_outputs, tokens: bool = False, ctc: bool = False):
  """While TrainSetup is built, config.data resolves to a shapes-only dataset (the bench feeds random data)."""
  from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
  info = data_lib.DatasetInfo(name, 'classification', tuple(input_shape), num_outputs, {})
  one = data_lib.ArraySource(np.zeros((1, *input_shape), np.float32), np.zeros((1,), np.int32))  # shapes only
  if tokens:   # token ids, one target per step
    one = data_lib.ArraySource(np.zeros((1, *input_shape), np.int32), np.zeros((1, *input_shape), np.int32))
  if ctc:      # one padded utterance: features + paddings, a transcript + paddings (the model's batch_keys)
    from jaxdl.data.buckets import RaggedSource  # pylint: disable=g-import-not-at-top
    one = RaggedSource({'inputs': [np.zeros(input_shape, np.float32)], 'targets': [np.ones(CTC_LABELS, np.int32)]},
                       {'inputs': (input_shape[0],), 'targets': (CTC_LABELS,)})
  with mock.patch.object(data_lib, 'get_dataset', lambda _cfg: data_lib.Dataset(info, lambda _split: one)):
    yield


def build_setup(workload: Workload):
  """(config, TrainSetup, where the data shapes came from) for a workload."""
  from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
  from jaxdl.train.setup import TrainSetup  # pylint: disable=g-import-not-at-top
  config = workload.make_config()
  if workload.always_stand_in:
    source = f'stand-in {workload.data_shape} (the workload fixes its shapes)'
  else:
    try:
      data_lib.get_dataset(config.data)  # e.g. an unprepared TFDS dataset fails here
    except (ImportError, OSError, UserError) as e:
      source = f'stand-in {workload.data_shape} (config.data {config.data.name!r} did not load: {e})'
    else:
      return config, TrainSetup(config), f'config.data {config.data.name!r}'
  with _stand_in_dataset(config.data.name, *workload.data_shape, tokens=workload.tokens, ctc=workload.ctc):
    return config, TrainSetup(config), source


def _input_shape(setup) -> tuple[int, ...]:
  return tuple(int(d) for d in setup.info.input_shape)


def synthetic_batches(loss_name: str, input_shape, num_outputs: int, batch_size: int, n: int = NUM_BATCHES,
                      seed: int = 0, tokens: bool = False) -> list[dict[str, np.ndarray]]:
  """n random host batches {'inputs', 'targets'} for the loss (class ids, or real targets for regression);
  tokens: inputs are int32 ids < num_outputs and the targets one id per step (a language model)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    x = rng.standard_normal((batch_size, *input_shape), dtype=np.float32)
    if tokens:
      x = rng.integers(0, num_outputs, (batch_size, *input_shape), dtype=np.int32)
      y = rng.integers(0, num_outputs, (batch_size, *input_shape), dtype=np.int32)
    elif loss_name == 'ctc':   # full-length utterances and transcripts (labels 1..K-1; 0 is the blank)
      y = rng.integers(1, num_outputs, (batch_size, CTC_LABELS), dtype=np.int32)
      out.append({'inputs': x, 'inputs_paddings': np.zeros(x.shape[:2], np.float32), 'targets': y,
                  'targets_paddings': np.zeros(y.shape, np.float32)})
      continue
    elif loss_name == 'squared_error':
      y = rng.standard_normal((batch_size, num_outputs), dtype=np.float32)
    elif loss_name == 'sigmoid_binary_cross_entropy':
      y = rng.integers(0, 2, batch_size).astype(np.float32)
    else:
      y = rng.integers(0, num_outputs, batch_size).astype(np.int32)
    out.append({'inputs': x, 'targets': y})
  return out


class JaxRunner:
  """The trainer's jitted step on pre-built global batches."""

  def __init__(self, setup, host_batches):
    from jaxdl.train import sharding  # pylint: disable=g-import-not-at-top
    n = jax.process_count()
    local = [{k: v[:len(v) // n] for k, v in b.items()} for b in host_batches]  # this process's slice
    self.setup = setup
    self.batches = [sharding.to_global(b, setup.data_sharding) for b in local]
    self.state = setup.init_state()
    jax.block_until_ready(self.state)
    self.i = 0
    self.metrics = None

  def run(self, steps: int) -> float:
    """Runs `steps` steps; returns the seconds until their results are ready."""
    t0 = time.perf_counter()
    step, rng, batches = self.setup.train_step, self.setup.step_rng, self.batches
    state, metrics = self.state, self.metrics
    for _ in range(steps):
      state, metrics = step(state, batches[self.i % len(batches)], rng)
      self.i += 1
    jax.block_until_ready((state, metrics))
    dt = time.perf_counter() - t0
    self.state, self.metrics = state, metrics
    return dt

  def num_params(self) -> int:
    from jaxdl.models import count_params  # pylint: disable=g-import-not-at-top
    return count_params(self.state.params)

  def loss(self) -> float:
    return float(jax.device_get(self.metrics['loss']))


# ---------------------------------------------------------------------------------------------------- torch
def _torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
    return torch
  except ImportError:
    return None


def torch_mlp(model_cfg, input_shape, num_outputs):
  """The flax MLP (jaxdl.models.mlp) as nn.Sequential: Flatten, [Linear, (BN), act, (Dropout)]*, Linear."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  acts = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'sigmoid': nn.Sigmoid, 'elu': nn.ELU, 'selu': nn.SELU,
          'swish': nn.SiLU, 'softplus': nn.Softplus, 'identity': nn.Identity,
          'leaky_relu': lambda: nn.LeakyReLU(0.01), 'gelu': lambda: nn.GELU(approximate='tanh')}
  m = dict(model_cfg)
  act = m.get('activation', 'relu')
  if act not in acts:
    raise UserError(f'no torch twin for activation {act!r}', 'one of: ' + ', '.join(sorted(acts)),
                    'use --no-torch')
  bn, p, p_in = m.get('batch_norm', False), m.get('dropout_rate', 0.0), m.get('input_dropout_rate', 0.0)
  layers: list = [nn.Flatten()]
  if p_in:
    layers.append(nn.Dropout(p_in))
  width = math.prod(input_shape)
  for h in m.get('hidden', (128,)):
    layers.append(nn.Linear(width, h, bias=not bn))
    if bn:
      layers.append(nn.BatchNorm1d(h, momentum=0.1))  # torch momentum 0.1 == flax momentum 0.9
    layers.append(acts[act]())
    if p:
      layers.append(nn.Dropout(p))
    width = h
  layers.append(nn.Linear(width, m.get('num_outputs', num_outputs)))
  return nn.Sequential(*layers)


def _torch_act(name):
  from torch import nn  # pylint: disable=g-import-not-at-top
  acts = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'sigmoid': nn.Sigmoid, 'elu': nn.ELU, 'selu': nn.SELU,
          'swish': nn.SiLU, 'identity': nn.Identity}
  if name not in acts:
    raise UserError(f'no torch twin for activation {name!r}', 'one of: ' + ', '.join(sorted(acts)), 'use --no-torch')
  return acts[name]()


def _flat_size(torch, layers, input_shape) -> int:
  """Features after `layers` for one channels-first example of `input_shape` (H, W, C)."""
  with torch.no_grad():
    h, w, c = input_shape
    return int(torch.nn.Sequential(*layers)(torch.zeros(1, c, h, w)).numel())


def torch_simple_cnn(model_cfg, input_shape, num_outputs):
  """jaxdl.models.cnn.SimpleCNN as nn.Sequential (channels-first): [Conv2d, (BN), act, (pool)]*, Flatten, (Dropout),
  [Linear, act, (Dropout)]*, Linear. Conv 'SAME' is PyTorch's padding='same' (stride 1)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  m = dict(model_cfg)
  chans, k, pad = tuple(m.get('channels', (32, 64))), m.get('kernel_size', 3), m.get('padding', 'VALID')
  stride, pool, ps, every = m.get('strides', 1), m.get('pool', 'max'), m.get('pool_size', 2), m.get('pool_every', 0)
  bn, p = m.get('batch_norm', False), m.get('dropout_rate', 0.0)
  if m.get('activation', 'relu') == 'prelu' or (pad == 'SAME' and stride != 1):
    raise UserError('no torch twin for this simple_cnn config', 'a fixed activation; SAME only with stride 1',
                    'use --no-torch')
  layers: list = []
  cin = input_shape[-1]
  for i, c in enumerate(chans):
    layers.append(nn.Conv2d(cin, c, k, stride=stride, padding='same' if pad == 'SAME' else 0, bias=not bn))
    if bn:
      layers.append(nn.BatchNorm2d(c, momentum=0.1, eps=1e-5))
    layers.append(_torch_act(m.get('activation', 'relu')))
    if pool != 'none' and ((every and (i + 1) % every == 0) or (not every and i == len(chans) - 1)):
      layers.append(nn.MaxPool2d(ps) if pool == 'max' else nn.AvgPool2d(ps))
    cin = c
  width = _flat_size(torch, layers, input_shape)
  layers += [nn.Flatten(), nn.Dropout(p)]
  for h in m.get('dense', (128,)):
    layers += [nn.Linear(width, h), _torch_act(m.get('activation', 'relu')), nn.Dropout(p)]
    width = h
  layers.append(nn.Linear(width, m.get('num_outputs', num_outputs)))
  return nn.Sequential(*layers)


def torch_lenet_modern(model_cfg, input_shape, num_outputs):
  """jaxdl.models.cnn.LeNetModern: conv5×5 6, tanh, avgpool 2, conv5×5 16, tanh, avgpool 2, 120, 84, out."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  m = dict(model_cfg)
  act = lambda: _torch_act(m.get('activation', 'tanh'))
  feats = [nn.Conv2d(input_shape[-1], 6, 5), act(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2)]
  width = _flat_size(torch, feats, input_shape)
  return nn.Sequential(*feats, nn.Flatten(), nn.Linear(width, 120), act(), nn.Linear(120, 84), act(),
                       nn.Linear(84, m.get('num_outputs', num_outputs)))


def torch_cifar_resnet(model_cfg, input_shape, num_outputs):
  """jaxdl.models.resnet.CifarResNet (He et al. 2015 §4.2): conv3×3 w → BN → ReLU → 3 stages of n basic blocks
  (w, 2w, 4w; stride 2 at stages 2-3) → global average pool → Linear. Shortcut 'A': x[:, :, ::2, ::2] zero-padded
  in channels (C/2 on each side); 'B': conv1×1/2 → BN. Convs without bias, BN momentum 0.1, eps 1e-5."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  m = dict(model_cfg)
  depth, width, shortcut = m.get('depth', 20), m.get('width', 16), m.get('shortcut', 'A')
  n = (depth - 2) // 6

  def conv_bn(cin, cout, k, s):
    return [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False), nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5)]

  class Block(nn.Module):
    def __init__(self, cin, cout, s):
      super().__init__()
      self.body = nn.Sequential(*conv_bn(cin, cout, 3, s), nn.ReLU(), *conv_bn(cout, cout, 3, 1))
      self.proj = None
      self.pad = 0
      if s != 1 or cin != cout:
        if shortcut == 'B':
          self.proj = nn.Sequential(*conv_bn(cin, cout, 1, s))
        else:
          self.pad, self.s = cout - cin, s

    def forward(self, x):
      if self.proj is not None:
        sc = self.proj(x)
      elif self.pad:
        sc = nn.functional.pad(x[:, :, ::self.s, ::self.s], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
      else:
        sc = x
      return torch.relu(self.body(x) + sc)

  layers: list = [*conv_bn(input_shape[-1], width, 3, 1), nn.ReLU()]
  cin = width
  for i in range(3):
    w = width * 2 ** i
    for j in range(n):
      layers.append(Block(cin, w, 2 if (i > 0 and j == 0) else 1))
      cin = w
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, m.get('num_outputs', num_outputs))]
  return nn.Sequential(*layers)


def torch_resnet(model_cfg, input_shape, num_outputs):
  """jaxdl.models.resnet.ResNet (v1.5, torchvision's layout): conv7×7/2 64 → BN → ReLU → max-pool 3×3/2 → 4 stages
  of basic or bottleneck blocks (stride on the 3×3 conv; projection shortcut conv1×1 → BN where the shape changes)
  → global average pool → Linear. Convs without bias, BN momentum 0.1, eps 1e-5."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  from jaxdl.models import resnet as flax_resnet  # pylint: disable=g-import-not-at-top
  m = dict(model_cfg)
  kind, stages = flax_resnet.DEPTHS[int(m['name'].removeprefix('resnet'))]
  expansion = 4 if kind == 'bottleneck' else 1

  def bn(c):
    return nn.BatchNorm2d(c, momentum=0.1, eps=1e-5)

  class Block(nn.Module):
    def __init__(self, cin, w, s):
      super().__init__()
      cout = w * expansion
      if kind == 'bottleneck':
        self.body = nn.Sequential(nn.Conv2d(cin, w, 1, bias=False), bn(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, s, 1, bias=False), bn(w), nn.ReLU(),
                                  nn.Conv2d(w, cout, 1, bias=False), bn(cout))
      else:
        self.body = nn.Sequential(nn.Conv2d(cin, w, 3, s, 1, bias=False), bn(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, 1, 1, bias=False), bn(w))
      self.proj = (nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), bn(cout))
                   if s != 1 or cin != cout else nn.Identity())

    def forward(self, x):
      return nn.functional.relu(self.body(x) + self.proj(x))

  layers = [nn.Conv2d(input_shape[-1], 64, 7, 2, 3, bias=False), bn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
  cin = 64
  for i, n in enumerate(stages):
    for j in range(n):
      layers.append(Block(cin, 64 * 2 ** i, 2 if (i > 0 and j == 0) else 1))
      cin = 64 * 2 ** i * expansion
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, m.get('num_outputs', num_outputs))]
  return nn.Sequential(*layers)


def torch_char_rnn(model_cfg, input_shape, num_outputs):
  """jaxdl.models.char_rnn.CharRNN: nn.Embedding → nn.LSTM / nn.GRU (batch_first, num_layers, bidirectional) →
  [Linear, ReLU]* → Linear, on every step (the notes' "Defining RNN in PyTorch")."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  m = dict(model_cfg)
  vocab, emb, hid = m.get('num_outputs', num_outputs), m.get('embed_dim', 64), m.get('hidden_size', 64)
  layers, bidir = m.get('num_layers', 2), m.get('bidirectional', False)
  rnn_cls = {'lstm': nn.LSTM, 'gru': nn.GRU}[m.get('cell', 'lstm')]

  class CharRNN(nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab, emb)
      self.rnn = rnn_cls(emb, hid, num_layers=layers, batch_first=True, bidirectional=bidir)
      width, head = hid * (2 if bidir else 1), []
      for w in m.get('dense', (128, 128)):
        head += [nn.Linear(width, w), nn.ReLU()]
        width = w
      self.head = nn.Sequential(*head, nn.Linear(width, vocab))

    def forward(self, x):
      return self.head(self.rnn(self.embed(x.long()))[0])

  del torch
  return CharRNN()


def torch_ds2_small(model_cfg, input_shape, num_outputs):
  """jaxdl.models.deepspeech DS2Small: Conv2d (no bias) + BatchNorm2d + Hardtanh(0, 20) over (time, frequency), then
  per layer BatchNorm1d + bidirectional nn.GRU (two biases), then Linear — on full-length batches (no padding)."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  from jaxdl.models.deepspeech import DS2Small  # pylint: disable=g-import-not-at-top
  m = DS2Small(**{k: v for k, v in dict(model_cfg).items() if k != 'name'})
  (kt, kf), (st, sf), ch = m.conv_kernels[0], m.conv_strides[0], m.conv_features[0]
  freq = -(-input_shape[1] // sf)

  class DS2(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv = nn.Conv2d(1, ch, (kt, kf), (st, sf), padding=((kt - 1) // 2, (kf - 1) // 2), bias=False)
      self.bn = nn.BatchNorm2d(ch, eps=m.bn_eps, momentum=1 - m.bn_momentum)
      width, self.norms, self.rnns = ch * freq, nn.ModuleList(), nn.ModuleList()
      for _ in range(m.rnn_layers):
        self.norms.append(nn.BatchNorm1d(width, eps=m.bn_eps, momentum=1 - m.bn_momentum))
        self.rnns.append(nn.GRU(width, m.rnn_features, batch_first=True, bidirectional=True))
        width = 2 * m.rnn_features
      self.out = nn.Linear(width, num_outputs)

    def forward(self, x):                                      # (B, T, F)
      h = nn.functional.hardtanh(self.bn(self.conv(x[:, None])), 0.0, m.clip)   # (B, C, T', F')
      h = h.permute(0, 2, 3, 1).flatten(2)                     # (B, T', F'·C) as the flax model flattens
      for norm, rnn in zip(self.norms, self.rnns):
        h = rnn(norm(h.transpose(1, 2)).transpose(1, 2))[0]
      return self.out(h)

  return DS2()


def torch_ctc_linear(model_cfg, input_shape, num_outputs):
  """The `ctc_loss` workload's model: one nn.Linear per frame (what `deepspeech2` without layers computes)."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  del model_cfg
  return nn.Linear(input_shape[-1], num_outputs)


def _torch_optimizer(torch, opt_cfg, params):
  o = dict(opt_cfg)
  name, lr = o['name'], o['learning_rate']
  if name == 'adam':
    return torch.optim.Adam(params, lr=lr, betas=(o.get('b1', 0.9), o.get('b2', 0.999)), eps=o.get('eps', 1e-8))
  if name == 'adamw':
    return torch.optim.AdamW(params, lr=lr, betas=(o.get('b1', 0.9), o.get('b2', 0.999)), eps=o.get('eps', 1e-8),
                             weight_decay=o.get('weight_decay', 1e-4))
  if name == 'sgd':
    return torch.optim.SGD(params, lr=lr)
  if name in ('momentum', 'nesterov'):
    return torch.optim.SGD(params, lr=lr, momentum=o.get('momentum', 0.9), nesterov=name == 'nesterov')
  raise UserError(f'no torch twin for optimizer {name!r}', 'adam, adamw, sgd, momentum or nesterov',
                  'use --no-torch')


def _torch_loss(torch, loss_name):
  if loss_name == 'softmax_cross_entropy':
    ce = torch.nn.CrossEntropyLoss()   # per-step outputs (B, T, K): the mean over batch × time, as jaxdl's
    return lambda out, y: ce(out.reshape(-1, out.shape[-1]), y.reshape(-1))
  if loss_name == 'ctc':   # full-length batches: every utterance has all its frames and labels
    def ctc(out, y):
      lengths = torch.full((out.shape[0],), out.shape[1], dtype=torch.long)
      return torch.nn.functional.ctc_loss(out.log_softmax(-1).transpose(0, 1), y, lengths,
                                          torch.full((y.shape[0],), y.shape[1], dtype=torch.long), reduction='sum',
                                          zero_infinity=True) / out.shape[0]
    return ctc
  if loss_name == 'squared_error':
    return lambda out, y: ((out - y) ** 2).sum(-1).mean()
  if loss_name == 'sigmoid_binary_cross_entropy':
    bce = torch.nn.BCEWithLogitsLoss()
    return lambda out, y: bce(out[:, 0], y)
  raise UserError(f'no torch twin for loss {loss_name!r}', 'a classification or squared-error loss',
                  'use --no-torch')


class TorchRunner:
  """A plain PyTorch eager loop: zero_grad, forward, loss, backward, step."""

  def __init__(self, torch, workload: Workload, config, input_shape, num_outputs, host_batches, device):
    torch.manual_seed(0)
    self.torch, self.device = torch, device
    build = workload.torch_model or torch_mlp
    self.model = build(config.model, input_shape, num_outputs).to(device).train()
    # the same precision policy as jaxdl's compute_dtype: float32 weights, bfloat16 compute
    self.autocast = config.train.compute_dtype == 'bfloat16'
    self.channels_last = device.type == 'cuda' and workload.torch_nchw  # cuDNN's fast layout for convolutions
    if self.channels_last:
      self.model = self.model.to(memory_format=torch.channels_last)
    self.opt = _torch_optimizer(torch, config.optimizer, self.model.parameters())
    self.loss_fn = _torch_loss(torch, config.loss.name)
    self.batches = []
    for b in host_batches:
      y = torch.from_numpy(b['targets'])
      x = torch.from_numpy(b['inputs'])
      if workload.torch_nchw and x.ndim == 4:
        x = x.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, once, outside the timing
        if self.channels_last:
          x = x.contiguous(memory_format=torch.channels_last)
      self.batches.append((x.to(device),
                           (y.long() if y.dtype == torch.int32 else y).to(device)))
    self.i = 0
    self.last = None

  def _sync(self):
    if self.device.type == 'cuda':
      self.torch.cuda.synchronize()

  def run(self, steps: int) -> float:
    t0 = time.perf_counter()
    model, opt, loss_fn, batches = self.model, self.opt, self.loss_fn, self.batches
    loss = None
    for _ in range(steps):
      x, y = batches[self.i % len(batches)]
      self.i += 1
      opt.zero_grad(set_to_none=True)
      with self.torch.autocast(self.device.type, dtype=self.torch.bfloat16, enabled=self.autocast):
        out = model(x)
      loss = loss_fn(out.float(), y)
      loss.backward()
      opt.step()
    self._sync()
    dt = time.perf_counter() - t0
    self.last = loss
    return dt

  def num_params(self) -> int:
    return int(sum(p.numel() for p in self.model.parameters()))

  def loss(self) -> float:
    return float(self.last.detach().cpu())


# -------------------------------------------------------------------------------------------------- timing
def _summary(blocks: list[float], steps: int, batch_size: int) -> dict[str, Any]:
  med = statistics.median(blocks)
  return {'block_times_s': blocks, 'steps_per_s': steps / med, 'step_time_ms': 1e3 * med / steps,
          'examples_per_s': steps * batch_size / med,
          'best_steps_per_s': steps / min(blocks)}  # fastest block: least disturbed by other processes


def _jax_peak_memory() -> dict[str, Any]:
  dev = jax.local_devices()[0]
  try:
    stats = dev.memory_stats() or {}
  except Exception:  # noqa: BLE001 — backends without memory stats
    stats = {}
  if 'peak_bytes_in_use' in stats:
    return {'bytes': int(stats['peak_bytes_in_use']), 'kind': f'{dev.platform} peak_bytes_in_use'}
  return _process_rss()


def _process_rss() -> dict[str, Any]:
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  rss *= 1 if sys.platform == 'darwin' else 1024  # Linux reports KiB
  return {'bytes': int(rss), 'kind': 'process max RSS (whole process so far: JAX, torch, earlier workloads)'}


def _torch_device(torch):
  if jax.default_backend() == 'gpu' and torch.cuda.is_available():
    return torch.device('cuda')
  return torch.device('cpu')


def _loadavg() -> float | None:
  try:
    return os.getloadavg()[0]
  except OSError:
    return None


def parse_proc_stat(text: str) -> tuple[float, float] | None:
  """(busy, steal) CPU ticks of all processes on all cores, from the `cpu` line of Linux's /proc/stat."""
  for line in text.splitlines():
    f = line.split()
    if f and f[0] == 'cpu':
      t = [int(v) for v in f[1:9]] + [0] * (8 - len(f[1:9]))  # user nice system idle iowait irq softirq steal
      return float(sum(t) - t[3] - t[4]), float(t[7])
  return None


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
  """Wall time, this process's CPU time (all its threads) and the machine's busy/stolen CPU time, in seconds."""
  wall: float
  own: float
  busy: float | None  # None: no /proc/stat (not Linux)
  steal: float | None


def cpu_snapshot() -> CpuSnapshot:
  t = os.times()
  try:
    busy, steal = parse_proc_stat(pathlib.Path('/proc/stat').read_text(encoding='ascii')) or (None, None)
    hz = os.sysconf('SC_CLK_TCK')
  except (OSError, ValueError):
    busy = steal = None
    hz = 1
  return CpuSnapshot(time.perf_counter(), t.user + t.system, None if busy is None else busy / hz,
                     None if steal is None else steal / hz)


def contention(a: CpuSnapshot, b: CpuSnapshot, num_cpus: int) -> dict[str, float | None]:
  """Between two snapshots: the fraction of the machine's CPU time that OTHER processes used, and the fraction the
  hypervisor stole (other virtual machines on the host). Both slow the frameworks down unevenly."""
  cap = (b.wall - a.wall) * num_cpus
  if a.busy is None or b.busy is None or cap <= 0:
    return {'other_processes': None, 'stolen': None}
  others = (b.busy - a.busy) - (b.own - a.own)
  return {'other_processes': min(1.0, max(0.0, others / cap)), 'stolen': min(1.0, max(0.0, (b.steal - a.steal) / cap))}


def cpu_model() -> str:
  """The CPU's name and widest vector extension (convolution speed differs ~2x between AVX2 and AVX-512)."""
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text(encoding='utf-8', errors='replace')
  except OSError:
    import platform  # pylint: disable=g-import-not-at-top
    return platform.processor() or platform.machine()
  name = next((l.split(':', 1)[1].strip() for l in text.splitlines() if l.startswith('model name')), 'unknown CPU')
  flags = set(next((l.split(':', 1)[1].split() for l in text.splitlines() if l.startswith(('flags', 'Features'))), []))
  isa = next((x for x in ('avx512f', 'avx2', 'avx', 'sve', 'asimd') if x in flags), None)
  return f'{name} ({isa})' if isa else name


def _num_threads() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def bench_workload(name: str, *, repeats: int, steps: int, warmup: int, use_torch: bool,
                   batch_size: int | None = None, peak_tflops: float | None = None) -> dict[str, Any]:
  """Times one workload; returns its JSON record."""
  wl = WORKLOADS[name]
  if batch_size:
    make = wl.make_config
    wl = dataclasses.replace(wl, make_config=lambda: _with_batch_size(make(), batch_size))
  config, setup, data_source = build_setup(wl)
  bs = config.train.batch_size
  shape, num_out = _input_shape(setup), int(setup.info.num_outputs)
  host = synthetic_batches(config.loss.name, shape, num_out, bs, tokens=wl.tokens)
  dev = jax.devices()[0]
  torch = _torch() if use_torch else None
  rec: dict[str, Any] = {
      'workload': name, 'description': wl.description, 'batch_size': bs, 'input_shape': list(shape),
      'num_outputs': num_out, 'data_shapes_from': data_source, 'model': config.model.to_dict(),
      'optimizer': config.optimizer.to_dict(), 'loss': config.loss.name, 'repeats': repeats, 'steps': steps,
      'warmup': warmup, 'jax_version': jax.__version__, 'torch_version': torch.__version__ if torch else None,
      'platform': dev.platform, 'device': dev.device_kind, 'num_devices': jax.device_count(),
      'cpu_count': _num_threads(), 'cpu': cpu_model(), 'compute_dtype': config.train.compute_dtype,
      'load_average_before': _loadavg()}

  jr = JaxRunner(setup, host)
  rec['num_params'] = jr.num_params()
  tr = None
  if torch is not None:
    tr = TorchRunner(torch, wl, config, shape, num_out, host, _torch_device(torch))
    rec['num_params_torch'] = tr.num_params()
    rec['param_count_match'] = rec['num_params_torch'] == rec['num_params']
    if not rec['param_count_match']:  # the comparison would be meaningless: a bug in the torch twin
      raise AssertionError(f'{name}: torch twin has {rec["num_params_torch"]} parameters, '
                           f'the flax model {rec["num_params"]}')
  else:
    rec['torch_skipped'] = '--no-torch' if not use_torch else 'torch is not installed'

  compile_s = jr.run(1)  # first call: trace + compile + one step
  if warmup:
    jr.run(warmup)
  if tr is not None:
    torch_first = tr.run(1)
    if warmup:
      tr.run(warmup)
  jb, tb = [], []
  before = cpu_snapshot()
  for _ in range(repeats):  # interleaved: J, T, J, T, ...
    jb.append(jr.run(steps))
    if tr is not None:
      tb.append(tr.run(steps))
  # what else ran while the blocks were timed (measured, unlike the load average, which counts this process too)
  rec['cpu_contention'] = contention(before, cpu_snapshot(), os.cpu_count() or 1)

  rec['jax'] = dict(compile_time_s=compile_s, **_summary(jb, steps, bs), final_loss=jr.loss(),
                    peak_memory=_jax_peak_memory())
  rec.update(_utilisation(setup, bs, rec['jax']['steps_per_s'], dev.device_kind, peak_tflops))
  rec['torch'] = rec['ratio'] = None
  if tr is not None:
    mem = ({'bytes': int(torch.cuda.max_memory_allocated()), 'kind': 'cuda max_memory_allocated'}
           if tr.device.type == 'cuda' else _process_rss())
    rec['torch'] = dict(first_step_s=torch_first, **_summary(tb, steps, bs), final_loss=tr.loss(),
                        device=str(tr.device), num_threads=torch.get_num_threads(), peak_memory=mem)
    rec['ratio'] = rec['jax']['steps_per_s'] / rec['torch']['steps_per_s']
  rec['load_average_after'] = _loadavg()  # 1-min load: other work on the machine skews both frameworks
  return rec


def _with_batch_size(config, batch_size: int):
  config.train.batch_size = batch_size
  return config


def _utilisation(setup, batch_size: int, steps_per_s: float, device_kind: str,
                 peak_tflops: float | None) -> dict[str, Any]:
  """Model FLOPs per train step (3 × the forward pass's 2·MACs, the usual MFU convention: backward ≈ 2× forward;
  element-wise work not counted) and, where the device's peak is known, model FLOPs utilisation."""
  from jaxdl.inspect import flops as flops_lib  # pylint: disable=g-import-not-at-top
  try:
    macs = flops_lib.forward_flops(setup.model, _input_shape(setup))
  except Exception as e:  # noqa: BLE001 — a model the counter cannot trace: report, do not fail the bench
    return {'model_flops_per_step': None, 'mfu': None, 'mfu_note': f'FLOPs not counted: {e}'}
  per_step = 3 * 2 * macs * batch_size
  peak = peak_tflops * 1e12 if peak_tflops else peak_flops(device_kind)
  out = {'model_flops_per_step': per_step, 'model_tflops_per_s': per_step * steps_per_s / 1e12,
         'peak_tflops': peak / 1e12 if peak else None, 'mfu': per_step * steps_per_s / peak if peak else None}
  if not peak:
    out['mfu_note'] = f'no known bfloat16 peak for {device_kind!r}: pass --peak-tflops'
  return out


# ------------------------------------------------------------------------------------------------------ CLI
class _ArgParser(argparse.ArgumentParser):
  def error(self, message):
    raise UserError(f'bad arguments for `jaxdl bench`: {message}', 'see `jaxdl --help`', 'fix the command line')


def parse_args(argv: list[str]) -> argparse.Namespace:
  p = _ArgParser(prog='jaxdl bench', add_help=False)
  p.add_argument('workloads', nargs='*', metavar='WORKLOAD')
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--steps', type=int, default=20)
  p.add_argument('--warmup', type=int, default=5)
  p.add_argument('--no-torch', action='store_true')
  p.add_argument('--out', default=None)
  p.add_argument('--batch-size', type=int, default=None)
  p.add_argument('--peak-tflops', type=float, default=None)
  args = p.parse_args(argv)
  names: list[str] = []
  for w in args.workloads:  # a group name (e.g. `cnn`) stands for its workloads
    for n in GROUPS.get(w, (w,)):
      if n not in WORKLOADS:
        raise UserError(f'unknown workload {w!r}', 'one of: ' + ', '.join([*WORKLOADS, *GROUPS]),
                        'run `jaxdl bench` with no workload for all of them')
      if n not in names:
        names.append(n)
  args.workloads = names
  for flag, low in (('repeats', 1), ('steps', 1), ('warmup', 0), ('batch_size', 1), ('peak_tflops', 1e-9)):
    value = getattr(args, flag)
    if value is not None and value < low:
      name = '--' + flag.replace('_', '-')
      raise UserError(f'{name}={value} is too small', 'a positive number' if low else 'an integer >= 0',
                      f'raise {name}')
  if args.out and not pathlib.Path(args.out).resolve().parent.is_dir():
    raise UserError(f'--out={args.out}: its folder does not exist', 'a path in an existing folder',
                    'create the folder first')
  args.workloads = args.workloads or list(DEFAULT_WORKLOADS)
  return args


def format_table(results: list[dict]) -> str:
  rows = [('workload', 'batch', 'jax steps/s', 'torch steps/s', 'ratio', 'jax examples/s', 'MFU', 'jax compile s')]
  for r in results:
    t = r['torch']
    rows.append((r['workload'], str(r['batch_size']), f'{r["jax"]["steps_per_s"]:.1f}',
                 f'{t["steps_per_s"]:.1f}' if t else '-', f'{r["ratio"]:.2f}x' if r['ratio'] else '-',
                 f'{r["jax"]["examples_per_s"]:.0f}', f'{r["mfu"]:.1%}' if r.get('mfu') else '-',
                 f'{r["jax"]["compile_time_s"]:.2f}'))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  return '\n'.join('  '.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                   for row in rows)


USAGE = ('usage: jaxdl bench [WORKLOAD ...] [--repeats N] [--steps N] [--warmup N] [--no-torch] [--out FILE]\n'
         '                   [--batch-size N] [--peak-tflops X]\n'
         '  workloads: ' + ', '.join(WORKLOADS) + ' (default: ' + ', '.join(DEFAULT_WORKLOADS) + ')\n'
         '  groups: ' + ', '.join(f'{g} = {" ".join(ws)}' for g, ws in GROUPS.items()))


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if '-h' in argv or '--help' in argv:
    print(USAGE)
    return 0
  args = parse_args(argv)
  torch = None if args.no_torch else _torch()
  old_threads = torch.get_num_threads() if torch is not None else None
  if torch is not None:
    torch.set_num_threads(_num_threads())  # all the cores JAX's CPU backend uses
  try:
    results = [bench_workload(w, repeats=args.repeats, steps=args.steps, warmup=args.warmup,
                              use_torch=not args.no_torch, batch_size=args.batch_size,
                              peak_tflops=args.peak_tflops) for w in args.workloads]
  finally:
    if torch is not None:
      torch.set_num_threads(old_threads)
  text = json.dumps(results, indent=2)
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + '\n', encoding='utf-8')
  print(format_table(results), file=sys.stderr)
  print(f'cpu: {results[0]["cpu"]}, {_num_threads()} threads' if results else '', file=sys.stderr)
  worst = max(results, key=lambda r: sum(v or 0.0 for v in r['cpu_contention'].values()), default=None)
  if worst is not None and sum(v or 0.0 for v in worst['cpu_contention'].values()) >= CONTENTION_WARNING:
    c = worst['cpu_contention']
    print(f'note: while {worst["workload"]} was timed, other processes used {c["other_processes"]:.0%} of the '
          f'CPU and the hypervisor stole {c["stolen"] or 0:.0%}: these timings are noisy (rerun on a quiet machine)',
          file=sys.stderr)
  return 0
