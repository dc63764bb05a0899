"""Checkpoints: one Orbax `CheckpointManager` per workdir, `checkpoints/<step>/`.

Each checkpoint holds three items: `state` (TrainState arrays), `data` (the data iterator's position) and `meta`
(JSON: step, seed key, best eval so far). Saves are asynchronous and atomic: Orbax writes into a temporary
directory and renames it when complete, so a process killed mid-save leaves nothing that `latest_step` would
restore. Kept: the latest `keep` checkpoints plus the best one by an eval metric.
"""
from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from jaxdl.errors import UserError

ITEMS = ('state', 'data', 'meta')


class Checkpointer:

  def __init__(self, directory: str | pathlib.Path, *, keep: int = 3, best_metric: str = '',
               best_mode: str = 'min', read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    policies: list[Any] = [cm.LatestN(n=keep)]
    if best_metric:
      policies.append(cm.BestN(get_metric_fn=lambda m: float(m[best_metric]), reverse=best_mode == 'min', n=1,
                               keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=cm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=not read_only, cleanup_tmp_directories=not read_only,
        create=not read_only, read_only=read_only)
    if read_only and not self.directory.is_dir():
      raise UserError(f'no checkpoints in {str(self.directory.parent)!r}', 'a workdir written by `jaxdl train`',
                      'train first, or point --workdir at a trained run')
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_state: dict, meta: dict, metrics: dict | None = None) -> None:
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     data=ocp.args.JsonSave(data_state),
                                                     meta=ocp.args.JsonSave(meta)),
                      metrics=metrics, force=True)

  def restore(self, step: int, abstract_state) -> tuple[Any, dict, dict]:
    """Restores `step` into the shapes/dtypes/shardings of `abstract_state`."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                                data=ocp.args.JsonRestore(),
                                                                meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 — any failure here means the checkpoint does not fit this config
      msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
      raise UserError(f'checkpoint {self.directory / str(step)} cannot be restored into this config ({msg})',
                      'a checkpoint written by the same experiment config',
                      'use a fresh --workdir, or the config the run was started with') from e
    return out.state, dict(out.data), dict(out.meta)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
