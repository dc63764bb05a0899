"""The course lab's CTC speech model (lab work 3, "Seq2Seq for speech to text": Common Voice French, CTC):
its exact parameter counts, its training recipe as a config, and training (needs data).

Reproduces: S5 (20 mels; conv 41×11 stride 2×2 and 21×11 stride 2×1, 32 channels, BN, hardtanh 0-20; 4×BiGRU(1024);
            44 symbols: conv1 14,464; conv2 236,576; GRU 64,929,792; linear 90,156; total 65,271,116) — the model
            `ds2_lab` (jaxdl/models/deepspeech.py) counted layer by layer with jax.eval_shape.
Model:      ds2_lab: Conv2d(1→32, 41×11, stride 2×2) + bias, BN, Hardtanh(0, 20); Conv2d(32→32, 21×11, stride 2×1)
            + bias, BN, Hardtanh(0, 20); 4-layer bidirectional GRU(1024) with PyTorch's two biases, directions
            concatenated; Linear(2048 → 44). Kernels and strides read as (time × frequency): the counts require it
            (the first GRU reads 32 channels × 10 frequency bins = 320 features: 20 mels → 10 → 10). The two BNs
            (2 × 64) make the total. Time is subsampled ×4.
Recipe:     get_config(): Common Voice French from a local folder (data name common_voice, the lab's 44-symbol
            alphabet), 20 log-mels over the course's 25 ms / 15 ms STFT (S3), CTC (blank = 0), SGD with Nesterov
            momentum 0.99, lr 1e-4 × 0.8 per epoch, gradient norm clipped at 400, SortaGrad, greedy CER/WER.
            Noise augmentation: not available for the Common Voice reader (see deepspeech2_paper.py).
Command:    jaxdl reproduce deepspeech2_lab --out=report/
            jaxdl summary ds2_lab --input-shape=200,20
            jaxdl train --config=experiments/deepspeech2_lab.py --workdir=runs/ds2_lab \
              --config.data.data_dir=/data/cv-corpus/fr                    (needs Common Voice French + a GPU)
Expected:   S5 counts exactly as the lab prints them.
CPU time:   ≈ 3 s for `reproduce` (shapes only).
"""
from __future__ import annotations

from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.speech.recipe import ds2_recipe

LAB_COUNTS = {'conv1': 14_464, 'conv2': 236_576, 'gru': 64_929_792, 'linear': 90_156, 'total': 65_271_116}
BATCH = 32
STEPS_PER_EPOCH = 1000             # set to ⌈training utterances / batch⌉ of your Common Voice release
EPOCHS = 30

CLAIMS = {
    'S5': Claim('S5', 'Course lab CTC model (20 mels, conv 41×11/21×11, 4×BiGRU 1024, 44 symbols): conv1 14,464; '
                'conv2 236,576; GRU 64,929,792; linear 90,156; total 65,271,116', 'lab',
                'per-layer and total parameter counts of ds2_lab at 20 mels (jax.eval_shape), exactly equal'),
}


def get_config():
  c = base_config()
  c.model.name = 'ds2_lab'
  c.data.name = 'common_voice'
  c.data.data_dir = ''                             # --config.data.data_dir=/path/to/cv-corpus/fr
  c.data.language = 'fr'
  c.data.n_mels = 20
  c.data.window_ms = 25.0
  c.data.hop_ms = 15.0
  c.data.train_split = 'train'
  c.data.eval_split = 'dev'
  ds2_recipe(c, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS, batch_size=BATCH, best_metric='cer')
  return c


def lab_counts() -> dict[str, int]:
  """ds2_lab's counts grouped as the lab prints them (jax.eval_shape: nothing is allocated)."""
  from jaxdl.inspect.summary import parameter_table  # pylint: disable=g-import-not-at-top
  from jaxdl.models.deepspeech import DS2Lab  # pylint: disable=g-import-not-at-top
  table = parameter_table(DS2Lab(), (200, 20))
  rows = {r['name']: r['params'] for r in table['layers']}
  return {'conv1': rows['conv1'], 'conv2': rows['conv2'],
          'gru': sum(v for k, v in rows.items() if k.startswith('rnn')), 'linear': rows['output'],
          'bn': rows['conv1_bn/bn'] + rows['conv2_bn/bn'], 'total': table['total_params']}


def reproduce(ctx):
  got = lab_counts()
  ok = all(got[k] == v for k, v in LAB_COUNTS.items())
  ctx.log(f'ds2_lab counts: {got}')
  return [ClaimResult('S5', f"conv1 {got['conv1']:,}; conv2 {got['conv2']:,}; GRU {got['gru']:,}; linear "
                      f"{got['linear']:,}; total {got['total']:,}", verdict(ok),
                      f"The two conv BNs hold the remaining {got['bn']} parameters. Training needs Common Voice "
                      'French: jaxdl train --config=experiments/deepspeech2_lab.py --workdir=runs/ds2_lab '
                      '--config.data.data_dir=/path/to/cv-corpus/fr')]
