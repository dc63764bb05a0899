"""The speech front end in pure JAX: framing, windows, STFT, (mel) spectrograms, dB / log, MFCC and normalisation.

Course chapter 5 (seed 000, "CTC example on voice recognition"): the waveform is turned into a spectrogram with an
STFT of window 25 ms and step 15 ms (claim S3, `COURSE_STFT`); DeepSpeech2 (Amodei et al. 2015) reads mel
spectrograms (or the 161-bin linear spectrogram of a 20 ms window at 16 kHz). `log_mel` is the one-call front end.

Layout and conventions (every function is batched, pure and jit-able; sizes are static Python ints):

  signals     x (B, T) float (a single (T,) signal is accepted and the batch axis dropped again)
  paddings    (B, T) float, 1.0 at padded samples and 0.0 at valid ones; utterances are RIGHT-padded, so utterance b
              is x[b, :L_b] with L_b = Σ_t (1 − paddings[b, t]). Samples past L_b are ignored whatever they hold.
  features    (B, F, D): frames on axis 1, bins on axis 2 (librosa returns (D, F): transpose to compare)
  frame pads  (B, F), same convention; padded frames of every output are 0.

Framing follows librosa.stft: frame t covers samples [t·hop − c, t·hop − c + n_fft), c = n_fft // 2 with
`center=True` (else 0); a window of win_length ≤ n_fft samples is zero-padded on both sides to n_fft (librosa's
pad_center), so with `center=True` frame t is centred on sample t·hop. Samples outside [0, L_b) take `pad_mode`
relative to the utterance's OWN length: 'constant' (0), 'reflect' (numpy's reflect: x[1], x[0] | x[0], x[1] …,
one reflection, so pads longer than the utterance fall back to the edge sample) or 'edge'. So a padded batch gives
each utterance exactly the frames it gives alone.

Which frames are valid (`frame_paddings`):
  center=True   frame t is valid iff its centre sample t·hop is valid, i.e. frame_paddings = paddings[:, ::hop]
                (1.0 past the end): ⌈L/hop⌉ valid frames. This is the rule a stride-s convolution with SAME padding
                uses to subsample paddings (out_paddings = in_paddings[:, ::s], as in lingvo / the AlgoPerf JAX
                DeepSpeech), so the front end and the conv stack agree. librosa gives an utterance alone 1 + ⌊L/hop⌋
                frames: the valid frames are its first ⌈L/hop⌉ (one fewer when hop divides L: that last frame is
                centred past the end).
  center=False  frame t is valid iff it lies inside the utterance, t·hop + n_fft ≤ L (the frames librosa gives the
                utterance alone): the rule of a VALID convolution.

Windows match scipy.signal.get_window / librosa: periodic ("fftbins=True", the STFT default) or symmetric. Mel scales
and filterbanks match librosa.filters.mel(htk=..., norm=...): HTK mel m = 2595 log10(1 + f/700) (Young et al., HTK
Book), Slaney mel linear below 1 kHz (f / (200/3)) and logarithmic above (Slaney 1998, Auditory Toolbox), triangular
filters on equally spaced mel points, norm='slaney' scales filter m by 2 / (f_{m+2} − f_m) (equal area).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

PAD_MODES = ('constant', 'reflect', 'edge')
WINDOWS = ('hann', 'hamming', 'rectangular')


# ---------------------------------------------------------------------------------------------- parameters
@dataclasses.dataclass(frozen=True)
class FrameParams:
  """Sizes in samples: window (win_length), step (hop_length) and FFT size (n_fft ≥ win_length)."""
  win_length: int
  hop_length: int
  n_fft: int

  @property
  def n_freq(self) -> int:
    return self.n_fft // 2 + 1


def next_pow2(n: int) -> int:
  return 1 << max(0, int(n) - 1).bit_length()


def frame_params(sample_rate: int, window_ms: float = 25.0, hop_ms: float = 15.0, n_fft: int | None = None
                 ) -> FrameParams:
  """Window and step in samples (rounded) for a rate; n_fft defaults to the next power of two ≥ the window.

  The course's STFT (claim S3): 25 ms window, 15 ms step; at 16 kHz 400 / 240 samples and a 512-point FFT.
  """
  if sample_rate <= 0 or window_ms <= 0 or hop_ms <= 0:
    raise ValueError(f'sample_rate, window_ms and hop_ms must be > 0, got {sample_rate}, {window_ms}, {hop_ms}')
  win = int(round(sample_rate * window_ms / 1000.0))
  hop = max(1, int(round(sample_rate * hop_ms / 1000.0)))
  n_fft = next_pow2(win) if n_fft is None else int(n_fft)
  if n_fft < win:
    raise ValueError(f'n_fft={n_fft} is shorter than the window ({win} samples)')
  return FrameParams(win, hop, n_fft)


@dataclasses.dataclass(frozen=True)
class StftConfig:
  """A named STFT setting in milliseconds; `.params(sample_rate)` gives the sizes in samples."""
  window_ms: float = 25.0
  hop_ms: float = 15.0
  window: str = 'hann'
  center: bool = True
  n_fft: int | None = None

  def params(self, sample_rate: int) -> FrameParams:
    return frame_params(sample_rate, self.window_ms, self.hop_ms, self.n_fft)


COURSE_STFT = StftConfig(window_ms=25.0, hop_ms=15.0)   # seed 000: STFT(win_size=25ms, win_step=15ms) (claim S3)
DS2_STFT = StftConfig(window_ms=20.0, hop_ms=10.0)      # Amodei et al. 2015: 20 ms / 10 ms (161 bins with n_fft=320)


# -------------------------------------------------------------------------------------------------- windows
def get_window(name: str, length: int, *, periodic: bool = True) -> jax.Array:
  """hann / hamming / rectangular window of `length` samples, float32, as scipy.signal.get_window.

  w[n] = a − (1 − a) cos(2πn / N'), a = 0.5 (Hann) or 0.54 (Hamming); N' = length if periodic (the DFT-even window,
  scipy's fftbins=True, librosa's default) else length − 1 (symmetric).
  """
  if name not in WINDOWS:
    raise ValueError(f'unknown window {name!r}; expected one of {WINDOWS}')
  if length <= 0:
    raise ValueError(f'window length must be >= 1, got {length}')
  if name == 'rectangular' or length == 1:
    return jnp.ones((length,), jnp.float32)
  a = 0.5 if name == 'hann' else 0.54
  denom = length if periodic else length - 1
  n = np.arange(length, dtype=np.float64)
  return jnp.asarray(a - (1.0 - a) * np.cos(2.0 * np.pi * n / denom), jnp.float32)


def _window_in_fft(window: str | jax.Array, win_length: int, n_fft: int, periodic: bool) -> jax.Array:
  """The window zero-padded on both sides to n_fft (librosa.util.pad_center: left pad (n_fft − win) // 2)."""
  w = get_window(window, win_length, periodic=periodic) if isinstance(window, str) else jnp.asarray(window, jnp.float32)
  if w.shape != (win_length,):
    raise ValueError(f'window has shape {w.shape}, expected ({win_length},)')
  left = (n_fft - win_length) // 2
  return jnp.pad(w, (left, n_fft - win_length - left))


# -------------------------------------------------------------------------------------------------- framing
def _as_batch(x) -> tuple[jax.Array, bool]:
  x = jnp.asarray(x)
  if x.ndim == 1:
    return x[None], True
  if x.ndim != 2:
    raise ValueError(f'expected signals of shape (B, T) or (T,), got {x.shape}')
  return x, False


def lengths_from_paddings(paddings: jax.Array) -> jax.Array:
  """Valid lengths L_b = Σ_t (1 − paddings[b, t]) as int32 (right padding)."""
  return jnp.round(jnp.sum(1.0 - paddings.astype(jnp.float32), axis=-1)).astype(jnp.int32)


def num_frames(num_samples: int, frame_length: int, hop_length: int, center: bool) -> int:
  """Frames of a T-sample array: 1 + ⌊(T + 2c − frame_length) / hop⌋, c = frame_length // 2 if center else 0."""
  pad = frame_length // 2 if center else 0
  n = num_samples + 2 * pad - frame_length
  if n < 0:
    raise ValueError(f'{num_samples} samples are fewer than one frame of {frame_length} (center={center})')
  return 1 + n // hop_length


def frame(x, frame_length: int, hop_length: int, *, paddings=None, center: bool = False,
          pad_mode: str = 'constant') -> jax.Array:
  """Overlapping frames (B, F, frame_length): frame t = x[t·hop − c : t·hop − c + frame_length].

  c = frame_length // 2 when `center`, else 0. Samples outside each utterance's valid range [0, L_b) take `pad_mode`
  relative to L_b (see the module docstring), so padding never leaks into the frames of a shorter utterance.
  """
  if pad_mode not in PAD_MODES:
    raise ValueError(f'unknown pad_mode {pad_mode!r}; expected one of {PAD_MODES}')
  if hop_length < 1 or frame_length < 1:
    raise ValueError(f'frame_length and hop_length must be >= 1, got {frame_length}, {hop_length}')
  x, single = _as_batch(x)
  batch, total = x.shape
  n = num_frames(total, frame_length, hop_length, center)
  pos = (np.arange(n)[:, None] * hop_length + np.arange(frame_length)[None, :]
         - (frame_length // 2 if center else 0))                           # (F, K), static
  if paddings is None:
    length = jnp.full((batch, 1, 1), total, jnp.int32)
  else:
    if paddings.shape != x.shape:
      raise ValueError(f'paddings shape {paddings.shape} differs from the signals {x.shape}')
    length = lengths_from_paddings(paddings)[:, None, None]
  p = jnp.asarray(pos, jnp.int32)[None]
  last = jnp.maximum(length - 1, 0)
  if pad_mode == 'reflect':
    q = jnp.abs(p)                                                         # x[-k] -> x[k]
    q = jnp.where(q > last, 2 * last - q, q)                               # x[L-1+k] -> x[L-1-k]
  else:
    q = p
  q = jnp.clip(q, 0, last)                                                 # 'edge', and the fallback of 'reflect'
  frames = x[jnp.arange(batch)[:, None, None], q]
  if pad_mode == 'constant':
    frames = jnp.where((p >= 0) & (p < length), frames, jnp.zeros((), x.dtype))
  frames = jnp.where(length > 0, frames, jnp.zeros((), x.dtype))
  return frames[0] if single else frames


def frame_paddings(paddings, frame_length: int, hop_length: int, *, center: bool = True) -> jax.Array:
  """Frame paddings (B, F) from sample paddings (B, T), for frames as `frame` / `stft` cut them.

  center=True: frame t takes the padding of its centre sample t·hop (paddings[:, ::hop], 1.0 past the end) — the
  subsampling rule of a strided SAME convolution. center=False: the padding of its last sample t·hop + len − 1
  (valid iff the whole frame is valid).
  """
  paddings, single = _as_batch(paddings)
  total = paddings.shape[1]
  n = num_frames(total, frame_length, hop_length, center)
  idx = np.arange(n) * hop_length + (0 if center else frame_length - 1)
  ext = jnp.concatenate([paddings.astype(jnp.float32), jnp.ones((paddings.shape[0], 1), jnp.float32)], axis=1)
  out = ext[:, np.minimum(idx, total)]
  return out[0] if single else out


def _mask_frames(values: jax.Array, fpad: jax.Array | None) -> jax.Array:
  if fpad is None:
    return values
  return jnp.where(fpad[..., None] > 0, jnp.zeros((), values.dtype), values)


# ----------------------------------------------------------------------------------------------------- STFT
def stft(x, paddings=None, *, n_fft: int, hop_length: int, win_length: int | None = None,
         window: str | jax.Array = 'hann', periodic: bool = True, center: bool = True,
         pad_mode: str = 'constant') -> jax.Array:
  """Short-time Fourier transform (B, F, n_fft // 2 + 1), complex64, as librosa.stft (transposed).

  X[b, t, k] = Σ_n w[n] x_t[n] e^{−2πikn / n_fft} over the n_fft-sample frame x_t (module docstring), the window of
  win_length (default n_fft) samples centred in it. Padded frames are 0.
  """
  win_length = n_fft if win_length is None else int(win_length)
  if not 1 <= win_length <= n_fft:
    raise ValueError(f'win_length={win_length} must be in [1, n_fft={n_fft}]')
  frames = frame(x, n_fft, hop_length, paddings=paddings, center=center, pad_mode=pad_mode)
  w = _window_in_fft(window, win_length, n_fft, periodic)
  spec = jnp.fft.rfft(frames.astype(jnp.float32) * w, n=n_fft, axis=-1)
  if paddings is not None:
    spec = _mask_frames(spec, frame_paddings(paddings, n_fft, hop_length, center=center))
  return spec


def spectrogram(x, paddings=None, *, n_fft: int, hop_length: int, win_length: int | None = None,
                window: str | jax.Array = 'hann', periodic: bool = True, center: bool = True,
                pad_mode: str = 'constant', power: float = 2.0) -> jax.Array:
  """|STFT|^power (B, F, n_fft // 2 + 1): power=1 the magnitude, power=2 the power spectrogram."""
  spec = stft(x, paddings, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
              periodic=periodic, center=center, pad_mode=pad_mode)
  mag2 = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
  if power == 2.0:
    return mag2
  if power == 1.0:
    return jnp.sqrt(mag2)
  return mag2 ** (power / 2.0)


# ------------------------------------------------------------------------------------------------------ mel
def hz_to_mel(hz, *, htk: bool = False):
  """Mel value of frequencies in Hz (NumPy or JAX arrays): HTK 2595 log10(1 + f/700), else Slaney's scale."""
  xp = jnp if isinstance(hz, jax.Array) else np
  hz = xp.asarray(hz, dtype=xp.float64 if xp is np else None)
  if htk:
    return 2595.0 * xp.log10(1.0 + hz / 700.0)
  f_sp, min_log_hz = 200.0 / 3.0, 1000.0           # Slaney 1998: linear below 1 kHz, 27 log-steps per ×6.4 above
  logstep = math.log(6.4) / 27.0
  linear = hz / f_sp
  log = min_log_hz / f_sp + xp.log(xp.maximum(hz, min_log_hz) / min_log_hz) / logstep
  return xp.where(hz >= min_log_hz, log, linear)


def mel_to_hz(mel, *, htk: bool = False):
  """Inverse of `hz_to_mel`."""
  xp = jnp if isinstance(mel, jax.Array) else np
  mel = xp.asarray(mel, dtype=xp.float64 if xp is np else None)
  if htk:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
  f_sp, min_log_hz = 200.0 / 3.0, 1000.0
  min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
  linear = mel * f_sp
  log = min_log_hz * xp.exp(logstep * (xp.maximum(mel, min_log_mel) - min_log_mel))
  return xp.where(mel >= min_log_mel, log, linear)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, *, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, norm: str | None = 'slaney') -> jax.Array:
  """Triangular mel filters (n_fft // 2 + 1, n_mels), float32: `power_spec @ filters` gives the mel spectrogram.

  Filter m rises linearly from f_m to f_{m+1} and falls to f_{m+2}, where f_0 … f_{n_mels+1} are equally spaced on
  the mel scale over [fmin, fmax] (fmax defaults to sample_rate / 2); norm='slaney' divides filter m by
  (f_{m+2} − f_m) / 2 so every filter has the same area; norm=None leaves peaks at 1. Equals
  librosa.filters.mel(...).T.
  """
  fmax = sample_rate / 2.0 if fmax is None else float(fmax)
  if n_mels < 1 or not 0.0 <= fmin < fmax:
    raise ValueError(f'need n_mels >= 1 and 0 <= fmin < fmax, got n_mels={n_mels}, fmin={fmin}, fmax={fmax}')
  if norm not in ('slaney', None):
    raise ValueError(f"mel norm must be 'slaney' or None, got {norm!r}")
  fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)                           # (K,)
  edges = mel_to_hz(np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2), htk=htk)
  lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]             # (M, 1)
  rise = (fft_hz[None] - lo) / (mid - lo)
  fall = (hi - fft_hz[None]) / (hi - mid)
  weights = np.maximum(0.0, np.minimum(rise, fall))                              # (M, K)
  if norm == 'slaney':
    weights *= (2.0 / (hi - lo))
  return jnp.asarray(weights.T, jnp.float32)


