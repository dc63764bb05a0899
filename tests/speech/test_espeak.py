"""jaxdl.speech.espeak: synthesis through ctypes, voices, determinism, the cached corpus, the optional extra."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from jaxdl.errors import UserError
from jaxdl.speech import espeak as E

FOX = 'The quick brown fox jumps over the lazy dog.'


@pytest.fixture
def engine():
  pytest.importorskip('espeakng_loader')


def _f0(x, sr):
  """Median F0 (Hz) of the voiced frames, by autocorrelation over 60 – 400 Hz lags."""
  n, hop = 1024, 256
  f0 = []
  for s in range(0, len(x) - n, hop):
    fr = x[s:s + n] - x[s:s + n].mean()
    if np.sqrt(np.mean(fr ** 2)) < 0.02:
      continue
    ac = np.correlate(fr, fr, 'full')[n - 1:]
    lo, hi = int(sr / 400), int(sr / 60)
    lag = lo + int(np.argmax(ac[lo:hi]))
    if ac[lag] > 0.5 * ac[0]:
      f0.append(sr / lag)
  return float(np.median(f0))


def test_missing_extra_is_a_user_error(monkeypatch):
  E._catalogue.cache_clear()
  monkeypatch.setitem(sys.modules, 'espeakng_loader', None)            # `import espeakng_loader` now fails
  try:
    for call in (lambda: E.synthesize('hello'), E.list_voices, E.list_variants):
      with pytest.raises(UserError, match=r'\[speech\]') as e:
        call()
      assert '\n' not in str(e.value)
  finally:
    E._catalogue.cache_clear()


def test_synthesis_is_speech_of_plausible_duration(engine):
  x = E.synthesize(FOX)
  assert x.dtype == np.float32 and x.ndim == 1
  assert 0.05 < np.abs(x).max() <= 1.0 and np.sqrt(np.mean(x ** 2)) > 0.01
  seconds = len(x) / 16000
  assert len(FOX) / 25 < seconds < len(FOX) / 6                       # ≈ 1 s per ~12 characters at 175 wpm
  native = E.synthesize(FOX, sample_rate=None)
  assert len(native) * 16000 / E.NATIVE_RATE == pytest.approx(len(x), abs=1)
  fast = E.synthesize(FOX, rate=350)
  assert 1.4 < len(x) / len(fast) < 2.6                                # twice the words per minute


def test_deterministic_even_after_other_syntheses(engine):
  a = E.synthesize(FOX, variant='f3', seed=3)
  E.synthesize('Something else entirely, to disturb any state.', voice='en-gb', pitch=80)
  b = E.synthesize(FOX, variant='f3', seed=3)
  np.testing.assert_array_equal(a, b)
  results = {}
  def work(k):
    results[k] = E.synthesize(FOX, variant='f3', seed=3)
  threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  for k in range(3):
    np.testing.assert_array_equal(results[k], a)


def test_voices_and_pitch_change_the_audio(engine):
  low, high = E.synthesize(FOX, pitch=10), E.synthesize(FOX, pitch=90)
  assert _f0(high, 16000) > 1.3 * _f0(low, 16000)
  male, female = E.synthesize(FOX, variant='m1'), E.synthesize(FOX, variant='f1')
  assert _f0(female, 16000) > 1.3 * _f0(male, 16000)
  us, gb = E.synthesize(FOX, voice='en-us'), E.synthesize(FOX, voice='en-gb')
  assert len(us) != len(gb) or not np.array_equal(us, gb)
  fr = E.synthesize('Rue Wolfgang Doeblin, zéro huit, six cents Givet.', voice='fr-fr')   # seed 000's sentence
  assert np.sqrt(np.mean(fr ** 2)) > 0.01 and 1.0 < len(fr) / 16000 < 8.0


def test_voice_and_variant_catalogue(engine):
  assert E.espeak_version().split('.')[0] == '1'
  en = {v.identifier for v in E.list_voices('en')}
  assert {'gmw/en-US', 'gmw/en'} <= en
  assert E.resolve_voice('fr') == E.resolve_voice('fr-fr') == 'roa/fr'
  for voice in E.ENGLISH_VOICES + E.FRENCH_VOICES:
    assert E.resolve_voice(voice) in {v.identifier for v in E.list_voices()}
  assert set(E.VARIANTS) <= set(E.list_variants())


def test_bad_arguments_are_user_errors(engine):
  for kwargs in (dict(voice='xx-nope'), dict(variant='nope'), dict(rate=20), dict(pitch=101), dict(pitch=1.5)):
    with pytest.raises(UserError):
      E.synthesize(FOX, **kwargs)
  with pytest.raises(UserError):
    E.synthesize('   ')


def test_corpus_is_deterministic_and_cached(engine, tmp_path, monkeypatch):
  kw = dict(voices=('en-us', 'en-gb'), variants=(None, 'f2', 'm3'), rates=(150, 200), pitches=(40, 60),
            noise_snr_db=(10.0, 20.0), copies=2, seed=11)
  sentences = ['one small step', 'hello world', 'speech recognition with connectionist temporal classification']
  plan = E.corpus_plan(sentences, **kw)
  assert plan == E.corpus_plan(sentences, **kw) != E.corpus_plan(sentences, **dict(kw, seed=12))
  corpus = E.make_corpus(sentences, cache_dir=tmp_path, **kw)
  assert len(corpus) == 6 and len(list(tmp_path.glob('espeak-*.npz'))) == 1
  assert [c['text'] for c in corpus] == sentences * 2
  for item, p in zip(corpus, plan):
    assert item['speaker'] == p['speaker'] and item['sample_rate'] == 16000
    assert 10.0 <= item['snr_db'] <= 20.0
    clean = E.synthesize(item['text'], voice=item['voice'], variant=item['variant'], rate=item['rate'],
                         pitch=item['pitch'], seed=item['seed'])
    snr = 10 * np.log10(np.sum(clean ** 2) / np.sum((item['audio'] - clean) ** 2))
    assert snr == pytest.approx(item['snr_db'], abs=0.05)             # noise at the drawn SNR (16-bit grid)
    np.testing.assert_array_equal(item['audio'] * 32768, np.round(item['audio'] * 32768))

  def no_espeak(*args, **kwargs):
    raise AssertionError('espeak called on a cache hit')
  monkeypatch.setattr(E, '_synth_int16', no_espeak)
  again = E.make_corpus(sentences, cache_dir=tmp_path, **kw)
  monkeypatch.undo()
  fresh = E.make_corpus(sentences, cache_dir=None, **kw)
  for a, b, c in zip(corpus, again, fresh):
    assert a.keys() == b.keys() == c.keys()
    np.testing.assert_array_equal(a['audio'], b['audio'])
    np.testing.assert_array_equal(a['audio'], c['audio'])
    assert {k: v for k, v in a.items() if k != 'audio'} == {k: v for k, v in b.items() if k != 'audio'}
  other = E.make_corpus(sentences[:1], cache_dir=tmp_path, voices=('fr',), seed=1)
  assert len(other) == 1 and len(list(tmp_path.glob('espeak-*.npz'))) == 2
  assert not list(tmp_path.glob('*.tmp'))
