"""Evaluation: one ordered pass over a split (every example once, across processes; padded examples masked out),
averaging the loss's per-example metrics; and `jaxdl eval` of a saved checkpoint.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from jaxdl import data as data_lib
from jaxdl.train import sharding
from jaxdl.train.generation import generation_metrics
from jaxdl.train.state import TrainState, params_fingerprint


def evaluate(setup, state: TrainState, split: str | None = None) -> dict[str, float]:
  """Mean of every per-example metric of the loss over `split` (default: config.data.eval_split)."""
  split = split or setup.config.data.get('eval_split', 'test')
  sums = None
  for batch in data_lib.eval_batches(setup.dataset, split, global_batch_size=setup.eval_batch_size,
                                     process_index=jax.process_index(), process_count=jax.process_count()):
    out = setup.eval_step(state, sharding.to_global(batch, setup.data_sharding))
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  sums = jax.device_get(sums)
  count = float(sums.pop('count'))
  metrics = {k: float(v) / count for k, v in sums.items()}
  if setup.generate_step is not None:   # decode the split and score the text (jaxdl.train.generation)
    metrics.update(generation_metrics(setup, state, split))
  return metrics


def evaluate_checkpoint(config, workdir: str | os.PathLike, checkpoint: str = 'latest',
                        split: str | None = None) -> dict[str, Any]:
  """Restores a checkpoint (`latest`, `best` or a step number) from workdir and evaluates it. `latest` is the newest
  checkpoint that restores (an unreadable newer one is reported and skipped; eval never renames anything)."""
  from jaxdl.train.setup import TrainSetup  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  s = TrainSetup(config)
  ckpt = s.checkpointer(workdir, read_only=True)
  try:
    step, state = ckpt.restore_selected(checkpoint, s.abstract_state, fits='the config given')
  finally:
    ckpt.close()
  metrics = s.evaluate(state, split)
  return {'step': step, 'split': split or config.data.get('eval_split', 'test'), 'eval': metrics,
          'params_fingerprint': params_fingerprint(state.params)}
