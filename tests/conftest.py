import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# The default tier's time is mostly XLA:CPU compiling hundreds of small programs; LLVM at -O0 compiles them about
# twice as fast (one-step training of 18 zoo models: 118 -> 65 s) and computes the same results up to float
# rounding, which every test tolerates. Speed is measured by `jaxdl bench`, never by tests. JAXDL_TEST_XLA_OPT=1
# tests with XLA's default optimisation level instead; subprocesses (CLI tests) inherit the choice.
if os.environ.get('JAXDL_TEST_XLA_OPT') != '1' and 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_backend_optimization_level=0').strip()
sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py


import signal  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _sigterm_restored():
  """Every test leaves SIGTERM handling as it found it (in-process `jaxdl train` arms jaxdl's preemption handler)."""
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  previous = signal.getsignal(signal.SIGTERM)
  yield
  preemption.disarm()
  preemption.reset()
  signal.signal(signal.SIGTERM, previous)
