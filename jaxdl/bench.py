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
`jaxdl bench seq2seq` = seq2seq_attention (experiments/attention_length.py's LSTM encoder–decoder with additive
attention; twin: nn.LSTM over the packed source + the same attention) and transformer (transformer_seq2seq, 2+2
layers, d_model 64; twin: nn.TransformerEncoder/DecoderLayer): random token batches with paddings as
jaxdl.data.seq2seq builds them (sources of 4-40 tokens, targets + EOS, `seq2seq=True`), loss = the mean
cross-entropy over the valid target tokens on both sides.
`jaxdl bench decoding` = beam_search, ctc_decode, frontend: not training steps but throughputs (THROUGHPUTS) —
sequences/s of the jit beam search (toy decoder; seq2seq generate, beam 4) vs its eager reference, utterances/s of
the jit batched CTC prefix beam search vs the host one (without / with a character trigram LM), hours of audio
per second of the jit front end (log_mel, spectrogram) vs librosa — each against its reference in the same run,
alternating, medians of `--repeats` runs after one untimed call of each (one record per case, 'kind': 'throughput').
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
from jaxdl import runtime
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
  seq2seq: bool = False  # source ids (B, S) + inputs_paddings, decoder_inputs / targets (B, S + 1) + paddings


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


SEQ2SEQ_SOURCE = 40  # source positions of the seq2seq workloads (targets: + EOS); lengths vary (paddings)


def _seq2seq_attention_config():
  """experiments/attention_length.py's attention model (seq2seq: Embedding 32, 1×LSTM 64, additive attention,
  W_c, softmax over the reverse task's 14 tokens), batch 64, sources of 4-40 tokens padded to 40. Two biases per
  LSTM (as nn.LSTM, so the parameter counts agree); Adam 3e-3 without the experiment's clipping (the twin's
  optimiser is plain torch.optim.Adam)."""
  c = config_lib.load_module(config_lib.experiments_dir() / 'attention_length.py').get_config('additive')
  c.model.two_bias = True
  c.optimizer.clip_global_norm = 0.0
  c.train.batch_size = 64
  return c


def _transformer_config():
  """transformer_seq2seq, larger than experiments/transformer_reverse.py's 1-layer d 32: 2 encoder + 2 decoder
  layers, d_model 64, 4 heads, d_ff 256, post-norm, no dropout, sinusoidal positions, 14 tokens; batch 128, sources
  of 4-40 tokens padded to 40; Adam 5e-4 (constant, no clipping: the twin's plain torch.optim.Adam)."""
  c = config_lib.base_config()
  c.model.name = 'transformer_seq2seq'
  c.model.update(d_model=64, num_heads=4, d_ff=256, num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0,
                 max_len=64, max_decode_length=41)
  c.data.name = 'reverse'  # only its vocabulary size: the bench feeds random token batches
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 5e-4
  c.train.batch_size = 128
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
    'seq2seq_attention': Workload('seq2seq with attention (experiments/attention_length.py\'s model: Embedding 32, '
                                  '1×LSTM 64 two-bias, additive attention 64, W_c, Dense 14), batch 64, sources of '
                                  '4-40 tokens padded to 40, targets + EOS, Adam 3e-3; twin: nn.LSTM (packed source)',
                                  _seq2seq_attention_config, data_shape=((SEQ2SEQ_SOURCE,), 14),
                                  torch_model=lambda *a: torch_seq2seq(*a), always_stand_in=True, seq2seq=True),
    'transformer': Workload('transformer_seq2seq (2+2 layers, d_model 64, 4 heads, d_ff 256, post-norm, no dropout), '
                            'batch 128, sources of 4-40 tokens padded to 40, targets + EOS, Adam 5e-4; twin: '
                            'nn.TransformerEncoder/DecoderLayer', _transformer_config,
                            data_shape=((SEQ2SEQ_SOURCE,), 14), torch_model=lambda *a: torch_transformer_seq2seq(*a),
                            always_stand_in=True, seq2seq=True),
}
GROUPS: dict[str, tuple[str, ...]] = {'cnn': ('cnn_small', 'lenet5', 'resnet20'), 'mlp': ('mlp_digits', 'mlp784'),
                                      'rnn': ('char_rnn', 'char_gru', 'char_bilstm'),
                                      'seq2seq': ('seq2seq_attention', 'transformer'),
                                      'decoding': ('beam_search', 'ctc_decode', 'frontend')}  # THROUGHPUTS
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
def _stand_in_dataset(name, input_shape, num_outputs, tokens: bool = False, ctc: bool = False,
                      seq2seq: bool = False):
  """While TrainSetup is built, config.data resolves to a shapes-only dataset (the bench feeds random data)."""
  from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
  info = data_lib.DatasetInfo(name, 'classification', tuple(input_shape), num_outputs, {})
  one = data_lib.ArraySource(np.zeros((1, *input_shape), np.float32), np.zeros((1,), np.int32))  # shapes only
  if tokens:   # token ids, one target per step
    one = data_lib.ArraySource(np.zeros((1, *input_shape), np.int32), np.zeros((1, *input_shape), np.int32))
  if seq2seq:  # one source / target pair of the longest lengths (jaxdl.data.seq2seq's fields)
    from jaxdl.data.buckets import RaggedSource  # pylint: disable=g-import-not-at-top
    s, t = input_shape[0], input_shape[0] + 1
    one = RaggedSource({'inputs': [np.full(s, 4, np.int32)], 'targets': [np.full(t, 4, np.int32)],
                        'decoder_inputs': [np.full(t, 4, np.int32)]},
                       {'inputs': (s,), 'targets': (t,), 'decoder_inputs': (t,)})
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
  with _stand_in_dataset(config.data.name, *workload.data_shape, tokens=workload.tokens, ctc=workload.ctc,
                         seq2seq=workload.seq2seq):
    return config, TrainSetup(config), source


