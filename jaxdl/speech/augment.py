"""Speech data augmentation: SpecAugment, additive noise at a chosen SNR, speed perturbation.

Course chapter 5 (seed 000): DeepSpeech2 trains with "data augmentation with noise added to the speech" (Amodei et al.
2015, claim S4). Also SpecAugment (Park et al. 2019) and speed perturbation (Ko et al. 2015).

JAX ops (pure, batched, jit-able, seeded with a key, padding-aware; paddings are 1.0 at padded positions, right
padding as in `jaxdl.speech.features`). Op k of a call draws from `fold_in(rng, k)`:

  spec_augment     on features (B, F, D) with frame paddings (B, F): m_F frequency masks [f0, f0 + f), f ~ U{0..F},
                   f0 ~ U{0..D − f}; m_T time masks [t0, t0 + t), t ~ U{0..min(T, ⌊p·τ⌋)}, t0 ~ U{0..τ − t} where τ is
                   the utterance's number of VALID frames (Park et al. 2019, §2: the upper bound p·τ), so masks
                   never reach padded frames; masked values are set to `mask_value` (0, the mean of normalised
                   features). Optional time warp (see `time_warp`).
  time_warp        Park et al. warp the spectrogram with TensorFlow's sparse_image_warp (a thin-plate-spline warp
                   driven by moving one point on the centre line). We use the simple piecewise-linear version of
                   the same idea, along time only: a point c ~ U{W+1..τ−W−2} moves to c + w, w ~ U{−W..W}; frames
                   [0, c + w] are linearly stretched from [0, c] and [c + w, τ − 1] from [c, τ − 1] (linear
                   interpolation between frames). Padded frames are untouched.
  add_noise        x + g·n on valid samples: white Gaussian n, or a noise recording (tiled, at a random offset);
                   g = sqrt(P_x / (P_n 10^(SNR/10))) with powers over each utterance's valid samples, so the measured
                   SNR 10 log10(P_x / P_{g·n}) equals the requested one.

Host (NumPy) ops, for the input pipeline, since they change lengths or run before batching:

  speed_perturb    resample by a factor f (Ko et al. 2015: 0.9, 1.0, 1.1): the signal plays f times faster, so its
                   duration is ×1/f and its pitch ×f; scipy.signal.resample_poly with f ≈ p/q (limit_denominator).
  mix_at_snr       add a noise array to one utterance at an SNR in dB (the NumPy twin of `add_noise`).
"""
from __future__ import annotations

import fractions

import jax
import jax.numpy as jnp
import numpy as np

_FREQ, _TIME, _WARP = 0, 1, 2


def _valid_frames(frame_paddings, batch: int, n_frames: int) -> jax.Array:
  if frame_paddings is None:
    return jnp.full((batch,), n_frames, jnp.int32)
  return jnp.round(jnp.sum(1.0 - frame_paddings.astype(jnp.float32), axis=1)).astype(jnp.int32)


def _uniform_int(rng, upper: jax.Array, shape) -> jax.Array:
  """Integers uniform on {0, …, upper} (inclusive; `upper` broadcasts, any value < 0 gives 0)."""
  u = jax.random.uniform(rng, shape)
  return jnp.minimum(jnp.floor(u * (jnp.maximum(upper, 0) + 1)).astype(jnp.int32), jnp.maximum(upper, 0))


# --------------------------------------------------------------------------------------------- SpecAugment
def sample_freq_masks(rng, batch: int, n_bins: int, *, max_width: int, num_masks: int
                      ) -> tuple[jax.Array, jax.Array]:
  """Starts and widths (B, m_F) of frequency masks: f ~ U{0..min(F, D)}, f0 ~ U{0..D − f}."""
  k1, k2 = jax.random.split(rng)
  width = _uniform_int(k1, jnp.int32(min(max_width, n_bins)), (batch, num_masks))
  start = _uniform_int(k2, n_bins - width, (batch, num_masks))
  return start, width


