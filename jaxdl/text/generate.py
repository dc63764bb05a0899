"""Sampling text from a trained char-RNN run (seed 000 "SAMPLING FROM THE CHARACTER RNN"; `jaxdl sample`).

The language model is trained many-to-many but sampled one-to-many: the prime ("LA GRENOUILLE " in the notes) is
fed one character at a time to condition the recurrent state, then each sampled character is fed back
(jaxdl.text.sampling.stream_sample: softmax(logits / T), optionally top-k). The vocabulary's specials (PAD, BOS,
EOS, UNK) never occur in a corpus, so their logits are masked out: every sampled id is a character.

`load_char_run(workdir, checkpoint)` -> (model, variables, vocabulary): the run's config.json rebuilds the model
and (deterministically) the corpus's vocabulary; a `vocab.json` next to the run, if present, takes precedence.
"""
from __future__ import annotations

import json
import pathlib
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import UserError
from jaxdl.text import sampling
from jaxdl.text.vocab import SPECIALS, Vocabulary


def char_step_fn(model, variables, vocab: Vocabulary):
  """(step_fn(tokens [1], state) -> (logits [1, V], state), the initial state) for stream_sample, specials masked."""
  if not (hasattr(model, 'step') and hasattr(model, 'zero_state')):
    raise UserError(f'model {type(model).__name__} is not a character language model', 'a run of char_rnn',
                    'point --workdir at a char_rnn run (experiments/char_rnn.py)')
  if getattr(model, 'bidirectional', False):
    raise UserError('the run\'s char_rnn is bidirectional', 'a unidirectional language model (a bidirectional one '
                    'reads the characters it should predict)', 'sample from a run with model.bidirectional=False')
  banned = jnp.arange(model.num_outputs) < len(SPECIALS)

  def step_fn(tokens, state):
    logits, state = model.apply(variables, tokens, state, method='step')
    return jnp.where(banned, -jnp.inf, logits), state
  return step_fn, model.zero_state(1)


def check_prime(prime: str, vocab: Vocabulary) -> np.ndarray:
  """The prime's ids; an empty prime or characters the model never saw are a UserError naming them."""
  if not prime:
    raise UserError('--prime is empty', 'a few characters to condition the sampling on (e.g. a title)',
                    'pass --prime="..."')
  missing = vocab.unknown(prime)
  if missing:
    shown = ', '.join(repr(ch) for ch in missing[:10]) + (' …' if len(missing) > 10 else '')
    raise UserError(f'the prime has {len(missing)} character(s) outside the run\'s vocabulary: {shown}',
                    f'only the {len(vocab) - len(SPECIALS)} characters of the training text', 'remove or replace them')
  return vocab.encode(prime, strict=True)


def sample_chars(model, variables, vocab: Vocabulary, prime: str, *, length: int, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> Iterator[str]:
  """Yields `length` characters sampled after `prime`, one at a time as they come."""
  if not (isinstance(length, (int, np.integer)) and length >= 1):
    raise UserError(f'--length={length!r}', 'a number of characters >= 1', 'fix --length')
  sampling.check_sampling(temperature, top_k)
  ids = check_prime(prime, vocab)
  step_fn, state = char_step_fn(model, variables, vocab)
  for tok in sampling.stream_sample(step_fn, state, jax.random.key(seed), max_new_tokens=length, prime=ids,
                                    temperature=temperature, top_k=top_k):
    yield vocab.id_to_token(tok)


def _restore_step(workdir: pathlib.Path, step: int, like):
  """The parameters of checkpoint `step` of a run (host arrays shaped like `like`)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  from jaxdl.train.checkpoint import Checkpointer, first_line  # pylint: disable=g-import-not-at-top
  ck = Checkpointer(workdir / 'checkpoints', read_only=True)
  try:
    steps = ck.all_steps()
    if step not in steps:
      raise UserError(f'--checkpoint={step} is not in {str(workdir)!r}',
                      'latest or one of the steps ' + (', '.join(map(str, steps)) or '(none)'), 'pick one of those')
    try:
      state = ck.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
    except Exception as e:  # noqa: BLE001 — a damaged checkpoint
      raise UserError(f'checkpoint {step} of {str(workdir)!r} does not restore ({first_line(e)})',
                      'a checkpoint written by `jaxdl train`', 'pick another --checkpoint') from e
  finally:
    ck.manager.close()
  params = state['params']
  if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(like) or any(
      np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(like))):
    raise UserError(f'checkpoint {step} of {str(workdir)!r} holds parameters of another shape',
                    'a checkpoint of the run\'s model', 'pick another --checkpoint')
  return jax.tree.map(lambda a, b: np.asarray(a, dtype=b.dtype), params, like)


def load_char_run(workdir: str, checkpoint: str = 'latest'):
  """(model, variables, vocabulary) of a trained char-RNN run, at its latest checkpoint or step `checkpoint`."""
  from jaxdl.data.text_corpus import corpus_vocabulary  # pylint: disable=g-import-not-at-top
  from jaxdl.train.pretrained import load_run  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir)
  cfg_file = path / 'config.json'
  if cfg_file.is_file():
    try:
      raw = json.loads(cfg_file.read_text(encoding='utf-8'))
    except (ValueError, OSError):
      raw = {}                                     # load_run reports it
    name = (raw.get('model') or {}).get('name') if isinstance(raw, dict) else None
    if name is not None and name != 'char_rnn':
      raise UserError(f'{workdir!r} is a run of model {name!r}, not a character language model', 'a char_rnn run',
                      'point --workdir at a run of experiments/char_rnn.py')
  if checkpoint != 'latest':
    try:
      step = int(checkpoint)
    except ValueError:
      raise UserError(f'--checkpoint={checkpoint!r}', 'latest or a step number', 'fix --checkpoint') from None
  cfg, model, variables = load_run(workdir)
  if checkpoint != 'latest':
    variables = {**variables, 'params': _restore_step(path, step, variables['params'])}
  vocab_file = path / 'vocab.json'
  vocab = Vocabulary.load(vocab_file) if vocab_file.is_file() else corpus_vocabulary(cfg.data)
  if len(vocab) != model.num_outputs:
    raise UserError(f'the run\'s corpus now has a {len(vocab)}-symbol vocabulary but its model was trained with '
                    f'{model.num_outputs}', 'the text the run was trained on', 'restore that text file, or retrain')
  return model, jax.tree.map(jnp.asarray, variables), vocab