def _input_shape(setup) -> tuple[int, ...]:
  return tuple(int(d) for d in setup.info.input_shape)


def synthetic_batches(loss_name: str, input_shape, num_outputs: int, batch_size: int, n: int = NUM_BATCHES,
                      seed: int = 0, tokens: bool = False, seq2seq: bool = False) -> list[dict[str, np.ndarray]]:
  """n random host batches {'inputs', 'targets'} for the loss (class ids, or real targets for regression);
  tokens: inputs are int32 ids < num_outputs and the targets one id per step (a language model); seq2seq: the
  fields of jaxdl.data.seq2seq (`seq2seq_batch`)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    if seq2seq:
      out.append(seq2seq_batch(rng, batch_size, input_shape[0], num_outputs))
      continue
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


SEQ2SEQ_MIN_LENGTH = 4  # synthetic source lengths are uniform in [SEQ2SEQ_MIN_LENGTH, S]


def seq2seq_batch(rng, batch_size: int, max_source: int, vocab_size: int) -> dict[str, np.ndarray]:
  """A padded batch as jaxdl.data.seq2seq builds it, of random tokens (ids ≥ 4: PAD 0, BOS 1, EOS 2, UNK 3): source
  lengths L uniform in [SEQ2SEQ_MIN_LENGTH, S], targets of L tokens + EOS, decoder_inputs BOS + the L tokens, every
  field right-padded (inputs to S, targets and decoder_inputs to S + 1) with its paddings (1.0 = padded)."""
  from jaxdl.text.vocab import BOS, EOS  # pylint: disable=g-import-not-at-top
  s, t = max_source, max_source + 1
  lengths = rng.integers(min(SEQ2SEQ_MIN_LENGTH, s), s + 1, batch_size)
  src = rng.integers(4, vocab_size, (batch_size, s), dtype=np.int32)
  tgt = rng.integers(4, vocab_size, (batch_size, t), dtype=np.int32)
  src_pad = (np.arange(s)[None] >= lengths[:, None]).astype(np.float32)
  tgt_pad = (np.arange(t)[None] > lengths[:, None]).astype(np.float32)      # L tokens + EOS are valid
  src = np.where(src_pad > 0, 0, src).astype(np.int32)
  tgt = np.where(np.arange(t)[None] == lengths[:, None], EOS, tgt)
  tgt = np.where(tgt_pad > 0, 0, tgt).astype(np.int32)
  dec = np.concatenate([np.full((batch_size, 1), BOS, np.int32), tgt[:, :-1]], 1)
  dec = np.where((dec == EOS) | (tgt_pad > 0), 0, dec).astype(np.int32)   # BOS + the L tokens, then PAD
  return {'inputs': src, 'inputs_paddings': src_pad, 'targets': tgt, 'targets_paddings': tgt_pad,
          'decoder_inputs': dec, 'decoder_inputs_paddings': tgt_pad.copy()}


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
    # as the trainer (loop.py, max_steps_in_flight): one step at a time on several CPU devices, whose executions
    # share XLA's thread pool — steps queued ahead can hold every thread while one device waits in an all-reduce
    self.one_at_a_time = jax.devices()[0].platform == 'cpu' and jax.device_count() > 1

  def run(self, steps: int) -> float:
    """Runs `steps` steps; returns the seconds until their results are ready."""
    t0 = time.perf_counter()
    step, rng, batches = self.setup.train_step, self.setup.step_rng, self.batches
    state, metrics = self.state, self.metrics
    for _ in range(steps):
      state, metrics = step(state, batches[self.i % len(batches)], rng)
      self.i += 1
      if self.one_at_a_time:
        jax.block_until_ready(metrics)
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


def torch_seq2seq(model_cfg, input_shape, num_outputs):
  """jaxdl.models.seq2seq.Seq2Seq (no reversal, no dropout, teacher forcing): nn.Embedding → nn.LSTM encoder over the
  packed source (its final (h, c) per layer start the decoder) → nn.LSTM decoder over the teacher-forced inputs →
  Luong/Bahdanau attention over the valid source positions → tanh(W_c [c_t; s_t]) → Linear."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from jaxdl.models.seq2seq import Seq2Seq  # pylint: disable=g-import-not-at-top
  m = Seq2Seq(**{'num_outputs': num_outputs, **{k: v for k, v in dict(model_cfg).items() if k != 'name'}})
  if m.reverse_source or m.dropout or m.teacher_forcing < 1 or m.init_scale is not None or not m.two_bias:
    raise UserError('no torch twin for this seq2seq config', 'two_bias, no reversal, dropout, scheduled sampling or '
                    'init_scale', 'use --no-torch')
  vocab, h = m.num_outputs, m.hidden_size
  f = m.attention_features or h

  class Twin(nn.Module):
    def __init__(self):
      super().__init__()
      self.src_embed = nn.Embedding(m.src_vocab_size or vocab, m.embed_dim)
      self.tgt_embed = nn.Embedding(vocab, m.embed_dim)
      self.encoder = nn.LSTM(m.embed_dim, h, m.num_layers, batch_first=True)
      self.decoder = nn.LSTM(m.embed_dim, h, m.num_layers, batch_first=True)
      if m.attention == 'additive':     # vᵀ tanh(W_q s_t + W_k h_j + b)
        self.query, self.key, self.energy = nn.Linear(h, f, bias=False), nn.Linear(h, f), nn.Linear(f, 1, bias=False)
      elif m.attention == 'general':    # s_tᵀ W h_j
        self.w = nn.Linear(h, h, bias=False)
      if m.attention != 'none':
        self.combine = nn.Linear(2 * h, h, bias=False)
      self.head = nn.Linear(h, vocab)

    def forward(self, src, src_pad, dec_in):
      lengths = (~src_pad).sum(1).cpu()
      packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths, batch_first=True, enforce_sorted=False)
      memory, carry = self.encoder(packed)
      s = self.decoder(self.tgt_embed(dec_in), carry)[0]                          # [B, T, H]
      if m.attention == 'none':
        return self.head(s)
      memory = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=src.shape[1])[0]
      if m.attention == 'additive':
        scores = self.energy(torch.tanh(self.query(s)[:, :, None] + self.key(memory)[:, None]))[..., 0]
      else:
        scores = s @ (self.w(memory) if m.attention == 'general' else memory).transpose(1, 2)
      alpha = torch.softmax(scores.masked_fill(src_pad[:, None], float('-inf')), -1)   # [B, T, S]
      return self.head(torch.tanh(self.combine(torch.cat([alpha @ memory, s], -1))))

  return Twin()


