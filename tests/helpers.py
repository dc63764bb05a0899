"""Shared test helpers: small experiment configs and running `jaxdl` in a subprocess."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

from jaxdl import config as config_lib

REPO = pathlib.Path(__file__).resolve().parent.parent


def small_digits_config(num_steps=60, **train):
  """The flagship config, shrunk: a tiny MLP for a few dozen steps."""
  c = config_lib.load_module(REPO / 'experiments' / 'mlp_digits.py').get_config()
  c.model.hidden = (32,)
  c.model.dropout_rate = 0.0
  c.optimizer.learning_rate = 0.01
  c.train.num_steps = num_steps
  c.train.batch_size = 32
  c.train.log_every = 10
  c.train.eval_every = 30
  c.train.checkpoint_every = 20
  for k, v in train.items():
    c.train[k] = v
  return c


def overrides(num_steps=60, **train) -> list[str]:
  """The same small config as command-line overrides of experiments/mlp_digits.py."""
  args = [f'--config={REPO / "experiments" / "mlp_digits.py"}', '--config.model.hidden=(32,)',
          '--config.model.dropout_rate=0.0', '--config.optimizer.learning_rate=0.01', f'--config.train.num_steps={num_steps}', '--config.train.batch_size=32',
          '--config.train.log_every=10', '--config.train.eval_every=30', '--config.train.checkpoint_every=20']
  return args + [f'--config.train.{k}={v}' for k, v in train.items()]


def run_jaxdl(args, *, devices: int | None = None, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
  e = dict(os.environ, JAX_PLATFORMS='cpu', **(env or {}))
  if devices:
    e['JAX_NUM_CPU_DEVICES'] = str(devices)
  return subprocess.run([sys.executable, '-m', 'jaxdl', *args], env=e, capture_output=True, text=True,
                        timeout=timeout, cwd=REPO, **kw)


def summary(workdir) -> dict:
  return json.loads((pathlib.Path(workdir) / 'summary.json').read_text())


def bench_params_after(name: str, steps: int) -> dict[str, np.ndarray]:
  """The parameters of `jaxdl bench` workload `name` after `steps` trainer steps of plain SGD (lr 0.1) on its
  synthetic batches (fixed seeds), flattened to {path: array}: the same numbers whatever the device count, up to
  float rounding (SGD, not the workload's Adam, whose first steps are ≈ lr·sign(g) and flip with the rounding of
  near-zero gradients)."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from jaxdl import bench  # pylint: disable=g-import-not-at-top

  def sgd(config):
    config.optimizer.name, config.optimizer.learning_rate = 'sgd', 0.1
    return config
  wl = bench.WORKLOADS[name]
  wl = dataclasses.replace(wl, make_config=lambda: sgd(bench.WORKLOADS[name].make_config()))
  config, setup, _ = bench.build_setup(wl)
  host = bench.synthetic_batches(config.loss.name, bench._input_shape(setup), int(setup.info.num_outputs),
                                 config.train.batch_size, n=steps, tokens=wl.tokens, seq2seq=wl.seq2seq)
  runner = bench.JaxRunner(setup, host)
  runner.run(steps)
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(runner.state.params)}
