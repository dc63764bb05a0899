"""Audio files in and out: reading speech for `jaxdl transcribe` and corpora, writing 16-bit WAV, resampling.

Course chapter 5 (seed 000, "CTC example on voice recognition": given a waveform, produce the transcript). Files are
read with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, …), averaged to mono and resampled to the model's rate by
polyphase filtering (scipy.signal.resample_poly with the gcd-reduced ratio target/source). Everything here is host
NumPy; the front end (`jaxdl.speech.features`) takes the arrays from there.
"""
from __future__ import annotations

import math
import os
import pathlib

import numpy as np

from jaxdl.errors import UserError


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
  """Resample along axis 0 from orig_sr to target_sr Hz: resample_poly(x, target/g, orig/g), g = gcd; float32.

  The output has ⌈len · target / orig⌉ samples; the polyphase FIR (Kaiser window) removes content above the lower
  Nyquist frequency.
  """
  from scipy import signal
  orig_sr, target_sr = int(orig_sr), int(target_sr)
  if orig_sr <= 0 or target_sr <= 0:
    raise ValueError(f'sample rates must be > 0, got {orig_sr} -> {target_sr}')
  x = np.asarray(x, np.float32)
  if orig_sr == target_sr:
    return x
  g = math.gcd(orig_sr, target_sr)
  return signal.resample_poly(x, target_sr // g, orig_sr // g, axis=0).astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int | None = 16000) -> np.ndarray:
  """Read an audio file as float32 mono in [−1, 1] at `sample_rate` (None keeps the file's rate).

  Channels are averaged; other rates are resampled (`resample`). A missing file, a file that is not audio, or one
  with no samples raises UserError. Silence is allowed here: callers that need speech call `check_not_silent`.
  """
  import soundfile
  p = pathlib.Path(path)
  if not p.exists():
    raise UserError(f'audio file {str(p)!r} does not exist', 'a WAV, FLAC or OGG file', 'check the path')
  if p.is_dir():
    raise UserError(f'{str(p)!r} is a directory, not an audio file', 'a WAV, FLAC or OGG file', 'give a file path')
  try:
    data, rate = soundfile.read(str(p), dtype='float32', always_2d=True)
  except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise UserError(f'cannot read {str(p)!r} as audio ({reason})', 'a WAV, FLAC or OGG file readable by libsndfile',
                    'convert it, e.g. `ffmpeg -i in.mp3 out.wav`') from None
  if data.shape[0] == 0 or data.shape[1] == 0:
    raise UserError(f'audio file {str(p)!r} has no samples', 'at least one sample', 'check the recording')
  x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
  if sample_rate is not None and rate != sample_rate:
    x = resample(x, rate, sample_rate)
  return np.clip(x, -1.0, 1.0).astype(np.float32)


def check_not_silent(x: np.ndarray, *, threshold_db: float = -80.0, name: str = 'audio') -> np.ndarray:
  """Return x, or raise UserError if its peak |x| is at or below `threshold_db` dBFS (−80 dB = 1e-4; all zeros)."""
  x = np.asarray(x)
  peak = float(np.max(np.abs(x))) if x.size else 0.0
  if peak <= 10.0 ** (threshold_db / 20.0):
    level = '-inf' if peak == 0.0 else f'{20.0 * math.log10(peak):.1f}'
    raise UserError(f'{name} is silent (peak {level} dBFS)', f'a peak above {threshold_db:g} dBFS',
                    'check the recording, its gain, or the microphone')
  return x


def write_wav(path: str | os.PathLike, x: np.ndarray, sample_rate: int) -> pathlib.Path:
  """Write float samples in [−1, 1] (T,) or (T, C) as 16-bit PCM WAV (values outside are clipped)."""
  import soundfile
  x = np.asarray(x, np.float32)
  if x.ndim not in (1, 2) or x.shape[0] == 0:
    raise ValueError(f'write_wav expects non-empty samples of shape (T,) or (T, C), got {x.shape}')
  if int(sample_rate) <= 0:
    raise ValueError(f'sample_rate must be > 0, got {sample_rate}')
  p = pathlib.Path(path)
  if not p.parent.is_dir():
    raise UserError(f'cannot write {str(p)!r}: the folder {str(p.parent)!r} does not exist', 'an existing folder',
                    'create it first')
  soundfile.write(str(p), np.clip(x, -1.0, 1.0), int(sample_rate), subtype='PCM_16', format='WAV')
  return p
