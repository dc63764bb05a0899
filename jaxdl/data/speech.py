"""Speech datasets (course chapter 5, seed 000 "CTC example on voice recognition"): log-mel features + transcripts.

Every dataset here is a `jaxdl.data.Dataset` of `RaggedSource` splits (jaxdl/data/buckets.py): `inputs` [T, F]
float32 log-mel frames (computed once on the host by `jaxdl.speech.features.log_mel`, the same front end
`jaxdl transcribe` applies to a file), `targets` [U] int32 character ids, `references` the transcripts, and
`dataset.vocabulary` a character Vocabulary whose PAD = 0 is the CTC blank. `dataset.front_end` (`FrontEnd`) says
how the features were made; `front_end_for(config.data)` and `vocabulary_for(config.data)` rebuild both from a
run's config without reading any data.

  espeak_speech   built-in, generated offline (S7, S8): short sentences of a built-in text spoken by eSpeak NG
                  (jaxdl/speech/espeak.py) with many voices × variants, rates, pitches and additive noise.
                  English (default): sentences of the standard library's documentation topics (pydoc_data.topics,
                  the char-RNN corpus), normalised to a–z, space and apostrophe. French (language='fr'): sentences
                  from a small built-in grammar (jaxdl's own), transcribed in the lab's 44-symbol alphabet (a–z,
                  0–9, space ' , . + blank / sos / eos / unk, accents folded: "élève" → "eleve"; the Common Voice
                  lab's CharMap). Splits by sentence AND speaker: 'test' and 'validation' sentences never occur in
                  'train', and every test / validation utterance is spoken by a speaker (voice + variant) that
                  training never hears: training uses `voices` − `heldout_voices` × `variants` − `heldout_variants`,
                  validation and test all `voices` × `heldout_variants`. Deterministic by `seed`; the audio is
                  synthesised once and cached (jaxdl.speech.espeak.make_corpus) under `cache_dir`
                  ('' = $JAXDL_CACHE or ~/.cache/jaxdl, then speech/). Default size: 718 training sentences × 3
                  speakers = 2,154 utterances (≈ 1.4 h of audio), 60 validation, 100 test; ≈ 30-60 s to synthesise
                  on one core the first time, a few seconds (features only) afterwards.
  librispeech     LibriSpeech from a local folder (FLAC + `<speaker>-<chapter>.trans.txt`, read with soundfile; no
                  TensorFlow): data_dir = the folder holding train-clean-100/, dev-clean/, … Needs data.
  common_voice    Mozilla Common Voice from a local folder (clips/ + validated.tsv, or train/dev/test.tsv; the lab's
                  French data). MP3 clips need libsndfile ≥ 1.1 (soundfile reads them then; else convert to WAV or
                  FLAC). Needs data.
  librispeech_tfds  TFDS `librispeech` where it is prepared as ArrayRecord (see jaxdl/data/stock.py).

Bad data (an unreadable or empty audio file, silent audio, a transcript with symbols outside the alphabet after
normalisation, a missing folder) is a one-line UserError naming the file.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import os
import pathlib
import re
import unicodedata
from typing import Callable, Sequence

import numpy as np

from jaxdl.data import Dataset, DatasetInfo
from jaxdl.data.buckets import RaggedSource, default_buckets
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.text.vocab import Vocabulary

ENGLISH_ALPHABET = (' ', "'") + tuple('abcdefghijklmnopqrstuvwxyz')                        # 28 + 4 specials = 32
LAB_ALPHABET = (' ', "'", ',', '.') + tuple('0123456789') + tuple('abcdefghijklmnopqrstuvwxyz')  # 40 + 4 = 44
LANGUAGES = ('en', 'fr')
HELDOUT_VARIANTS = ('m3', 'f2')
HELDOUT_VOICES = {'en': ('en-gb-x-rp',), 'fr': ('fr-ch',)}
_FEATURE_BATCH = 16          # utterances per jitted front-end call (one compilation per padded length)
_PAD_SECONDS = 0.5           # audio is padded to a multiple of this for the front end (few compilations)


# ------------------------------------------------------------------------------------------ text and alphabet
def alphabet_for(language: str) -> tuple[str, ...]:
  """The characters a model for `language` outputs (besides the 4 specials; PAD = the CTC blank)."""
  if language not in LANGUAGES:
    raise UserError(f'speech language {language!r}', f'one of {LANGUAGES}', 'set --config.data.language')
  return ENGLISH_ALPHABET if language == 'en' else LAB_ALPHABET


def char_vocabulary(alphabet: Sequence[str]) -> Vocabulary:
  """A char Vocabulary: PAD (= CTC blank) / BOS / EOS / UNK at 0-3, then the alphabet in the given order."""
  return Vocabulary.from_tokens(list(alphabet), 'char')


_FOLD = {'œ': 'oe', 'æ': 'ae', 'ß': 'ss', 'ø': 'o', 'đ': 'd', 'ł': 'l', '’': "'", '‘': "'", 'ʼ': "'", '`': "'"}
_DROP = '!?;:"«»()[]{}…“”„¡¿*/\\'


def normalize_transcript(text: str, alphabet: Sequence[str], *, where: str = 'transcript') -> str:
  """Lowercase, fold accents (NFKD, combining marks dropped: "élève" → "eleve", "œ" → "oe"), hyphens → spaces,
  sentence punctuation outside the alphabet dropped, spaces collapsed. A character still outside `alphabet`
  (a digit in English, '€', another script) is a UserError naming `where`."""
  allowed = set(alphabet)
  s = ''.join(_FOLD.get(ch, ch) for ch in str(text).lower())
  s = ''.join(ch for ch in unicodedata.normalize('NFKD', s) if not unicodedata.combining(ch))
  s = ''.join(' ' if ch in '-–—_\t\n' else ch for ch in s)
  s = ''.join(ch for ch in s if ch in allowed or ch not in _DROP + ',.')
  s = ' '.join(s.split())
  bad = sorted({ch for ch in s if ch not in allowed})
  if bad:
    raise UserError(f'{where} has symbols outside the alphabet: {", ".join(repr(c) for c in bad[:10])} (in {s[:60]!r})',
                    f'only {"".join(alphabet)!r} after lowercasing and folding accents',
                    'fix or remove that transcript (spell numbers out)')
  if not s:
    raise UserError(f'{where} is empty after normalisation ({str(text)[:60]!r})', 'at least one letter',
                    'fix or remove that transcript')
  return s


@functools.lru_cache(maxsize=1)
def english_sentences() -> tuple[str, ...]:
  """Short prose sentences of the standard library's documentation topics, normalised to ENGLISH_ALPHABET.

  Parenthesised text is removed; the text is cut at . ! ? ; : and blank lines; a piece is kept if it is pure prose
  (letters, spaces, the punctuation above, apostrophes inside words) of 2-12 words and 8-70 characters; duplicates
  once, in order of first occurrence (≈ 880 sentences with CPython 3.11-3.13).
  """
  from jaxdl.data.text_corpus import pydoc_text  # pylint: disable=g-import-not-at-top
  text = re.sub(r'\([^()]*\)', ' ', pydoc_text())
  out = []
  for piece in re.split(r'(?<=[.!?;:])\s+|\n\s*\n|\s+--\s+', text):
    piece = ' '.join(piece.split())
    if not piece or re.search(r"[^A-Za-z ,.;:'!?\"-]", piece):
      continue
    if "'" in piece and not re.search(r"[A-Za-z]'[A-Za-z]", piece):   # quotes, not a contraction
      continue
    s = ' '.join(re.sub(r"[,.;:!?\"]", ' ', piece).replace('-', ' ').lower().split())
    if 2 <= len(s.split()) <= 12 and 8 <= len(s) <= 70:
      out.append(s)
  return tuple(dict.fromkeys(out))


# A small French grammar (jaxdl's own): subject + verb (3rd person singular) + object + complement.
_FR_SUBJECTS = ('le chat', 'la grenouille', 'le renard', 'un enfant', "l'élève", 'ma sœur', 'le boulanger',
                'la cigale', 'le corbeau', 'notre voisine', 'le professeur', 'un pêcheur', 'la fourmi', 'mon frère',
                'le loup', 'une étudiante')
_FR_VERBS = ('regarde', 'mange', 'cherche', 'trouve', 'prépare', 'dessine', 'écoute', 'attend', 'porte', 'achète',
             'oublie', 'répare', 'lave', 'montre', 'prend', 'aime')
_FR_OBJECTS = ('une pomme', 'le fromage', 'la lettre', 'un gâteau', 'les fleurs', 'la rivière', 'un livre',
               'la fenêtre', 'le vélo', 'une chanson', 'le jardin', 'la forêt', 'un bateau', "l'oiseau", 'la clé',
               'le café')
_FR_COMPLEMENTS = ('ce matin', 'dans la cuisine', 'près de la maison', 'avant la nuit', 'sous la pluie',
                   'au bord du lac', 'avec plaisir', 'sans bruit', 'tous les jours', 'en été', 'à midi',
                   'derrière l’école', 'depuis hier', 'très lentement', 'pour la fête', 'chez le voisin')


@functools.lru_cache(maxsize=1)
def french_sentences() -> tuple[str, ...]:
  """1,024 distinct French sentences of the built-in grammar (accents kept: eSpeak reads them), in a fixed order."""
  rng = np.random.default_rng(1234)
  seen, out = set(), []
  while len(out) < 1024:
    parts = [p[int(rng.integers(len(p)))] for p in (_FR_SUBJECTS, _FR_VERBS, _FR_OBJECTS, _FR_COMPLEMENTS)]
    s = ' '.join(parts)
    if s not in seen:
      seen.add(s)
      out.append(s)
  return tuple(out)


# ----------------------------------------------------------------------------------------------- front end
@dataclasses.dataclass(frozen=True)
class FrontEnd:
  """The feature recipe of a speech dataset: log-mel (`jaxdl.speech.features.log_mel`, natural log, per-utterance
  mean/variance normalisation) of a `window_ms` / `hop_ms` STFT at `sample_rate`, `n_mels` filters."""
  sample_rate: int = 16000
  n_mels: int = 40
  window_ms: float = 25.0
  hop_ms: float = 15.0

  def check(self) -> 'FrontEnd':
    if self.sample_rate < 1000 or self.n_mels < 1 or self.window_ms <= 0 or not 0 < self.hop_ms <= self.window_ms:
      raise UserError(f'speech front end {self}', 'sample_rate >= 1000, n_mels >= 1, 0 < hop_ms <= window_ms',
                      'fix config.data.sample_rate / n_mels / window_ms / hop_ms')
    return self

  @property
  def _fn(self) -> Callable:
    return _log_mel_fn(self.sample_rate, self.n_mels, self.window_ms, self.hop_ms)

  def __call__(self, audio: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Features [T_i, n_mels] float32 of each signal (valid frames only), in batches padded to a few lengths: each
    utterance gets exactly the frames it would get alone (log_mel's padding rule)."""
    audio = [np.asarray(a, np.float32).reshape(-1) for a in audio]
    step = max(1, int(self.sample_rate * _PAD_SECONDS))
    order = sorted(range(len(audio)), key=lambda i: len(audio[i]))
    out: list[np.ndarray | None] = [None] * len(audio)
    for start in range(0, len(order), _FEATURE_BATCH):
      idx = order[start:start + _FEATURE_BATCH]
      length = -(-max(len(audio[i]) for i in idx) // step) * step
      x = np.zeros((_FEATURE_BATCH, length), np.float32)
      pad = np.ones((_FEATURE_BATCH, length), np.float32)
      for row, i in enumerate(idx):
        x[row, :len(audio[i])] = audio[i]
        pad[row, :len(audio[i])] = 0.0
      feats, fpad = (np.asarray(a) for a in self._fn(x, pad))
      for row, i in enumerate(idx):
        out[i] = np.ascontiguousarray(feats[row, fpad[row] == 0.0], np.float32)
    return out  # type: ignore[return-value]


@functools.lru_cache(maxsize=8)
def _log_mel_fn(sample_rate: int, n_mels: int, window_ms: float, hop_ms: float) -> Callable:
  import jax  # pylint: disable=g-import-not-at-top

  from jaxdl.speech.features import log_mel  # pylint: disable=g-import-not-at-top
  return jax.jit(functools.partial(log_mel, sample_rate=sample_rate, n_mels=n_mels, window_ms=window_ms,
                                   hop_ms=hop_ms))


def _front_end(sample_rate, n_mels, window_ms, hop_ms) -> FrontEnd:
  return FrontEnd(int(sample_rate), int(n_mels), float(window_ms), float(hop_ms)).check()


# ------------------------------------------------------------------------------------------------ datasets
class SpeechDataset(Dataset):
  """A speech Dataset that also carries its `front_end` and per-split `meta` (speaker, sentence, …, no audio)."""

  def __init__(self, info, sources, vocabulary: Vocabulary, front_end: FrontEnd, meta=None):
    super().__init__(info, sources, vocabulary=vocabulary)
    self.front_end = front_end
    self.meta = meta or {}


def speech_source(features: Sequence[np.ndarray], transcripts: Sequence[str], vocab: Vocabulary,
                  name: str, num_buckets: int = 4) -> RaggedSource:
  """A RaggedSource of (inputs [T, F], targets [U]) with the transcripts as references; `num_buckets` input
  lengths at quantiles of the frame counts."""
  targets = [vocab.encode(t, strict=True) for t in transcripts]
  longest = max((len(t) for t in targets), default=1)
  # one target length (the longest, rounded up to 8: CTC over a few padded labels is cheap): every batch shape
  # depends on the input bucket alone, so a run compiles each step num_buckets times
  frames = [len(f) for f in features]
  buckets = {'inputs': default_buckets(frames, num_buckets=num_buckets, multiple=16),
             'targets': (-(-longest // 8) * 8,)}
  return RaggedSource({'inputs': list(features), 'targets': targets}, buckets, length_key='inputs',
                      references=list(transcripts), name=name)


def _dataset(name: str, splits: dict[str, RaggedSource], vocab: Vocabulary, front_end: FrontEnd,
             meta=None) -> SpeechDataset:
  first = splits.get('train') or next(iter(splits.values()))
  shape = (int(first.buckets['inputs'][0]), front_end.n_mels)
  info = DatasetInfo(name, 'classification', shape, len(vocab), {k: len(v) for k, v in splits.items()})
  return SpeechDataset(info, splits, vocab, front_end, meta)


def cache_root(cache_dir: str = '') -> pathlib.Path:
  """Where generated data is cached: `cache_dir`, else $JAXDL_CACHE, else ~/.cache/jaxdl."""
  root = cache_dir or os.environ.get('JAXDL_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'jaxdl')
  return pathlib.Path(root).expanduser()


def _check_int(name: str, value, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise UserError(f'config.data.{name}={value!r}', f'an integer >= {low}', f'fix --config.data.{name}')
  return int(value)


def espeak_splits(language: str, num_sentences: int, num_validation_sentences: int, num_test_sentences: int,
                  seed: int) -> dict[str, list[int]]:
  """Sentence indices of each split (disjoint), drawn from `seed`: test first, then validation, then train."""
  pool = english_sentences() if language == 'en' else french_sentences()
  need = num_validation_sentences + num_test_sentences + max(num_sentences, 1)
  if need > len(pool):
    raise UserError(f'espeak_speech asks for {need} sentences', f'at most {len(pool)} (the built-in {language} text)',
                    'lower num_sentences / num_validation_sentences / num_test_sentences')
  order = np.random.default_rng(seed).permutation(len(pool)).tolist()
  test = order[:num_test_sentences]
  val = order[num_test_sentences:num_test_sentences + num_validation_sentences]
  rest = order[num_test_sentences + num_validation_sentences:]
  return {'train': rest[:num_sentences] if num_sentences else rest, 'validation': val, 'test': test}


# synthesized=True: built on this machine by a speech engine (the optional [speech] extra; ~1 min the first time,
# then cached); the generic built-in dataset tests leave it to tests/data/test_speech_data.py, which builds it small.
@DATASETS.register('espeak_speech', source='built-in: pydoc sentences (or a French grammar) spoken by eSpeak NG',
                   synthesized=True, description='synthetic speech, log-mel inputs [T, F], character targets; held-out '
                                           'sentences and speakers (needs the [speech] extra)')
def espeak_speech(*, language: str = 'en', num_sentences: int = 0, num_validation_sentences: int = 60,
                  num_test_sentences: int = 100, copies: int = 3, voices: tuple = (), heldout_voices: tuple = (),
                  variants: tuple = ('m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5'),
                  heldout_variants: tuple = HELDOUT_VARIANTS, rates: tuple = (140, 160, 175, 190, 210),
                  pitches: tuple = (35, 50, 65), noise_snr_db: tuple = (15.0, 40.0), seed: int = 0,
                  sample_rate: int = 16000, n_mels: int = 40, window_ms: float = 25.0, hop_ms: float = 15.0,
                  cache_dir: str = '', num_buckets: int = 4) -> SpeechDataset:
  """Built-in synthetic speech (module docstring). num_sentences: training sentences (0 = all the rest); copies:
  training utterances per sentence (each by a speaker drawn from the seed); validation and test sentences are
  spoken once. voices: eSpeak language codes (() = ENGLISH_VOICES / FRENCH_VOICES); heldout_voices (() = en-gb-x-rp
  / fr-ch) and heldout_variants are only heard in validation / test. noise_snr_db: (low, high) white-noise SNR
  range in dB, () = clean. Features: FrontEnd(sample_rate, n_mels, window_ms, hop_ms) (default: 40 mels of the
  course's 25 ms / 15 ms STFT, S3). num_buckets: padded input lengths per split (compilations per jitted step)."""
  from jaxdl.speech import espeak  # pylint: disable=g-import-not-at-top
  alphabet = alphabet_for(language)
  front = _front_end(sample_rate, n_mels, window_ms, hop_ms)
  num_sentences = _check_int('num_sentences', num_sentences, 0)
  copies = _check_int('copies', copies, 1)
  n_val = _check_int('num_validation_sentences', num_validation_sentences, 1)
  n_test = _check_int('num_test_sentences', num_test_sentences, 1)
  voices = tuple(voices) or (espeak.ENGLISH_VOICES if language == 'en' else espeak.FRENCH_VOICES)
  heldout_voices = tuple(heldout_voices) or HELDOUT_VOICES[language]
  train_voices = tuple(v for v in voices if v not in heldout_voices)
  train_variants = tuple(v for v in variants if v not in heldout_variants)
  if not train_voices or not train_variants or not heldout_variants:
    raise UserError(f'espeak_speech voices {voices} / variants {variants} leave no training or no held-out speaker '
                    f'(held out: {heldout_voices} / {heldout_variants})',
                    'at least one training voice and variant, and one held-out variant',
                    'fix config.data.voices / variants / heldout_*')
  if noise_snr_db and len(noise_snr_db) != 2:
    raise UserError(f'config.data.noise_snr_db={noise_snr_db!r}', '(low, high) in dB, or () for clean audio',
                    'fix --config.data.noise_snr_db')
  snr = (float(noise_snr_db[0]), float(noise_snr_db[1])) if noise_snr_db else None
  pool = english_sentences() if language == 'en' else french_sentences()
  split_ids = espeak_splits(language, num_sentences, n_val, n_test, seed)
  cache = cache_root(cache_dir) / 'speech'
  vocab = char_vocabulary(alphabet)
  sources, meta = {}, {}
  for k, (split, ids) in enumerate(split_ids.items()):
    train = split == 'train'
    corpus = espeak.make_corpus([pool[i] for i in ids], voices=train_voices if train else voices,
                                variants=train_variants if train else heldout_variants, rates=rates, pitches=pitches,
                                noise_snr_db=snr, copies=copies if train else 1, seed=seed * 1000 + k,
                                sample_rate=front.sample_rate, cache_dir=cache)
    texts = [normalize_transcript(u['text'], alphabet, where=f'built-in sentence {u["text"]!r}') for u in corpus]
    feats = front([u['audio'] for u in corpus])
    sources[split] = speech_source(feats, texts, vocab, f'espeak_speech/{split}',
                                   _check_int('num_buckets', num_buckets, 1))
    meta[split] = [dict({k2: v for k2, v in u.items() if k2 != 'audio'}, sentence=ids[u['sentence']])
                   for u in corpus]
  return _dataset('espeak_speech', sources, vocab, front, meta)


# ------------------------------------------------------------------------------------------- local corpora
def read_utterance(path: str | os.PathLike, front: FrontEnd) -> np.ndarray:
  """One audio file as float32 mono at the front end's rate; unreadable, empty or silent audio → UserError."""
  from jaxdl.speech.audio import check_not_silent, load_audio  # pylint: disable=g-import-not-at-top
  x = load_audio(path, front.sample_rate)
  return check_not_silent(x, name=f'audio file {str(path)!r}')


def _folder(data_dir: str, name: str, layout: str, where: str) -> pathlib.Path:
  if not data_dir:
    raise UserError(f'dataset {name!r} needs data: config.data.data_dir is not set', f'a local folder with {layout}',
                    f'download it ({where}) and set --config.data.data_dir=PATH')
  p = pathlib.Path(data_dir).expanduser()
  if not p.is_dir():
    raise UserError(f'dataset {name!r}: the folder {str(p)!r} does not exist', f'a local folder with {layout}',
                    f'download it ({where}) and point --config.data.data_dir at it')
  return p


def librispeech_index(root: pathlib.Path, split: str) -> list[tuple[pathlib.Path, str]]:
  """(audio path, raw transcript) of every utterance of a LibriSpeech split folder, sorted by utterance id."""
  folder = root / split
  if not folder.is_dir() and (root / 'LibriSpeech' / split).is_dir():
    folder = root / 'LibriSpeech' / split
  if not folder.is_dir():
    raise UserError(f'LibriSpeech split {split!r} not found under {str(root)!r}',
                    f'a folder {split}/<speaker>/<chapter>/*.trans.txt + *.flac', 'download and unpack it there')
  items = []
  for trans in sorted(folder.rglob('*.trans.txt')):
    for n, line in enumerate(trans.read_text(encoding='utf-8').splitlines(), 1):
      if not line.strip():
        continue
      uid, _, text = line.strip().partition(' ')
      audio = next((trans.parent / f'{uid}{ext}' for ext in ('.flac', '.wav')
                    if (trans.parent / f'{uid}{ext}').exists()), None)
      if audio is None:
        raise UserError(f'{trans}:{n}: no audio file for utterance {uid!r}', f'{uid}.flac next to the transcript',
                        'restore the file or remove its line')
      items.append((audio, text))
  if not items:
    raise UserError(f'LibriSpeech split folder {str(folder)!r} has no *.trans.txt transcripts',
                    '<speaker>/<chapter>/<speaker>-<chapter>.trans.txt files', 'check the folder')
  return items


def common_voice_index(root: pathlib.Path, split: str) -> list[tuple[pathlib.Path, str]]:
  """(clip path, sentence) of every row of `split`.tsv in a Common Voice language folder."""
  tsv = root / f'{split}.tsv'
  if not tsv.is_file():
    have = sorted(p.stem for p in root.glob('*.tsv'))
    raise UserError(f'Common Voice folder {str(root)!r} has no {split}.tsv', 'one of: ' + (', '.join(have) or
                    'validated.tsv, train.tsv, dev.tsv, test.tsv'), 'fix config.data.splits or the folder')
  items = []
  with tsv.open(encoding='utf-8', newline='') as f:
    reader = csv.DictReader(f, delimiter='\t', quoting=csv.QUOTE_NONE)
    if not reader.fieldnames or 'path' not in reader.fieldnames or 'sentence' not in reader.fieldnames:
      raise UserError(f'{tsv} has no path / sentence columns', 'a Common Voice tsv (client_id, path, sentence, …)',
                      'point data_dir at the language folder (e.g. cv-corpus-*/fr)')
    for row in reader:
      items.append((root / 'clips' / row['path'], row['sentence'] or ''))
  return items


def _mp3_check(items: list[tuple[pathlib.Path, str]]) -> None:
  import soundfile  # pylint: disable=g-import-not-at-top
  if any(p.suffix.lower() == '.mp3' for p, _ in items[:1]) and 'MP3' not in soundfile.available_formats():
    raise UserError(f'the clips are MP3 and this libsndfile ({soundfile.__libsndfile_version__}) cannot decode MP3',
                    'libsndfile >= 1.1 (pip install -U soundfile), or WAV / FLAC clips',
                    'upgrade soundfile, or convert the clips: ffmpeg -i x.mp3 x.wav (and fix the tsv)')


def _local_dataset(name: str, items_of: Callable[[str], list], splits: Sequence[str], alphabet: Sequence[str],
                   front: FrontEnd, max_utterances: int) -> SpeechDataset:
  """Reads every split now (audio → features once): transcripts normalised, bad files named."""
  vocab = char_vocabulary(alphabet)
  sources = {}
  for split in splits:
    items = items_of(split)
    if max_utterances:
      items = items[:max_utterances]
    _mp3_check(items)
    texts = [normalize_transcript(t, alphabet, where=f'the transcript of {str(p)!r}') for p, t in items]
    feats = front([read_utterance(p, front) for p, _ in items])
    sources[split] = speech_source(feats, texts, vocab, f'{name}/{split}')
  return _dataset(name, sources, vocab, front)


@DATASETS.register('librispeech', source='LibriSpeech (local folder; openslr.org/12)', stock=True,
                   description='LibriSpeech FLAC + .trans.txt from data_dir, log-mel inputs, character targets')
def librispeech(*, data_dir: str = '', splits: tuple = ('train-clean-100', 'dev-clean', 'test-clean'),
                max_utterances: int = 0, sample_rate: int = 16000, n_mels: int = 80, window_ms: float = 25.0,
                hop_ms: float = 10.0) -> SpeechDataset:
  """LibriSpeech from `data_dir` (the folder holding the split folders, or its parent with LibriSpeech/); split
  names are the folder names (e.g. --config.data.eval_split=dev-clean); max_utterances: the first N per split
  (0 = all). English alphabet."""
  root = _folder(data_dir, 'librispeech', 'train-clean-100/, dev-clean/, … (FLAC + .trans.txt)',
                 'https://www.openslr.org/12')
  front = _front_end(sample_rate, n_mels, window_ms, hop_ms)
  return _local_dataset('librispeech', lambda s: librispeech_index(root, s), splits, ENGLISH_ALPHABET, front,
                        _check_int('max_utterances', max_utterances, 0))


@DATASETS.register('common_voice', source='Mozilla Common Voice (local folder; commonvoice.mozilla.org)',
                   stock=True, description='Common Voice clips + tsv from data_dir (the lab\'s French data)')
def common_voice(*, data_dir: str = '', language: str = 'fr', splits: tuple = ('train', 'dev', 'test'),
                 max_utterances: int = 0, sample_rate: int = 16000, n_mels: int = 80, window_ms: float = 25.0,
                 hop_ms: float = 10.0) -> SpeechDataset:
  """Common Voice from `data_dir` (a language folder: clips/ + validated.tsv / train.tsv / dev.tsv / test.tsv);
  splits are tsv names; language 'fr' uses the lab's 44-symbol alphabet, 'en' the English one."""
  root = _folder(data_dir, 'common_voice', 'clips/ and validated.tsv (or train/dev/test.tsv)',
                 'https://commonvoice.mozilla.org/datasets')
  front = _front_end(sample_rate, n_mels, window_ms, hop_ms)
  return _local_dataset('common_voice', lambda s: common_voice_index(root, s), splits, alphabet_for(language), front,
                        _check_int('max_utterances', max_utterances, 0))


@DATASETS.register('librispeech_tfds', source='TFDS librispeech (prepare once; see jaxdl/data/stock.py)',
                   stock=True, description='TFDS librispeech via tfds.data_source (ArrayRecord), TF-free reads')
def librispeech_tfds(*, data_dir: str = '', splits: tuple = ('train_clean100', 'dev_clean', 'test_clean'),
                     max_utterances: int = 0, n_mels: int = 80, window_ms: float = 25.0,
                     hop_ms: float = 10.0) -> SpeechDataset:
  """TFDS `librispeech` (records: speech int16 at 16 kHz, text) prepared as ArrayRecord; unprepared → the command."""
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  front = _front_end(16000, n_mels, window_ms, hop_ms)
  limit = _check_int('max_utterances', max_utterances, 0)

  def items_of(split):
    src = stock.load_split('librispeech', split, data_dir, cache=False)._src
    n = len(src) if not limit else min(limit, len(src))
    return [src[i] for i in range(n)]

  vocab = char_vocabulary(ENGLISH_ALPHABET)
  sources = {}
  for split in splits:
    recs = items_of(split)
    texts = [normalize_transcript(r['text'].decode() if isinstance(r['text'], bytes) else str(r['text']),
                                  ENGLISH_ALPHABET, where=f'librispeech {split} record {i}')
             for i, r in enumerate(recs)]
    feats = front([np.asarray(r['speech'], np.float32) / 32768.0 for r in recs])
    sources[split] = speech_source(feats, texts, vocab, f'librispeech_tfds/{split}')
  return _dataset('librispeech_tfds', sources, vocab, front)


# ------------------------------------------------------------------------------- from a run's config alone
def _data_kwargs(data_config) -> tuple[str, dict]:
  from jaxdl.data import dataset_kwargs  # pylint: disable=g-import-not-at-top
  cfg = dict(data_config.to_dict() if hasattr(data_config, 'to_dict') else data_config)
  name = cfg.get('name', '')
  if name not in SPEECH_DATASETS:
    raise UserError(f'dataset {name!r} is not a speech dataset', 'one of: ' + ', '.join(SPEECH_DATASETS),
                    'point --workdir at a run trained on speech')
  return name, {**dataset_kwargs(name), **{k: v for k, v in cfg.items() if k != 'name'}}


def front_end_for(data_config) -> FrontEnd:
  """The front end a speech run's dataset used, from its config.data alone (no data read)."""
  name, kw = _data_kwargs(data_config)
  return _front_end(kw.get('sample_rate', 16000), kw['n_mels'], kw['window_ms'], kw['hop_ms'])


def vocabulary_for(data_config) -> Vocabulary:
  """The character vocabulary of a speech run's dataset, from its config.data alone."""
  name, kw = _data_kwargs(data_config)
  if name in ('librispeech', 'librispeech_tfds'):
    return char_vocabulary(ENGLISH_ALPHABET)
  return char_vocabulary(alphabet_for(kw.get('language', 'en')))


SPEECH_DATASETS = ('espeak_speech', 'librispeech', 'common_voice', 'librispeech_tfds')
