"""`jaxdl transcribe` end to end: a few steps of ds2_small through `jaxdl train` on a tiny espeak_speech, then the
text of a WAV (another sample rate, resampled) greedy, with beam search and with an ARPA LM; bad input → exit 2 and
one line on stderr."""
import json

import numpy as np
import pytest

from helpers import REPO, run_jaxdl
from jaxdl import cli
from jaxdl.errors import UserError

TINY = ['--config.data.num_sentences=4', '--config.data.num_validation_sentences=1',
        '--config.data.num_test_sentences=1', '--config.data.copies=1', '--config.data.num_buckets=1',
        '--config.model.rnn_features=16', '--config.model.rnn_layers=1', '--config.model.conv_features=(4,)',
        '--config.train.batch_size=4', '--config.train.num_steps=2', '--config.train.eval_every=0',
        '--config.train.log_every=1', '--config.train.checkpoint_every=2', "--config.decode.metrics=()",
        "--config.train.best_metric=", '--config.optimizer.warmup_steps=0']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  pytest.importorskip('espeakng_loader')
  from jaxdl.speech import espeak
  from jaxdl.speech.audio import write_wav
  tmp = tmp_path_factory.mktemp('transcribe')
  wd = tmp / 'run'
  p = run_jaxdl(['train', f'--config={REPO / "experiments" / "deepspeech2_builtin.py"}', f'--workdir={wd}',
                 f'--config.data.cache_dir={tmp / "cache"}', '--quiet', *TINY], timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  wav = write_wav(tmp / 'hello.wav', espeak.synthesize('hello world', sample_rate=22050), 22050)
  return wd, wav, tmp


def transcribe(capsys, *args):
  code = cli.main(['transcribe', *map(str, args)])
  out, err = capsys.readouterr()
  return code, out, err


def test_greedy_transcript_is_the_best_path_of_the_run(run, capsys):
  from jaxdl.data.speech import read_utterance
  from jaxdl.speech.decoding import best_path
  from jaxdl.speech.transcribe import Transcriber, load_speech_run
  wd, wav, _ = run
  code, out, err = transcribe(capsys, f'--workdir={wd}', wav)
  assert code == 0, err
  assert len(out.splitlines()) == 1
  loaded = load_speech_run(str(wd))
  assert loaded.step == 2 and loaded.front_end.sample_rate == 16000
  t = Transcriber(loaded)
  feats = loaded.front_end([read_utterance(wav, loaded.front_end)])[0]
  lp = t.log_probs(feats)
  assert lp.shape == (-(-len(feats) // 2), len(loaded.vocabulary))         # conv time stride 2
  np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=1e-5)
  host = loaded.vocabulary.decode(np.asarray(best_path(lp)[0][0], np.int32))  # host best path on the same frames
  assert out.rstrip('\n') == host


@pytest.mark.filterwarnings("ignore:.*count-of-counts")   # a 3-sentence toy LM: KenLM's fallback discounts
def test_beam_search_and_lm_fusion(run, capsys):
  from jaxdl.speech.lm import NGramLM
  wd, wav, tmp = run
  arpa = tmp / 'lm.arpa'
  NGramLM.train(['hello world', 'the world is big', 'hello there'], 3, 'word').to_arpa(arpa)
  code, beam, err = transcribe(capsys, f'--workdir={wd}', '--beam-width=4', wav, wav)
  assert code == 0, err
  lines = beam.splitlines()
  assert len(lines) == 2 and lines[0] == lines[1] and lines[0].startswith(f'{wav}\t')
  # α = β = 0 switches the LM off exactly: the same text as the beam alone
  code, off, err = transcribe(capsys, f'--workdir={wd}', '--beam-width=4', f'--lm={arpa}', '--alpha=0', '--beta=0',
                              wav, wav)
  assert code == 0 and off == beam, err
  code, fused, err = transcribe(capsys, f'--workdir={wd}', '--beam-width=4', f'--lm={arpa}', '--alpha=2',
                                '--beta=1', wav)
  assert code == 0 and len(fused.splitlines()) == 1, err


@pytest.mark.parametrize('case', ['missing_file', 'not_audio', 'silent', 'missing_arpa', 'not_speech_run',
                                  'no_run', 'beam_width'])
def test_bad_input_is_one_line_and_exit_2(run, capsys, tmp_path, case):
  from jaxdl.speech.audio import write_wav
  wd, wav, _ = run
  args = [f'--workdir={wd}', wav]
  if case == 'missing_file':
    args = [f'--workdir={wd}', tmp_path / 'nope.wav']
  elif case == 'not_audio':
    (tmp_path / 'x.wav').write_text('this is not audio')
    args = [f'--workdir={wd}', tmp_path / 'x.wav']
  elif case == 'silent':
    args = [f'--workdir={wd}', write_wav(tmp_path / 's.wav', np.zeros(8000, np.float32), 16000)]
  elif case == 'missing_arpa':
    args += [f'--lm={tmp_path / "nope.arpa"}']
  elif case == 'not_speech_run':
    other = tmp_path / 'digits_run'
    other.mkdir()
    (other / 'config.json').write_text(json.dumps({'model': {'name': 'mlp'}, 'data': {'name': 'digits'}}))
    args = [f'--workdir={other}', wav]
  elif case == 'no_run':
    args = [f'--workdir={tmp_path / "nowhere"}', wav]
  else:
    args += ['--beam-width=0']
  code, out, err = transcribe(capsys, *args)
  assert code == 2 and out == ''
  assert err.startswith('jaxdl: error: ') and len(err.strip().splitlines()) == 1
  word = {'missing_file': 'does not exist', 'not_audio': 'cannot read', 'silent': 'silent',
          'missing_arpa': 'does not exist', 'not_speech_run': 'not a speech model', 'no_run': 'does not exist',
          'beam_width': 'beam-width'}[case]
  assert word in err


def test_usage_lists_transcribe():
  assert 'jaxdl transcribe --workdir=RUN' in cli.USAGE
  with pytest.raises(UserError, match='no audio files'):
    from jaxdl.speech.transcribe import transcribe_files
    transcribe_files('anything', [])