def melspectrogram(x, paddings=None, *, sample_rate: int, n_fft: int, hop_length: int,
                   win_length: int | None = None, window: str = 'hann', periodic: bool = True, center: bool = True,
                   pad_mode: str = 'constant', power: float = 2.0, n_mels: int = 128, fmin: float = 0.0,
                   fmax: float | None = None, htk: bool = False, norm: str | None = 'slaney') -> jax.Array:
  """Mel spectrogram (B, F, n_mels) = |STFT|^power · filters, as librosa.feature.melspectrogram (transposed)."""
  spec = spectrogram(x, paddings, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                     periodic=periodic, center=center, pad_mode=pad_mode, power=power)
  fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
  return jnp.matmul(spec, fb, precision=jax.lax.Precision.HIGHEST)


# ------------------------------------------------------------------------------------------------ log, MFCC
def _valid_max(values: jax.Array, fpad: jax.Array | None) -> jax.Array:
  """Per-example max over valid frames and all bins, shape (B, 1, 1) (or () for a 2-D input)."""
  if values.ndim == 2:
    v = values if fpad is None else jnp.where(fpad[:, None] > 0, -jnp.inf, values)
    return jnp.max(v)
  v = values if fpad is None else jnp.where(fpad[..., None] > 0, -jnp.inf, values)
  return jnp.max(v, axis=(1, 2), keepdims=True)


