"""DeepSpeech2 (Amodei et al. 2015; seed 000 "DEEPSPEECH : ASR WITH CONV-BIGRU-CTC"; claims S4, S5, S10).

Features [B, T, F] (frames × mel/spectrogram bins) and their paddings [B, T] (1.0 = padded frame) ->

  2-D convolutions over time × frequency, each + sequence-wise batch norm + clipped ReLU min(max(x, 0), 20)
  -> (optional Dense projection) -> a stack of bidirectional GRU (or LSTM) layers, each optionally preceded by
  sequence-wise batch norm and wrapped in a residual connection -> (unidirectional: the lookahead convolution,
  DS2 §3.5) -> (optional FFN blocks) -> (optional FC + BN + clipped ReLU) -> (optional LayerNorm) -> Dense(K).

Output: {'logits': [B, T', K], 'paddings': [B, T']} — a dict, so that the `ctc` loss (jaxdl/losses.py) sees the
output frames' paddings. The convolutions stride in time: each maps T -> ⌈T / s_t⌉ (explicit padding
((k−1)//2, k//2), which makes output t' read the same input frames whatever the padded length) and the paddings
follow as `paddings[:, ::s_t]`: frame t' is padded iff input frame s_t·t' is, so a valid length L -> ⌈L / s_t⌉.

Padding never leaks into valid frames: every layer's output is zeroed on padded frames, the recurrent layers are
padding-aware (jaxdl.nn.recurrent: the backward direction starts at each utterance's last valid frame), and batch
norm takes its statistics over VALID frames only (sequence-wise BN, Amodei et al. §3.2; the masked BN of MLCommons
AlgoPerf / lingvo; here flax's BatchNorm with `mask`). So in evaluation each utterance of a padded batch gives
exactly what it gives alone, and in training the valid frames' statistics do not depend on how much padding there is.
Under jit with a sharded batch the statistics are over the GLOBAL batch (as jaxdl.nn.norms says).

CTC head: K = num_outputs classes with the blank at id 0 — the Vocabulary's PAD id, which `Vocabulary.decode`
strips, so decoded blanks vanish; real symbols start at 4 (after PAD, BOS, EOS, UNK, never targets).
`generate` decodes on device: best path (frame argmax, collapse repeats, drop blanks, left-packed, PAD = 0 after) for
beam_width 1, else jaxdl.speech.decoding.batched_prefix_beam_search without LM (LM fusion is host-side, transcribe).

Presets (registered names; every field stays overridable):
- `ds2_lab`: the course lab (20 mels; conv 41×11 stride 2×2 and 21×11 stride 2×1, 32 channels, conv bias + BN,
  hardtanh 0–20; 4×BiGRU(1024) PyTorch two-bias, outputs concatenated; Linear(2048, 44)): 65,271,116 parameters =
  conv1 14,464 + BN 64 + conv2 236,576 + BN 64 + GRU 64,929,792 + linear 90,156 (S5). The counts pin the reading
  of "41×11 stride 2×2 / 21×11 stride 2×1" as (time × frequency): the first GRU's input is 320 = 32 channels × 10
  bins (20 mels -> 10 -> 10); read as (frequency × time) it would be 32 × 5 = 160 and the GRU 63,946,752 params.
- `ds2_paper`: DS2 Table 2's 3-layer 2-D front end (32, 32, 96 channels; 41×11, 21×11, 21×11 over frequency ×
  time, strides 2×2, 2×1, 2×1 as deepspeech.pytorch reads them, i.e. ×2 in time) on 161 spectrogram bins, 7
  BiGRU(1280) with summed directions (Deep Speech 1, eq. 3) and sequence-wise BN on each layer's input, FC(1280)
  + BN, 29 characters. Its count is ≈ 1.4e8 parameters, not the notes' "35 M" (S4; see experiments/
  deepspeech2_paper.py).
- `algoperf_deepspeech`: AlgoPerf's JAX DeepSpeech (80 mel bins; two 3×3 stride-2 conv layers of 512 channels
  with ReLU, Dense 512; 6 residual BiLSTM(256 per direction) layers each after masked BN; 3 residual FFN blocks
  (BN, Dense 512, ReLU); LayerNorm; Dense 1024). Its LSTM has one bias (flax's OptimizedLSTMCell). AlgoPerf pads
  'SAME' (which depends on the length's parity); here the explicit symmetric padding gives the same shapes and
  count (S10).
- `ds2_small`: 1 conv (8 channels, 11×21 time × frequency, stride 2×2) + 2 BiGRU(128): trains on 2 CPU cores.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.nn import recurrent
from jaxdl.nn.dense import Dense
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS
from jaxdl.speech.ctc import collapse_padded

BLANK = 0                  # the CTC blank = the Vocabulary's PAD id (stripped by decode)
CELLS = ('gru', 'lstm')
MERGES = ('concat', 'sum')
FINAL_NORMS = ('none', 'layer')


def clipped_relu(x, clip: float):
  """Hannun et al. 2014 / DS2: min(max(x, 0), clip) (PyTorch's Hardtanh(0, 20)); clip 0 = plain ReLU."""
  return jnp.clip(x, 0, clip) if clip else jax.nn.relu(x)


def conv_output_paddings(paddings, stride: int):
  """Paddings after a convolution of time stride s with padding ((k−1)//2, k//2): frame t' reads input frame s·t'."""
  return paddings[:, ::stride]


def greedy_decode(logits, paddings, blank: int = BLANK):
  """Best path on device: B(argmax_π p(π|x)) for each utterance, left-packed into [B, T'] int32, PAD = 0 after.

  A frame is kept when it is valid, not blank, and not a repeat of the previous frame's argmax (collapse map B:
  repeats first, then blanks, so "a a" with a blank between stays two a's)."""
  best = jnp.argmax(logits, -1).astype(jnp.int32)                            # [B, T]
  ids, out_paddings = collapse_padded(best, paddings, blank)
  return jnp.where(out_paddings > 0, 0, ids)


class MaskedBatchNorm(nn.Module):
  """Sequence-wise batch norm (Amodei et al. 2015 §3.2): statistics per feature over the valid frames of the batch
  only (padded frames contribute nothing to the mean or variance), running averages at evaluation; padded frames
  of the output are 0. x: [B, T, ...features], valid: [B, T] bool."""
  momentum: float = 0.99
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, valid, train: bool):
    mask = valid.reshape(valid.shape + (1,) * (x.ndim - 2))
    y = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=self.epsilon,
                     use_fast_variance=False, name='bn')(x, mask=mask)
    return jnp.where(mask, y, jnp.zeros_like(y))


