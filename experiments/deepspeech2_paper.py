"""DeepSpeech2 as the notes list it (seed 000 "DEEPSPEECH : ASR WITH CONV-BIGRU-CTC"; Amodei et al. 2015): the count
of the listed configuration, the training recipe as a config, and the published LibriSpeech WERs (needs data).

Reproduces: S4 (3 conv2d with clipped ReLU, 7 BiGRU(1280), FC + BN, CTC, "35 M parameters"; recipe: SGD with
            Nesterov momentum 0.99, gradient clipping 400, lr ≈ 1e-4 × 0.8 per epoch, SortaGrad, noise): the model
            `ds2_paper` (jaxdl/models/deepspeech.py) counted with jax.eval_shape, next to the notes' "35 M".
            S6 (DS2 LibriSpeech test-clean 5.33 / test-other 13.25 WER; a JAX DeepSpeech reaches test WER 0.0741):
            needs LibriSpeech (960 h) and many accelerator-days; reported as needs-data with the command.
Model:      ds2_paper: DS2 Table 2's 2-D front end (32, 32, 96 channels; 41×11, 21×11, 21×11 over frequency × time,
            strides 2×2, 2×1, 2×1 — ×2 in time), 7 BiGRU(1280) with summed directions and sequence-wise (masked) BN
            on each layer's input, FC(1280) + BN + clipped ReLU, output 29 characters (blank, a-z, space, ').
            On the paper's 161-bin spectrogram (20 ms / 10 ms, n_fft 320) it has 146,008,189 parameters.
Recipe:     get_config(): LibriSpeech train-clean-100 from a local folder (jaxdl/data/speech.py), 80 log-mels over a
            20 ms / 10 ms STFT (the notes: "mel spectrograms"), CTC, Nesterov 0.99, lr 1e-4 × 0.8 per epoch
            (schedule 'step', step_size = one epoch), clip_global_norm 400, SortaGrad (data.sorta_grad), greedy WER.
            Noise augmentation: the LibriSpeech reader has no noise option (jaxdl.speech.augment.add_noise exists;
            the built-in espeak_speech data are generated with noise) — not wired for local corpora.
Command:    jaxdl reproduce deepspeech2_paper --out=report/
            jaxdl summary ds2_paper --input-shape=100,161
            jaxdl train --config=experiments/deepspeech2_paper.py --workdir=runs/ds2_paper \
              --config.data.data_dir=/data/LibriSpeech          (S6: needs LibriSpeech and an accelerator)
Expected:   S4: the listed configuration has ≈ 146 M parameters (≈ 4× the notes' 35 M); S6 needs data.
CPU time:   ≈ 5 s for `reproduce` (shapes only); training: accelerator-days.
"""
from __future__ import annotations

from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.speech.recipe import ds2_recipe

TRAIN_UTTERANCES = 28_539          # LibriSpeech train-clean-100
BATCH = 32
STEPS_PER_EPOCH = -(-TRAIN_UTTERANCES // BATCH)
EPOCHS = 20
SPECTROGRAM_BINS = 161             # DS2: 20 ms windows at 16 kHz, n_fft 320
NOTES_COUNT = 35e6

CLAIMS = {
    'S4': Claim('S4', 'DeepSpeech2: 3 conv2d (clipped ReLU), 7 BiGRU(1280), FC+BN, CTC, beam 500, "35M params"; '
                'Nesterov 0.99, clip 400, lr ≈1e-4 ×0.8/epoch, SortaGrad, noise augmentation',
                '000 (report the count the stated config really has)',
                'the count of ds2_paper (jax.eval_shape) equals the layer formulas and is reported next to 35 M; the '
                'recipe is the config (get_config)'),
    'S6': Claim('S6', 'DS2 LibriSpeech WER test-clean 5.33, test-other 13.25; a JAX DeepSpeech reaches test WER 0.0741',
                'paper, anchor (needs data)', 'word error rate on LibriSpeech test-clean / test-other'),
}


def get_config():
  c = base_config()
  c.model.name = 'ds2_paper'                       # num_outputs = the character vocabulary (blank = PAD = 0)
  c.data.name = 'librispeech'
  c.data.data_dir = ''                             # --config.data.data_dir=/path/to/LibriSpeech
  c.data.splits = ('train-clean-100', 'dev-clean', 'test-clean')
  c.data.train_split = 'train-clean-100'
  c.data.eval_split = 'dev-clean'
  c.data.n_mels = 80
  c.data.window_ms = 20.0
  c.data.hop_ms = 10.0
  ds2_recipe(c, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS, batch_size=BATCH, best_metric='wer')
  c.decode.beam_width = 1
  return c


def width_for(count: float, features: int = SPECTROGRAM_BINS) -> int:
  """The BiGRU width at which the listed shape (3 conv, 7 BiGRU, FC of the same width) has `count` parameters."""
  from jaxdl.models.deepspeech import DS2Paper, expected_param_count  # pylint: disable=g-import-not-at-top
  lo, hi = 1, 1280
  while lo < hi:
    mid = (lo + hi + 1) // 2
    if expected_param_count(DS2Paper(rnn_features=mid, fc_features=mid), features) <= count:
      lo = mid
    else:
      hi = mid - 1
  return lo


def reproduce(ctx):
  from jaxdl.inspect.summary import parameter_table  # pylint: disable=g-import-not-at-top
  from jaxdl.models.deepspeech import DS2Paper, expected_param_count  # pylint: disable=g-import-not-at-top
  model = DS2Paper()
  table = parameter_table(model, (100, SPECTROGRAM_BINS))
  n = table['total_params']
  rows = {r['name']: r['params'] for r in table['layers']}
  gru = sum(v for k, v in rows.items() if k.startswith('rnn') and not k.endswith('_bn/bn'))
  n80 = parameter_table(model, (100, 80))['total_params']
  w = width_for(NOTES_COUNT)
  ok = n == expected_param_count(model, SPECTROGRAM_BINS)
  ctx.log(f'ds2_paper: {n:,} parameters ({gru:,} in the GRUs)')
  s4 = ClaimResult('S4', f'{n:,} parameters on 161 spectrogram bins ({n / 1e6:.1f} M = {n / NOTES_COUNT:.1f}× the '
                   f'notes\' 35 M; GRUs {gru / 1e6:.1f} M); {n80:,} on the config\'s 80 log-mels', verdict(ok),
                   f'7 BiGRU(1280) alone hold {gru / 1e6:.0f} M parameters, so "35 M" cannot be this configuration: '
                   f'the same shape reaches 35 M at a width of about {w} units per direction. The recipe is '
                   'get_config() (Nesterov 0.99, lr 1e-4 × 0.8 per epoch, clip 400, SortaGrad); noise augmentation '
                   'is not wired for the LibriSpeech reader.')
  cmd = ('jaxdl train --config=experiments/deepspeech2_paper.py --workdir=runs/ds2_paper '
         '--config.data.data_dir=/path/to/LibriSpeech --config.data.splits="(\'train-clean-100\', \'dev-clean\', '
         '\'test-clean\', \'test-other\')"')
  s6 = ClaimResult('S6', '-', 'needs-data', f'needs LibriSpeech (openslr.org/12) and accelerator-days: {cmd}')
  return [s4, s6]