def power_to_db(S, frame_paddings=None, *, ref: float | str = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> jax.Array:
  """10 log10(max(S, amin)) − 10 log10(max(ref, amin)), floored at (max − top_db), as librosa.power_to_db.

  The max (for top_db, and ref='max', librosa's ref=np.max) is taken PER EXAMPLE over its valid frames (librosa
  takes it over the whole array it is given, i.e. one utterance). S is (B, F, D) or a single (F, D).
  """
  if amin <= 0:
    raise ValueError(f'amin must be > 0, got {amin}')
  S = jnp.asarray(S, jnp.float32)
  if ref == 'max':
    ref_value = _valid_max(S, frame_paddings)
  elif isinstance(ref, str):
    raise ValueError(f"ref must be a number or 'max', got {ref!r}")
  else:
    ref_value = jnp.float32(abs(ref))
  db = 10.0 * jnp.log10(jnp.maximum(amin, S)) - 10.0 * jnp.log10(jnp.maximum(amin, ref_value))
  if top_db is not None:
    if top_db < 0:
      raise ValueError(f'top_db must be >= 0, got {top_db}')
    db = jnp.maximum(db, _valid_max(db, frame_paddings) - top_db)
  return db if frame_paddings is None else _mask_frames(db, frame_paddings)


def log_floor(S, *, floor: float = 1e-6) -> jax.Array:
  """Natural log with a floor, log(max(S, floor)): finite on silent frames."""
  return jnp.log(jnp.maximum(jnp.asarray(S, jnp.float32), floor))


def mfcc(S_db, *, n_mfcc: int = 20, lifter: float = 0.0) -> jax.Array:
  """MFCCs (…, n_mfcc): orthonormal DCT-II over the mel axis of a log-mel spectrogram (…, n_mels).

  As librosa.feature.mfcc(S=power_to_db(mel), dct_type=2, norm='ortho'): c = DCT-II_ortho(S_db)[:n_mfcc]; with
  lifter L > 0, c_n ← c_n (1 + (L/2) sin(π(n + 1)/L)) (sinusoidal liftering, Juang et al. 1987).
  """
  S_db = jnp.asarray(S_db, jnp.float32)
  if not 1 <= n_mfcc <= S_db.shape[-1]:
    raise ValueError(f'n_mfcc={n_mfcc} must be in [1, {S_db.shape[-1]}] (the number of mel bands)')
  c = jax.scipy.fft.dct(S_db, type=2, axis=-1, norm='ortho')[..., :n_mfcc]
  if lifter > 0:
    n = np.arange(n_mfcc, dtype=np.float64)
    c = c * jnp.asarray(1.0 + (lifter / 2.0) * np.sin(np.pi * (n + 1.0) / lifter), jnp.float32)
  elif lifter < 0:
    raise ValueError(f'lifter must be >= 0, got {lifter}')
  return c


# ------------------------------------------------------------------------------------------- normalisation
def _frame_weights(features: jax.Array, fpad) -> jax.Array:
  if fpad is None:
    return jnp.ones(features.shape[:2] + (1,), jnp.float32)
  return (1.0 - fpad.astype(jnp.float32))[..., None]


def normalize_per_utterance(features, frame_paddings=None, *, eps: float = 1e-5) -> jax.Array:
  """(x − μ_b) / max(σ_b, eps) per utterance and bin, μ_b and σ_b over its VALID frames; padded frames → 0."""
  f = jnp.asarray(features, jnp.float32)
  w = _frame_weights(f, frame_paddings)
  n = jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
  mean = jnp.sum(f * w, axis=1, keepdims=True) / n
  var = jnp.sum(((f - mean) * w) ** 2, axis=1, keepdims=True) / n
  return (f - mean) / jnp.maximum(jnp.sqrt(var), eps) * w


def feature_stats(features, frame_paddings=None) -> tuple[jax.Array, jax.Array]:
  """Mean and standard deviation per bin (D,) over all valid frames of a batch (for `normalize_global`)."""
  f = jnp.asarray(features, jnp.float32)
  w = _frame_weights(f, frame_paddings)
  n = jnp.maximum(jnp.sum(w), 1.0)
  mean = jnp.sum(f * w, axis=(0, 1)) / n
  var = jnp.sum(((f - mean) * w) ** 2, axis=(0, 1)) / n
  return mean, jnp.sqrt(var)


def normalize_global(features, mean, std, frame_paddings=None, *, eps: float = 1e-5) -> jax.Array:
  """(x − mean) / max(std, eps) with given per-bin statistics (e.g. `feature_stats` of the training set)."""
  f = jnp.asarray(features, jnp.float32)
  out = (f - jnp.asarray(mean, jnp.float32)) / jnp.maximum(jnp.asarray(std, jnp.float32), eps)
  return out if frame_paddings is None else _mask_frames(out, frame_paddings)


# ------------------------------------------------------------------------------------------------ front end
def log_mel(x, paddings=None, *, sample_rate: int = 16000, n_mels: int | None = 80, window_ms: float = 25.0,
            hop_ms: float = 15.0, n_fft: int | None = None, window: str = 'hann', center: bool = True,
            pad_mode: str = 'constant', fmin: float = 0.0, fmax: float | None = None, htk: bool = False,
            mel_norm: str | None = 'slaney', log: str = 'ln', floor: float = 1e-6, top_db: float | None = None,
            normalize: str | None = 'utterance') -> tuple[jax.Array, jax.Array]:
  """The DeepSpeech front end: waveform (B, T) → features (B, F, n_mels), frame paddings (B, F).

  Power spectrogram of a `window_ms` / `hop_ms` STFT (default the course's 25 / 15 ms, S3; n_fft the next power of
  two), then `n_mels` mel filters (20 / 40 / 80 …; n_mels=None keeps the n_fft // 2 + 1 linear bins, e.g. the
  161-bin DeepSpeech2 spectrogram with window_ms=20, hop_ms=10, n_fft=320 at 16 kHz), then log: 'ln'
  (log(max(S, floor))) or 'db' (`power_to_db`, ref 1, with `top_db`), then normalize: 'utterance' (mean/variance
  over valid frames) or None. Padded frames are 0. Without paddings every sample is valid and the frames follow the
  same `frame_paddings` rule, so an utterance gives the same features alone and in a padded batch. Jit with the
  keyword arguments static (functools.partial).
  """
  if log not in ('ln', 'db'):
    raise ValueError(f"log must be 'ln' or 'db', got {log!r}")
  if normalize not in ('utterance', None):
    raise ValueError(f"normalize must be 'utterance' or None, got {normalize!r}")
  x, single = _as_batch(x)
  # no paddings = every sample valid; frames still follow the `frame_paddings` rule (with center=True a last frame
  # centred past the end, when hop divides T, is padded), so an utterance alone and in a padded batch agree
  paddings = jnp.zeros(x.shape, jnp.float32) if paddings is None else jnp.asarray(paddings)
  paddings = paddings[None] if paddings.ndim == 1 else paddings
  p = frame_params(sample_rate, window_ms, hop_ms, n_fft)
  kw = dict(n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length, window=window, center=center,
            pad_mode=pad_mode)
  x = x.astype(jnp.float32)
  if n_mels is None:
    S = spectrogram(x, paddings, **kw)
  else:
    S = melspectrogram(x, paddings, sample_rate=sample_rate, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                       norm=mel_norm, **kw)
  fpad = frame_paddings(paddings, p.n_fft, p.hop_length, center=center)
  feats = power_to_db(S, fpad, top_db=top_db) if log == 'db' else log_floor(S, floor=floor)
  feats = normalize_per_utterance(feats, fpad) if normalize == 'utterance' else _mask_frames(feats, fpad)
  if single:
    return feats[0], fpad[0]
  return feats, fpad
