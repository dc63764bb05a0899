"""Where metrics go: metrics.jsonl, TensorBoard event files, and the terminal (progress bar or log lines).

Only process 0 writes. Every record is `{"step", "split": "train"|"eval", <metrics>}`.
"""
from __future__ import annotations

import json
import math
import pathlib
import sys
from typing import Any

import jax


def _fmt(v: Any) -> str:
  return f'{v:.4g}' if isinstance(v, float) else str(v)


class MetricWriter:

  def __init__(self, workdir: pathlib.Path, num_steps: int, start_step: int = 0, quiet: bool = False):
    self.enabled = jax.process_index() == 0
    self.path = workdir / 'metrics.jsonl'
    self._tb = None
    self._bar = None
    self.quiet = quiet
    if not self.enabled:
      return
    self._truncate_after(start_step)
    self._file = open(self.path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(str(workdir / 'tensorboard'), purge_step=start_step or None)
    if sys.stderr.isatty() and not quiet:
      import tqdm  # pylint: disable=g-import-not-at-top
      self._bar = tqdm.tqdm(total=num_steps, initial=start_step, dynamic_ncols=True, unit='step')

  def _truncate_after(self, step: int) -> None:
    """On resume, drop records past the checkpoint: the resumed run writes them again. Lines that are not JSON
    records (a line torn by a crash, or edited by hand) move to metrics.jsonl.unreadable, with a warning."""
    if not self.path.exists():
      return
    lines = self.path.read_text(encoding='utf-8', errors='replace').splitlines()
    keep, bad = [], []
    for line in lines:
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        record_step = int(record.get('step', 0))
      except (ValueError, TypeError, AttributeError):
        bad.append(line)
        continue
      if record_step <= step:
        keep.append(line)
    if bad:
      aside = self.path.with_name(self.path.name + '.unreadable')
      with open(aside, 'a', encoding='utf-8') as f:
        f.write(''.join(l + '\n' for l in bad))
      print(f'jaxdl: warning: {self.path} had {len(bad)} unreadable line(s); moved to {aside}', file=sys.stderr,
            flush=True)
    if len(keep) != len(lines):
      tmp = self.path.with_suffix('.tmp')
      tmp.write_text(''.join(l + '\n' for l in keep), encoding='utf-8')
      tmp.replace(self.path)

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), 'split': split}
    record.update({k: (float(v) if not isinstance(v, (int, str)) else v) for k, v in metrics.items()})
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()
    for k, v in record.items():
      if k not in ('step', 'split') and isinstance(v, (int, float)) and math.isfinite(v):
        self._tb.add_scalar(f'{split}/{k}', v, step)
    self._tb.flush()
    if self.quiet:
      return
    shown = ' '.join(f'{k}={_fmt(v)}' for k, v in record.items() if k not in ('step', 'split'))
    if self._bar is not None:
      self._bar.write(f'[{split} {step}] {shown}')
    else:
      print(f'{split} step {step}: {shown}', file=sys.stderr, flush=True)

  def progress(self, step: int) -> None:
    if self._bar is not None:
      self._bar.n = step
      self._bar.refresh()

  def close(self) -> None:
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.close()
    self._tb.close()
    self._file.close()
