"""The MLCommons AlgoPerf JAX DeepSpeech workload (librispeech_deepspeech): its parameter count, and its published
WER targets (needs data).

Reproduces: S10 (2 conv subsampling 3×3/2 ×512, Dense 512, 6 residual BiLSTM(256) with masked BN, 3 FFN, vocab 1024:
            its parameter count) — the model `algoperf_deepspeech` (jaxdl/models/deepspeech.py) counted with
            jax.eval_shape and compared with the count of AlgoPerf's own JAX model (algoperf/workloads/
            librispeech_deepspeech/librispeech_jax/models.py, DeepspeechConfig() defaults, measured by jax.eval_shape
            on its code: 18,381,312) and with the layer formulas.
            S9 (AlgoPerf targets: DeepSpeech validation WER 0.1199 / test 0.0741; Conformer 0.0859 / 0.0530 on
            LibriSpeech): needs LibriSpeech 960 h and accelerator-days — needs-data with the command.
Model:      80 log-mel bins -> two 3×3 stride-2 convolutions (512 channels, bias, ReLU; ×4 in time and frequency)
            -> Dense(20·512 → 512) -> 6 × [masked BN -> BiLSTM(256 + 256, one bias per gate as flax's
            OptimizedLSTMCell) + residual] -> 3 × [masked BN -> Dense(512) -> ReLU + residual] -> LayerNorm ->
            Dense(vocab). AlgoPerf computes its front end inside the model (no parameters) and pads 'SAME'; jaxdl
            takes features and pads symmetrically so each utterance gives the same outputs alone and padded
            (same shapes, same count). With a character vocabulary (get_config) the output layer is smaller.
Command:    jaxdl reproduce algoperf_deepspeech --out=report/
            jaxdl summary algoperf_deepspeech --input-shape=100,80
            jaxdl train --config=experiments/algoperf_deepspeech.py --workdir=runs/algoperf_ds \
              --config.data.data_dir=/data/LibriSpeech                    (S9: needs LibriSpeech and accelerators)
Expected:   S10: 18,381,312 parameters at vocabulary 1024.
CPU time:   ≈ 3 s for `reproduce` (shapes only).
"""
from __future__ import annotations

from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

ALGOPERF_COUNT = 18_381_312        # jax.eval_shape of AlgoPerf's models.Deepspeech(DeepspeechConfig())

CLAIMS = {
    'S9': Claim('S9', 'MLCommons AlgoPerf targets: DeepSpeech (JAX) val WER 0.1199 / test 0.0741; Conformer 0.0859 / '
                '0.0530 (LibriSpeech)', 'anchor (needs data)', 'WER on LibriSpeech dev/test at the workload targets'),
    'S10': Claim('S10', 'The AlgoPerf JAX DeepSpeech configuration (2 conv subsampling 3×3/2 ×512, Dense 512, 6 '
                 'residual BiLSTM(256) with masked BN, 3 FFN, vocab 1024): its parameter count', 'anchor',
                 'the count of algoperf_deepspeech (jax.eval_shape, 80 mel bins) equals the count of AlgoPerf\'s own '
                 'JAX model and the layer formulas'),
}


def get_config():
  c = base_config()
  c.model.name = 'algoperf_deepspeech'             # num_outputs = the character vocabulary here
  c.data.name = 'librispeech'
  c.data.data_dir = ''
  c.data.train_split = 'train-clean-100'
  c.data.eval_split = 'dev-clean'
  c.data.n_mels = 80
  c.data.window_ms = 25.0
  c.data.hop_ms = 10.0
  c.data.sorta_grad = True
  c.loss.name = 'ctc'
  c.optimizer.name = 'adamw'
  c.optimizer.learning_rate = 2e-3
  c.optimizer.warmup_steps = 1000
  c.optimizer.schedule = 'cosine'
  c.optimizer.clip_global_norm = 5.0
  c.train.batch_size = 64
  c.train.num_steps = 50_000
  c.train.eval_every = 2000
  c.train.checkpoint_every = 2000
  c.train.best_metric = 'wer'
  c.train.best_mode = 'min'
  c.decode.metrics = ('cer', 'wer')
  return c


def reproduce(ctx):
  from jaxdl.inspect.summary import parameter_table  # pylint: disable=g-import-not-at-top
  from jaxdl.models.deepspeech import AlgoPerfDeepSpeech, expected_param_count  # pylint: disable=g-import-not-at-top
  model = AlgoPerfDeepSpeech()
  table = parameter_table(model, (100, 80))
  n = table['total_params']
  rows = {r['name']: r['params'] for r in table['layers']}
  lstm = sum(v for k, v in rows.items() if k.startswith('rnn') and not k.endswith('_bn/bn'))
  ok = n == ALGOPERF_COUNT == expected_param_count(model, 80)
  s10 = ClaimResult('S10', f'{n:,} parameters at vocabulary 1024 (BiLSTMs {lstm:,}; AlgoPerf\'s own model '
                    f'{ALGOPERF_COUNT:,})', verdict(ok),
                    'AlgoPerf\'s count was measured with jax.eval_shape on its librispeech_jax/models.py (fetched '
                    'from github.com/mlcommons/algorithmic-efficiency).')
  cmd = ('jaxdl train --config=experiments/algoperf_deepspeech.py --workdir=runs/algoperf_ds '
         '--config.data.data_dir=/path/to/LibriSpeech --config.data.splits="(\'train-clean-100\', \'train-clean-360\', '
         '\'train-other-500\', \'dev-clean\', \'test-clean\')"')
  return [s10, ClaimResult('S9', '-', 'needs-data', f'needs LibriSpeech 960 h and accelerator-days: {cmd}')]
