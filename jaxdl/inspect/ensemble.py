"""Prediction ensembles: average the predicted class probabilities of several models.

Snapshot ensembles (Huang et al. 2017) are the checkpoints of ONE run (e.g. at the ends of SGDR cycles); prediction
ensembles are several runs (seeds, architectures). The course lab's "ensemble of 6" is the latter.
"""
from __future__ import annotations

import pathlib
from typing import Any, Sequence

import jax
import numpy as np

from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.train import sharding


def _resolve(ckpt, checkpoint: str) -> int:
  steps = ckpt.all_steps()
  if not steps:
    raise UserError(f'no checkpoints in {str(ckpt.directory.parent)!r}', 'a workdir written by `jaxdl train`',
                    'train it first')
  if checkpoint == 'latest':
    return max(steps)
  try:
    step = int(checkpoint)
  except ValueError:
    step = None
  if step not in steps:
    raise UserError(f'checkpoint {checkpoint!r} is not in {str(ckpt.directory.parent)!r}',
                    'latest or one of the steps ' + ', '.join(map(str, steps)), 'pick one of those')
  return step


def member_probabilities(setup, state, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(softmax probabilities [N, C], targets [N]) of one model on a split, in order."""
  predict = jax.jit(lambda st, x: jax.nn.softmax(setup.model.apply({'params': st.params, **st.model_state}, x,
                                                                   train=False)),
                    in_shardings=(setup.repl, setup.data_sharding), out_shardings=setup.repl)
  probs, targets = [], []
  for batch in data_lib.eval_batches(setup.dataset, split, global_batch_size=setup.eval_batch_size):
    keep = batch['mask'] > 0
    p = np.asarray(predict(state, sharding.to_global({'inputs': batch['inputs']}, setup.data_sharding)['inputs']))
    probs.append(p[keep])
    targets.append(batch['targets'][keep])
  return np.concatenate(probs), np.concatenate(targets)


def evaluate_ensemble(config, members: Sequence[tuple[str, str]], split: str | None = None) -> dict[str, Any]:
  """Accuracy and NLL of the mean predicted distribution over `members` = [(workdir, checkpoint), ...]."""
  from jaxdl.train.setup import TrainSetup  # pylint: disable=g-import-not-at-top
  if not members:
    raise UserError('an ensemble needs members', 'one or more (workdir, checkpoint)', 'list them')
  setup = TrainSetup(config)
  if setup.info.task != 'classification':
    raise UserError('ensembles average class probabilities', 'a classification experiment', 'use jaxdl eval')
  split = split or config.data.get('eval_split', 'test')
  all_probs, each, targets = [], [], None
  for workdir, checkpoint in members:
    ckpt = setup.checkpointer(pathlib.Path(workdir), read_only=True)
    step = _resolve(ckpt, checkpoint)
    state, _, _ = ckpt.restore(step, setup.abstract_state)
    ckpt.close()
    probs, targets = member_probabilities(setup, state, split)
    all_probs.append(probs)
    each.append({'workdir': str(workdir), 'step': step, 'accuracy': float(np.mean(probs.argmax(-1) == targets))})
  mean = np.mean(all_probs, axis=0)
  nll = float(np.mean(-np.log(np.maximum(mean[np.arange(len(targets)), targets], 1e-12))))
  return {'split': split, 'members': each, 'eval': {'accuracy': float(np.mean(mean.argmax(-1) == targets)),
                                                    'loss': nll}}
