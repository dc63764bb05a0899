"""jaxdl.speech.features against librosa / scipy / NumPy transcriptions, and padded batches against lone utterances."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.speech import features as F

librosa = pytest.importorskip('librosa')
signal = pytest.importorskip('scipy.signal')

SR = 8000


def _signal(n, seed=0):
  """A speech-like test signal: two chirps, a sine and a little noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(n) / SR
  x = 0.5 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.3 * np.sin(2 * np.pi * 1230 * t)
  return (x + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _rel(a, b):
  a, b = np.asarray(a), np.asarray(b)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ------------------------------------------------------------------------------------------ sizes, windows
def test_frame_params_course_preset():
  # S3: 25 ms window, 15 ms step
  p = F.frame_params(16000)
  assert (p.win_length, p.hop_length, p.n_fft, p.n_freq) == (int(0.025 * 16000), int(0.015 * 16000), 512, 257)
  assert F.COURSE_STFT.params(16000) == p
  assert F.COURSE_STFT.params(8000) == F.FrameParams(200, 120, 256)
  assert F.frame_params(16000, 20, 10, n_fft=320).n_freq == 161      # DeepSpeech2's spectrogram
  with pytest.raises(ValueError):
    F.frame_params(16000, 25, 15, n_fft=256)


@pytest.mark.parametrize('name', ['hann', 'hamming'])
@pytest.mark.parametrize('length', [8, 9, 400])
@pytest.mark.parametrize('periodic', [True, False])
def test_windows_match_scipy(name, length, periodic):
  ref = signal.get_window(name, length, fftbins=periodic)
  np.testing.assert_allclose(F.get_window(name, length, periodic=periodic), ref, atol=1e-7)
  assert np.allclose(librosa.filters.get_window(name, length, fftbins=periodic), ref)


# ------------------------------------------------------------------------------------------------- framing
@pytest.mark.parametrize('center,mode', [(False, 'constant'), (True, 'constant'), (True, 'reflect'), (True, 'edge')])
def test_frame_matches_numpy(center, mode):
  x = np.arange(1, 24, dtype=np.float32)
  k, hop = 6, 4
  pad = k // 2 if center else 0
  xp = np.pad(x, pad, mode=mode) if pad else x
  ref = np.stack([xp[t * hop:t * hop + k] for t in range(1 + (xp.size - k) // hop)])
  np.testing.assert_array_equal(F.frame(x, k, hop, center=center, pad_mode=mode), ref)


def test_frame_paddings_rule():
  lengths = [23, 24, 1, 9]
  T, hop, n_fft = 24, 4, 8
  pads = np.array([[0.0] * L + [1.0] * (T - L) for L in lengths], np.float32)
  centred = np.asarray(F.frame_paddings(pads, n_fft, hop, center=True))
  # the strided-conv rule: paddings[:, ::hop], 1 past the end
  ref = np.concatenate([pads, np.ones((4, n_fft))], axis=1)[:, ::hop][:, :centred.shape[1]]
  np.testing.assert_array_equal(centred, ref)
  np.testing.assert_array_equal((1 - centred).sum(1), [-(-L // hop) for L in lengths])
  plain = np.asarray(F.frame_paddings(pads, n_fft, hop, center=False))
  np.testing.assert_array_equal((1 - plain).sum(1), [max(0, 1 + (L - n_fft) // hop) for L in lengths])


# ---------------------------------------------------------------------------------------------------- STFT
@pytest.mark.parametrize('n_fft,win,hop,center,mode', [
    (256, 200, 120, True, 'constant'),     # the course STFT at 8 kHz: 25 ms / 15 ms, zero-padded FFT
    (256, 256, 64, True, 'reflect'),
    (256, 200, 120, False, 'constant'),
    (160, 101, 80, True, 'edge'),          # odd window
])
def test_stft_matches_librosa(n_fft, win, hop, center, mode):
  x = _signal(2345)
  kw = dict(n_fft=n_fft, hop_length=hop, win_length=win, center=center, pad_mode=mode)
  ours = jax.jit(functools.partial(F.stft, **kw))(x)
  ref = librosa.stft(x, **kw).T
  assert ours.shape == ref.shape
  assert _rel(ours, ref) < 2e-6
  mag = np.abs(ours)
  np.testing.assert_allclose(mag, np.asarray(F.spectrogram(x, power=1.0, **kw)), rtol=1e-5, atol=1e-5 * mag.max())
  assert _rel(F.spectrogram(x, power=2.0, **kw), np.abs(ref) ** 2) < 5e-6


def test_stft_matches_scipy():
  x = _signal(2000)
  n, hop = 256, 100
  _, _, Z = signal.stft(x, fs=SR, window='hann', nperseg=n, noverlap=n - hop, boundary=None, padded=False)
  ours = np.asarray(F.stft(x, n_fft=n, hop_length=hop, center=False)) / signal.get_window('hann', n).sum()
  assert _rel(ours, Z.T) < 2e-6


def test_stft_symmetric_hamming_window_array():
  x = _signal(1500)
  w = signal.get_window('hamming', 200, fftbins=False)
  ours = F.stft(x, n_fft=256, hop_length=100, win_length=200, window='hamming', periodic=False)
  ref = librosa.stft(x, n_fft=256, hop_length=100, win_length=200, window=w).T
  assert _rel(ours, ref) < 2e-6


# ----------------------------------------------------------------------------------------------------- mel
@pytest.mark.parametrize('htk', [False, True])
def test_mel_scale_matches_librosa(htk):
  hz = np.array([0.0, 50.0, 700.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0])
  np.testing.assert_allclose(F.hz_to_mel(hz, htk=htk), librosa.hz_to_mel(hz, htk=htk), rtol=1e-12, atol=1e-12)
  mel = librosa.hz_to_mel(hz, htk=htk)
  np.testing.assert_allclose(F.mel_to_hz(mel, htk=htk), hz, rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(F.hz_to_mel(jnp.asarray(hz, jnp.float32), htk=htk), mel, rtol=1e-5)


@pytest.mark.parametrize('htk', [False, True])
@pytest.mark.parametrize('norm', ['slaney', None])
@pytest.mark.parametrize('n_mels,fmin,fmax', [(20, 0.0, None), (40, 20.0, 3800.0)])
def test_mel_filterbank_matches_librosa(htk, norm, n_mels, fmin, fmax):
  ours = F.mel_filterbank(SR, 256, n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
  ref = librosa.filters.mel(sr=SR, n_fft=256, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm).T
  assert ours.shape == (129, n_mels)
  assert _rel(ours, ref) < 1e-6


def test_melspectrogram_db_mfcc_match_librosa():
  x = _signal(3000, seed=1)
  kw = dict(n_fft=256, hop_length=120, win_length=200, n_mels=32, fmin=30.0, htk=False)
  mel = F.melspectrogram(x, sample_rate=SR, **kw)
  ref = librosa.feature.melspectrogram(y=x, sr=SR, **kw).T
  assert _rel(mel, ref) < 5e-6
  for ref_arg, top_db in ((1.0, 80.0), ('max', 40.0), (1.0, None)):
    db = F.power_to_db(mel, ref=ref_arg, top_db=top_db)
    rdb = librosa.power_to_db(ref, ref=np.max if ref_arg == 'max' else 1.0, top_db=top_db)
    np.testing.assert_allclose(db, rdb, atol=2e-4)
  for lifter in (0, 22):
    c = F.mfcc(F.power_to_db(mel), n_mfcc=13, lifter=lifter)
    rc = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=13, lifter=lifter, **kw).T
    np.testing.assert_allclose(c, rc, atol=2e-3 * np.abs(rc).max())


def test_mfcc_is_orthonormal_dct_ii():
  rng = np.random.default_rng(3)
  s = rng.standard_normal((2, 5, 12)).astype(np.float32)
  n, k = np.arange(12), np.arange(12)[:, None]
  D = np.sqrt(2 / 12) * np.cos(np.pi * k * (2 * n + 1) / 24)      # DCT-II, orthonormal
  D[0] /= np.sqrt(2)
  np.testing.assert_allclose(F.mfcc(s, n_mfcc=7), (s @ D.T)[..., :7], atol=1e-5)


# ------------------------------------------------------------------------------------------- normalisation
def test_normalisation_over_valid_frames():
  rng = np.random.default_rng(4)
  feats = rng.standard_normal((3, 7, 4)).astype(np.float32) * 3 + 2
  lengths = [7, 4, 1]
  fpad = np.array([[0] * L + [1] * (7 - L) for L in lengths], np.float32)
  out = np.asarray(F.normalize_per_utterance(feats, fpad))
  for b, L in enumerate(lengths):
    v = feats[b, :L]
    ref = (v - v.mean(0)) / np.maximum(v.std(0), 1e-5)
    np.testing.assert_allclose(out[b, :L], ref, atol=1e-4)
    assert np.all(out[b, L:] == 0)
  mean, std = F.feature_stats(feats, fpad)
  valid = np.concatenate([feats[b, :L] for b, L in enumerate(lengths)])
  np.testing.assert_allclose(mean, valid.mean(0), rtol=1e-5)
  np.testing.assert_allclose(std, valid.std(0), rtol=1e-5)
  g = np.asarray(F.normalize_global(feats, mean, std, fpad))
  np.testing.assert_allclose(g[0], (feats[0] - valid.mean(0)) / valid.std(0), atol=1e-4)
  assert np.all(g[2, 1:] == 0)


# ------------------------------------------------------------------------------------------------ front end
_FRONT_ENDS = {
    'course-ln': dict(sample_rate=SR, n_mels=20),                                            # 25/15 ms, center
    'db-reflect': dict(sample_rate=SR, n_mels=40, log='db', top_db=60.0, pad_mode='reflect'),
    'plain-spectrogram': dict(sample_rate=SR, n_mels=None, window_ms=20, hop_ms=10, n_fft=160, center=False,
                              normalize=None),
}


@pytest.mark.parametrize('name', sorted(_FRONT_ENDS))
def test_padded_batch_equals_each_utterance_alone(name):
  kw = _FRONT_ENDS[name]
  fn = jax.jit(functools.partial(F.log_mel, **kw))
  p = F.frame_params(SR, kw.get('window_ms', 25.0), kw.get('hop_ms', 15.0), kw.get('n_fft'))
  lengths = [1800, 1111]                          # 1800 = 15 hops: a frame centred exactly at the end
  T = 2000
  rng = np.random.default_rng(5)
  x = 3.0 * rng.standard_normal((2, T)).astype(np.float32)    # garbage after each utterance: must not leak
  pads = np.ones((2, T), np.float32)
  for b, L in enumerate(lengths):
    x[b, :L] = _signal(L, seed=b)
    pads[b, :L] = 0.0
  feats, fpad = fn(x, pads)
  for b, L in enumerate(lengths):
    alone, alone_pad = fn(x[b, :L])
    n = int((1 - fpad[b]).sum())
    expected = -(-L // p.hop_length) if kw.get('center', True) else 1 + (L - p.n_fft) // p.hop_length
    assert n == expected == int((1 - alone_pad).sum())
    np.testing.assert_allclose(feats[b, :n], alone[:n], atol=2e-4)
    assert np.all(np.asarray(feats[b, n:]) == 0)


def test_log_mel_values_match_librosa():
  x = _signal(2000, seed=7)
  feats, fpad = jax.jit(functools.partial(F.log_mel, sample_rate=SR, n_mels=20, normalize=None, floor=1e-6))(x)
  ref = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=256, hop_length=120, win_length=200, n_mels=20).T
  n = int((1 - fpad).sum())
  assert n == -(-2000 // 120) and ref.shape[0] == 1 + 2000 // 120
  np.testing.assert_allclose(feats[:n], np.log(np.maximum(ref[:n], 1e-6)), atol=1e-4)
  spec = jax.eval_shape(functools.partial(F.log_mel, sample_rate=16000, n_mels=None, window_ms=20, hop_ms=10,
                                          n_fft=320), x)[0]
  assert spec.shape == (1 + 2000 // 160, 161)
  normed, fpad = jax.jit(functools.partial(F.log_mel, sample_rate=SR, n_mels=20))(x)
  v = np.asarray(normed)[np.asarray(fpad) == 0]
  np.testing.assert_allclose(v.mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(v.std(0), 1, atol=1e-3)
