"""`jaxdl reproduce`: run the experiments that carry the requested claims and report expected vs measured.

An experiment file declares the claims it reproduces:

    CLAIMS = {'L5': Claim('L5', 'online, minibatch and batch GD converge to the closed form', '000')}
    def reproduce(ctx: Context) -> list[ClaimResult]: ...

`reproduce(ctx)` measures every claim of its experiment (sharing the training runs between them), writing runs
under `ctx.workdir(...)` and figures with `ctx.figure(...)`. The command writes `DIR/claims.json` and
`DIR/report.md` (table + figures) and prints the table. A failed claim is a result, not an error.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable

from jaxdl.errors import UserError

STATUSES = ('pass', 'fail', 'needs-data', 'on-paper')


@dataclasses.dataclass(frozen=True)
class Claim:
  """A checkable statement of the course (ID from shared/CLAIMS.md)."""
  id: str
  expected: str                  # the value or statement, as the notes give it
  source: str = ''               # where: seed file / paper / lab
  criterion: str = ''            # how it is judged (tolerance, comparison)
  needs: str = ''                # stock dataset it needs, if any ('' = built-in data)
  own: bool = False              # a jaxdl check with its own ID (not in shared/CLAIMS.md), e.g. TL1, V1


@dataclasses.dataclass
class ClaimResult:
  id: str
  measured: str
  status: str                    # pass | fail | needs-data | on-paper
  note: str = ''
  figures: list[str] = dataclasses.field(default_factory=list)

  def __post_init__(self):
    if self.status not in STATUSES:
      raise ValueError(f'status {self.status!r} not in {STATUSES}')


def vec(a, digits: int = 4) -> str:
  """A short, readable vector: [1.9907, 3.0085]."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return '[' + ', '.join(f'{float(v):.{digits}g}' if abs(float(v)) >= 1e4 or (v and abs(float(v)) < 1e-3)
                         else f'{round(float(v), digits)}' for v in np.ravel(np.asarray(a))) + ']'


def verdict(ok: bool) -> str:
  return 'pass' if ok else 'fail'


class Context:
  """What an experiment's `reproduce` gets: where to write runs and figures, and a logger."""

  def __init__(self, out: pathlib.Path, experiment: str, quiet: bool = False):
    self.out = out
    self.experiment = experiment
    self.quiet = quiet
    (out / 'figures').mkdir(parents=True, exist_ok=True)

  def workdir(self, name: str = '') -> pathlib.Path:
    p = self.out / 'runs' / (self.experiment + (f'_{name}' if name else ''))
    return p

  def figure(self, name: str) -> pathlib.Path:
    return self.out / 'figures' / f'{self.experiment}_{name}.png'

  def log(self, msg: str) -> None:
    if not self.quiet:
      print(f'[{self.experiment}] {msg}', file=sys.stderr, flush=True)

  def train(self, config, name: str = '', return_state: bool = False):
    """Runs the one trainer on `config` in a fresh workdir; returns its summary (and final state)."""
    import shutil  # pylint: disable=g-import-not-at-top

    from jaxdl.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
    from jaxdl.train.preemption import Preempted  # pylint: disable=g-import-not-at-top
    wd = self.workdir(name)
    if wd.exists():
      shutil.rmtree(wd)
    out = train_and_evaluate(config, wd, quiet=True, return_state=return_state)
    if (out[0] if return_state else out)['status'] == 'preempted':   # never report on a half-trained model
      raise Preempted(f'{self.experiment}: run {wd.name} stopped by SIGTERM')
    return out


def experiments_with_claims() -> dict[str, Any]:
  """experiment name -> module, for every experiment that declares CLAIMS."""
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  return {name: m for name, m in config_lib.list_experiments() if getattr(m, 'CLAIMS', None)}


def claim_index() -> dict[str, tuple[str, Claim]]:
  out = {}
  for name, module in experiments_with_claims().items():
    for cid, claim in _claims_of(module).items():
      out[cid] = (name, claim)
  return out


def _claims_of(module) -> dict[str, Claim]:
  claims = getattr(module, 'CLAIMS', {})
  if isinstance(claims, dict):
    return claims
  return {c: Claim(c, '') for c in claims} if claims and isinstance(claims[0], str) else {c.id: c for c in claims}


