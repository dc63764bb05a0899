"""Runs `jaxdl ARGS` with a pause at one phase of training, for tests/train/test_faults.py (not a test itself).

    python tests/train/fault_runner.py PHASE MARKER ARGS...

When the run reaches PHASE it creates the file MARKER and waits inside that phase until SIGTERM arrives, at most
`JAXDL_FAULT_SLEEP` seconds (default 30), so the test can send SIGTERM or SIGKILL at a known moment. Phases:
startup (building the setup, the SIGTERM handler already armed), compile (the first train step), train (step
`JAXDL_FAULT_STEP`), eval, save (just after an asynchronous save began), finalize (inside Orbax's commit of a
checkpoint, `JAXDL_FAULT_NTH`-th call: items written, not yet renamed into place), none.
The pauses wrap the package's functions; nothing in jaxdl knows.
"""
import functools
import os
import pathlib
import sys
import time


def _mark_and_sleep(marker: str) -> None:
  """Marks the phase, then waits in it until SIGTERM arrives (or the pause ends; a SIGKILL ends everything)."""
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  pathlib.Path(marker).write_text(str(os.getpid()))
  end = time.monotonic() + float(os.environ.get('JAXDL_FAULT_SLEEP', '30'))
  while time.monotonic() < end and not preemption.requested():
    time.sleep(0.01)


def install(phase: str, marker: str) -> None:
  from jaxdl.train import checkpoint, loop  # pylint: disable=g-import-not-at-top
  if phase == 'startup':
    setup_cls = loop.TrainSetup

    def setup(config):
      _mark_and_sleep(marker)
      return setup_cls(config)
    loop.TrainSetup = setup
  elif phase in ('compile', 'train'):
    step_fn = loop.Run.train_step
    at = int(os.environ.get('JAXDL_FAULT_STEP', '5'))

    @functools.wraps(step_fn)
    def train_step(self):
      if phase == 'compile' and self.compile_time is None:
        pathlib.Path(marker).write_text(str(os.getpid()))  # the signal arrives while step 1 compiles
      out = step_fn(self)
      if phase == 'train' and self.step == at:
        _mark_and_sleep(marker)
      return out
    loop.Run.train_step = train_step
  elif phase == 'eval':
    evaluate = loop.evaluate

    def eval_and_pause(*a, **k):
      _mark_and_sleep(marker)
      return evaluate(*a, **k)
    loop.evaluate = eval_and_pause
  elif phase == 'save':
    save = checkpoint.Checkpointer.save

    @functools.wraps(save)
    def save_and_pause(self, *a, **k):
      save(self, *a, **k)
      _mark_and_sleep(marker)  # the asynchronous write is in flight
    checkpoint.Checkpointer.save = save_and_pause
  elif phase == 'finalize':
    from orbax.checkpoint._src.path import atomicity  # pylint: disable=g-import-not-at-top
    finalize = atomicity.AtomicRenameTemporaryPath.finalize
    nth = int(os.environ.get('JAXDL_FAULT_NTH', '1'))
    calls = [0]

    async def finalize_and_pause(self, *a, **k):
      calls[0] += 1
      if calls[0] == nth:
        _mark_and_sleep(marker)
      return await finalize(self, *a, **k)
    atomicity.AtomicRenameTemporaryPath.finalize = finalize_and_pause
  elif phase == 'no-writable-check':  # the workdir check skipped: Orbax itself meets the unwritable folder
    from jaxdl.train import workdir  # pylint: disable=g-import-not-at-top
    workdir.check_writable = lambda path: None
  elif phase != 'none':
    raise ValueError(f'unknown phase {phase!r}')


if __name__ == '__main__':
  from jaxdl import cli  # pylint: disable=g-import-not-at-top
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  preemption.arm()  # as `jaxdl train` does, before anything slow
  install(sys.argv[1], sys.argv[2])
  sys.argv = ['jaxdl', *sys.argv[3:]]
  cli.entry()
