"""jaxdl.speech.audio: WAV/FLAC/OGG reading, mono mixing, resampling, 16-bit writing, one-line user errors."""
from __future__ import annotations

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.speech import audio

soundfile = pytest.importorskip('soundfile')


def _sine(freq, sr, seconds=1.0, amp=0.5):
  return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def _peak_hz(x, sr):
  n = 1 << 18
  spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
  return np.argmax(spec) * sr / n


def test_wav_round_trip_is_16_bit(tmp_path):
  x = np.random.default_rng(0).uniform(-0.9, 0.9, 4000).astype(np.float32)
  path = audio.write_wav(tmp_path / 'a.wav', x, 16000)
  info = soundfile.info(str(path))
  assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, 'PCM_16', 4000)
  y = audio.load_audio(path, 16000)
  assert y.dtype == np.float32 and y.shape == x.shape
  np.testing.assert_allclose(y, x, atol=1.5 / 32768)                    # 16-bit quantisation
  raw, _ = soundfile.read(str(path), dtype='int16')
  np.testing.assert_array_equal(y, raw / 32768.0)                       # what a PCM reader gives
  clipped = audio.load_audio(audio.write_wav(tmp_path / 'b.wav', np.array([2.0, -3.0, 0.5]), 8000), None)
  np.testing.assert_allclose(clipped, [1.0, -1.0, 0.5], atol=1.5 / 32768)


@pytest.mark.parametrize('fmt,subtype,tol', [('FLAC', 'PCM_16', 1.5 / 32768), ('OGG', 'VORBIS', None)])
def test_flac_and_ogg(tmp_path, fmt, subtype, tol):
  sr = 16000
  x = _sine(440.0, sr)
  path = tmp_path / f'a.{fmt.lower()}'
  soundfile.write(str(path), x, sr, format=fmt, subtype=subtype)
  y = audio.load_audio(path, sr)
  if tol is not None:
    np.testing.assert_allclose(y, x, atol=tol)
  else:                                                                  # lossy: the tone survives
    assert abs(len(y) - len(x)) < 1200
    assert _peak_hz(y, sr) == pytest.approx(440.0, abs=1.0)


def test_stereo_is_averaged(tmp_path):
  left, right = _sine(300, 8000), _sine(1000, 8000, amp=0.25)
  path = tmp_path / 's.wav'
  soundfile.write(str(path), np.stack([left, right], 1), 8000, subtype='FLOAT')
  np.testing.assert_allclose(audio.load_audio(path, 8000), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize('src', [8000, 22050, 44100, 48000])
def test_resampling_keeps_the_frequency(tmp_path, src):
  freq = 1234.5
  path = tmp_path / 'r.wav'
  soundfile.write(str(path), _sine(freq, src), src, subtype='FLOAT')
  y = audio.load_audio(path, 16000)
  assert len(y) == int(np.ceil(src * 16000 / src))                      # one second at 16 kHz
  assert _peak_hz(y[100:-100], 16000) == pytest.approx(freq, abs=0.5)
  mid = y[2000:-2000]
  assert np.sqrt(np.mean(mid ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)   # no loss in the passband


def test_resample_removes_content_above_the_new_nyquist():
  y = audio.resample(_sine(7000.0, 16000), 16000, 8000)                # 7 kHz > 4 kHz: would alias to 1 kHz
  assert len(y) == 8000
  assert np.sqrt(np.mean(y[400:-400] ** 2)) < 1e-2 * 0.5
  z = audio.resample(_sine(1000.0, 16000), 16000, 8000)
  assert np.sqrt(np.mean(z[400:-400] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)


def _one_line_user_error(fn, *args):
  with pytest.raises(UserError) as e:
    fn(*args)
  assert '\n' not in str(e.value)
  return str(e.value)


def test_bad_files_raise_user_errors(tmp_path):
  assert 'does not exist' in _one_line_user_error(audio.load_audio, tmp_path / 'missing.wav')
  assert 'directory' in _one_line_user_error(audio.load_audio, tmp_path)
  (tmp_path / 'text.wav').write_text('not audio at all')
  assert 'cannot read' in _one_line_user_error(audio.load_audio, tmp_path / 'text.wav')
  soundfile.write(str(tmp_path / 'empty.wav'), np.zeros((0,), np.float32), 16000)
  assert 'no samples' in _one_line_user_error(audio.load_audio, tmp_path / 'empty.wav')
  assert 'folder' in _one_line_user_error(audio.write_wav, tmp_path / 'no' / 'x.wav', np.zeros(4), 16000)


def test_silence_is_loaded_but_detectable(tmp_path):
  path = audio.write_wav(tmp_path / 'z.wav', np.zeros(1600), 16000)
  z = audio.load_audio(path)                                            # silence is allowed here
  assert 'silent' in _one_line_user_error(audio.check_not_silent, z)
  assert 'silent' in _one_line_user_error(audio.check_not_silent, np.full(10, 5e-5))
  x = np.full(10, 2e-4)
  assert audio.check_not_silent(x) is x
