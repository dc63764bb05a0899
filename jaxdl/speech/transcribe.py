"""`jaxdl transcribe`: the text of audio files from a trained speech run (course chapter 5, "CTC example on voice
recognition": given a waveform, produce its transcript).

A speech run is any `jaxdl train` workdir whose dataset is a speech dataset (jaxdl/data/speech.py) and whose model
generates (e.g. ds2_small). Its config.json alone gives the front end (`front_end_for`: sample rate, mels, STFT),
the character vocabulary (`vocabulary_for`) and the model; no training data is read. A file (WAV, FLAC, OGG, any
rate, any channels) is read with soundfile, averaged to mono, resampled to the run's rate and turned into the same
log-mel features as the run's dataset, then decoded:

  greedy (beam_width 1, no LM)  the model's `generate` (best path on the device);
  beam_width > 1 and/or an LM   jaxdl.speech.decoding.prefix_beam_search on the host over the model's
                                log-softmax, with shallow fusion log p_CTC + α log p_LM + β |words| (Hannun et al.
                                2014) of an ARPA n-gram (word or char units; `NGramLM.from_arpa`).

The output ids never include BOS / EOS / UNK: those classes are removed from the search (the model never learned to
emit them), so the LM sees only the alphabet.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Any, Sequence

import numpy as np

from jaxdl.errors import UserError
from jaxdl.text.vocab import SPECIALS

_FRAME_MULTIPLE = 64     # inputs are padded to a multiple of this many frames (few compilations for many files)


@dataclasses.dataclass
class SpeechRun:
  """A trained speech model ready to decode: config, model, variables, vocabulary, front end, checkpoint step."""
  config: Any
  model: Any
  variables: Any
  vocabulary: Any
  front_end: Any
  step: int


def _read_config(workdir: pathlib.Path):
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg_file = workdir / 'config.json'
  if not workdir.is_dir():
    raise UserError(f'--workdir {str(workdir)!r} does not exist', 'the --workdir of a trained speech run',
                    'train one first (e.g. experiments/deepspeech2_builtin.py) or fix the path')
  if not cfg_file.is_file():
    raise UserError(f'{str(workdir)!r} is not a jaxdl run (no config.json)', 'the --workdir of a trained speech run',
                    'train it first or fix the path')
  try:
    return ml_collections.ConfigDict(json.loads(cfg_file.read_text(encoding='utf-8')))
  except (ValueError, OSError) as e:
    raise UserError(f'{cfg_file} is unreadable ({e})', 'the config.json jaxdl wrote', 'fix the path') from None


def speech_config(workdir: str):
  """(config, front end, vocabulary) of a speech run, from its config.json alone (cheap: no model, no data)."""
  from jaxdl.data.speech import SPEECH_DATASETS, front_end_for, vocabulary_for  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir)
  cfg = _read_config(path)
  data_name = cfg.get('data', {}).get('name', '')
  if data_name not in SPEECH_DATASETS:
    raise UserError(f'{str(path)!r} is a run on dataset {data_name!r}, not a speech model',
                    f'a run trained on one of {", ".join(SPEECH_DATASETS)}', 'point --workdir at a speech run')
  return cfg, front_end_for(cfg.data), vocabulary_for(cfg.data)


def load_speech_run(workdir: str, checkpoint: str = 'latest') -> SpeechRun:
  """The run's model and weights at `checkpoint` (latest | best | STEP), with its vocabulary and front end."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxdl.data import DatasetInfo  # pylint: disable=g-import-not-at-top
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  from jaxdl.optim import build_optimizer  # pylint: disable=g-import-not-at-top
  from jaxdl.train.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  from jaxdl.train.state import create_train_state  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir)
  cfg, front, vocab = speech_config(workdir)
  info = DatasetInfo(cfg.data.name, 'classification', (_FRAME_MULTIPLE, front.n_mels), len(vocab), {})
  model = build_model(cfg.model, info)
  if not callable(getattr(model, 'generate', None)):
    raise UserError(f'model {cfg.model.name!r} of {str(path)!r} does not transcribe', 'a CTC speech model with a '
                    '`generate` method (e.g. ds2_small)', 'point --workdir at a speech run')
  example = {'inputs': np.zeros((2, _FRAME_MULTIPLE, front.n_mels), np.float32),
             'inputs_paddings': np.zeros((2, _FRAME_MULTIPLE), np.float32)}
  tx = build_optimizer(cfg.optimizer, cfg.train.num_steps)[0]
  averaging = cfg.train.get('averaging', 'none') != 'none'
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.eval_shape(lambda: create_train_state(model, tx, jax.random.PRNGKey(0), info.input_shape, averaging,
                                                       example))
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
  ckpt = Checkpointer(path / 'checkpoints', read_only=True)
  try:
    step, state = ckpt.restore_selected(checkpoint, abstract, fits="the run's config")
  finally:
    ckpt.manager.close()
  variables = {'params': state.params, **(state.model_state or {})}
  return SpeechRun(cfg, model, variables, vocab, front, int(step))


