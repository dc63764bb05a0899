"""`jaxdl` command line: list, train, eval, bench.

User errors (config, arguments, data, checkpoints) print ONE line on stderr and exit with code 2.
Config overrides follow absl's config-flags convention: `--config=experiments/x.py --config.optimizer.learning_rate=0.1`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from jaxdl.errors import UserError

USAGE = """usage:
  jaxdl list                                          experiments, with claim IDs and datasets
  jaxdl train --config=FILE --workdir=DIR [--config.KEY=VALUE ...] [--quiet]
  jaxdl eval  --config=FILE --workdir=DIR [--checkpoint=latest|best|STEP] [--split=NAME]
  jaxdl bench [mlp] [--repeats=N] [--steps=N] [--no-torch]"""


class _ArgParser(argparse.ArgumentParser):
  def error(self, message):
    raise UserError(f'bad arguments for `{self.prog}`: {message}', 'see `jaxdl --help`', 'fix the command line')


def load_config(argv: list[str]):
  """Parses --config=FILE and --config.KEY=VALUE overrides with ml_collections' config flags."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  paths = [a.split('=', 1)[1] for a in argv if a.startswith('--config=')]
  if not paths:
    raise UserError('no --config given', '--config=experiments/<name>.py', 'see `jaxdl list` for the experiments')
  config_lib.load_module(paths[-1])  # clear error for a missing or broken file
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file('config', default=None, flag_values=fv, lock_config=True)
  try:
    fv(['jaxdl'] + argv)
    config = fv.config
  except flags.Error as e:
    msg = str(e).splitlines()[0]
    raise UserError(f'bad config override: {msg}', 'an existing key with a value of its type '
                    '(e.g. --config.optimizer.learning_rate=0.1)', 'see the experiment file for its keys') from e
  except Exception as e:  # noqa: BLE001 — config_flags raises plain errors for bad values
    raise UserError(f'bad config: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}',
                    'a valid config file and overrides', 'fix the config') from e
  return config


def _split_config_args(argv):
  cfg = [a for a in argv if a.startswith('--config')]
  rest = [a for a in argv if not a.startswith('--config')]
  return cfg, rest


def cmd_list(argv):
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  p = _ArgParser(prog='jaxdl list')
  p.add_argument('--json', action='store_true')
  args = p.parse_args(argv)
  rows = []
  for name, module in config_lib.list_experiments():
    cfg = module.get_config()
    doc = (module.__doc__ or '').strip().splitlines()
    rows.append({'experiment': name, 'claims': list(getattr(module, 'CLAIMS', [])),
                 'dataset': cfg.data.name, 'model': cfg.model.name, 'summary': doc[0] if doc else ''})
  if args.json:
    print(json.dumps(rows, indent=2))
    return 0
  w = max([len(r['experiment']) for r in rows] + [10])
  print(f'{"experiment":<{w}}  {"claims":<14}  {"dataset":<16}  summary')
  for r in rows:
    claims = ','.join(c if isinstance(c, str) else c.id for c in r['claims']) or '-'
    print(f'{r["experiment"]:<{w}}  {claims:<14}  {r["dataset"]:<16}  {r["summary"]}')
  return 0


def cmd_train(argv):
  cfg_args, rest = _split_config_args(argv)
  p = _ArgParser(prog='jaxdl train')
  p.add_argument('--workdir', required=True)
  p.add_argument('--quiet', action='store_true')
  args = p.parse_args(rest)
  config = load_config(cfg_args)
  from jaxdl.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  summary = train_and_evaluate(config, args.workdir, quiet=args.quiet)
  if summary['status'] == 'preempted':
    print(f'stopped by SIGTERM at step {summary["step"]}; checkpoint saved; run the same command to resume',
          file=sys.stderr)
  elif not args.quiet:
    print(json.dumps({k: summary[k] for k in ('step', 'status', 'train', 'eval', 'params_fingerprint',
                                               'wall_time_s')}, indent=2))
  return 0


def cmd_eval(argv):
  cfg_args, rest = _split_config_args(argv)
  p = _ArgParser(prog='jaxdl eval')
  p.add_argument('--workdir', required=True)
  p.add_argument('--checkpoint', default='latest')
  p.add_argument('--split', default=None)
  args = p.parse_args(rest)
  config = load_config(cfg_args)
  from jaxdl.train.loop import evaluate_checkpoint  # pylint: disable=g-import-not-at-top
  print(json.dumps(evaluate_checkpoint(config, args.workdir, args.checkpoint, args.split), indent=2))
  return 0


def cmd_bench(argv):
  from jaxdl import bench  # pylint: disable=g-import-not-at-top
  return bench.main(argv)


COMMANDS = {'list': cmd_list, 'train': cmd_train, 'eval': cmd_eval, 'bench': cmd_bench}


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] in ('-h', '--help', 'help'):
    print(USAGE)
    return 0 if argv else 2
  cmd = COMMANDS.get(argv[0])
  try:
    if cmd is None:
      raise UserError(f'unknown command {argv[0]!r}', 'one of: ' + ', '.join(COMMANDS), 'see `jaxdl --help`')
    return cmd(argv[1:])
  except UserError as e:
    print(f'jaxdl: error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print('jaxdl: interrupted', file=sys.stderr)
    return 130


def entry() -> None:
  sys.exit(main())