def torch_transformer_seq2seq(model_cfg, input_shape, num_outputs):
  """jaxdl.models.seq2seq.TransformerSeq2Seq: nn.Embedding · √d + sinusoidal positions (a buffer), then
  nn.TransformerEncoder / nn.TransformerDecoder of nn.TransformerEncoderLayer / DecoderLayer (batch_first; a final
  LayerNorm only with norm_first, as jaxdl's), source padding masks, causal decoder mask, Linear."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from jaxdl.models.seq2seq import TransformerSeq2Seq  # pylint: disable=g-import-not-at-top
  from jaxdl.nn.transformer import sinusoidal_encoding  # pylint: disable=g-import-not-at-top
  m = TransformerSeq2Seq(**{'num_outputs': num_outputs,
                            **{k: v for k, v in dict(model_cfg).items() if k != 'name'}})
  if m.positional != 'sinusoidal':
    raise UserError('no torch twin for learned positions', "positional='sinusoidal'", 'use --no-torch')
  d, vocab = m.d_model, m.num_outputs

  def stack(layer_cls, stack_cls, n):
    layer = layer_cls(d, m.num_heads, m.d_ff, dropout=m.dropout_rate, batch_first=True, norm_first=m.norm_first)
    kw = {'enable_nested_tensor': False} if stack_cls is nn.TransformerEncoder else {}
    return stack_cls(layer, n, norm=nn.LayerNorm(d) if m.norm_first else None, **kw)

  class Twin(nn.Module):
    def __init__(self):
      super().__init__()
      self.src_embed = nn.Embedding(m.src_vocab_size or vocab, d)
      self.tgt_embed = nn.Embedding(vocab, d)
      self.register_buffer('pe', torch.from_numpy(sinusoidal_encoding(m.max_len, d)))
      self.encoder = stack(nn.TransformerEncoderLayer, nn.TransformerEncoder, m.num_encoder_layers)
      self.decoder = stack(nn.TransformerDecoderLayer, nn.TransformerDecoder, m.num_decoder_layers)
      self.out = nn.Linear(d, vocab)

    def forward(self, src, src_pad, dec_in):
      x = self.src_embed(src) * math.sqrt(d) + self.pe[:src.shape[1]]
      memory = self.encoder(x, src_key_padding_mask=src_pad)
      t = dec_in.shape[1]
      y = self.tgt_embed(dec_in) * math.sqrt(d) + self.pe[:t]
      causal = nn.Transformer.generate_square_subsequent_mask(t, device=y.device)
      return self.out(self.decoder(y, memory, tgt_mask=causal, memory_key_padding_mask=src_pad, tgt_is_causal=True))

  return Twin()


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


def _torch_masked_cross_entropy(torch):
  """The mean cross-entropy over the valid target tokens (what jaxdl's softmax_cross_entropy with targets_paddings
  and the trainer's weighted mean give)."""
  def loss(out, y):
    targets, paddings = y
    per_token = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1),
                                                  reduction='none')
    valid = 1.0 - paddings.reshape(-1)
    return (per_token * valid).sum() / valid.sum()
  return loss


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
    if workload.seq2seq:   # model(source, source padding mask, decoder inputs); loss(logits, (targets, paddings))
      self.loss_fn = _torch_masked_cross_entropy(torch)
      t = lambda b, k: torch.from_numpy(b[k]).to(device)
      self.batches = [((t(b, 'inputs').long(), t(b, 'inputs_paddings') > 0, t(b, 'decoder_inputs').long()),
                       (t(b, 'targets').long(), t(b, 'targets_paddings'))) for b in host_batches]
      host_batches = []
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
        out = model(*x) if isinstance(x, tuple) else model(x)
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


