"""`jaxdl sample` end to end on a tiny trained char-RNN run: streaming, determinism by seed, top-k = 1 is greedy
decoding (checked against an independent teacher-forced argmax), checkpoints, and bad input -> one line, exit 2."""
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cli, data
from jaxdl.errors import UserError
from jaxdl.models.char_rnn import CharRNN
from jaxdl.text import generate

TEXT = ('LA GRENOUILLE QUI SE VEUT FAIRE AUSSI GROSSE QUE LE BOEUF\nUne Grenouille vit un Boeuf\n'
        'Qui lui sembla de belle taille.\nElle qui n\'était pas grosse en tout comme un oeuf,\n') * 4
PRIME = 'LA GRENOUILLE '


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('sample')
  (tmp / 'fable.txt').write_text(TEXT, encoding='utf-8')
  wd = tmp / 'run'
  code = cli.main(['train', '--config=experiments/char_rnn.py', f'--workdir={wd}', '--quiet',
                   f'--config.data.path={tmp / "fable.txt"}', '--config.data.seq_len=8',
                   '--config.model.embed_dim=8', '--config.model.hidden_size=8', '--config.model.dense=(8,)',
                   '--config.train.num_steps=4', '--config.train.batch_size=4', '--config.train.eval_batch_size=8',
                   '--config.train.eval_every=0', '--config.train.log_every=2', '--config.train.checkpoint_every=2',
                   '--config.optimizer.schedule_kwargs.step_size=2'])
  assert code == 0
  yield str(wd)
  data._CACHE.clear()


def _sample(capsys, wd, *args):
  code = cli.main(['sample', f'--workdir={wd}', *args])
  out = capsys.readouterr()
  return code, out.out, out.err


def test_sample_streams_the_prime_then_length_characters(run, capsys):
  code, out, err = _sample(capsys, run, f'--prime={PRIME}', '--length=40', '--temperature=0.8', '--seed=1')
  assert code == 0 and err == ''
  assert out.startswith(PRIME) and out.endswith('\n') and len(out) == len(PRIME) + 40 + 1
  assert set(out[:-1]) <= set(TEXT)                              # characters of the text only, no specials


def test_characters_come_one_at_a_time(run):
  model, variables, vocab = generate.load_char_run(run)
  chars = generate.sample_chars(model, variables, vocab, PRIME, length=10 ** 9, temperature=1.0)
  first = list(itertools.islice(chars, 5))                       # a generator: no need to finish 10⁹ characters
  assert len(first) == 5 and all(len(c) == 1 for c in first)


def test_same_seed_same_text_other_seed_other_text(run, capsys):
  a = _sample(capsys, run, f'--prime={PRIME}', '--length=60', '--temperature=1.5', '--seed=3')[1]
  b = _sample(capsys, run, f'--prime={PRIME}', '--length=60', '--temperature=1.5', '--seed=3')[1]
  c = _sample(capsys, run, f'--prime={PRIME}', '--length=60', '--temperature=1.5', '--seed=4')[1]
  assert a == b and a != c


def _greedy_reference(model, variables, vocab, prime, length):
  """argmax over the characters (ids ≥ 4) of a teacher-forced pass over the text so far (the model is causal:
  padding after position t does not change the logits at t), one fixed-shape jitted forward per character."""
  ids = list(vocab.encode(prime))
  total = len(ids) + length
  forward = jax.jit(lambda x: model.apply(variables, x))
  for _ in range(length):
    x = np.zeros((1, total), np.int32)
    x[0, :len(ids)] = ids
    logits = np.asarray(forward(jnp.asarray(x)))[0, len(ids) - 1]
    ids.append(4 + int(np.argmax(logits[4:])))
  return vocab.decode(ids)


def test_top_k_1_is_greedy(run, capsys):
  model, variables, vocab = generate.load_char_run(run)
  want = _greedy_reference(model, variables, vocab, PRIME, 25)
  for temperature, seed in (('0.5', '0'), ('2.0', '7')):
    code, out, _ = _sample(capsys, run, f'--prime={PRIME}', '--length=25', '--top-k=1',
                           f'--temperature={temperature}', f'--seed={seed}')
    assert code == 0 and out[:-1] == want


def test_checkpoint_by_step(run, capsys):
  _, latest, _ = generate.load_char_run(run)
  _, early, _ = generate.load_char_run(run, '2')
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), latest['params'], early['params'])
  assert max(jax.tree.leaves(diff)) > 0
  code, out, _ = _sample(capsys, run, '--checkpoint=2', f'--prime={PRIME}', '--length=5')
  assert code == 0 and len(out) == len(PRIME) + 5 + 1


@pytest.fixture
def not_a_char_run(tmp_path):
  wd = tmp_path / 'mlp_run'
  wd.mkdir()
  (wd / 'config.json').write_text(json.dumps({'model': {'name': 'mlp'}, 'data': {'name': 'digits'}}))
  return str(wd)


@pytest.mark.parametrize('args, words', [
    (['--prime=LA GRENOUILLE €'], "outside the run's vocabulary: '€'"),
    (['--prime='], 'prime is empty'),
    (['--temperature=0'], 'temperature'),
    (['--temperature=-1'], 'temperature'),
    (['--length=0'], '--length=0'),
    (['--top-k=0'], 'top_k=0'),
    (['--checkpoint=99'], '--checkpoint=99 is not in'),
    (['--checkpoint=best'], 'latest or a step number'),
    (['--length=abc'], 'bad arguments'),
])
def test_bad_input_is_one_line_exit_2(run, capsys, args, words):
  code, out, err = _sample(capsys, run, *args)
  assert code == 2 and out == '' and err.startswith('jaxdl: error:') and len(err.strip().splitlines()) == 1
  assert words in err


@pytest.mark.parametrize('where, words', [('mlp', 'not a character language model'), ('missing', 'no config.json')])
def test_workdir_without_a_char_model(capsys, not_a_char_run, tmp_path, where, words):
  wd = not_a_char_run if where == 'mlp' else str(tmp_path / 'nothing')
  code, out, err = _sample(capsys, wd)
  assert code == 2 and out == '' and words in err and len(err.strip().splitlines()) == 1


def test_bidirectional_model_cannot_be_sampled():
  model = CharRNN(num_outputs=9, embed_dim=4, hidden_size=4, dense=(4,), bidirectional=True)
  with pytest.raises(UserError, match='bidirectional'):
    generate.char_step_fn(model, {}, None)
