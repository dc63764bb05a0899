"""Preemption: SIGTERM is caught from the first instant of `jaxdl train`, and the run stops at the next safe point.

The contract (README, "What jaxdl promises"): a SIGTERM, whenever it comes, makes `jaxdl train` save a checkpoint
of the last completed step (nothing is saved before the first step: there is nothing to save) and exit with
status `EXIT_PREEMPTED` = 75 (EX_TEMPFAIL of sysexits.h: "temporary failure, retry"): stopped, resumable — rerun
the same command. A run that completes exits 0, so a scheduler can tell the two apart.

This module imports nothing heavy: the CLI arms it before JAX is imported.
"""
from __future__ import annotations

import signal
import threading

EXIT_PREEMPTED = 75

_state = {'armed': False, 'requested': False, 'previous': None}


class Preempted(Exception):
  """A run inside a larger job (e.g. `jaxdl reproduce`) was stopped by SIGTERM: the job stops too (exit 75)."""


def _on_term(signum, frame):  # noqa: ARG001
  _state['requested'] = True


def arm() -> None:
  """Catches SIGTERM from now on (idempotent). Only the main thread can install handlers: elsewhere, a no-op."""
  if not _state['armed'] and threading.current_thread() is threading.main_thread():
    _state['previous'] = signal.signal(signal.SIGTERM, _on_term)
    _state['armed'] = True


def disarm() -> None:
  if _state['armed']:
    signal.signal(signal.SIGTERM, _state['previous'] or signal.SIG_DFL)
    _state.update(armed=False, previous=None)


def requested() -> bool:
  """Has this process received SIGTERM since `arm()`?"""
  return _state['requested']


def reset() -> None:
  """Forgets a received signal (a new run in the same process, e.g. tests)."""
  _state['requested'] = False


class Armed:
  """`with Armed():` arms the handler if it is not armed yet and restores the previous one on exit."""

  def __enter__(self):
    self._mine = not _state['armed']
    if self._mine:
      arm()
    return self

  def __exit__(self, *exc):
    if self._mine:
      disarm()
    return False