def _minor_faults() -> int:
  """This process's minor page faults so far (all threads): a step that faults its memory in anew each time pays
  the kernel for it (see jaxdl.runtime)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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


# A pause before each timed block: PyTorch's OpenMP workers spin for ~10-20 ms after their last parallel region
# (measured here), which would steal a core from a JAX block that starts at once; the pause lets either framework's
# threads go idle before the other's block.
SETTLE_S = 0.05


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
  host = synthetic_batches(config.loss.name, shape, num_out, bs, tokens=wl.tokens, seq2seq=wl.seq2seq)
  dev = jax.devices()[0]
  torch = _torch() if use_torch else None
  rec: dict[str, Any] = {
      'workload': name, 'description': wl.description, 'batch_size': bs, 'input_shape': list(shape),
      'num_outputs': num_out, 'data_shapes_from': data_source, 'model': config.model.to_dict(),
      'optimizer': config.optimizer.to_dict(), 'loss': config.loss.name, 'repeats': repeats, 'steps': steps,
      'warmup': warmup, 'jax_version': jax.__version__, 'torch_version': torch.__version__ if torch else None,
      'platform': dev.platform, 'device': dev.device_kind, 'num_devices': jax.device_count(),
      'cpu_count': _num_threads(), 'cpu': cpu_model(), 'compute_dtype': config.train.compute_dtype,
      'host_memory': runtime.host_memory_policy(),
      'settle_s': SETTLE_S, 'load_average_before': _loadavg()}

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
  jb, tb, jf, tf = [], [], [], []
  before = cpu_snapshot()
  for _ in range(repeats):  # interleaved: J, T, J, T, ..., each block after a pause (SETTLE_S)
    time.sleep(SETTLE_S)
    f0 = _minor_faults()
    jb.append(jr.run(steps))
    jf.append((_minor_faults() - f0) / steps)
    if tr is not None:
      time.sleep(SETTLE_S)
      f0 = _minor_faults()
      tb.append(tr.run(steps))
      tf.append((_minor_faults() - f0) / steps)
  # what else ran while the blocks were timed (measured, unlike the load average, which counts this process too)
  rec['cpu_contention'] = contention(before, cpu_snapshot(), os.cpu_count() or 1)

  rec['jax'] = dict(compile_time_s=compile_s, **_summary(jb, steps, bs), final_loss=jr.loss(),
                    peak_memory=_jax_peak_memory(), page_faults_per_step=statistics.median(jf))
  rec.update(_utilisation(setup, bs, rec['jax']['steps_per_s'], dev.device_kind, peak_tflops))
  rec['torch'] = rec['ratio'] = None
  if tr is not None:
    mem = ({'bytes': int(torch.cuda.max_memory_allocated()), 'kind': 'cuda max_memory_allocated'}
           if tr.device.type == 'cuda' else _process_rss())
    rec['torch'] = dict(first_step_s=torch_first, **_summary(tb, steps, bs), final_loss=tr.loss(),
                        device=str(tr.device), num_threads=torch.get_num_threads(), peak_memory=mem,
                        page_faults_per_step=statistics.median(tf))
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


# ------------------------------------------------------------------------------------ decoding throughput
# Not training steps: how fast jaxdl's jit-compiled decoders and front end process items (sequences, utterances,
# hours of audio) against a reference implementation timed in the same run (alternating runs, medians).
@dataclasses.dataclass(frozen=True)
class Throughput:
  """A decoding / front-end throughput: `run(repeats, tiny)` -> one record per case ('tiny': test sizes)."""
  description: str
  run: Callable[[int, bool], list[dict]]


def _alternate(jax_fn: Callable[[], Any], ref_fn: Callable[[], Any] | None, repeats: int):
  """Times jax_fn and ref_fn in alternation, after one untimed call of each (JAX's compiles; the reference's warms
  its caches, e.g. librosa's filterbank or numba); -> (compile s, jax times, ref times, contention, last outputs)."""
  t0 = time.perf_counter()
  jax_out = jax.block_until_ready(jax_fn())
  compile_s = time.perf_counter() - t0
  jt, rt, ref_out = [], [], None
  if ref_fn is not None:
    ref_fn()
  before = cpu_snapshot()
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax_out = jax.block_until_ready(jax_fn())
    jt.append(time.perf_counter() - t0)
    if ref_fn is not None:
      t0 = time.perf_counter()
      ref_out = ref_fn()
      rt.append(time.perf_counter() - t0)
  return compile_s, jt, rt, contention(before, cpu_snapshot(), os.cpu_count() or 1), jax_out, ref_out


def _rate_record(name: str, case: str, unit: str, items: float, jax_name: str, ref_name: str | None,
                 compile_s: float | None, jax_times: list[float], ref_times: list[float], cont: dict,
                 **extra) -> dict[str, Any]:
  """One throughput record: items per second from the median of the timed runs (and the fastest run)."""
  rate = lambda ts: {'times_s': ts, 'per_s': items / statistics.median(ts), 'best_per_s': items / min(ts)}
  rec = {'workload': name, 'kind': 'throughput', 'case': case, 'unit': unit, 'items_per_run': items,
         'repeats': len(jax_times), 'jax_version': jax.__version__, 'platform': jax.devices()[0].platform,
         'cpu': cpu_model(), 'cpu_count': _num_threads(), 'cpu_contention': cont,
         'jax': {'name': jax_name, 'compile_time_s': compile_s, **rate(jax_times)},
         'reference': {'name': ref_name, **rate(ref_times)} if ref_times else None}
  rec['ratio'] = rec['jax']['per_s'] / rec['reference']['per_s'] if ref_times else None
  rec.update(extra)
  return rec


def throughput_beam_search(repeats: int, tiny: bool = False, with_model: bool = True) -> list[dict]:
  """Sequences/s of jaxdl.text.beam_search's jit `beam_search` vs its eager `beam_search_reference`: on the toy
  table decoder (`benchmark_toy`: batch 64, beam 4, 30 steps, 32 tokens) and on `generate` of the seq2seq_attention
  workload's model (random weights; beam 4, at most 41 steps, batch 32, sources of 4-40 tokens) — the reference
  drives the same model's jitted one-step decoder from the host (with_model=False: the toy decoder only)."""
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  from jaxdl.text import beam_search as beam_lib  # pylint: disable=g-import-not-at-top
  from jaxdl.text.vocab import BOS, EOS, PAD  # pylint: disable=g-import-not-at-top
  toy_kw = dict(batch_size=2, max_len=5, vocab_size=8) if tiny else dict(batch_size=64, max_len=30, vocab_size=32)
  before = cpu_snapshot()
  toy = beam_lib.benchmark_toy(beam_width=4, repeats=repeats, **toy_kw)
  out = [_rate_record('beam_search', f'toy decoder (batch {toy_kw["batch_size"]}, beam 4, {toy_kw["max_len"]} '
                      f'steps, {toy_kw["vocab_size"]} tokens)', 'sequences/s', toy_kw['batch_size'],
                      'jit beam_search', 'beam_search_reference (eager, NumPy)', toy['compile_s'],
                      toy['jit_times_s'], toy['eager_times_s'], contention(before, cpu_snapshot(), os.cpu_count() or 1),
                      same_result=toy['same_result'])]
  if not with_model:
    return out

  config = _seq2seq_attention_config()
  vocab, (batch, src_len, steps, width) = 14, ((2, 6, 4, 2) if tiny else (32, SEQ2SEQ_SOURCE, SEQ2SEQ_SOURCE + 1, 4))
  from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
  model = build_model(config.model, data_lib.DatasetInfo('stand-in', 'classification', (src_len,), vocab, {}))
  b = seq2seq_batch(np.random.default_rng(0), batch, src_len, vocab)
  x, pads = jax.numpy.asarray(b['inputs']), jax.numpy.asarray(b['inputs_paddings'])
  params = jax.jit(model.init)(jax.random.key(0), x, pads, b['decoder_inputs'])['params']
  gen = jax.jit(lambda p, x, pads: model.apply({'params': p}, x, pads, beam_width=width, max_length=steps,
                                               method='generate'))
  # the decoding protocol's hook (jaxdl.models.decoding), as generate uses it: the one-step decoder and start state
  step = jax.jit(model.apply({'params': params}, x, pads, steps, method='decode_start')[0])
  start = jax.jit(lambda p, x, pads: beam_lib.tile_beams(model.apply({'params': p}, x, pads, steps,
                                                                     method='decode_start')[1], width))
  state = jax.tree.map(np.asarray, start(params, x, pads))

  def reference():
    return beam_lib.beam_search_reference(step, state, batch_size=batch, beam_width=width, max_len=steps, bos_id=BOS,
                                          eos_id=EOS, pad_id=PAD)
  compile_s, jt, rt, cont, jax_out, ref_out = _alternate(lambda: gen(params, x, pads), reference, repeats)
  out.append(_rate_record('beam_search', f'seq2seq_attention generate (batch {batch}, beam {width}, {steps} steps)',
                          'sequences/s', batch, 'jit Seq2Seq.generate', 'beam_search_reference over the jitted '
                          'one-step decoder', compile_s, jt, rt, cont,
                          same_result_fraction=float(np.mean(np.all(np.asarray(jax_out) == ref_out.sequences[:, 0],
                                                                    axis=1)))))
  return out


CTC_ALPHABET = ('_', ' ', *'abcdefghijklmnopqrstuvwxyz', "'")   # blank 0, space 1: K = 29 (DeepSpeech's)


def _ctc_inputs(rng, batch: int, frames: int, order: int = 3):
  """Peaky random CTC log-probs (B, T, K) (blank favoured, as a trained model's), lengths of 60-100% of T, and a
  random character n-gram table (K,)*order of natural-log probabilities."""
  k = len(CTC_ALPHABET)
  logits = 3.0 * rng.standard_normal((batch, frames, k)).astype(np.float32)
  logits[..., 0] += 3.0
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  lengths = rng.integers(max(1, int(0.6 * frames)), frames + 1, batch).astype(np.int32)
  table = rng.standard_normal((k,) * order).astype(np.float32)
  table -= np.log(np.exp(table).sum(-1, keepdims=True))
  return log_probs.astype(np.float32), lengths, table


def throughput_ctc_decode(repeats: int, tiny: bool = False) -> list[dict]:
  """Utterances/s of jaxdl.speech.decoding's jit `batched_prefix_beam_search` (the whole batch in one call) vs the
  host `prefix_beam_search` (one utterance at a time): 29 characters, 100 frames (60-100 valid), beam 8, batch
  32; without a language model, and with a character trigram (DenseCharLM: α 0.5, β 1, word separator ' ')."""
  from jaxdl.speech import decoding  # pylint: disable=g-import-not-at-top
  batch, frames, width = (2, 12, 3) if tiny else (32, 100, 8)
  log_probs, lengths, table = _ctc_inputs(np.random.default_rng(0), batch, frames)
  out = []
  for case, lm in (('no LM', False), ('char trigram LM', True)):
    kw = dict(alpha=0.5, beta=1.0, space_id=1) if lm else {}
    host_lm = decoding.DenseCharLM(table, CTC_ALPHABET) if lm else None

    def jit_fn(kw=kw, lm=lm):
      return decoding.batched_prefix_beam_search(log_probs, lengths, beam_width=width,
                                                 lm_table=table if lm else None, **kw)

    def ref_fn(kw=kw, host_lm=host_lm):
      return [decoding.prefix_beam_search(log_probs[i], width, length=int(lengths[i]), n_best=1, lm=host_lm,
                                          alphabet=CTC_ALPHABET if host_lm else None, **kw)[0][0]
              for i in range(batch)]
    compile_s, jt, rt, cont, (ids, lens, _), ref = _alternate(jit_fn, ref_fn, repeats)
    ids, lens = np.asarray(ids), np.asarray(lens)
    agree = np.mean([tuple(ids[i, 0, :lens[i, 0]]) == tuple(ref[i]) for i in range(batch)])
    out.append(_rate_record('ctc_decode', f'{case} (batch {batch}, {frames} frames, {len(CTC_ALPHABET)} classes, '
                            f'beam {width})', 'utterances/s', batch, 'jit batched_prefix_beam_search',
                            'prefix_beam_search (host, per utterance)', compile_s, jt, rt, cont,
                            same_best_fraction=float(agree)))
  return out


def throughput_ctc_grad(repeats: int, tiny: bool = False) -> list[dict]:
  """Utterances/s of the CTC loss forward + gradient w.r.t. the logits (the issue's measure, no model around it):
  jit jax.value_and_grad of jaxdl.speech.ctc.ctc_loss (optax.ctc_loss inside, plus the feasibility masking) and of
  bare optax.ctc_loss, vs torch.nn.functional.ctc_loss (log_softmax + loss, backward) on the same arrays: batch 32,
  200 frames, 32 classes (blank 0), 40 labels, mean over utterances. Needs torch for the reference."""
  import optax  # pylint: disable=g-import-not-at-top
  from jaxdl.speech.ctc import ctc_loss  # pylint: disable=g-import-not-at-top
  torch = _torch()
  B, T, K, N = (2, 12, 6, 4) if tiny else (32, 200, 32, CTC_LABELS)
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((B, T, K)).astype(np.float32)
  labels = rng.integers(1, K, (B, N)).astype(np.int32)
  lpad, ypad = np.zeros((B, T), np.float32), np.zeros((B, N), np.float32)
  x, y, lp, yp = (jax.numpy.asarray(a) for a in (logits, labels, lpad, ypad))
  ours = jax.jit(jax.value_and_grad(lambda z: jax.numpy.mean(ctc_loss(z, lp, y, yp, reduction='none')['loss'])))
  bare = jax.jit(jax.value_and_grad(lambda z: jax.numpy.mean(optax.ctc_loss(z, lp, y, yp))))
  ref_fn = None
  if torch is not None:
    tx = torch.tensor(logits.transpose(1, 0, 2), requires_grad=True)          # (T, B, K)
    ty = torch.tensor(labels, dtype=torch.long)
    tlen, ylen = torch.full((B,), T, dtype=torch.long), torch.full((B,), N, dtype=torch.long)

    def ref_fn():
      tx.grad = None
      loss = torch.nn.functional.ctc_loss(tx.log_softmax(-1), ty, tlen, ylen, blank=0, reduction='sum') / B
      loss.backward()
      return float(loss.detach()), tx.grad.numpy().transpose(1, 0, 2)
  out = []
  for case, fn in (('jaxdl.speech.ctc.ctc_loss', ours), ('bare optax.ctc_loss', bare)):
    compile_s, jt, rt, cont, (v, g), ref = _alternate(lambda fn=fn: fn(x), ref_fn, repeats)
    extra = {}
    if ref is not None:
      extra = {'loss_diff': abs(float(v) - ref[0]), 'grad_max_abs_diff': float(np.max(np.abs(np.asarray(g) - ref[1])))}
    out.append(_rate_record('ctc_grad', f'{case}: forward + gradient (batch {B}, {T} frames, {K} classes, {N} '
                            'labels)', 'utterances/s', B, f'jit value_and_grad({case})',
                            'torch.nn.functional.ctc_loss + backward' if torch is not None else None,
                            compile_s, jt, rt, cont, **extra))
  return out


def throughput_frontend(repeats: int, tiny: bool = False) -> list[dict]:
  """Hours of audio per second of jaxdl.speech.features (jit, the whole batch in one call) vs librosa (its
  multichannel call on the same (B, T) batch; skipped if librosa is not installed): the course's `log_mel` (25 / 15
  ms STFT, 512-point FFT, 80 Slaney mel filters, ln, per-utterance normalisation) and the power `spectrogram`;
  16 signals of 10 s at 16 kHz (tones + noise)."""
  import functools  # pylint: disable=g-import-not-at-top
  from jaxdl.speech import features  # pylint: disable=g-import-not-at-top
  try:
    import librosa  # pylint: disable=g-import-not-at-top
  except ImportError:
    librosa = None
  sr, (batch, seconds) = 16000, ((2, 0.25) if tiny else (16, 10.0))
  rng = np.random.default_rng(0)
  t = np.arange(int(sr * seconds)) / sr
  x = (np.sin(2 * np.pi * rng.uniform(100, 3000, (batch, 1)) * t) + 0.1 * rng.standard_normal((batch, t.size)))
  x = x.astype(np.float32)
  p = features.frame_params(sr)   # 400-sample window, 240 hop, 512-point FFT
  stft_kw = dict(n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length, window='hann', center=True,
                 pad_mode='constant')
  hours = batch * seconds / 3600.0
  jit_log_mel = jax.jit(functools.partial(features.log_mel, sample_rate=sr, n_mels=80))
  jit_spec = jax.jit(functools.partial(features.spectrogram, **stft_kw))

  def librosa_log_mel():
    s = librosa.feature.melspectrogram(y=x, sr=sr, n_mels=80, htk=False, norm='slaney', power=2.0, **stft_kw)
    f = np.log(np.maximum(s, 1e-6))                               # (B, n_mels, F)
    mean, std = f.mean(-1, keepdims=True), f.std(-1, keepdims=True)
    return np.swapaxes((f - mean) / np.maximum(std, 1e-5), 1, 2)

  def librosa_spec():
    return np.swapaxes(np.abs(librosa.stft(x, **stft_kw)) ** 2, 1, 2)

  out = []
  for case, jit_fn, ref_fn in (('log_mel (80 mels, ln, per-utterance normalisation)', lambda: jit_log_mel(x)[0],
                                librosa_log_mel),
                               ('power spectrogram (257 bins)', lambda: jit_spec(x), librosa_spec)):
    compile_s, jt, rt, cont, jax_out, ref_out = _alternate(jit_fn, ref_fn if librosa else None, repeats)
    extra = {}
    if ref_out is not None:
      a, r = np.asarray(jax_out), ref_out
      n = min(a.shape[1], r.shape[1])
      extra['max_abs_diff'] = float(np.max(np.abs(a[:, :n] - r[:, :n])) / max(1.0, float(np.max(np.abs(r)))))
    out.append(_rate_record('frontend', f'{case}: {batch} × {seconds:g} s at {sr} Hz', 'audio hours/s', hours,
                            'jit jaxdl.speech.features', f'librosa {librosa.__version__}' if librosa else None,
                            compile_s, jt, rt, cont, **extra))
  return out


THROUGHPUTS: dict[str, Throughput] = {
    'beam_search': Throughput('beam search, jit vs eager reference: toy decoder and seq2seq generate (beam 4)',
                              throughput_beam_search),
    'ctc_decode': Throughput('CTC prefix beam search, jit batched vs host, without and with a char trigram LM',
                             throughput_ctc_decode),
    'frontend': Throughput('speech front end (log_mel, spectrogram), jit batched vs librosa', throughput_frontend),
    'ctc_grad': Throughput('CTC loss forward + gradient alone, jit (jaxdl and bare optax) vs torch ctc_loss',
                           throughput_ctc_grad),
}


def format_throughput_table(results: list[dict]) -> str:
  rows = [('decoding', 'case', 'unit', 'jax', 'reference', 'ratio', 'jax compile s')]
  for r in results:
    ref = r['reference']
    rows.append((r['workload'], r['case'], r['unit'], f'{r["jax"]["per_s"]:.4g}',
                 f'{ref["per_s"]:.4g}' if ref else '-', f'{r["ratio"]:.2f}x' if r['ratio'] else '-',
                 f'{r["jax"]["compile_time_s"]:.2f}'))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  return '\n'.join('  '.join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                   for row in rows)


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
  p.add_argument('--cpu-devices', type=int, default=None)
  args = p.parse_args(argv)
  names: list[str] = []
  for w in args.workloads:  # a group name (e.g. `cnn`) stands for its workloads
    for n in GROUPS.get(w, (w,)):
      if n not in WORKLOADS and n not in THROUGHPUTS:
        raise UserError(f'unknown workload {w!r}', 'one of: ' + ', '.join([*WORKLOADS, *THROUGHPUTS, *GROUPS]),
                        'run `jaxdl bench` with no workload for all of them')
      if n not in names:
        names.append(n)
  args.workloads = names
  for flag, low in (('repeats', 1), ('steps', 1), ('warmup', 0), ('batch_size', 1), ('peak_tflops', 1e-9),
                    ('cpu_devices', 1)):
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
         '                   [--batch-size N] [--peak-tflops X] [--cpu-devices N]\n'
         '  --cpu-devices N: run JAX on N CPU devices (data parallel, one thread each; default 1)\n'
         '  workloads: ' + ', '.join(WORKLOADS) + ' (default: ' + ', '.join(DEFAULT_WORKLOADS) + ')\n'
         '  decoding throughput (items/s vs a reference; --repeats applies): ' + ', '.join(THROUGHPUTS) + '\n'
         '  groups: ' + ', '.join(f'{g} = {" ".join(ws)}' for g, ws in GROUPS.items()))


