"""`jaxdl` command line: list, train, eval, bench, sample (a char-RNN run).

User errors (config, arguments, data, checkpoints) print ONE line on stderr and exit with code 2.
Config overrides follow absl's config-flags convention: `--config=experiments/x.py --config.optimizer.learning_rate=0.1`.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys

from jaxdl import runtime
from jaxdl.errors import UserError

USAGE = """usage:
  jaxdl list [--models|--datasets|--optimizers|--losses] [--json]   experiments (claims, datasets), or a registry
  jaxdl train --config=FILE --workdir=DIR [--config.KEY=VALUE ...] [--quiet]
  jaxdl eval  --config=FILE --workdir=DIR [--checkpoint=latest|best|STEP|STEP,STEP] [--ensemble=DIR,DIR] [--split=NAME]
  jaxdl summary MODEL_NAME [--input-shape=8,8,1] [--model.KEY=VALUE ...] [--json]
  jaxdl summary --config=FILE [--config.KEY=VALUE ...] [--json]
  jaxdl reproduce [EXPERIMENT ...] [--claims=ID,ID,...] [--all] --out=DIR
  jaxdl bench [WORKLOAD ...] [--repeats=N] [--steps=N] [--no-torch]
  jaxdl sample --workdir=RUN [--prime=TEXT] [--length=200] [--temperature=0.8] [--top-k=K] [--seed=S]
               [--checkpoint=latest|STEP]                     stream characters from a char-RNN run
  jaxdl transcribe --workdir=RUN FILE.wav ... [--checkpoint=latest|best|STEP] [--beam-width=1] [--lm=FILE.arpa]
               [--lm-unit=word|char] [--alpha=0.5] [--beta=1.0]      text of audio files from a speech run"""


class _ArgParser(argparse.ArgumentParser):
  def error(self, message):
    raise UserError(f'bad arguments for `{self.prog}`: {message}', 'see `jaxdl --help`', 'fix the command line')


def _drop_foreign_keys(base, names: dict, overridden: set) -> None:
  """A `--config.<section>.name=` override that switches the model (data, loss, optimiser) drops the file's keys
  of that section the new one does not take — they were the file's settings for the one it replaced (e.g.
  show_attend_tell's attention_features when the captioning file runs show_and_tell); keys the command line sets
  stay, so a wrong one is still reported."""
  from jaxdl import config as config_lib  # pylint: disable=g-import-not-at-top
  for sec, name in names.items():
    if sec not in config_lib.SECTIONS or not hasattr(base.get(sec), 'keys') or name == base[sec].get('name'):
      continue
    accepted = config_lib.documented_keys(base, [sec], names)
    if not accepted:                   # an unknown name: the builder's own error says so
      continue
    with base[sec].unlocked():
      for key in [k for k in base[sec].keys() if k != 'name' and k not in accepted]:
        if f'{sec}.{key}' not in overridden and not any(o.startswith(f'{sec}.{key}.') for o in overridden):
          del base[sec][key]


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
  _drop_foreign_keys(base, names, {o[0] for o in overrides})
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


def _check_workdir(workdir: str) -> None:
  if not workdir.strip():
    raise UserError('--workdir is empty', 'the directory of the run, e.g. --workdir=runs/mlp_digits',
                    'give --workdir a path')


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
  runtime.configure_jax()
  cfg_args, rest = _split_config_args(argv)
  p = _ArgParser(prog='jaxdl train')
  p.add_argument('--workdir', required=True)
  p.add_argument('--quiet', action='store_true')
  args = p.parse_args(rest)
  _check_workdir(args.workdir)
  config = load_config(cfg_args)
  from jaxdl.train import sharding  # pylint: disable=g-import-not-at-top
  from jaxdl.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  try:
    summary = train_and_evaluate(config, args.workdir, quiet=args.quiet)
  except Exception as e:  # noqa: BLE001 — a peer process died under a collective: one line naming it
    if sharding.is_peer_failure(e):
      raise sharding.peer_failure(e) from e
    raise
  if summary['status'] == 'preempted':
    if summary['step'] == 0 or summary['step'] is None:
      print('jaxdl: stopped by SIGTERM before the first step: nothing to save; run the same command to start',
            file=sys.stderr)
    else:
      print(f'jaxdl: stopped by SIGTERM at step {summary["step"]}; checkpoint saved; run the same command to resume',
            file=sys.stderr)
    return preemption.EXIT_PREEMPTED
  import jax  # pylint: disable=g-import-not-at-top
  if not args.quiet and jax.process_index() == 0:   # one summary per job, from process 0
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
  _check_workdir(args.workdir)
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
  from jaxdl.train import preemption  # pylint: disable=g-import-not-at-top
  try:
    with preemption.Armed():
      rows = reproduce.run(experiments, ids, pathlib.Path(args.out), quiet=args.quiet, progress=say)
  except preemption.Preempted as e:
    say(f'jaxdl reproduce: stopped ({e}); no report was written for it. Rerun the same command to start again.')
    return preemption.EXIT_PREEMPTED
  print(reproduce.table(rows))
  print(f'wrote {pathlib.Path(args.out) / "claims.json"} and {pathlib.Path(args.out) / "report.md"}', file=sys.stderr)
  return 0


def cmd_sample(argv):
  """Streams characters sampled from a trained char-RNN run (jaxdl.text.generate) to stdout as they come."""
  p = _ArgParser(prog='jaxdl sample')
  p.add_argument('--workdir', required=True)
  p.add_argument('--prime', default='\n')
  p.add_argument('--length', type=int, default=200)
  p.add_argument('--temperature', type=float, default=0.8)
  p.add_argument('--top-k', type=int, default=None)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--checkpoint', default='latest')
  args = p.parse_args(argv)
  from jaxdl.text import generate, sampling  # pylint: disable=g-import-not-at-top
  if args.length < 1:
    raise UserError(f'--length={args.length}', 'a number of characters >= 1', 'fix --length')
  sampling.check_sampling(args.temperature, args.top_k)
  model, variables, vocab = generate.load_char_run(args.workdir, args.checkpoint)
  generate.check_prime(args.prime, vocab)          # before anything is printed
  chars = generate.sample_chars(model, variables, vocab, args.prime, length=args.length,
                                temperature=args.temperature, top_k=args.top_k, seed=args.seed)
  sys.stdout.write(args.prime)
  for ch in chars:
    sys.stdout.write(ch)
    sys.stdout.flush()
  sys.stdout.write('\n')
  return 0


def cmd_transcribe(argv):
  """Prints the transcript of each audio file (jaxdl.speech.transcribe): the text alone for one file, else
  FILE<TAB>TEXT per line."""
  p = _ArgParser(prog='jaxdl transcribe')
  p.add_argument('files', nargs='*')
  p.add_argument('--workdir', required=True)
  p.add_argument('--checkpoint', default='latest')
  p.add_argument('--beam-width', type=int, default=1)
  p.add_argument('--lm', default='')
  p.add_argument('--lm-unit', choices=('word', 'char'), default='word')
  p.add_argument('--alpha', type=float, default=0.5)
  p.add_argument('--beta', type=float, default=1.0)
  args = p.parse_args(argv)
  _check_workdir(args.workdir)
  from jaxdl.speech.transcribe import transcribe_files  # pylint: disable=g-import-not-at-top
  out = transcribe_files(args.workdir, args.files, checkpoint=args.checkpoint, beam_width=args.beam_width,
                         lm_path=args.lm, lm_unit=args.lm_unit, alpha=args.alpha, beta=args.beta)
  for f, text in out:
    print(text if len(out) == 1 else f'{f}\t{text}')
  return 0


def cmd_bench(argv):
  from jaxdl import bench  # pylint: disable=g-import-not-at-top
  return bench.main(argv)


COMMANDS = {'list': cmd_list, 'train': cmd_train, 'eval': cmd_eval, 'summary': cmd_summary,
            'reproduce': cmd_reproduce, 'bench': cmd_bench, 'sample': cmd_sample}
COMMANDS['transcribe'] = cmd_transcribe


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
  # Library chatter (orbax, tfds) off, errors included: a failure reaches the user as our one line (the library's
  # own log with its traceback under JAXDL_DEBUG=1).
  absl_logging.set_verbosity(absl_logging.ERROR if os.environ.get('JAXDL_DEBUG') else absl_logging.FATAL)
  if not os.environ.get('JAXDL_DEBUG'):   # nor asyncio's "Task exception was never retrieved" after a failed restore
    import logging  # pylint: disable=g-import-not-at-top
    logging.getLogger('asyncio').setLevel(logging.CRITICAL)
  try:
    if cmd is None:
      raise UserError(f'unknown command {argv[0]!r}', 'one of: ' + ', '.join(COMMANDS), 'see `jaxdl --help`')
    if cmd is not cmd_train:   # train: after arming its SIGTERM handler, before JAX is imported
      runtime.configure_jax()
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
  """The `jaxdl` program: the process-wide settings, then `main`."""
  try:  # before JAX starts its threads: freed host memory is reused, steps do not page-fault it in again
    runtime.keep_host_memory()
  except UserError as e:
    print(f'jaxdl: error: {e}', file=sys.stderr)
    sys.exit(2)
  # A multi-process run that failed leaves at once, without jax's shutdown barrier (`sharding.leave`).
  try:
    code = main()
  except Exception as e:
    if 'jaxdl.train.sharding' in sys.modules:
      sys.modules['jaxdl.train.sharding'].leave(1, e)
    raise
  if 'jaxdl.train.sharding' in sys.modules:
    sys.modules['jaxdl.train.sharding'].leave(code)
  _exit_without_stuck_threads(code)
  sys.exit(code)


def _exit_without_stuck_threads(code: int, grace_s: float = 5.0) -> None:
  """Exits at once if a library thread is still blocked `grace_s` after a command failed: after a failed
  checkpoint write, Orbax's save threads wait 300 s for a folder that was never created. The error is printed."""
  import threading  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  if code == 0:
    return
  deadline = time.monotonic() + grace_s
  # (idle executor workers end at interpreter exit: not stuck)
  others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
            and not t.name.startswith(('ThreadPoolExecutor', 'asyncio_'))]
  for t in others:
    threading.Thread.join(t, max(0.0, deadline - time.monotonic()))  # the base join: Orbax's raises on timeout
  if any(t.is_alive() for t in others):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
