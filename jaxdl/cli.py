"""`jaxdl` command line: list, train, eval, bench.

User errors (config, arguments, data, checkpoints) print ONE line on stderr and exit with code 2.
Config overrides follow absl's config-flags convention: `--config=experiments/x.py --config.optimizer.learning_rate=0.1`.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys

from jaxdl.errors import UserError

USAGE = """usage:
  jaxdl list [--models|--datasets|--optimizers|--losses] [--json]   experiments (claims, datasets), or a registry
  jaxdl train --config=FILE --workdir=DIR [--config.KEY=VALUE ...] [--quiet]
  jaxdl eval  --config=FILE --workdir=DIR [--checkpoint=latest|best|STEP|STEP,STEP] [--ensemble=DIR,DIR] [--split=NAME]
  jaxdl summary MODEL_NAME [--input-shape=8,8,1] [--model.KEY=VALUE ...] [--json]
  jaxdl summary --config=FILE [--config.KEY=VALUE ...] [--json]
  jaxdl reproduce [EXPERIMENT ...] [--claims=ID,ID,...] [--all] --out=DIR
  jaxdl bench [WORKLOAD ...] [--repeats=N] [--steps=N] [--no-torch]"""


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
  base = config_lib.get_config(paths[-1])  # clear errors for a missing or broken file
  overrides = [a[len('--config.'):].split('=', 1) for a in argv if a.startswith('--config.')]
  names = {k[:-len('.name')] if k.endswith('.name') else k: v for k, v in (o for o in overrides if len(o) == 2)
           if k.endswith('.name') or k == 'optimizer.schedule'}
  for o in overrides:
    path = o[0].split('.')
    node = base
    for i, key in enumerate(path):
      keys = list(node.keys()) if hasattr(node, 'keys') else []
      if key not in keys:
        documented = config_lib.documented_keys(base, path[:i], names) if hasattr(node, 'unlocked') else {}
        if key not in documented:
          where = 'config' + ''.join('.' + k for k in path[:i])
          known = sorted(set(keys) | set(documented))
          close = difflib.get_close_matches(key, known, n=1)
          raise UserError(f'unknown config key --config.{".".join(path)}',
                          f'one of the keys of {where}: ' + (', '.join(known) or '(none)'),
                          f"did you mean '{close[0]}'?" if close else 'fix the spelling')
        with node.unlocked():   # a documented key this file left out: add it with its default, then override
          node[key] = documented[key]
      node = node[key]
  fv = flags.FlagValues()
  # The file's config (with the documented keys the overrides need) takes the overrides, type-checked.
  args = ['jaxdl'] + [a for a in argv if not a.startswith('--config=')]
  config_flags.DEFINE_config_dict('config', base, flag_values=fv, lock_config=True, sys_argv=args)
  try:
    fv(args)
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
  for kind in ('models', 'datasets', 'optimizers', 'losses'):
    p.add_argument(f'--{kind}', action='store_true', help=f'list the registered {kind}')
  args = p.parse_args(argv)
  from jaxdl import registry  # pylint: disable=g-import-not-at-top
  for kind, reg in (('models', registry.MODELS), ('datasets', registry.DATASETS),
                    ('optimizers', registry.OPTIMIZERS), ('losses', registry.LOSSES)):
    if getattr(args, kind):
      entries = [{'name': e.name, **{k: str(v) for k, v in e.meta.items()}} for e in reg]
      if args.json:
        print(json.dumps(entries, indent=2))
      else:
        for e in entries:
          print(f"{e['name']:<28} {e.get('description', '')}")
      return 0
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
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  preemption.arm()  # from the first instant: a SIGTERM during start-up is a clean stop, not a silent death
  cfg_args, rest = _split_config_args(argv)
  p = _ArgParser(prog='jaxdl train')
  p.add_argument('--workdir', required=True)
  p.add_argument('--quiet', action='store_true')
  args = p.parse_args(rest)
  config = load_config(cfg_args)
  from jaxdl.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  summary = train_and_evaluate(config, args.workdir, quiet=args.quiet)
  if summary['status'] == 'preempted':
    if summary['step'] == 0 or summary['step'] is None:
      print('jaxdl: stopped by SIGTERM before the first step: nothing to save; run the same command to start',
            file=sys.stderr)
    else:
      print(f'jaxdl: stopped by SIGTERM at step {summary["step"]}; checkpoint saved; run the same command to resume',
            file=sys.stderr)
    return preemption.EXIT_PREEMPTED
  if not args.quiet:
    print(json.dumps({k: summary[k] for k in ('step', 'status', 'train', 'eval', 'params_fingerprint',
                                               'wall_time_s')}, indent=2))
  return 0


def cmd_eval(argv):
  cfg_args, rest = _split_config_args(argv)
  p = _ArgParser(prog='jaxdl eval')
  p.add_argument('--workdir', required=True)
  p.add_argument('--checkpoint', default='latest', help='latest | best | STEP | STEP,STEP,... (snapshot ensemble)')
  p.add_argument('--ensemble', default='', help='more workdirs, comma-separated: a prediction ensemble')
  p.add_argument('--split', default=None)
  args = p.parse_args(rest)
  config = load_config(cfg_args)
  if ',' in args.checkpoint or args.ensemble:
    from jaxdl.inspect.ensemble import evaluate_ensemble  # pylint: disable=g-import-not-at-top
    members = [(args.workdir, c) for c in args.checkpoint.split(',')]
    members += [(w, 'latest') for w in args.ensemble.split(',') if w]
    print(json.dumps(evaluate_ensemble(config, members, args.split), indent=2))
    return 0
  from jaxdl.train.evaluation import evaluate_checkpoint  # pylint: disable=g-import-not-at-top
  print(json.dumps(evaluate_checkpoint(config, args.workdir, args.checkpoint, args.split), indent=2))
  return 0


def cmd_summary(argv):
  import ast  # pylint: disable=g-import-not-at-top

  import ml_collections  # pylint: disable=g-import-not-at-top

  from jaxdl.inspect import summary as summary_lib  # pylint: disable=g-import-not-at-top
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  from jaxdl.registry import MODELS  # pylint: disable=g-import-not-at-top
  cfg_args, rest = _split_config_args(argv)
  model_over = [a for a in rest if a.startswith('--model.')]
  rest = [a for a in rest if not a.startswith('--model.')]
  p = _ArgParser(prog='jaxdl summary')
  p.add_argument('model', nargs='?')
  p.add_argument('--input-shape', default=None, help='one example, e.g. 8,8,1')
  p.add_argument('--json', action='store_true')
  p.add_argument('--layers', action='store_true',
                 help='also every layer\'s output shape, kernel/stride and receptive field (plain CNN chains)')
  p.add_argument('--flops', action='store_true', help='also the multiply-adds of one forward pass (He et al.\'s FLOPs)')
  args = p.parse_args(rest)
  if cfg_args:
    config = load_config(cfg_args)
    from jaxdl import data as data_lib  # pylint: disable=g-import-not-at-top
    info = data_lib.get_dataset(config.data).info
    model = build_model(config.model, info)
    shape, title = info.input_shape, f'{config.model.name} on {config.data.name}'
  elif args.model:
    overrides = {}
    for a in model_over:
      key, _, value = a[len('--model.'):].partition('=')
      try:
        overrides[key] = ast.literal_eval(value)
      except (ValueError, SyntaxError):
        overrides[key] = value
    model = build_model(ml_collections.ConfigDict({'name': args.model, **overrides}))
    meta = MODELS.meta(args.model)
    shape, title = meta.get('input_shape', meta.get('example_input_shape')), args.model
  else:
    raise UserError('jaxdl summary needs a model', 'a registered model name or --config=FILE', 'see `jaxdl list --models`')
  if args.input_shape:
    try:
      shape = tuple(int(s) for s in args.input_shape.split(','))
    except ValueError:
      shape = ()
    if not shape or any(d < 1 for d in shape):
      raise UserError(f'--input-shape={args.input_shape!r} is not a shape', 'positive integers separated by commas, '
                      'e.g. 32,32,3', 'fix --input-shape')
  table = summary_lib.parameter_table(model, tuple(shape))
  table['model'] = title
  table['input_shape'] = list(shape)
  text = [summary_lib.format_table(table, f'{title}, input {tuple(shape)}')]
  if args.flops:
    from jaxdl.inspect.flops import forward_flops  # pylint: disable=g-import-not-at-top
    table['flops'] = int(forward_flops(model, tuple(shape)))
    text.append(f"forward multiply-adds (FLOPs as in He et al.): {table['flops']:,} ({table['flops'] / 1e9:.3g}×10⁹)")
  if args.layers:
    table['layer_outputs'] = summary_lib.layer_outputs(model, tuple(shape))
    text.append(summary_lib.format_layer_outputs(table['layer_outputs']))
  print(json.dumps(table, indent=2) if args.json else '\n\n'.join(text))
  return 0


def cmd_reproduce(argv):
  import pathlib  # pylint: disable=g-import-not-at-top

  from jaxdl import reproduce  # pylint: disable=g-import-not-at-top
  p = _ArgParser(prog='jaxdl reproduce')
  p.add_argument('experiments', nargs='*')
  p.add_argument('--claims', default='')
  p.add_argument('--all', action='store_true')
  p.add_argument('--out', required=True)
  p.add_argument('--quiet', action='store_true')
  args = p.parse_args(argv)
  ids = [c.strip() for c in args.claims.split(',') if c.strip()]
  experiments = list(args.experiments)
  if args.all:
    experiments = sorted(reproduce.experiments_with_claims())
  if not ids and not experiments:
    raise UserError('nothing to reproduce', 'EXPERIMENT names, --claims=ID,... or --all', 'see `jaxdl list`')
  say = lambda s: print(s, file=sys.stderr, flush=True)
  rows = reproduce.run(experiments, ids, pathlib.Path(args.out), quiet=args.quiet, progress=say)
  print(reproduce.table(rows))
  print(f'wrote {pathlib.Path(args.out) / "claims.json"} and {pathlib.Path(args.out) / "report.md"}', file=sys.stderr)
  return 0


def cmd_bench(argv):
  from jaxdl import bench  # pylint: disable=g-import-not-at-top
  return bench.main(argv)


COMMANDS = {'list': cmd_list, 'train': cmd_train, 'eval': cmd_eval, 'summary': cmd_summary,
            'reproduce': cmd_reproduce, 'bench': cmd_bench}


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if not argv:
    print('jaxdl: error: no command given; expected one of: ' + ', '.join(COMMANDS) + '; see `jaxdl --help`',
          file=sys.stderr)
    return 2
  if argv[0] in ('-h', '--help', 'help'):
    print(USAGE)
    return 0
  cmd = COMMANDS.get(argv[0])
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.ERROR)   # library chatter (orbax, tfds) off; our own lines stay
  try:
    if cmd is None:
      raise UserError(f'unknown command {argv[0]!r}', 'one of: ' + ', '.join(COMMANDS), 'see `jaxdl --help`')
    return cmd(argv[1:])
  except UserError as e:
    if os.environ.get('JAXDL_DEBUG'):
      raise
    print(f'jaxdl: error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print('jaxdl: interrupted', file=sys.stderr)
    return 130


def entry() -> None:
  sys.exit(main())
