"""Checkpoints: one Orbax `CheckpointManager` per workdir, `checkpoints/<step>/`.

Each checkpoint holds three items: `state` (TrainState arrays), `data` (the data iterator's position) and `meta`
(JSON: step, seed key, best eval so far, and a checksum of every state array). Saves are asynchronous and atomic:
Orbax writes into a temporary directory and renames it when complete, so a process killed mid-save leaves nothing
that `latest_step` would restore. Kept: the latest `keep` checkpoints plus the best one by an eval metric.

Two promises on top of Orbax's:
- Only finite states are written: `save` computes, in one jitted pass on the device, whether every floating array
  is finite and a checksum of every array (the wrapping uint32 sum of its bits: exact, independent of how the sum
  is ordered or sharded). A non-finite state raises `NonFiniteState` and nothing is written.
- A checkpoint that does not restore (truncated array data, a damaged manifest or metadata, a checksum that does
  not match) is set aside, renamed `<step>.unreadable` (never deleted), and `restore_latest` falls back to the
  newest checkpoint that restores; nothing is renamed unless one did.
"""
from __future__ import annotations

import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from jaxdl.errors import UserError

ITEMS = ('state', 'data', 'meta')
UNREADABLE_SUFFIX = '.unreadable'


class NonFiniteState(Exception):
  """The state to save has a NaN or an infinity: nothing was written."""


class UnreadableCheckpoint(Exception):
  """One checkpoint could not be restored (the reason is the message)."""


def _bits(x: jax.Array) -> jax.Array:
  """An array's bit patterns as uint32 (exact for 8/16/32-bit types; 64-bit types fold both halves)."""
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  size = jnp.dtype(x.dtype).itemsize
  if size == 4:
    return jax.lax.bitcast_convert_type(x, jnp.uint32)
  if size == 2:
    return jax.lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32)
  if size == 1:
    return jax.lax.bitcast_convert_type(x, jnp.uint8).astype(jnp.uint32)
  halves = jax.lax.bitcast_convert_type(x, jnp.uint32)  # (..., 2)
  return halves[..., 0] ^ (halves[..., 1] * jnp.uint32(0x9E3779B1))


@jax.jit
def _finite_and_checksums(state):
  leaves = jax.tree.leaves(state)
  finite = jnp.array(True)
  for x in leaves:
    if jnp.issubdtype(x.dtype, jnp.inexact):
      finite = finite & jnp.all(jnp.isfinite(x))
  sums = jnp.stack([jnp.sum(_bits(x), dtype=jnp.uint32) for x in leaves]) if leaves else jnp.zeros((0,), jnp.uint32)
  return finite, sums


def finite_and_checksums(state) -> tuple[bool, list[int]]:
  """(every floating array is finite, per-array checksums) in one device pass and one small transfer."""
  finite, sums = jax.device_get(_finite_and_checksums(state))
  return bool(finite), [int(s) for s in np.asarray(sums)]


def _quiet_closed_event_loop() -> None:
  """After a restore fails, reads still in flight complete into Orbax's closed event loop and each prints a
  'RuntimeError: Event loop is closed' traceback (an unraisable exception). Those, and only those, are dropped."""
  previous = sys.unraisablehook
  if getattr(previous, 'jaxdl_quiet_closed_loop', False):
    return

  def hook(unraisable):
    e = unraisable.exc_value
    if isinstance(e, RuntimeError) and str(e) == 'Event loop is closed':
      return
    previous(unraisable)
  hook.jaxdl_quiet_closed_loop = True
  sys.unraisablehook = hook


def first_line(e: BaseException) -> str:
  text = str(e).strip()
  return (text.splitlines()[0][:300] if text else type(e).__name__)


