"""eSpeak NG speech synthesis through ctypes, and a deterministic built-in speech corpus made with it.

Course chapter 5 (seed 000, "CTC example on voice recognition"): the course's ASR data (LibriSpeech, TED, Common
Voice) needs downloads; claim S7 trains a small DeepSpeech2 on synthetic speech instead: many eSpeak NG voices
(languages × variants × rates × pitches), optional noise, held-out sentences and voices.

eSpeak NG (formant synthesis; GPL-3) comes from the `espeakng-loader` wheel (libespeak-ng + espeak-ng-data), an
OPTIONAL extra: `pip install -e ".[speech]"`. It is imported lazily; without it every entry point raises
jaxdl.errors.UserError naming the extra. We call the C API of speak_lib.h (API revision 12, library 1.52):

  espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS = 2, 0, data path, espeakINITIALIZE_DONT_EXIT) -> 22050 (Hz)
  espeak_SetSynthCallback(int cb(short *wav, int n, espeak_EVENT *events))   collects the int16 samples
  espeak_SetVoiceByName("<voice file>+<variant>"), espeak_SetParameter(espeakRATE = 1 | PITCH = 3 | RANGE = 4 |
  WORDGAP = 7, value, 0), espeak_ng_SetRandSeed(seed), espeak_Synth(utf-8 text, …, espeakCHARS_UTF8 = 1),
  espeak_Synchronize(), espeak_Terminate(); espeak_ListVoices(NULL | {languages: "variant"}); espeak_Info().

Determinism. The library keeps state from one utterance to the next in C statics that no API resets (wavegen.c:
the pitch-flutter phase `Flutter_ix`, the AGC, the echo buffer), and it seeds its noise generator from time(NULL):
two syntheses of the same text in one process differ (lengths too). So every synthesis runs in a FRESH instance of
the library: under one process-wide lock we dlopen it, initialise it, seed it (espeak_ng_SetRandSeed), synthesise,
terminate and dlclose it. This costs a few milliseconds per utterance and makes `synthesize` a pure function of its
arguments (and the library version). The library's own 22,050 Hz output is resampled to the requested rate
(`jaxdl.speech.audio.resample`, polyphase 320/441 for 16 kHz). If something else in the process holds the library
open, dlclose cannot unload it and a RuntimeWarning says so. Voices are resolved to voice files from the
espeak_ListVoices table (`resolve_voice`), so espeak_SetVoiceByName with "file+variant" selects any of them.

`make_corpus` draws every (sentence, speaker setting) from a seed, synthesises once and caches the result in one
.npz per argument set (key: a hash of all arguments, the eSpeak version and the file format), written atomically.
Corpus audio is kept on the 16-bit grid (int16 / 32768, as if read from a 16-bit WAV), so fresh and cached audio
are bit-identical. Spell numbers out in the sentences: eSpeak reads digits aloud, a transcript would not match.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import threading
import warnings
from typing import Sequence

import numpy as np

from jaxdl.errors import UserError
from jaxdl.speech.audio import resample
from jaxdl.speech.augment import mix_at_snr

NATIVE_RATE = 22050
RATE_RANGE = (80, 450)            # speak_lib.h espeakRATE_MINIMUM / MAXIMUM, words per minute
ENGLISH_VOICES = ('en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd', 'en-029',
                  'en-us-nyc')
FRENCH_VOICES = ('fr-fr', 'fr-be', 'fr-ch')
VARIANTS = ('m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5')   # the classic male / female set
CORPUS_FORMAT = 1

# speak_lib.h constants (API revision 12)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_EE_OK, _EE_NOT_FOUND = 0, 2

_LOCK = threading.Lock()          # one library instance at a time in this process


class _EventId(ctypes.Union):
  _fields_ = [('number', ctypes.c_int), ('name', ctypes.c_char_p), ('string', ctypes.c_char * 8)]


class _Event(ctypes.Structure):   # espeak_EVENT
  _fields_ = [('type', ctypes.c_int), ('unique_identifier', ctypes.c_uint), ('text_position', ctypes.c_int),
              ('length', ctypes.c_int), ('audio_position', ctypes.c_int), ('sample', ctypes.c_int),
              ('user_data', ctypes.c_void_p), ('id', _EventId)]


class _Voice(ctypes.Structure):   # espeak_VOICE
  _fields_ = [('name', ctypes.c_char_p), ('languages', ctypes.c_void_p), ('identifier', ctypes.c_char_p),
              ('gender', ctypes.c_ubyte), ('age', ctypes.c_ubyte), ('variant', ctypes.c_ubyte),
              ('xx1', ctypes.c_ubyte), ('score', ctypes.c_int), ('spare', ctypes.c_void_p)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class Voice:
  """An eSpeak NG voice: display name, voice file (identifier), languages (best first), gender, age."""
  name: str
  identifier: str
  languages: tuple[str, ...]
  gender: str
  age: int


# ---------------------------------------------------------------------------------------------- the library
def _loader():
  try:
    import espeakng_loader
  except ImportError:
    raise UserError('eSpeak NG is not installed (it is the optional `speech` extra, GPL-3)',
                    'the espeakng-loader package', 'pip install -e ".[speech]"') from None
  return espeakng_loader


def _unload(lib: ctypes.CDLL) -> None:
  import _ctypes
  close = getattr(_ctypes, 'dlclose', None) or getattr(_ctypes, 'FreeLibrary')
  close(lib._handle)


class _Session:
  """A fresh, initialised library instance (use under _LOCK): `with _Session() as s: s.synth(...)`."""

  def __enter__(self) -> _Session:
    loader = _loader()
    self.path = loader.get_library_path()
    try:
      self.lib = ctypes.CDLL(self.path, mode=getattr(os, 'RTLD_LOCAL', 0))
    except OSError as e:
      raise UserError(f'cannot load the eSpeak NG library {self.path!r} ({e})', 'a working espeakng-loader install',
                      'pip install --force-reinstall espeakng-loader') from None
    lib = self.lib
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, loader.get_data_path().encode(),
                                 _INITIALIZE_DONT_EXIT)
    if rate != NATIVE_RATE:
      self._close()
      raise RuntimeError(f'espeak_Initialize returned {rate}, expected the native rate {NATIVE_RATE} Hz '
                         f'(data at {loader.get_data_path()})')
    self.chunks: list[np.ndarray] = []

    def collect(wav, n, events):   # called from espeak_Synth / espeak_Synchronize on this thread
      if wav and n > 0:
        self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
      return 0
    self._callback = _SynthCallback(collect)   # kept alive as long as the library may call it
    lib.espeak_SetSynthCallback(self._callback)
    return self

  def _close(self) -> None:
    self.lib.espeak_Terminate()
    _unload(self.lib)
    del self.lib
    if sys.platform.startswith('linux'):
      with open('/proc/self/maps') as f:
        if os.path.realpath(self.path) in f.read():   # someone else in this process holds the library open
          warnings.warn('libespeak-ng is also loaded elsewhere in this process: its state carries over between '
                        'syntheses, which may then not be reproducible', RuntimeWarning, stacklevel=3)

  def __exit__(self, *exc) -> None:
    self._close()

  def version(self) -> str:
    return self.lib.espeak_Info(None).decode()

  def voices(self, languages: bytes | None = None) -> list[Voice]:
    spec = None
    if languages is not None:
      buf = ctypes.create_string_buffer(languages)   # alive until ListVoices returns
      spec = _Voice(languages=ctypes.addressof(buf))
    table = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    out, i = [], 0
    while table[i]:
      v = table[i].contents
      out.append(Voice(name=v.name.decode(errors='replace'), identifier=v.identifier.decode(errors='replace'),
                       languages=_languages(v.languages), gender={1: 'male', 2: 'female'}.get(v.gender, 'none'),
                       age=int(v.age)))
      i += 1
    return out

  def synth(self, text: str, voice_name: str, *, rate: int, pitch: int, pitch_range: int, word_gap: int,
            seed: int) -> np.ndarray:
    lib = self.lib
    err = lib.espeak_SetVoiceByName(voice_name.encode())
    if err != _EE_OK:
      raise RuntimeError(f'espeak_SetVoiceByName({voice_name!r}) failed with error {err}')
    for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_WORDGAP, word_gap)):
      lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(int(seed))
    data = text.encode('utf-8') + b'\0'
    self.chunks = []
    err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if err != _EE_OK:
      raise RuntimeError(f'espeak_Synth failed with error {err}')
    lib.espeak_Synchronize()
    return np.concatenate(self.chunks) if self.chunks else np.zeros((0,), np.int16)


def _languages(ptr: int | None) -> tuple[str, ...]:
  """Decode espeak_VOICE.languages: (priority byte, NUL-terminated name)*, then a 0 byte."""
  out = []
  if not ptr:
    return ()
  while True:
    if ctypes.string_at(ptr, 1) == b'\0':
      return tuple(out)
    name = ctypes.string_at(ptr + 1)
    out.append(name.decode(errors='replace'))
    ptr += 2 + len(name)


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[str, tuple[Voice, ...], tuple[Voice, ...]]:
  """(version, voices, variants) of the installed eSpeak NG, read once per process."""
  with _LOCK, _Session() as s:
    return s.version(), tuple(s.voices()), tuple(s.voices(b'variant'))


def espeak_version() -> str:
  """The eSpeak NG library version (e.g. '1.52.0')."""
  return _catalogue()[0]


def list_voices(language: str | None = None) -> list[Voice]:
  """The voices in the shipped data; with `language` ('en', 'fr', 'en-gb' …) those that speak it (or a dialect)."""
  voices = _catalogue()[1]
  if language is None:
    return list(voices)
  lang = language.lower()
  return [v for v in voices if any(l == lang or l.startswith(lang + '-') for l in v.languages)]


def list_variants() -> list[str]:
  """Names of the voice variants (the part after '+', e.g. 'f3', 'm1', 'klatt', 'Alex'), sorted."""
  return sorted(v.identifier.split('/', 1)[-1] for v in _catalogue()[2])


def resolve_voice(voice: str) -> str:
  """The voice file (identifier, e.g. 'gmw/en-US') for a language code ('en-us'), file name or voice name."""
  if not isinstance(voice, str) or not voice.strip():
    raise UserError(f'bad eSpeak voice {voice!r}', "a language code like 'en-us' or 'fr-fr'", 'see list_voices()')
  key = voice.strip().lower()
  voices = _catalogue()[1]
  for v in voices:
    if key in (v.identifier.lower(), v.identifier.rsplit('/', 1)[-1].lower()):
      return v.identifier
  for v in voices:
    if v.languages and v.languages[0] == key:
      return v.identifier
  for v in voices:
    if key in v.languages or key == v.name.lower():
      return v.identifier
  near = sorted({l for v in voices for l in v.languages if l.split('-')[0] == key.split('-')[0]})[:12]
  raise UserError(f'unknown eSpeak voice {voice!r}', f'one of {near}' if near else 'a language code like en-us',
                  'see jaxdl.speech.espeak.list_voices()')


def _check_range(name: str, value, low: int, high: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
    raise UserError(f'eSpeak {name}={value!r} is out of range', f'an integer in [{low}, {high}]', f'change {name}')
  return int(value)


def _synth_int16(text: str, voice: str, variant: str | None, rate: int, pitch: int, pitch_range: int,
                 word_gap: int, seed: int) -> np.ndarray:
  """int16 samples at 22,050 Hz from a fresh library instance (module docstring: determinism)."""
  name = resolve_voice(voice)
  if variant is not None:
    if variant not in list_variants():
      raise UserError(f'unknown eSpeak variant {variant!r}', f'one of {list_variants()[:16]} …',
                      'see jaxdl.speech.espeak.list_variants()')
    name = f'{name}+{variant}'
  with _LOCK, _Session() as s:
    return s.synth(text, name, rate=rate, pitch=pitch, pitch_range=pitch_range, word_gap=word_gap, seed=seed)


def synthesize(text: str, *, voice: str = 'en-us', variant: str | None = None, rate: int = 175, pitch: int = 50,
               pitch_range: int = 50, word_gap: int = 0, seed: int = 0, sample_rate: int | None = 16000
               ) -> np.ndarray:
  """Speak `text` with eSpeak NG: float32 mono in [−1, 1] at `sample_rate` (None: the native 22,050 Hz).

  voice: a language code ('en-us', 'en-gb', 'fr-fr' …), voice file or name (list_voices); variant: a speaker
  variant ('f3', 'm1', 'klatt' …, list_variants) or None; rate in words per minute [80, 450] (175 normal); pitch and
  pitch_range in [0, 100] (50 normal); word_gap: extra pause between words in units of 10 ms; seed: eSpeak's noise
  generator (breath / aspiration noise). Deterministic: the same arguments give the same samples.
  """
  if not isinstance(text, str) or not text.strip():
    raise UserError(f'nothing to synthesise: text={text!r}', 'a non-empty string', 'give some words')
  rate = _check_range('rate', rate, *RATE_RANGE)
  pitch = _check_range('pitch', pitch, 0, 100)
  pitch_range = _check_range('pitch_range', pitch_range, 0, 100)
  word_gap = _check_range('word_gap', word_gap, 0, 1000)
  pcm = _synth_int16(text, voice, variant, rate, pitch, pitch_range, word_gap, int(seed) & 0x7FFFFFFF)
  x = pcm.astype(np.float32) / 32768.0
  if sample_rate is not None and int(sample_rate) != NATIVE_RATE:
    x = np.clip(resample(x, NATIVE_RATE, int(sample_rate)), -1.0, 1.0)
  return x


# --------------------------------------------------------------------------------------------------- corpus
def corpus_plan(sentences: Sequence[str], *, voices: Sequence[str] = ('en-us',),
                variants: Sequence[str | None] = (None,), rates: Sequence[int] = (175,),
                pitches: Sequence[int] = (50,), noise_snr_db: float | tuple[float, float] | None = None,
                copies: int = 1, seed: int = 0) -> list[dict]:
  """The speaker setting of every utterance, drawn from `seed` (no synthesis): see `make_corpus`."""
  if isinstance(sentences, str) or not len(sentences):
    raise UserError('no sentences for the speech corpus', 'a non-empty list of strings', 'pass sentences=[...]')
  for name, options in (('voices', voices), ('variants', variants), ('rates', rates), ('pitches', pitches)):
    if isinstance(options, str) or not len(options):
      raise UserError(f'{name}={options!r} for the speech corpus', 'a non-empty list', f'pass {name}=[...]')
  if copies < 1:
    raise UserError(f'copies={copies} for the speech corpus', 'an integer >= 1', 'pass copies=1 or more')
  rng = np.random.default_rng(seed)
  plan = []
  for copy in range(copies):
    for i, text in enumerate(sentences):
      voice = voices[int(rng.integers(len(voices)))]
      variant = variants[int(rng.integers(len(variants)))]
      rate = int(rates[int(rng.integers(len(rates)))])
      pitch = int(pitches[int(rng.integers(len(pitches)))])
      if noise_snr_db is None:
        snr = None
      elif isinstance(noise_snr_db, (tuple, list)):
        snr = float(rng.uniform(float(noise_snr_db[0]), float(noise_snr_db[1])))
      else:
        snr = float(noise_snr_db)
      plan.append(dict(text=str(text), voice=str(voice), variant=None if variant is None else str(variant),
                       speaker=str(voice) if variant is None else f'{voice}+{variant}', rate=rate, pitch=pitch,
                       snr_db=snr, seed=int(rng.integers(2 ** 31)), sentence=i, copy=copy))
  return plan


def _cache_key(args: dict) -> str:
  blob = json.dumps(dict(args, format=CORPUS_FORMAT, espeak=espeak_version()), sort_keys=True, ensure_ascii=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _save_npz(path: pathlib.Path, audio16: list[np.ndarray], meta: list[dict]) -> None:
  """One .npz (int16 audio concatenated, offsets, JSON metadata), written to a temporary file then renamed."""
  offsets = np.cumsum([0] + [a.size for a in audio16]).astype(np.int64)
  flat = np.concatenate(audio16) if audio16 else np.zeros((0,), np.int16)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + '.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, audio=flat, offsets=offsets, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _load_npz(path: pathlib.Path) -> tuple[list[np.ndarray], list[dict]] | None:
  try:
    with np.load(path, allow_pickle=False) as z:
      flat, offsets, meta = z['audio'], z['offsets'], json.loads(str(z['meta']))
  except (OSError, ValueError, KeyError, json.JSONDecodeError):
    return None        # unreadable cache (truncated by hand, older format): regenerate
  return [flat[offsets[i]:offsets[i + 1]] for i in range(len(meta))], meta


def make_corpus(sentences: Sequence[str], *, voices: Sequence[str] = ('en-us',),
                variants: Sequence[str | None] = (None,), rates: Sequence[int] = (175,),
                pitches: Sequence[int] = (50,), noise_snr_db: float | tuple[float, float] | None = None,
                copies: int = 1, seed: int = 0, sample_rate: int = 16000,
                cache_dir: str | os.PathLike | None = None, verbose: bool = False) -> list[dict]:
  """A synthetic speech corpus: every sentence spoken `copies` times by speakers drawn from the seed.

  For each copy and sentence (in order) a numpy Generator(seed) draws a voice (language code, e.g. ENGLISH_VOICES or
  FRENCH_VOICES), a variant (None = the voice's own, or e.g. VARIANTS), a rate and a pitch from the lists, an SNR
  (noise_snr_db: None = clean, a number, or a (low, high) range drawn uniformly) and a per-utterance seed (eSpeak's
  noise generator and the white noise added at that SNR). Returns one dict per utterance: audio (float32 on the
  16-bit grid, at sample_rate), text, voice, variant, speaker ('voice+variant'), rate, pitch, snr_db, seed,
  sentence (index into `sentences`), copy, sample_rate.

  With cache_dir, the corpus is written once to cache_dir/espeak-<hash>.npz (hash of every argument, the eSpeak
  version and the file format) and read back on later calls; cache_dir=None synthesises in memory every time.
  """
  sample_rate = int(sample_rate)
  if sample_rate <= 0:
    raise UserError(f'sample_rate={sample_rate} for the speech corpus', 'a positive rate in Hz', 'e.g. 16000')
  plan = corpus_plan(sentences, voices=voices, variants=variants, rates=rates, pitches=pitches,
                     noise_snr_db=noise_snr_db, copies=copies, seed=seed)
  path = None
  if cache_dir is not None:
    args = dict(sentences=[str(s) for s in sentences], voices=list(map(str, voices)),
                variants=[None if v is None else str(v) for v in variants], rates=[int(r) for r in rates],
                pitches=[int(p) for p in pitches], copies=int(copies), seed=int(seed), sample_rate=sample_rate,
                noise_snr_db=list(noise_snr_db) if isinstance(noise_snr_db, (tuple, list)) else noise_snr_db)
    path = pathlib.Path(cache_dir) / f'espeak-{_cache_key(args)}.npz'
    if path.exists():
      loaded = _load_npz(path)
      if loaded is not None and len(loaded[1]) == len(plan):
        return [dict(m, audio=a.astype(np.float32) / 32768.0, sample_rate=sample_rate) for a, m in zip(*loaded)]
  audio16 = []
  for k, item in enumerate(plan):
    x = synthesize(item['text'], voice=item['voice'], variant=item['variant'], rate=item['rate'],
                   pitch=item['pitch'], seed=item['seed'], sample_rate=sample_rate)
    if item['snr_db'] is not None:
      noise = np.random.default_rng(item['seed']).standard_normal(x.size)
      x = mix_at_snr(x, noise, item['snr_db'])
    audio16.append(np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16))   # the 16-bit grid
    if verbose and (k + 1) % 100 == 0:
      print(f'espeak corpus: {k + 1}/{len(plan)} utterances', file=sys.stderr)
  if path is not None:
    try:
      path.parent.mkdir(parents=True, exist_ok=True)
      _save_npz(path, audio16, plan)
    except OSError as e:
      raise UserError(f'cannot write the speech corpus cache {str(path)!r} ({e.strerror or e})',
                      'a writable cache_dir', 'pass another cache_dir') from None
  return [dict(m, audio=a.astype(np.float32) / 32768.0, sample_rate=sample_rate) for a, m in zip(audio16, plan)]
