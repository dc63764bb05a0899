"""Process-wide settings for training runs on the host: how freed host memory is kept.

XLA:CPU gives each execution of a compiled program its temporaries as ONE block (the transformer benchmark's train
step: 208 MB; seq2seq-with-attention's 78 MB, ResNet-20's 311 MB), allocated with posix_memalign by the thread that
runs the program (with JAX's asynchronous CPU dispatch, an XLA pool thread) and freed when the step ends. glibc
serves a request that large with a fresh mmap (from a thread's own arena above 64 MB, always) and unmaps it on
free, so every step faults its whole working set in again, page by zeroed page: measured on the 2-core benchmark
machine, 50,800 minor page faults and ~120 ms of kernel time in a 185 ms transformer step, 19,000 and ~45 ms in a
58 ms seq2seq-with-attention step, 76,000 and ~190 ms in ResNet-20's.

`keep_host_memory()` sets glibc's malloc (mallopt) never to mmap and not to hand freed memory back to the OS, and
`configure_jax()` then runs single-device CPU programs on the calling thread (`jax_cpu_enable_async_dispatch` off),
whose allocations come from glibc's main heap: from the second step on, a step reuses the pages of the one before and the
faults are gone (seq2seq step 58 -> 33 ms, transformer 185 -> 129 ms). The price: the process keeps its peak heap
until it exits (as PyTorch's and TensorFlow's caching allocators do on GPUs), and Python no longer runs ahead of a
single CPU device (the trainer's host work per step is a batch from Grain's prefetch and its transfer). Capping
glibc at one arena would also route pool threads to the main heap, but it serialises every thread's allocations
(PyTorch's LSTM step 16 -> 22-30 ms): not done. The `jaxdl` program applies it before any work, for all commands
(a benchmark's PyTorch twin runs under the same malloc settings as the JAX step; they do not slow it).
`JAXDL_HOST_MEMORY=release` keeps the defaults; a malloc setting of the user's own (MALLOC_ARENA_MAX,
MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_, glibc.malloc.* in
GLIBC_TUNABLES) is left alone, as are other C libraries (macOS, musl). Programs on several CPU devices still run
on pool threads (their collectives need one thread per device) and still fault.
"""
from __future__ import annotations

import ctypes
import os
import platform

from jaxdl.errors import UserError

ENV = 'JAXDL_HOST_MEMORY'
CHOICES = ('keep', 'release')
# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_USER_MALLOC_ENV = ('MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_',
                    'MALLOC_TOP_PAD_')

_policy: str | None = None


def _glibc() -> ctypes.CDLL | None:
  if platform.system() != 'Linux':
    return None
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    libc.gnu_get_libc_version()
    libc.mallopt  # pylint: disable=pointless-statement
  except (OSError, AttributeError):
    return None                                                      # not glibc (musl has no gnu_get_libc_version)
  return libc


def keep_host_memory(env: dict[str, str] | None = None) -> str:
  """Applies the malloc half of the policy (once per process, before any threads; `configure_jax` is the JAX half)
  and returns it: 'keep' (set now), 'release' (asked for by JAXDL_HOST_MEMORY=release), 'user' (the user's own
  malloc settings), 'unsupported' (not glibc). A value of JAXDL_HOST_MEMORY other than keep/release is a
  UserError."""
  global _policy
  env = os.environ if env is None else env
  choice = env.get(ENV, 'keep').strip().lower() or 'keep'
  if choice not in CHOICES:
    raise UserError(f'{ENV}={env[ENV]!r}', 'keep (the default: reuse freed host memory) or release (glibc\'s '
                    'default malloc)', f'set {ENV}=keep or {ENV}=release, or unset it')
  if _policy is not None:
    return _policy
  if choice == 'release':
    _policy = 'release'
  elif any(k in env for k in _USER_MALLOC_ENV) or 'glibc.malloc.' in env.get('GLIBC_TUNABLES', ''):
    _policy = 'user'
  else:
    libc = _glibc()
    if libc is None:
      _policy = 'unsupported'
    else:
      ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
      _policy = 'keep' if ok else 'unsupported'
  return _policy


def configure_jax() -> None:
  """The JAX half of the policy, once JAX may be imported (the `jaxdl` program arms its SIGTERM handler first):
  under 'keep', single-device CPU programs run on the calling thread (jax_cpu_enable_async_dispatch off; read when
  the CPU client starts, so before any JAX work)."""
  if _policy == 'keep':
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update('jax_cpu_enable_async_dispatch', False)


def host_memory_policy() -> str:
  """What `keep_host_memory` did in this process ('not set' when it was not called)."""
  return _policy or 'not set'