def sample_time_masks(rng, lengths: jax.Array, *, max_width: int, num_masks: int, max_ratio: float = 1.0
                      ) -> tuple[jax.Array, jax.Array]:
  """Starts and widths (B, m_T) of time masks inside each utterance's τ = lengths[b] valid frames.

  t ~ U{0..min(T, ⌊p·τ⌋)}, t0 ~ U{0..τ − t} (Park et al. 2019: the width is also bounded by p times the length).
  """
  k1, k2 = jax.random.split(rng)
  lengths = lengths.astype(jnp.int32)[:, None]
  bound = jnp.minimum(max_width, jnp.floor(max_ratio * lengths.astype(jnp.float32)).astype(jnp.int32))
  width = _uniform_int(k1, jnp.minimum(bound, lengths), (lengths.shape[0], num_masks))
  start = _uniform_int(k2, lengths - width, (lengths.shape[0], num_masks))
  return start, width


def masks_to_bool(start: jax.Array, width: jax.Array, size: int) -> jax.Array:
  """(B, size) boolean: position i is inside one of the intervals [start, start + width) (B, m)."""
  i = jnp.arange(size)[None, None, :]
  return jnp.any((i >= start[..., None]) & (i < (start + width)[..., None]), axis=1)


def spec_augment_mask(rng, frame_paddings, n_frames: int, n_bins: int, *, freq_mask_param: int = 27,
                      num_freq_masks: int = 2, time_mask_param: int = 100, num_time_masks: int = 2,
                      time_mask_max_ratio: float = 1.0, batch: int | None = None) -> jax.Array:
  """The boolean SpecAugment mask (B, F, D) that `spec_augment` applies with the same key (True = masked)."""
  if batch is None:
    batch = frame_paddings.shape[0]
  lengths = _valid_frames(frame_paddings, batch, n_frames)
  fs, fw = sample_freq_masks(jax.random.fold_in(rng, _FREQ), batch, n_bins, max_width=freq_mask_param,
                             num_masks=num_freq_masks)
  ts, tw = sample_time_masks(jax.random.fold_in(rng, _TIME), lengths, max_width=time_mask_param,
                             num_masks=num_time_masks, max_ratio=time_mask_max_ratio)
  freq = masks_to_bool(fs, fw, n_bins)[:, None, :]                       # (B, 1, D)
  time = masks_to_bool(ts, tw, n_frames)[:, :, None]                     # (B, F, 1)
  valid = (jnp.arange(n_frames)[None, :] < lengths[:, None])[:, :, None]
  return (freq | time) & valid


def sample_time_warp(rng, lengths: jax.Array, max_warp: int) -> tuple[jax.Array, jax.Array]:
  """Warp centres c ~ U{W+1..τ−W−2} and displacements w ~ U{−W..W} (B,); w = 0 where τ < 2W + 3."""
  k1, k2 = jax.random.split(rng)
  lengths = lengths.astype(jnp.int32)
  batch = lengths.shape[0]
  centre = max_warp + 1 + _uniform_int(k1, lengths - 2 * max_warp - 3, (batch,))
  shift = _uniform_int(k2, jnp.int32(2 * max_warp), (batch,)) - max_warp
  shift = jnp.where(lengths >= 2 * max_warp + 3, shift, 0)
  return centre, shift


