"""Process-wide settings for training runs on the host: how freed host memory is kept.

XLA:CPU gives each execution of a compiled program its temporaries as ONE block (the transformer benchmark's train
step: 208 MB; ResNet-20's, DeepSpeech2's and seq2seq's: tens to hundreds of MB), allocated with posix_memalign from
an XLA pool thread and freed when the step ends. glibc serves a request that large with a fresh mmap (always, from
a thread's own arena, above 64 MB) and unmaps it on free, so every step faults its whole working set in again,
page by zeroed page: measured on the 2-core benchmark machine, 50,800 minor page faults and ~125 ms of kernel time
in a 200 ms transformer step, ~45 ms of kernel time in a 64 ms seq2seq-with-attention step, ~200 ms in ResNet-20's.
PyTorch's CPU tensors fault in the same way, only less (its blocks are smaller).

`keep_host_memory()` sets glibc's malloc (mallopt) to serve every thread from the main heap, never to mmap, and
not to hand freed memory back to the OS: from the second step on a step reuses the pages of the one before, and
the faults disappear. The price is that the process keeps its peak heap until it exits (what PyTorch's and
TensorFlow's caching allocators do on GPUs). The `jaxdl` command line applies it before any work (all commands, so
a benchmark's PyTorch twin runs under the same policy as the JAX step). `JAXDL_HOST_MEMORY=release` keeps glibc's
defaults; a malloc setting of the user's own (MALLOC_ARENA_MAX, MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_,
MALLOC_MMAP_THRESHOLD_, glibc.malloc.* in GLIBC_TUNABLES) is left alone; other C libraries (macOS, musl) are left
alone. It must run before JAX starts its thread pools (a thread keeps the arena of its first allocation).
"""
from __future__ import annotations

import ctypes
import os
import platform

from jaxdl.errors import UserError

ENV = 'JAXDL_HOST_MEMORY'
CHOICES = ('keep', 'release')
# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
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
  """Applies the policy (once per process) and returns it: 'keep' (set now), 'release' (asked for by
  JAXDL_HOST_MEMORY=release), 'user' (the user's own malloc settings), 'unsupported' (not glibc). A value of
  JAXDL_HOST_MEMORY other than keep/release is a UserError."""
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
      ok = (libc.mallopt(_M_ARENA_MAX, 1), libc.mallopt(_M_MMAP_MAX, 0), libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
      _policy = 'keep' if all(ok) else 'unsupported'
  return _policy


def host_memory_policy() -> str:
  """What `keep_host_memory` did in this process ('not set' when it was not called)."""
  return _policy or 'not set'