def _needs_data(claim: Claim) -> str | None:
  if not claim.needs:
    return None
  from jaxdl.data import stock  # pylint: disable=g-import-not-at-top
  prepared = getattr(stock, 'is_prepared', None)
  if prepared is not None and prepared(claim.needs):
    return None
  cmd = getattr(stock, 'prepare_command', lambda n: f'prepare {n} with tfds')(claim.needs)
  return f'needs the {claim.needs} dataset: {cmd}'


def run(experiments: list[str], claim_ids: list[str] | None, out: pathlib.Path, quiet: bool = False,
        progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
  index = claim_index()
  modules = experiments_with_claims()
  wanted = set(claim_ids or [])
  for cid in wanted:
    if cid not in index:
      raise UserError(f'unknown claim ID {cid!r}', 'IDs declared by the experiments: ' + ','.join(sorted(index)),
                      'see ../shared/CLAIMS.md and `jaxdl list`')
  for name in experiments:
    if name not in modules:
      raise UserError(f'unknown experiment {name!r} (or it declares no claims)', 'one of: ' + ', '.join(sorted(modules)),
                      'see `jaxdl list`')
  todo = sorted(set(experiments) | {index[c][0] for c in wanted})
  out.mkdir(parents=True, exist_ok=True)
  rows = []
  for i, name in enumerate(todo):
    module = modules[name]
    claims = _claims_of(module)
    ids = [c for c in claims if not wanted or c in wanted or name in experiments]
    (progress or (lambda s: None))(f'[{i + 1}/{len(todo)}] {name}: {", ".join(ids)}')
    ctx = Context(out, name, quiet)
    t0 = time.time()
    missing = {cid: _needs_data(claims[cid]) for cid in ids}
    results = {}
    if not all(missing.values()):
      results = {r.id: r for r in module.reproduce(ctx)}
    for cid in ids:
      claim = claims[cid]
      if missing[cid]:
        r = ClaimResult(cid, '-', 'needs-data', missing[cid])
      else:
        r = results.get(cid) or ClaimResult(cid, '-', 'fail', f'{name}.reproduce() did not report {cid}')
      rows.append({'id': cid, 'experiment': name, 'source': claim.source, 'expected': claim.expected,
                   'criterion': claim.criterion, 'measured': r.measured, 'status': r.status, 'note': r.note,
                   'figures': [os.path.relpath(f, out) for f in r.figures], 'seconds': round(time.time() - t0, 1)})
  rows.sort(key=lambda r: (r['id'][0], int(''.join(ch for ch in r['id'][1:] if ch.isdigit()) or 0)))
  (out / 'claims.json').write_text(json.dumps(rows, indent=2) + '\n', encoding='utf-8')
  (out / 'report.md').write_text(report_markdown(rows), encoding='utf-8')
  return rows


def _cell(s: str) -> str:
  return str(s).replace('|', '\\|').replace('\n', ' ')


def report_markdown(rows: list[dict[str, Any]]) -> str:
  counts = {s: sum(r['status'] == s for r in rows) for s in STATUSES}
  lines = ['# jaxdl reproduction report', '',
           ', '.join(f'{n} {s}' for s, n in counts.items() if n) + f' of {len(rows)} claims.', '',
           '| claim | experiment | source | expected | measured | verdict |', '|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['id']} | {r['experiment']} | {_cell(r['source'])} | {_cell(r['expected'])} | "
                 f"{_cell(r['measured'])} | **{r['status']}** |")
  lines.append('')
  for r in rows:
    if r['note'] or r['figures'] or r['criterion']:
      lines += [f"## {r['id']} ({r['experiment']})", '']
      if r['criterion']:
        lines += [f"Criterion: {r['criterion']}", '']
      if r['note']:
        lines += [r['note'], '']
      lines += [f'![{r["id"]}]({f})' for f in r['figures']] + ([''] if r['figures'] else [])
  return '\n'.join(lines) + '\n'


def table(rows: list[dict[str, Any]]) -> str:
  w = {'id': 5, 'experiment': max([10] + [len(r['experiment']) for r in rows])}
  out = [f"{'claim':<{w['id']}} {'experiment':<{w['experiment']}} {'verdict':<10} measured"]
  for r in rows:
    out.append(f"{r['id']:<{w['id']}} {r['experiment']:<{w['experiment']}} {r['status']:<10} {r['measured']}")
  return '\n'.join(out)
