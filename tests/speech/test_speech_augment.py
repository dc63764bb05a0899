"""jaxdl.speech.augment: SpecAugment masks and warp, noise at an SNR, speed perturbation."""
from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from jaxdl.speech import augment as A

B, NF, D = 64, 40, 16
LENGTHS = np.array([NF, 25, 9, 1, 0, 37, 12, 40] * 8)
FPAD = (np.arange(NF)[None, :] >= LENGTHS[:, None]).astype(np.float32)
POLICY = dict(freq_mask_param=5, num_freq_masks=2, time_mask_param=6, num_time_masks=2, time_mask_max_ratio=0.2)


@functools.lru_cache(maxsize=None)
def _spec_augment():
  return jax.jit(functools.partial(A.spec_augment, **POLICY))


def _runs(flags):
  """Maximal runs of True in a 1-D boolean array, as (start, length)."""
  out, start = [], None
  for i, f in enumerate(list(flags) + [False]):
    if f and start is None:
      start = i
    elif not f and start is not None:
      out.append((start, i - start))
      start = None
  return out


def test_spec_augment_masks_within_bounds_and_valid_frames():
  x = np.ones((B, NF, D), np.float32)
  x[FPAD > 0] = 7.0                                            # padded frames hold something: must stay as they are
  for seed in range(3):
    y = np.asarray(_spec_augment()(jax.random.key(seed), x, FPAD))
    assert np.all(y[FPAD > 0] == 7.0)
    for b, tau in enumerate(LENGTHS):
      m = y[b, :tau] == 0.0
      time_cols = m.all(axis=1)                                # frames masked over every bin
      t_runs = _runs(time_cols)
      assert len(t_runs) <= 2 and sum(w for _, w in t_runs) <= 2 * min(6, int(0.2 * tau))
      rows = m[~time_cols]
      if rows.size:
        assert np.all(rows == rows[0])                         # the same bins in every frame: frequency masks
        f_runs = _runs(rows[0])
        assert len(f_runs) <= 2 and sum(w for _, w in f_runs) <= 2 * 5     # (two masks may overlap)


def test_sampled_masks_respect_the_policy():
  sample = jax.jit(lambda k: A.sample_freq_masks(k, 500, D, max_width=5, num_masks=3))
  fs, fw = map(np.asarray, sample(jax.random.key(1)))
  assert fs.shape == fw.shape == (500, 3)
  assert np.all((fw >= 0) & (fw <= 5) & (fs >= 0) & (fs + fw <= D))
  assert set(np.unique(fw)) == set(range(6))                     # f ~ U{0..F}
  lengths = np.tile(LENGTHS, 8)
  ts, tw = map(np.asarray, jax.jit(lambda k, n: A.sample_time_masks(k, n, max_width=6, num_masks=2, max_ratio=0.2))(
      jax.random.key(2), lengths))
  bound = np.minimum(6, np.floor(0.2 * lengths))[:, None]
  assert np.all((tw >= 0) & (tw <= bound) & (ts >= 0) & (ts + tw <= lengths[:, None]))
  assert tw.max() == 6 and np.all(tw[lengths >= 30].max(axis=0) >= 1)           # U{0..bound}: the bound is reached
  mask = jax.jit(lambda k, p: A.spec_augment_mask(k, p, NF, D, **POLICY))(jax.random.key(3), FPAD)
  assert not np.any(np.asarray(mask)[FPAD > 0])


def test_spec_augment_deterministic_by_key():
  x = np.random.default_rng(0).standard_normal((B, NF, D)).astype(np.float32)
  a = _spec_augment()(jax.random.key(7), x, FPAD)
  np.testing.assert_array_equal(a, _spec_augment()(jax.random.key(7), x, FPAD))
  assert not np.array_equal(a, _spec_augment()(jax.random.key(8), x, FPAD))


def _warp_reference(tau, c, w, n):
  """NumPy transcription of the piecewise-linear warp's source positions."""
  d = c + w
  src = np.arange(n, dtype=np.float64)
  for i in range(tau):
    src[i] = i * c / d if i <= d else c + (i - d) * (tau - 1 - c) / (tau - 1 - d)
  return src


