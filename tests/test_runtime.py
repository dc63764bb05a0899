"""jaxdl.runtime: the `jaxdl` program's host-memory policy (freed memory kept; no page faults per step)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from jaxdl import runtime
from jaxdl.errors import UserError
from helpers import REPO, run_jaxdl

# A jitted program whose temporaries (a 4608 × 4608 float32 matrix, 85 MB) exceed glibc's mmap threshold and its
# per-thread heap size: it runs 6 times; the script prints the minor page faults of the last 5 per run and the
# pages of that matrix.
_FAULTS = textwrap.dedent('''
    import resource, sys
    from jaxdl import runtime
    policy = runtime.keep_host_memory({} if sys.argv[1] == 'keep' else {'JAXDL_HOST_MEMORY': 'release'})
    runtime.configure_jax()
    import jax, jax.numpy as jnp
    x = jax.random.normal(jax.random.key(0), (4608, 64))
    f = jax.jit(lambda x: (jnp.tanh(x @ x.T) @ x).sum())
    f(x).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
      f(x).block_until_ready()
    print(policy, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5, 4608 * 4608 * 4 / 4096)
''')


def _faults(mode: str) -> tuple[str, float, float]:
  env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_') and k != 'GLIBC_TUNABLES'}
  r = subprocess.run([sys.executable, '-c', _FAULTS, mode], capture_output=True, text=True, timeout=120,
                     env=dict(env, JAX_PLATFORMS='cpu'), cwd=REPO)
  assert r.returncode == 0, r.stderr
  policy, faults, pages = r.stdout.split()
  return policy, float(faults), float(pages)


@pytest.mark.skipif(runtime._glibc() is None, reason='glibc malloc only')  # pylint: disable=protected-access
def test_kept_host_memory_is_not_faulted_in_again_by_every_execution():
  policy, faults, pages = _faults('release')
  assert policy == 'release'
  assert faults > 0.5 * pages, (faults, pages)            # glibc's default: each run maps its temporaries anew
  policy, faults, pages = _faults('keep')
  assert policy == 'keep'
  assert faults < 0.02 * pages, (faults, pages)           # kept: the second run on reuses the first one's pages


@pytest.fixture
def fresh_policy(monkeypatch):
  monkeypatch.setattr(runtime, '_policy', None)


@pytest.mark.parametrize('env, expected', [
    ({'JAXDL_HOST_MEMORY': 'release'}, 'release'),
    ({'JAXDL_HOST_MEMORY': 'Release '}, 'release'),
    ({'MALLOC_ARENA_MAX': '4'}, 'user'),
    ({'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=0'}, 'user'),
    ({'JAXDL_HOST_MEMORY': 'keep', 'MALLOC_TRIM_THRESHOLD_': '0'}, 'user'),
])
def test_policy_leaves_malloc_alone_when_asked_or_already_set(fresh_policy, env, expected):
  assert runtime.keep_host_memory(env) == expected
  assert runtime.host_memory_policy() == expected


def test_bad_policy_value_is_a_user_error(fresh_policy):
  with pytest.raises(UserError, match='keep .* or release'):
    runtime.keep_host_memory({'JAXDL_HOST_MEMORY': 'cache'})
  assert runtime.host_memory_policy() == 'not set'


def test_bad_policy_value_on_the_command_line_is_one_line_exit_2():
  r = run_jaxdl(['list'], env={'JAXDL_HOST_MEMORY': 'cache'}, timeout=60)
  assert r.returncode == 2, r.stderr
  assert r.stderr.count('\n') == 1 and "JAXDL_HOST_MEMORY='cache'" in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.skipif(runtime._glibc() is None, reason='glibc malloc only')  # pylint: disable=protected-access
def test_the_jaxdl_program_steps_without_page_faults(tmp_path):
  """End to end: `jaxdl bench` of the seq2seq-with-attention step (78 MB of XLA temporaries, ~19,000 pages) under
  the program's default policy and under glibc's defaults, from the bench JSON's page_faults_per_step."""
  faults = {}
  for policy in ('keep', 'release'):
    out = tmp_path / f'{policy}.json'
    r = run_jaxdl(['bench', 'seq2seq_attention', '--no-torch', '--repeats', '2', '--steps', '2', '--warmup', '1',
                   f'--out={out}'], env={'JAXDL_HOST_MEMORY': policy}, timeout=300)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())[0]
    assert rec['host_memory'] == policy
    faults[policy] = rec['jax']['page_faults_per_step']
  assert faults['release'] > 10_000, faults      # every step maps its temporaries anew
  assert faults['keep'] < 200, faults            # kept: reused from the step before
