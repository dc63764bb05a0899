"""Speech datasets (jaxdl/data/speech.py): the built-in eSpeak corpus (determinism, held-out sentences and speakers,
features = the front end on the same audio, transcripts through the vocabulary, the disk cache) and the local
LibriSpeech / Common Voice readers with bad input."""
import functools
import sys

import jax
import numpy as np
import pytest

from jaxdl import data
from jaxdl.data import speech
from jaxdl.errors import UserError

TINY = dict(num_sentences=3, num_validation_sentences=1, num_test_sentences=2, copies=1,
            voices=('en-us', 'en-gb', 'en-gb-x-rp'), heldout_voices=('en-gb-x-rp',), variants=('m1', 'f1', 'm3'),
            heldout_variants=('m3',), rates=(160, 190), pitches=(40, 60))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  pytest.importorskip('espeakng_loader')
  cache = tmp_path_factory.mktemp('speech_cache')
  return speech.espeak_speech(**TINY, cache_dir=str(cache)), cache


def test_splits_hold_out_sentences_and_speakers(tiny):
  ds, _ = tiny
  meta = ds.meta
  assert {k: len(v) for k, v in meta.items()} == {'train': 3, 'validation': 1, 'test': 2} == ds.info.split_sizes
  sentences = {k: {m['sentence'] for m in v} for k, v in meta.items()}
  assert not sentences['train'] & sentences['test'] and not sentences['train'] & sentences['validation']
  assert not sentences['validation'] & sentences['test']
  speakers = {k: {(m['voice'], m['variant']) for m in v} for k, v in meta.items()}
  assert not speakers['train'] & (speakers['test'] | speakers['validation'])
  assert all(v != 'en-gb-x-rp' and var != 'm3' for v, var in speakers['train'])
  assert all(var == 'm3' for _, var in speakers['test'] | speakers['validation'])
  pool = speech.english_sentences()
  for split, rows in meta.items():
    assert ds.source(split).references == [pool[m['sentence']] for m in rows]


def test_transcripts_round_trip_through_the_vocabulary(tiny):
  ds, _ = tiny
  vocab = ds.vocabulary
  assert len(vocab) == 32 == ds.info.num_outputs and vocab.pad_id == 0
  for split in ds.info.split_sizes:
    src = ds.source(split)
    for i in range(len(src)):
      ids = src[i]['targets']
      assert ids.dtype == np.int32 and ids.min() >= 4            # never PAD (= CTC blank), BOS, EOS, UNK
      assert vocab.decode(ids) == src.references[i]
      assert set(src.references[i]) <= set(speech.ENGLISH_ALPHABET)