def load_lm(path: str, unit: str = 'word'):
  """An ARPA n-gram LM (word or char units) for shallow fusion; a missing or malformed file is a UserError."""
  from jaxdl.speech.lm import NGramLM  # pylint: disable=g-import-not-at-top
  if not pathlib.Path(path).is_file():
    raise UserError(f'language model file {path!r} does not exist', 'an ARPA file (e.g. from KenLM lmplz or '
                    'jaxdl.speech.lm.NGramLM.to_arpa)', 'check the --lm path')
  return NGramLM.from_arpa(path, unit=unit)


def check_decoding(beam_width: int, alpha: float, beta: float) -> None:
  if isinstance(beam_width, bool) or not isinstance(beam_width, (int, np.integer)) or beam_width < 1:
    raise UserError(f'--beam-width={beam_width}', 'an integer >= 1 (1 = greedy)', 'fix --beam-width')
  for name, v in (('alpha', alpha), ('beta', beta)):
    if not np.isfinite(v):
      raise UserError(f'--{name}={v}', 'a finite number', f'fix --{name}')


class Transcriber:
  """Decodes feature sequences with one loaded run: `log_probs(features)`, `greedy(features)`, `beam(...)`;
  `forward(variables, inputs, paddings)` -> (log-probs [B, T', K], output paddings), jitted."""

  def __init__(self, run: SpeechRun):
    self.run = run
    self.forward, self._generate = _jitted(run.model)
    n = len(run.vocabulary)
    self.keep = np.array([0] + list(range(len(SPECIALS), n)))        # blank + the alphabet (no BOS / EOS / UNK)
    self.alphabet = [''] + [run.vocabulary.id_to_token(i) for i in range(len(SPECIALS), n)]

  def _batch(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = int(features.shape[0])
    length = max(1, -(-t // _FRAME_MULTIPLE)) * _FRAME_MULTIPLE
    x = np.zeros((1, length, features.shape[1]), np.float32)
    p = np.ones((1, length), np.float32)
    x[0, :t], p[0, :t] = features, 0.0
    return x, p

  def log_probs(self, features: np.ndarray) -> np.ndarray:
    """(T', K) natural-log probabilities of the valid output frames."""
    x, p = self._batch(features)
    lp, pads = (np.asarray(a) for a in self.forward(self.run.variables, x, p))
    return lp[0, pads[0] == 0.0]

  def greedy(self, features: np.ndarray) -> str:
    x, p = self._batch(features)
    ids = np.asarray(self._generate(self.run.variables, x, p))[0]
    return self.run.vocabulary.decode(ids)

  def beam(self, log_probs: np.ndarray, beam_width: int, lm=None, alpha: float = 0.0, beta: float = 0.0) -> str:
    """Prefix beam search (+ LM fusion) over the blank + alphabet columns of `log_probs` (T', K)."""
    from jaxdl.speech.decoding import prefix_beam_search  # pylint: disable=g-import-not-at-top
    if log_probs.shape[0] == 0:
      return ''
    lp = log_probs[:, self.keep]
    hyps = prefix_beam_search(lp, int(beam_width), lm=lm, alphabet=self.alphabet, alpha=float(alpha),
                              beta=float(beta), n_best=1)
    return ''.join(self.alphabet[i] for i in hyps[0][0]) if hyps else ''


@functools.lru_cache(maxsize=4)
def _jitted(model):
  """(forward, greedy generate), jit-compiled once per model (flax modules are hashable) and input shape."""
  import jax  # pylint: disable=g-import-not-at-top
  forward = jax.jit(lambda v, x, p: _forward(model, v, x, p))
  generate = jax.jit(lambda v, x, p: model.apply(v, x, method='generate', beam_width=1, max_length=0,
                                                 length_penalty=0.0, inputs_paddings=p))
  return forward, generate


def _forward(model, variables, x, paddings):
  import jax  # pylint: disable=g-import-not-at-top
  out = model.apply(variables, x, train=False, inputs_paddings=paddings)
  return jax.nn.log_softmax(out['logits'].astype('float32'), axis=-1), out['paddings']


def transcribe_files(workdir: str, files: Sequence[str], *, checkpoint: str = 'latest', beam_width: int = 1,
                     lm_path: str = '', lm_unit: str = 'word', alpha: float = 0.5, beta: float = 1.0
                     ) -> list[tuple[str, str]]:
  """(file, text) for every file, in order. Every input is checked (files read, LM loaded) before decoding."""
  from jaxdl.data.speech import read_utterance  # pylint: disable=g-import-not-at-top
  check_decoding(beam_width, alpha, beta)
  if not files:
    raise UserError('no audio files given', 'one or more WAV / FLAC files', 'jaxdl transcribe --workdir=RUN a.wav')
  _, front, _ = speech_config(workdir)
  audio = [read_utterance(f, front) for f in files]          # bad files fail before the model is loaded
  lm = load_lm(lm_path, lm_unit) if lm_path else None
  run = load_speech_run(workdir, checkpoint)
  features = run.front_end(audio)
  t = Transcriber(run)
  out = []
  for f, feats in zip(files, features):
    if beam_width == 1 and lm is None:
      text = t.greedy(feats)
    else:
      text = t.beam(t.log_probs(feats), beam_width, lm, alpha if lm is not None else 0.0,
                    beta if lm is not None else 0.0)
    out.append((str(f), text))
  return out