def test_time_warp_piecewise_linear():
  n, tau, W = 30, 24, 4
  lengths, centre, shift = np.array([tau, tau, n]), np.array([10, 12, 5]), np.array([3, -4, 0])
  x = np.broadcast_to(np.arange(n, dtype=np.float32)[None, :, None], (3, n, 2))   # feature = frame index
  y = np.asarray(jax.jit(A.warp_time)(x, lengths, centre, shift))
  for b in range(2):
    np.testing.assert_allclose(y[b, :, 0], _warp_reference(tau, int(centre[b]), int(shift[b]), n), atol=1e-5)
    assert y[b, int(centre[b] + shift[b]), 0] == pytest.approx(float(centre[b]))   # c moves to c + w
    assert y[b, 0, 0] == 0 and y[b, tau - 1, 0] == pytest.approx(tau - 1)          # ends fixed
    np.testing.assert_array_equal(y[b, tau:], x[b, tau:])                          # padded frames untouched
  np.testing.assert_array_equal(y[2], x[2])                                        # w = 0: identity
  c, s = map(np.asarray, jax.jit(A.sample_time_warp, static_argnums=2)(jax.random.key(0), np.tile(LENGTHS, 8), W))
  lens = np.tile(LENGTHS, 8)
  ok = lens >= 2 * W + 3
  assert np.all(np.abs(s) <= W) and np.all(s[~ok] == 0)
  assert np.all((c[ok] >= W + 1) & (c[ok] <= lens[ok] - W - 2))
  y = jax.jit(functools.partial(A.spec_augment, time_warp=W, num_freq_masks=0, num_time_masks=0))(
      jax.random.key(1), np.ones((B, NF, D), np.float32), FPAD)
  np.testing.assert_allclose(y, 1.0, atol=1e-6)                                  # a warp keeps a constant


# ---------------------------------------------------------------------------------------------------- noise
def _snr(clean, noisy, valid):
  return 10 * np.log10(np.sum(clean ** 2 * valid, -1) / np.sum((noisy - clean) ** 2 * valid, -1))


@pytest.mark.parametrize('kind', ['white', 'recording'])
def test_add_noise_hits_the_requested_snr(kind):
  rng = np.random.default_rng(0)
  T = 1000
  lengths = np.array([1000, 700, 300])
  pads = (np.arange(T)[None] >= lengths[:, None]).astype(np.float32)
  x = (rng.standard_normal((3, T)) * [[0.5], [0.01], [0.2]]).astype(np.float32) * (1 - pads)
  snr = np.array([0.0, 10.0, 25.0], np.float32)
  noise = None if kind == 'white' else rng.uniform(-1, 1, 333).astype(np.float32)
  fn = jax.jit(functools.partial(A.add_noise, noise=noise))
  y = np.asarray(fn(jax.random.key(0), x, pads, snr_db=snr))
  np.testing.assert_allclose(_snr(x, y, 1 - pads), snr, atol=1e-3)
  np.testing.assert_allclose(A.measured_snr_db(x, y, pads), snr, atol=1e-3)
  np.testing.assert_array_equal(y[pads > 0], 0.0)                                   # padding untouched
  np.testing.assert_array_equal(y, fn(jax.random.key(0), x, pads, snr_db=snr))     # deterministic by key
  assert not np.array_equal(y, fn(jax.random.key(1), x, pads, snr_db=snr))
  if noise is not None:                                      # the noise is the recording, tiled from an offset
    n = y[0] - x[0]
    shift = int(np.argmax([n[:333] @ np.roll(noise, -k) for k in range(333)]))
    ref = np.resize(np.roll(noise, -shift), T)
    np.testing.assert_allclose(n, (n @ ref) / (ref @ ref) * ref, atol=1e-5)


def test_mix_at_snr_host_twin():
  rng = np.random.default_rng(1)
  x = rng.standard_normal(800).astype(np.float32) * 0.3
  noise = rng.standard_normal(500)
  for snr in (-5.0, 5.0, 30.0):
    y = A.mix_at_snr(x, noise, snr)
    assert _snr(x, y, 1.0) == pytest.approx(snr, abs=1e-3)
  full = np.resize(noise, 800).astype(np.float32)
  ours = A.add_noise(jax.random.key(0), x[None], None, snr_db=5.0, noise=full[None])
  np.testing.assert_allclose(ours[0], A.mix_at_snr(x, noise, 5.0), atol=1e-5)
  np.testing.assert_array_equal(A.mix_at_snr(np.zeros(10, np.float32), noise, 5.0), 0.0)


# ---------------------------------------------------------------------------------------------------- speed
@pytest.mark.parametrize('factor', [0.9, 1.1, 1.25])
def test_speed_perturbation_duration_and_pitch(factor):
  sr, f0, n = 16000, 440.0, 16000
  x = np.sin(2 * np.pi * f0 * np.arange(n) / sr).astype(np.float32)
  y = A.speed_perturb(x, factor)
  assert len(y) == pytest.approx(n / factor, abs=1)                                # duration × 1/f
  spec = np.abs(np.fft.rfft(y[200:-200] * np.hanning(len(y) - 400), 1 << 18))
  peak = np.argmax(spec) * sr / (1 << 18)
  assert peak == pytest.approx(f0 * factor, rel=2e-3)                              # pitch × f
  np.testing.assert_array_equal(A.speed_perturb(x, 1.0), x)


def test_random_speed_perturb_is_seeded():
  x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
  picks = [A.random_speed_perturb(s, x)[1] for s in range(30)]
  assert set(picks) == {0.9, 1.0, 1.1}
  y1, f1 = A.random_speed_perturb(5, x)
  y2, f2 = A.random_speed_perturb(5, x)
  assert f1 == f2 and np.array_equal(y1, y2) and len(y1) == pytest.approx(1000 / f1, abs=1)