class Checkpointer:

  def __init__(self, directory: str | pathlib.Path, *, keep: int = 3, best_metric: str = '',
               best_mode: str = 'min', read_only: bool = False, lead: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self.read_only = read_only
    self.lead = lead
    policies: list[Any] = [cm.LatestN(n=keep)]
    if best_metric:
      policies.append(cm.BestN(get_metric_fn=lambda m: float(m[best_metric]), reverse=best_mode == 'min', n=1,
                               keep_checkpoints_without_metrics=False))
    self._options = ocp.CheckpointManagerOptions(
        preservation_policy=cm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=not read_only, cleanup_tmp_directories=not read_only,
        create=not read_only, read_only=read_only)
    if read_only and not self.directory.is_dir():
      raise UserError(f'no checkpoints in {str(self.directory.parent)!r}', 'a workdir written by `jaxdl train`',
                      'train first, or point --workdir at a trained run')
    self.manager = self._open()
    self._in_flight: int | None = None   # the step of the asynchronous save not yet known to be complete

  def _open(self):
    return ocp.CheckpointManager(self.directory, options=self._options, item_names=ITEMS)

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  # ------------------------------------------------------------------------------------------------ save
  def save(self, step: int, state, data_state: dict, meta: dict, metrics: dict | None = None) -> None:
    """Saves asynchronously; raises NonFiniteState (nothing written) or a UserError if the disk refuses."""
    finite, sums = finite_and_checksums(state)
    if not finite:
      raise NonFiniteState(f'the state at step {step} is not finite')
    meta = dict(meta, checksums=sums)
    try:
      self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       data=ocp.args.JsonSave(data_state),
                                                       meta=ocp.args.JsonSave(meta)),
                        metrics=metrics, force=True)
    except Exception as e:  # noqa: BLE001 — the filesystem said no: tell the user, in one line
      raise self._write_error(self._in_flight or step, e) from e   # (Orbax reports the previous save's failure)
    self._in_flight = step

  def _write_error(self, step, e) -> UserError:
    from jaxdl.train import sharding  # pylint: disable=g-import-not-at-top
    if sharding.is_peer_failure(e) or jax.process_count() > 1:
      # A save is collective: a peer that died mid-save fails it here. Give the watchdog its time to name the
      # process that went away (it stops this one with that line); if all are alive, it is the filesystem.
      sharding.peer_failure(e)
    return UserError(f'cannot write checkpoint {step} in {str(self.directory)!r} ({first_line(e)})',
                     'a writable workdir with free space',
                     'fix the permissions or free some space, then rerun the same command: it resumes from the '
                     'last checkpoint written')

  def wait(self) -> None:
    try:
      self.manager.wait_until_finished()
      self._in_flight = None
    except Exception as e:  # noqa: BLE001
      raise self._write_error(self._in_flight, e) from e

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self.manager.close()

  # --------------------------------------------------------------------------------------------- restore
  def restore(self, step: int, abstract_state) -> tuple[Any, dict, dict]:
    """Restores `step` into the shapes/dtypes/shardings of `abstract_state`; verifies its checksums.

    Raises UnreadableCheckpoint (the reason in the message) if it cannot be restored as it was saved."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    _quiet_closed_event_loop()
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                                data=ocp.args.JsonRestore(),
                                                                meta=ocp.args.JsonRestore()))
      state, data, meta = out.state, dict(out.data), dict(out.meta)
    except Exception as e:  # noqa: BLE001 — any failure here means this checkpoint cannot be used
      raise UnreadableCheckpoint(first_line(e)) from e
    if 'checksums' in meta:  # checkpoints written before checksums existed are taken as they are
      if finite_and_checksums(state)[1] != list(meta['checksums']):
        raise UnreadableCheckpoint('its arrays do not match the checksums saved with them (damaged data)')
    return state, data, meta

  def restore_selected(self, checkpoint: str, abstract_state, *, fits: str = 'this config') -> tuple[int, Any]:
    """(step, state) of `checkpoint`: 'latest' (the newest that restores), 'best' (by train.best_metric) or a
    step number, as `jaxdl eval --checkpoint` and `jaxdl transcribe --checkpoint` take it; UserError otherwise."""
    where = str(self.directory.parent)
    steps = self.all_steps()
    if not steps:
      raise UserError(f'no checkpoints in {where!r}', 'a workdir written by `jaxdl train`',
                      'train first, or point --workdir at a trained run')
    if checkpoint in ('latest', 'best'):
      step, state, _, meta = self.restore_latest(abstract_state, fits=fits)
      best = meta.get('best', {}).get('step')
      if checkpoint == 'latest' or best in (None, step):
        return step, state
      step = best
    else:
      step = int(checkpoint) if str(checkpoint).isdigit() else None
      if step not in steps:
        raise UserError(f'--checkpoint={checkpoint} is not in {where!r}',
                        'latest, best or one of the steps ' + ', '.join(map(str, steps)), 'pick one of those')
    try:
      return step, self.restore(step, abstract_state)[0]
    except UnreadableCheckpoint as e:
      raise UserError(f'checkpoint {step} in {where!r} does not restore ({e})',
                      f'a checkpoint written by `jaxdl train` with {fits}',
                      'pick another --checkpoint, or the config the run was started with') from e

  def restore_latest(self, abstract_state, *, fits: str = 'this config') -> tuple[int, Any, dict, dict] | None:
    """The newest checkpoint that restores: (step, state, data, meta), or None if there are no checkpoints.

    Unreadable ones are reported on stderr and, once an older one restored, renamed `<step>.unreadable` (kept for
    inspection). If none restores, nothing is renamed and a UserError says so.
    """
    steps = self.all_steps()
    bad: list[tuple[int, str]] = []
    for step in reversed(steps):
      try:
        state, data, meta = self.restore(step, abstract_state)
      except UnreadableCheckpoint as e:
        bad.append((step, str(e)))
        continue
      if bad:  # warned only once one restored: if none does, the one-line error below says it all
        for s, reason in bad:
          print(f'jaxdl: warning: checkpoint {s} in {str(self.directory)!r} does not restore ({reason})',
                file=sys.stderr, flush=True)
        self._set_aside([s for s, _ in bad])
        verb = 'using' if self.read_only or not self.lead else 'resuming from'
        aside = '' if self.read_only or not self.lead else '; set aside: ' + ', '.join(
            f'{s}{UNREADABLE_SUFFIX}' for s, _ in bad)
        print(f'jaxdl: warning: {verb} checkpoint {step}, the newest that restores{aside}', file=sys.stderr,
              flush=True)
      return step, state, data, meta
    if not steps:
      return None
    step, reason = bad[0]
    raise UserError(f'no checkpoint in {str(self.directory)!r} restores into {fits} (latest, {step}: {reason})',
                    f'a checkpoint written by `jaxdl train` with {fits}',
                    'rerun with the config the run was started with, or move the checkpoints folder aside to '
                    'start over')

  def _set_aside(self, steps: list[int]) -> None:
    if self.read_only or not self.lead:
      return
    self.manager.close()
    for step in steps:
      src = self.directory / str(step)
      dst = self.directory / f'{step}{UNREADABLE_SUFFIX}'
      n = 1
      while dst.exists():
        dst, n = self.directory / f'{step}{UNREADABLE_SUFFIX}{n}', n + 1
      if src.exists():
        src.rename(dst)
    self.manager = self._open()