class Lookahead(nn.Module):
  """DS2 §3.5 row convolution for a unidirectional model: r_{t,i} = Σ_{j=0..τ} W_{j,i} h_{t+j,i} (τ future frames,
  one weight per feature and offset); frames after the end are zeros (padded frames already are)."""
  context: int

  @nn.compact
  def __call__(self, h):
    tau = self.context
    w = self.param('kernel', nn.initializers.lecun_normal(in_axis=0, out_axis=-1), (tau + 1, h.shape[-1]))
    hp = jnp.pad(h, ((0, 0), (0, tau), (0, 0)))
    T = h.shape[1]
    return sum(w[j].astype(h.dtype) * hp[:, j:j + T] for j in range(tau + 1))


@MODELS.register('deepspeech2', example_input_shape=(16, 20), example_target_shape=(8,),
                 description='DeepSpeech2: conv (time × freq) + BN + clipped ReLU, Bi-GRU/LSTM stack with masked BN, '
                 'CTC head (blank 0); outputs {logits, paddings}')
class DeepSpeech2(nn.Module):
  """DeepSpeech2 / CTC acoustic model. Call: `model.apply(vars, inputs [B, T, F], train=..., inputs_paddings=[B, T])`
  -> {'logits': [B, T', K], 'paddings': [B, T']}. Fields (all overridable in config.model):

  num_outputs      K classes including the blank (id 0).
  conv_features    channels of each 2-D convolution; conv_kernels / conv_strides: per conv (time, frequency).
  conv_bias        conv biases (the lab's PyTorch convs have them although BN follows); conv_norm: BN after a conv.
  clip             clipped-ReLU ceiling (20 = the notes' min(max(x, 0), 20)); 0 = plain ReLU.
  proj_features    a Dense projection after the convolutions (AlgoPerf: 512); 0 = none.
  rnn_cell         'gru' | 'lstm'; rnn_features: units per direction; rnn_layers; bidirectional; merge 'concat'|'sum'.
  two_bias         PyTorch's two recurrent biases (False: one, as DS2's equations / flax's LSTM).
  rnn_norm         masked BN on each recurrent layer's input; residual: x + layer(x) (AlgoPerf).
  lookahead        τ future frames of the lookahead convolution after the stack (unidirectional only); 0 = none.
  ffn_layers       residual FFN blocks (BN, Dense, clipped ReLU) after the stack (AlgoPerf: 3, width = its input).
  fc_features      DS2's fully connected layer + BN + clipped ReLU before the output; 0 = none.
  final_norm       'none' | 'layer' (AlgoPerf's LayerNorm before the output Dense).
  bn_momentum, bn_eps, dropout_rate (after the convolutions and between recurrent layers, in training).
  """
  num_outputs: int = 29
  conv_features: Sequence[int] = (8,)
  conv_kernels: Sequence[Sequence[int]] = ((11, 21),)
  conv_strides: Sequence[Sequence[int]] = ((2, 2),)
  conv_bias: bool = False
  conv_norm: bool = True
  clip: float = 20.0
  proj_features: int = 0
  rnn_cell: str = 'gru'
  rnn_features: int = 128
  rnn_layers: int = 2
  bidirectional: bool = True
  merge: str = 'concat'
  two_bias: bool = True
  rnn_norm: bool = True
  residual: bool = False
  lookahead: int = 0
  ffn_layers: int = 0
  fc_features: int = 0
  final_norm: str = 'none'
  bn_momentum: float = 0.99
  bn_eps: float = 1e-5
  dropout_rate: float = 0.0

  batch_keys = ('inputs_paddings',)

  def __post_init__(self):
    super().__post_init__()
    n = len(self.conv_features)
    if len(self.conv_kernels) != n or len(self.conv_strides) != n or any(
        len(k) != 2 or len(s) != 2 or min(*k, *s) < 1 for k, s in zip(self.conv_kernels, self.conv_strides)):
      raise UserError(f'conv_features {tuple(self.conv_features)}, conv_kernels {tuple(self.conv_kernels)}, '
                      f'conv_strides {tuple(self.conv_strides)}', 'one (time, frequency) pair of positive ints per '
                      'conv channel count', 'fix config.model.conv_kernels / conv_strides')
    for name, value, allowed in (('rnn_cell', self.rnn_cell, CELLS), ('merge', self.merge, MERGES),
                                 ('final_norm', self.final_norm, FINAL_NORMS)):
      if value not in allowed:
        raise UserError(f'config.model.{name}={value!r}', f'one of {allowed}', f'fix --config.model.{name}')
    if self.lookahead and self.bidirectional:
      raise UserError(f'lookahead={self.lookahead} with a bidirectional model', 'lookahead only for bidirectional='
                      'False (a bidirectional model already sees the future)', 'set lookahead=0 or bidirectional=False')

  # ---- shapes (no parameters: callable on an unbound model)
  @property
  def time_strides(self) -> tuple[int, ...]:
    return tuple(int(s[0]) for s in self.conv_strides)

  def output_lengths(self, lengths):
    """Valid output frames for `lengths` valid input frames: ⌈L / s⌉ per convolution."""
    for s in self.time_strides:
      lengths = -(-lengths // s)
    return lengths

  def output_paddings(self, inputs_paddings):
    """The logits' paddings [B, T'] for input paddings [B, T] (what __call__ returns as 'paddings')."""
    for s in self.time_strides:
      inputs_paddings = conv_output_paddings(inputs_paddings, s)
    return inputs_paddings

  def _cell(self):
    cls = recurrent.GRUCell if self.rnn_cell == 'gru' else recurrent.LSTMCell
    return cls(self.rnn_features, two_bias=self.two_bias)

  def _bn(self, name):
    return MaskedBatchNorm(self.bn_momentum, self.bn_eps, name=name)

  @nn.compact
  def __call__(self, inputs, train: bool = False, inputs_paddings=None):
    x = as_float(inputs)
    if x.ndim != 3:
      raise UserError(f'DeepSpeech2 input of shape {x.shape}', '(batch, frames, features)',
                      'pass spectrogram/mel features as [B, T, F]')
    pad = jnp.zeros(x.shape[:2], x.dtype) if inputs_paddings is None else inputs_paddings
    valid = pad < 0.5
    zero = lambda v, m: jnp.where(m.reshape(m.shape + (1,) * (v.ndim - 2)), v, jnp.zeros_like(v))
    h = zero(x, valid)[..., None]                                            # [B, T, F, 1]
    for i, (feats, k, s) in enumerate(zip(self.conv_features, self.conv_kernels, self.conv_strides)):
      h = nn.Conv(feats, tuple(k), tuple(s), padding=[((k[0] - 1) // 2, k[0] // 2), ((k[1] - 1) // 2, k[1] // 2)],
                  use_bias=self.conv_bias, name=f'conv{i + 1}')(h)
      pad = conv_output_paddings(pad, s[0])
      valid = pad < 0.5
      if self.conv_norm:
        h = self._bn(f'conv{i + 1}_bn')(h, valid, train)
      h = zero(clipped_relu(h, self.clip), valid)
    B, T = h.shape[:2]
    h = h.reshape(B, T, -1)                                                  # [B, T', F'·C]
    if self.proj_features:
      h = zero(Dense(self.proj_features, name='proj')(h), valid)
    if self.dropout_rate:
      h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    lengths = jnp.sum(valid, axis=1).astype(jnp.int32)
    for i in range(self.rnn_layers):
      y = self._bn(f'rnn{i + 1}_bn')(h, valid, train) if self.rnn_norm else h
      if self.bidirectional:
        y, _ = recurrent.Bidirectional(self._cell(), merge=self.merge, name=f'rnn{i + 1}')(y, lengths, train=train)
      else:
        y, _ = recurrent.RNN(self._cell(), name=f'rnn{i + 1}')(y, lengths, train=train)
      h = h + y if self.residual else y
      if self.dropout_rate and i < self.rnn_layers - 1:
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    if self.lookahead:
      h = zero(clipped_relu(Lookahead(self.lookahead, name='lookahead')(h), self.clip), valid)
    for i in range(self.ffn_layers):
      y = Dense(h.shape[-1], name=f'ffn{i + 1}')(self._bn(f'ffn{i + 1}_bn')(h, valid, train))
      h = h + zero(clipped_relu(y, self.clip), valid)
    if self.fc_features:
      y = Dense(self.fc_features, use_bias=False, name='fc')(h)              # BN follows: its β is the bias
      h = zero(clipped_relu(self._bn('fc_bn')(y, valid, train), self.clip), valid)
    if self.final_norm == 'layer':
      h = nn.LayerNorm(name='final_ln')(h)
    logits = Dense(self.num_outputs, name='output')(h)
    return {'logits': logits, 'paddings': pad.astype(logits.dtype)}

  def generate(self, inputs, inputs_paddings=None, *, beam_width: int = 1, max_length: int = 0,
               length_penalty: float = 0.0):
    """Transcription ids [B, T'] int32 (PAD = blank = 0 after the end; `Vocabulary.decode` gives the text).

    beam_width 1: best path (`greedy_decode`); > 1: the jit prefix beam search without LM, its best hypothesis.
    max_length > 0 keeps the first max_length ids. length_penalty is unused (CTC has no length bias)."""
    del length_penalty
    out = self(inputs, train=False, inputs_paddings=inputs_paddings)
    logits, pad = out['logits'].astype(jnp.float32), out['paddings']
    if beam_width <= 1:
      ids = greedy_decode(logits, pad)
    else:
      from jaxdl.speech.decoding import batched_prefix_beam_search  # pylint: disable=g-import-not-at-top
      lengths = jnp.sum(pad < 0.5, axis=1).astype(jnp.int32)
      ids, _, _ = batched_prefix_beam_search(jax.nn.log_softmax(logits), lengths, beam_width=beam_width, blank=BLANK)
      ids = ids[:, 0].astype(jnp.int32)
    return ids[:, :max_length] if max_length else ids


@MODELS.register('ds2_small', example_input_shape=(16, 20), example_target_shape=(8,),
                 description='small DeepSpeech2 for CPU: 1 conv (8 ch, 11×21, stride 2×2) + BN, 2×BiGRU(128), CTC')
class DS2Small(DeepSpeech2):
  """`deepspeech2` with its defaults: 1 conv + 2 BiGRU(128) + masked BN, about 0.6 M parameters on 80 features."""


@MODELS.register('ds2_lab', example_input_shape=(16, 20), example_target_shape=(4,), heavy=True,
                 description='course lab CTC model (S5): conv 41×11/2×2, 21×11/2×1 (time × freq), 32 ch, BN, '
                 'hardtanh, 4×BiGRU(1024), Linear(44): 65,271,116 params at 20 mels')
class DS2Lab(DeepSpeech2):
  """The course lab's model (20 mels, 44 symbols): 65,271,116 parameters; see the module docstring (S5)."""
  num_outputs: int = 44
  conv_features: Sequence[int] = (32, 32)
  conv_kernels: Sequence[Sequence[int]] = ((41, 11), (21, 11))
  conv_strides: Sequence[Sequence[int]] = ((2, 2), (2, 1))
  conv_bias: bool = True
  rnn_features: int = 1024
  rnn_layers: int = 4
  rnn_norm: bool = False


@MODELS.register('ds2_paper', example_input_shape=(16, 161), example_target_shape=(8,), heavy=True,
                 description='DeepSpeech2 English (S4): 3 conv (32, 32, 96), 7 BiGRU(1280) summed, FC(1280)+BN, '
                 '29 chars, on 161 spectrogram bins')
class DS2Paper(DeepSpeech2):
  """Amodei et al. 2015's English model as the notes list it (S4); see the module docstring."""
  conv_features: Sequence[int] = (32, 32, 96)
  conv_kernels: Sequence[Sequence[int]] = ((11, 41), (11, 21), (11, 21))
  conv_strides: Sequence[Sequence[int]] = ((2, 2), (1, 2), (1, 2))
  rnn_features: int = 1280
  rnn_layers: int = 7
  merge: str = 'sum'
  two_bias: bool = False
  fc_features: int = 1280


@MODELS.register('algoperf_deepspeech', example_input_shape=(16, 80), example_target_shape=(4,), heavy=True,
                 description='MLCommons AlgoPerf JAX DeepSpeech (S10): 2 conv 3×3/2 ×512, Dense 512, 6 residual '
                 'BiLSTM(256) + masked BN, 3 FFN, LayerNorm, vocab 1024')
class AlgoPerfDeepSpeech(DeepSpeech2):
  """AlgoPerf's librispeech_deepspeech JAX model layout (S10), without its in-model front end and SpecAugment."""
  num_outputs: int = 1024
  conv_features: Sequence[int] = (512, 512)
  conv_kernels: Sequence[Sequence[int]] = ((3, 3), (3, 3))
  conv_strides: Sequence[Sequence[int]] = ((2, 2), (2, 2))
  conv_bias: bool = True
  conv_norm: bool = False
  clip: float = 0.0
  proj_features: int = 512
  rnn_cell: str = 'lstm'
  rnn_features: int = 256
  rnn_layers: int = 6
  two_bias: bool = False
  residual: bool = True
  ffn_layers: int = 3
  final_norm: str = 'layer'
  bn_momentum: float = 0.999
  bn_eps: float = 1e-3


def expected_param_count(model: DeepSpeech2, num_features: int) -> int:
  """The parameter count from the layer formulas (an independent check of the built model): conv k_t·k_f·C_in·C_out
  (+ C_out bias) (+ 2·C_out BN); recurrent G·H·(D + H) + biases per direction (torch_param_count for two biases);
  BN 2·D; Dense D_in·D_out + D_out."""
  total, c_in, f = 0, 1, num_features
  for c, k, s in zip(model.conv_features, model.conv_kernels, model.conv_strides):
    total += k[0] * k[1] * c_in * c + (c if model.conv_bias else 0) + (2 * c if model.conv_norm else 0)
    f = -(-f // s[1])
    c_in = c
  d = f * c_in
  if model.proj_features:
    total += d * model.proj_features + model.proj_features
    d = model.proj_features
  gates = 3 if model.rnn_cell == 'gru' else 4
  dirs = 2 if model.bidirectional else 1
  H = model.rnn_features
  for _ in range(model.rnn_layers):
    total += 2 * d if model.rnn_norm else 0
    if model.two_bias:
      total += recurrent.torch_param_count(model.rnn_cell, d, H, 1, model.bidirectional)
    else:   # one bias per gate; the GRU keeps b_hn apart (the reset gate multiplies it)
      total += dirs * (gates * H * (d + H) + gates * H + (H if model.rnn_cell == 'gru' else 0))
    d = H * (dirs if model.merge == 'concat' else 1) if not model.residual else d
  if model.lookahead:
    total += (model.lookahead + 1) * d
  total += model.ffn_layers * (2 * d + d * d + d)
  if model.fc_features:
    total += d * model.fc_features + 2 * model.fc_features
    d = model.fc_features
  if model.final_norm == 'layer':
    total += 2 * d
  return total + d * model.num_outputs + model.num_outputs
