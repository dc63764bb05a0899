"""A run's directory (`--workdir`): one config per workdir, writable before anything runs, JSON written atomically.

`check_writable` runs before any work: a workdir that is a file, lies below a file, cannot be created, or cannot be
written (a read-only run, `chmod 555 checkpoints`) is one clear error, not a traceback after minutes. It probes by
creating a file, so it holds for root too. `check_config` compares a resumed run's config with the one it started
with; `config.json` is (re)written only after a checkpoint restored, so a failed start changes nothing.
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

from jaxdl.errors import UserError

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {'train.num_steps', 'train.log_every', 'train.eval_every', 'train.checkpoint_every',
                     'train.keep_checkpoints', 'train.max_steps_in_flight', 'train.early_stopping_patience',
                     'train.profile_steps'}


def flat(d: dict, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def write_json_atomic(path: pathlib.Path, obj: Any) -> None:
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + '\n', encoding='utf-8')
  os.replace(tmp, path)


def _probe(directory: pathlib.Path) -> OSError | None:
  """Can we create (and remove) a file in `directory`? None if yes, else the error."""
  try:
    fd, name = tempfile.mkstemp(prefix='.jaxdl-probe-', dir=directory)
    os.close(fd)
    os.unlink(name)
    return None
  except OSError as e:
    return e


def check_writable(workdir: pathlib.Path) -> pathlib.Path | None:
  """Creates `workdir` if needed and checks that it, its checkpoints/ and its files can be written. Returns the
  outermost folder it created (None if the workdir existed), for `remove_if_empty` after a failed start."""
  for parent in [workdir, *workdir.parents]:
    if parent.exists() and not parent.is_dir():
      where = 'is a file' if parent == workdir else f'lies below a file ({str(parent)!r})'
      raise UserError(f'--workdir {str(workdir)!r} {where}', 'a directory path', 'choose another --workdir')
  missing = [p for p in [workdir, *workdir.parents] if not p.exists()]
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f'--workdir {str(workdir)!r} cannot be created ({e.strerror or e})',
                    'a directory you may write to', 'choose another --workdir or fix the permissions') from e
  for directory in (workdir, workdir / 'checkpoints'):
    if directory.exists():
      if not directory.is_dir():
        raise UserError(f'{str(directory)!r} is not a directory', 'the checkpoints/ folder jaxdl writes',
                        'move that file away or choose another --workdir')
      err = _probe(directory)
      if err is not None:
        resumed = 'a read-only run' if (workdir / 'config.json').exists() else 'not writable'
        raise UserError(f'--workdir {str(workdir)!r} is {resumed}: cannot write in {str(directory)!r} '
                        f'({err.strerror or err})', 'a writable workdir',
                        'fix the permissions (chmod u+w) or copy the run to a writable --workdir')
  for name in ('metrics.jsonl', 'config.json', 'summary.json'):
    f = workdir / name
    if f.exists() and not os.access(f, os.W_OK):
      raise UserError(f'{str(f)!r} is read-only', 'a writable workdir', 'fix the permissions (chmod u+w)')
  return missing[-1] if missing else None


def remove_if_empty(created: pathlib.Path | None) -> None:
  """Removes the folders a failed start created (`check_writable`'s result) if they hold no file: a run that
  stopped before writing anything leaves the filesystem as it found it."""
  if created is None or not created.is_dir() or any(p.is_file() for p in created.rglob('*')):
    return
  for d in sorted([created, *created.rglob('*')], key=lambda p: len(p.parts), reverse=True):
    try:
      d.rmdir()
    except OSError:
      return


def read_config(workdir: pathlib.Path) -> dict | None:
  path = workdir / 'config.json'
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text(encoding='utf-8'))
  except (json.JSONDecodeError, OSError, UnicodeDecodeError) as e:
    raise UserError(f'{path} is unreadable ({e})', 'the config.json jaxdl wrote',
                    'restore it from a backup, or use a fresh --workdir') from e


def check_config(workdir: pathlib.Path, config) -> None:
  """A workdir belongs to one config: refuse to resume a run with a different one."""
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  old = read_config(workdir)
  if old is None:
    return
  old, new = flat(old), flat(json.loads(config_lib.to_json(config)))
  for k, (_, default, _) in config_lib.TRAIN_FIELDS.items():  # a field added since that run: its default then
    old.setdefault(f'train.{k}', json.loads(json.dumps(default)))
  diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
  if diff:
    shown = ', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in diff[:3])
    raise UserError(f'--workdir {str(workdir)!r} holds a run with a different config ({shown})',
                    'the same config to resume', 'use a new --workdir for a new config')