def test_features_are_the_front_end_of_the_same_audio(tiny):
  from jaxdl.speech import espeak
  from jaxdl.speech.features import log_mel
  ds, cache = tiny
  pool = speech.english_sentences()
  ids = speech.espeak_splits('en', 3, 1, 2, 0)['test']
  corpus = espeak.make_corpus([pool[i] for i in ids], voices=TINY['voices'], variants=('m3',), rates=(160, 190),
                              pitches=(40, 60), noise_snr_db=(15.0, 40.0), copies=1, seed=2, cache_dir=cache / 'speech')
  src = ds.source('test')
  front = jax.jit(functools.partial(log_mel, sample_rate=16000, n_mels=40, window_ms=25.0, hop_ms=15.0))
  for i, u in enumerate(corpus):
    alone = np.asarray(front(u['audio'])[0])
    # log_mel alone marks a last frame centred past the end as padding (zeros); the dataset keeps valid frames only
    np.testing.assert_allclose(src[i]['inputs'], alone[:len(src[i]['inputs'])], atol=2e-4)
    assert len(src[i]['inputs']) == -(-len(u['audio']) // 240)     # ⌈L / hop⌉ valid frames (15 ms)
    assert np.abs(alone[len(src[i]['inputs']):]).max(initial=0.0) == 0.0
  assert src[0]['inputs'].shape[1] == 40 and src[0]['inputs'].dtype == np.float32


def test_deterministic_by_seed_and_cached(tiny, tmp_path, monkeypatch):
  from jaxdl.speech import espeak
  ds, cache = tiny
  fresh = speech.espeak_speech(**TINY, cache_dir=str(tmp_path))          # synthesised again, in another cache
  other = speech.espeak_speech(**dict(TINY, num_sentences=1), seed=1, cache_dir=str(tmp_path))
  assert other.source('test').references != ds.source('test').references
  monkeypatch.setattr(espeak, 'synthesize', lambda *a, **k: pytest.fail('the cache was not used'))
  cached = speech.espeak_speech(**TINY, cache_dir=str(cache))
  for again in (fresh, cached):
    for split in ds.info.split_sizes:
      a, b = ds.source(split), again.source(split)
      assert a.references == b.references
      for i in range(len(a)):
        np.testing.assert_array_equal(a[i]['inputs'], b[i]['inputs'])


def test_batches_through_get_dataset_and_the_config_helpers(tiny, monkeypatch):
  ds, cache = tiny
  monkeypatch.setenv('JAXDL_CACHE', str(cache))
  cfg = dict(name='espeak_speech', **TINY)
  got = data.get_dataset(cfg)
  batch = got.source('train').get_batch(np.arange(3))
  assert batch['inputs'].shape[0] == 3 and batch['inputs'].shape[2] == 40
  assert batch['inputs_paddings'].shape == batch['inputs'].shape[:2]
  assert batch['targets_paddings'].shape == batch['targets'].shape
  assert speech.vocabulary_for(cfg) == got.vocabulary
  assert speech.front_end_for(cfg) == got.front_end == speech.FrontEnd(16000, 40, 25.0, 15.0)
  with pytest.raises(UserError, match='not a speech dataset'):
    speech.front_end_for({'name': 'digits'})


def test_missing_espeak_is_one_line_naming_the_extra(tmp_path, monkeypatch):
  pytest.importorskip('espeakng_loader')
  monkeypatch.setitem(sys.modules, 'espeakng_loader', None)      # import fails as if not installed
  with pytest.raises(UserError) as e:
    speech.espeak_speech(**TINY, cache_dir=str(tmp_path))
  assert 'pip install -e ".[speech]"' in str(e.value) and '\n' not in str(e.value)


def test_normalisation_and_alphabets():
  assert speech.normalize_transcript("Élève, l’été -- déjà!", speech.ENGLISH_ALPHABET) == "eleve l'ete deja"
  assert speech.normalize_transcript('Œuvre nº 5, ça.', speech.LAB_ALPHABET) == 'oeuvre no 5, ca.'
  with pytest.raises(UserError, match='outside the alphabet'):
    speech.normalize_transcript('chapter 5', speech.ENGLISH_ALPHABET, where='x')
  with pytest.raises(UserError, match='empty'):
    speech.normalize_transcript('?!', speech.ENGLISH_ALPHABET)
  assert len(speech.char_vocabulary(speech.LAB_ALPHABET)) == 44          # the lab's 44 symbols
  fr = speech.french_sentences()
  assert len(fr) == len(set(fr)) == 1024
  for s in fr[:50]:
    speech.normalize_transcript(s, speech.LAB_ALPHABET)
  en = speech.english_sentences()
  assert len(en) > 500 and all(speech.normalize_transcript(s, speech.ENGLISH_ALPHABET) == s for s in en)


# ----------------------------------------------------------------------------------------------- local corpora
def _tone(seconds=0.5, rate=16000):
  t = np.arange(int(seconds * rate)) / rate
  return (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32) / 2


def _librispeech(tmp_path, text='HELLO WORLD', audio=None):
  import soundfile
  d = tmp_path / 'LibriSpeech' / 'dev-clean' / '19' / '198'
  d.mkdir(parents=True)
  (d / '19-198.trans.txt').write_text(f'19-198-0000 {text}\n19-198-0001 IT\'S A TEST\n')
  soundfile.write(str(d / '19-198-0000.flac'), _tone() if audio is None else audio, 16000)
  soundfile.write(str(d / '19-198-0001.flac'), _tone(0.3, 8000), 8000)      # another rate: resampled
  return tmp_path


def test_librispeech_reads_flac_and_transcripts(tmp_path):
  root = _librispeech(tmp_path)
  ds = speech.librispeech(data_dir=str(root), splits=('dev-clean',), n_mels=20)   # 25 ms / 10 ms (DS2)
  src = ds.source('dev-clean')
  assert src.references == ['hello world', "it's a test"]
  assert src[0]['inputs'].shape == (50, 20) and src[1]['inputs'].shape == (30, 20)   # ⌈samples / 160⌉
  on_16_bits = np.round(_tone() * 32768) / 32768                          # what FLAC stores
  expected = speech.FrontEnd(16000, 20, 25.0, 10.0)([on_16_bits])[0]
  np.testing.assert_allclose(src[0]['inputs'], expected, atol=2e-4)


@pytest.mark.parametrize('case', ['silent', 'symbols', 'unreadable', 'missing', 'unset'])
def test_local_corpus_bad_input_is_one_line(tmp_path, case):
  if case == 'silent':
    root = _librispeech(tmp_path, audio=np.zeros(8000, np.float32))
  elif case == 'symbols':
    root = _librispeech(tmp_path, text='CHAPTER 5 ¶')
  elif case == 'unreadable':
    root = _librispeech(tmp_path)
    next(root.rglob('19-198-0000.flac')).write_text('not audio')
  else:
    root = tmp_path / 'nowhere' if case == 'missing' else ''
  with pytest.raises(UserError) as e:
    speech.librispeech(data_dir=str(root), splits=('dev-clean',))
  msg = str(e.value)
  assert '\n' not in msg
  assert {'silent': 'silent', 'symbols': 'outside the alphabet', 'unreadable': 'cannot read',
          'missing': 'does not exist', 'unset': 'needs data'}[case] in msg


def test_common_voice_reads_tsv_and_clips(tmp_path):
  from jaxdl.speech.audio import write_wav
  (tmp_path / 'clips').mkdir()
  write_wav(tmp_path / 'clips' / 'a.wav', _tone(), 16000)
  (tmp_path / 'test.tsv').write_text('client_id\tpath\tsentence\tup_votes\nx\ta.wav\tÀ l’école, déjà !\t2\n')
  ds = speech.common_voice(data_dir=str(tmp_path), splits=('test',), n_mels=20)
  assert ds.source('test').references == ["a l'ecole, deja"] and len(ds.vocabulary) == 44
  with pytest.raises(UserError, match='no dev.tsv'):
    speech.common_voice(data_dir=str(tmp_path), splits=('dev',))


def test_librispeech_tfds_records(monkeypatch):
  """TFDS records (speech int16 at 16 kHz, text bytes) through the same front end; tfds itself is mocked."""
  from jaxdl.data import stock
  tone16 = np.round(_tone() * 32767).astype(np.int16)

  class Split:
    _src = [{'speech': tone16, 'text': b'HELLO THERE'}]
  monkeypatch.setattr(stock, 'load_split', lambda name, split, data_dir='', cache=True: Split())
  ds = speech.librispeech_tfds(splits=('dev_clean',), n_mels=20)
  src = ds.source('dev_clean')
  assert src.references == ['hello there']
  expected = speech.FrontEnd(16000, 20, 25.0, 10.0)([tone16 / 32768.0])[0]
  np.testing.assert_allclose(src[0]['inputs'], expected, atol=1e-5)
