"""Parameter tables computed with `jax.eval_shape`: no allocation, so fast even for huge models.

The ONE way jaxdl counts parameters (`count_params` in jaxdl.models agrees with it; tests check both).
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def abstract_variables(model, input_shape: tuple[int, ...], batch: int = 1) -> dict[str, Any]:
  """The model's variables as ShapeDtypeStructs (nothing is computed or allocated)."""
  x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
  rngs = {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)}
  return jax.eval_shape(lambda r, x: model.init(r, x, train=False), rngs, x)


def parameter_table(model, input_shape: tuple[int, ...]) -> dict[str, Any]:
  """{'total_params': N, 'layers': [{'name', 'shapes': {param: shape}, 'params': n}, ...]} in definition order."""
  variables = abstract_variables(model, input_shape)
  params = variables.get('params', {})
  layers: dict[str, dict[str, Any]] = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    keys = [getattr(k, 'key', getattr(k, 'idx', str(k))) for k in path]
    layer, pname = '/'.join(map(str, keys[:-1])) or '(top)', str(keys[-1])
    row = layers.setdefault(layer, {'name': layer, 'shapes': {}, 'params': 0})
    row['shapes'][pname] = list(leaf.shape)
    row['params'] += math.prod(leaf.shape)
  total = sum(r['params'] for r in layers.values())
  state = {k: int(sum(math.prod(l.shape) for l in jax.tree.leaves(v))) for k, v in variables.items() if k != 'params'}
  return {'total_params': total, 'layers': list(layers.values()), 'non_trainable': state}


def format_table(table: dict[str, Any], title: str = '') -> str:
  rows = [(r['name'], ', '.join(f"{k} {'×'.join(map(str, s)) or 'scalar'}" for k, s in r['shapes'].items()),
           f"{r['params']:,}") for r in table['layers']]
  w0 = max([len('layer')] + [len(r[0]) for r in rows])
  w1 = max([len('shapes')] + [len(r[1]) for r in rows])
  w2 = max([len('params')] + [len(r[2]) for r in rows] + [len(f"{table['total_params']:,}")])
  out = [title] if title else []
  out.append(f"{'layer':<{w0}}  {'shapes':<{w1}}  {'params':>{w2}}")
  out.append('-' * (w0 + w1 + w2 + 4))
  out += [f'{a:<{w0}}  {b:<{w1}}  {c:>{w2}}' for a, b, c in rows]
  out.append('-' * (w0 + w1 + w2 + 4))
  out.append(f"{'total':<{w0}}  {'':<{w1}}  {table['total_params']:>{w2},}")
  for k, n in table.get('non_trainable', {}).items():
    out.append(f'(+ {n:,} non-trainable values in {k!r})')
  return '\n'.join(out)