def use_cpu_devices(n: int) -> None:
  """Splits the CPU into n JAX devices (jax_num_cpu_devices, as JAX_NUM_CPU_DEVICES=n does): the trainer's step
  then runs data-parallel over a ('data',) mesh of n devices, each executing its slice of the batch on its own
  thread. XLA:CPU runs a while loop's body (a recurrence's time steps) on one thread, so on a multi-core CPU this is
  what puts every core to work on a sequence model; tiny steps (mlp_digits) lose to the all-reduce."""
  try:
    jax.config.update('jax_num_cpu_devices', n)
  except RuntimeError as e:
    raise UserError(f'--cpu-devices={n}: JAX has already started its backends', 'the option before any JAX work',
                    f'set JAX_NUM_CPU_DEVICES={n} in the environment instead') from e


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if '-h' in argv or '--help' in argv:
    print(USAGE)
    return 0
  args = parse_args(argv)
  if args.cpu_devices:
    use_cpu_devices(args.cpu_devices)
  torch = None if args.no_torch else _torch()
  old_threads = torch.get_num_threads() if torch is not None else None
  if torch is not None:
    torch.set_num_threads(_num_threads())  # all the cores JAX's CPU backend uses
  try:
    results = [bench_workload(w, repeats=args.repeats, steps=args.steps, warmup=args.warmup,
                              use_torch=not args.no_torch, batch_size=args.batch_size,
                              peak_tflops=args.peak_tflops) for w in args.workloads if w in WORKLOADS]
    rates = [r for w in args.workloads if w in THROUGHPUTS for r in THROUGHPUTS[w].run(args.repeats, False)]
  finally:
    if torch is not None:
      torch.set_num_threads(old_threads)
  results += rates
  text = json.dumps(results, indent=2)
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + '\n', encoding='utf-8')
  trains = [r for r in results if r.get('kind') != 'throughput']
  if trains:
    print(format_table(trains), file=sys.stderr)
  if rates:
    print(format_throughput_table(rates), file=sys.stderr)
  if results:
    devices = results[0].get('num_devices') or jax.device_count()
    print(f'cpu: {results[0]["cpu"]}, {_num_threads()} threads'
          + (f', {devices} {results[0].get("platform", "cpu")} devices (a data-parallel mesh)' if devices > 1 else '')
          + f'; host memory: {runtime.host_memory_policy()} (jaxdl.runtime)', file=sys.stderr)
  worst = max(results, key=lambda r: sum(v or 0.0 for v in r['cpu_contention'].values()), default=None)
  if worst is not None and sum(v or 0.0 for v in worst['cpu_contention'].values()) >= CONTENTION_WARNING:
    c = worst['cpu_contention']
    print(f'note: while {worst["workload"]} was timed, other processes used {c["other_processes"]:.0%} of the '
          f'CPU and the hypervisor stole {c["stolen"] or 0:.0%}: these timings are noisy (rerun on a quiet machine)',
          file=sys.stderr)
  return 0