def warp_time(features, lengths: jax.Array, centre: jax.Array, shift: jax.Array) -> jax.Array:
  """Piecewise-linear time warp (B, F, D): output frame i < τ reads the input at s(i) (linear interpolation).

  s(i) = i·c/d for i ≤ d, c + (i − d)(τ − 1 − c)/(τ − 1 − d) for i > d, d = c + w: the point c moves to d and both
  sides are stretched linearly; frames i ≥ τ are copied.
  """
  f = jnp.asarray(features)
  n_frames = f.shape[1]
  i = jnp.arange(n_frames, dtype=jnp.float32)[None, :]
  tau = lengths.astype(jnp.float32)[:, None]
  c = centre.astype(jnp.float32)[:, None]
  d = (centre + shift).astype(jnp.float32)[:, None]
  left = i * c / jnp.maximum(d, 1.0)
  right = c + (i - d) * (tau - 1.0 - c) / jnp.maximum(tau - 1.0 - d, 1.0)
  src = jnp.where(i <= d, left, right)
  src = jnp.where((shift[:, None] != 0) & (i < tau), src, i)
  lo = jnp.clip(jnp.floor(src), 0, n_frames - 1)
  hi = jnp.clip(lo + 1, 0, n_frames - 1)
  frac = (src - lo)[..., None]
  b = jnp.arange(f.shape[0])[:, None]
  lo_v = f[b, lo.astype(jnp.int32)]
  hi_v = f[b, hi.astype(jnp.int32)]
  return (lo_v * (1.0 - frac) + hi_v * frac).astype(f.dtype)


def spec_augment(rng, features, frame_paddings=None, *, freq_mask_param: int = 27, num_freq_masks: int = 2,
                 time_mask_param: int = 100, num_time_masks: int = 2, time_mask_max_ratio: float = 1.0,
                 time_warp: int = 0, mask_value: float = 0.0) -> jax.Array:
  """SpecAugment (Park et al. 2019) of features (B, F, D): time warp (W = `time_warp`, 0 = off), then masks.

  Defaults: the LibriSpeech-double policy (F = 27, m_F = 2, T = 100, m_T = 2, p = 1.0) without warping; short
  utterances want a smaller p (e.g. 0.05 – 0.2). Masks stay inside each utterance's valid frames.
  """
  f = jnp.asarray(features)
  if f.ndim != 3:
    raise ValueError(f'spec_augment expects features (B, F, D), got {f.shape}')
  batch, n_frames, n_bins = f.shape
  lengths = _valid_frames(frame_paddings, batch, n_frames)
  if time_warp > 0:
    centre, shift = sample_time_warp(jax.random.fold_in(rng, _WARP), lengths, time_warp)
    f = warp_time(f, lengths, centre, shift)
  mask = spec_augment_mask(rng, frame_paddings, n_frames, n_bins, freq_mask_param=freq_mask_param,
                           num_freq_masks=num_freq_masks, time_mask_param=time_mask_param,
                           num_time_masks=num_time_masks, time_mask_max_ratio=time_mask_max_ratio, batch=batch)
  return jnp.where(mask, jnp.asarray(mask_value, f.dtype), f)


# -------------------------------------------------------------------------------------------------- noise
def add_noise(rng, x, paddings=None, *, snr_db, noise=None) -> jax.Array:
  """Add noise to signals (B, T) at `snr_db` (a number or (B,) per utterance), over each one's valid samples.

  noise: None (white Gaussian), a 1-D recording (tiled and read from a random offset per utterance) or an array
  of the signals' shape. Padded samples are returned unchanged. An all-zero utterance stays all-zero.
  """
  x = jnp.asarray(x)
  if x.ndim != 2:
    raise ValueError(f'add_noise expects signals (B, T), got {x.shape}')
  batch, total = x.shape
  valid = jnp.ones(x.shape, jnp.float32) if paddings is None else 1.0 - jnp.asarray(paddings, jnp.float32)
  if noise is None:
    n = jax.random.normal(rng, x.shape, jnp.float32)
  else:
    noise = jnp.asarray(noise, jnp.float32)
    if noise.ndim == 1:
      offset = jax.random.randint(rng, (batch, 1), 0, noise.shape[0])
      n = noise[(offset + jnp.arange(total)[None, :]) % noise.shape[0]]
    elif noise.shape == x.shape:
      n = noise
    else:
      raise ValueError(f'noise must be 1-D or of the signals\' shape {x.shape}, got {noise.shape}')
  n = n * valid
  xf = x.astype(jnp.float32)
  p_signal = jnp.sum(xf ** 2 * valid, axis=1)
  p_noise = jnp.sum(n ** 2, axis=1)                      # both sums over the same valid samples: ratio of means
  snr = jnp.broadcast_to(jnp.asarray(snr_db, jnp.float32), (batch,))
  gain = jnp.sqrt(p_signal / jnp.maximum(p_noise, 1e-30) / 10.0 ** (snr / 10.0))
  gain = jnp.where(p_noise > 0, gain, 0.0)
  return (xf + gain[:, None] * n).astype(x.dtype)


def measured_snr_db(clean, noisy, paddings=None) -> jax.Array:
  """10 log10(Σ clean² / Σ (noisy − clean)²) over valid samples, per utterance (B,)."""
  clean = jnp.asarray(clean, jnp.float32)
  valid = 1.0 if paddings is None else 1.0 - jnp.asarray(paddings, jnp.float32)
  p_s = jnp.sum(clean ** 2 * valid, axis=-1)
  p_n = jnp.sum((jnp.asarray(noisy, jnp.float32) - clean) ** 2 * valid, axis=-1)
  return 10.0 * jnp.log10(p_s / p_n)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
  """Host twin of `add_noise` for one utterance: x + g·noise[:len(x)] (noise tiled) at `snr_db`; float32."""
  x = np.asarray(x, np.float32)
  noise = np.asarray(noise, np.float64)
  if x.ndim != 1 or noise.ndim != 1 or noise.size == 0:
    raise ValueError(f'mix_at_snr expects 1-D x and non-empty 1-D noise, got {x.shape}, {noise.shape}')
  n = np.resize(noise, x.shape)                          # tiles
  p_s, p_n = float(np.sum(x.astype(np.float64) ** 2)), float(np.sum(n ** 2))
  if p_n == 0.0 or p_s == 0.0:
    return x.copy()
  gain = np.sqrt(p_s / p_n / 10.0 ** (snr_db / 10.0))
  return (x + gain * n).astype(np.float32)


# ------------------------------------------------------------------------------------------------- speed
def speed_ratio(factor: float, max_denominator: int = 100) -> tuple[int, int]:
  """(up, down) of the resampling for a speed factor f ≈ down / up (the output has ≈ len / f samples)."""
  if not factor > 0:
    raise ValueError(f'speed factor must be > 0, got {factor}')
  r = fractions.Fraction(factor).limit_denominator(max_denominator)
  return r.denominator, r.numerator


def speed_perturb(x: np.ndarray, factor: float, *, max_denominator: int = 100) -> np.ndarray:
  """Speed perturbation (Ko et al. 2015) of a 1-D signal: resample so it plays `factor` times faster.

  y(t) = x(f·t): duration × 1/f, pitch and formants × f; a host op (lengths change) with polyphase anti-aliasing
  (scipy.signal.resample_poly, f ≈ down/up with denominators ≤ max_denominator). Output float32, ⌈len·up/down⌉.
  """
  from scipy import signal
  x = np.asarray(x, np.float32)
  if x.ndim != 1:
    raise ValueError(f'speed_perturb expects a 1-D signal, got {x.shape}')
  up, down = speed_ratio(factor, max_denominator)
  if up == down:
    return x.copy()
  return signal.resample_poly(x, up, down).astype(np.float32)


def random_speed_perturb(rng: np.random.Generator | int, x: np.ndarray, factors=(0.9, 1.0, 1.1)
                         ) -> tuple[np.ndarray, float]:
  """`speed_perturb` by a factor drawn uniformly from `factors` (Ko et al.: 0.9 / 1.0 / 1.1); returns (y, f)."""
  rng = np.random.default_rng(rng)
  f = float(factors[int(rng.integers(len(factors)))])
  return speed_perturb(x, f), f
