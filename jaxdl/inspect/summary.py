"""Parameter tables computed with `jax.eval_shape`: no allocation, so fast even for huge models.

The ONE way jaxdl counts parameters (`count_params` in jaxdl.models agrees with it; tests check both).
`layer_outputs` / `format_layer_outputs` add a per-layer view: output shapes and, for chains of windowed layers
(convolutions, pooling modules), the receptive field (jaxdl.nn.conv.receptive_field).
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


# ------------------------------------------------------------------------ per-layer outputs, receptive field

def _window_geometry(module, in_shape) -> dict[str, Any] | None:
  """kernel / stride / dilation / leading padding of a windowed layer (conv, locally connected, pooling), per axis."""
  kernel = getattr(module, 'kernel_size', None) or getattr(module, 'window_shape', None)
  if kernel is None or in_shape is None or len(in_shape) < 3:
    return None
  n = len(in_shape) - 2
  kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else (kernel,) * n
  def per_axis(v, default=1):
    v = default if v is None else v
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
  stride = per_axis(getattr(module, 'strides', None), None)
  stride = kernel if stride == (None,) * n else stride     # pooling layers: stride defaults to the window
  dilation = per_axis(getattr(module, 'kernel_dilation', None))
  padding = getattr(module, 'padding', 'VALID')
  from jaxdl.nn import conv  # pylint: disable=g-import-not-at-top
  if isinstance(padding, str) and padding.upper() == 'CIRCULAR':
    padding = 'SAME'
  if isinstance(padding, str) and padding.upper() == 'CAUSAL':
    pads = [(conv.effective_kernel_size(k, d) - 1, 0) for k, d in zip(kernel, dilation)]
  else:
    pads = conv.padding_pairs(padding, tuple(in_shape[1:-1]), kernel, stride, dilation)
  return {'kernel': list(kernel), 'stride': list(stride), 'dilation': list(dilation), 'pad_lo': [p[0] for p in pads]}


def layer_outputs(model, input_shape: tuple[int, ...], batch: int = 1, receptive_field: bool = True,
                  init_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """Every module call in call order: {'name', 'type', 'output_shape' (no batch axis)}, by jax.eval_shape.

  Windowed layers (anything with `kernel_size` or `window_shape`: convolutions, locally connected, pooling
  modules) also get 'kernel', 'stride', 'dilation' and, with `receptive_field`, 'receptive_field' and 'jump'
  per spatial axis: r_k = r_{k−1} + (k_eff − 1)·∏_{i<k} s_i (jaxdl.nn.conv.receptive_field). That recursion
  assumes the windowed layers form one chain in call order (a plain CNN; not branches or skips), and stops at
  a transposed convolution. Pooling done with functions (nn.max_pool) is invisible here: only modules are seen.
  """
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  rows: list[dict[str, Any]] = []

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name != '__call__':
      return next_fun(*args, **kwargs)
    m = context.module
    row = {'name': '/'.join(map(str, m.path)) or '(top)', 'type': type(m).__name__}
    rows.append(row)
    out = next_fun(*args, **kwargs)
    leaves = jax.tree.leaves(out)
    shapes = [list(l.shape[1:]) for l in leaves if hasattr(l, 'shape')]
    row['output_shape'] = shapes[0] if len(shapes) == 1 else shapes
    in_shape = getattr(args[0], 'shape', None) if args else None
    # The model itself may carry a `kernel_size` config field: only its submodules are layers.
    geometry = _window_geometry(m, in_shape) if m.path else None
    if geometry:
      row.update(geometry)
    return out

  x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
  rngs = {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)}
  kw = {'train': False} if init_kwargs is None else init_kwargs
  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda r, x: model.init(r, x, **kw), rngs, x)
  if receptive_field:
    _add_receptive_fields(rows)
  return rows


def _add_receptive_fields(rows: list[dict[str, Any]]) -> None:
  from jaxdl.nn import conv  # pylint: disable=g-import-not-at-top
  windowed = [r for r in rows if 'kernel' in r]
  if not windowed:
    return
  n = len(windowed[0]['kernel'])
  chain = []
  for r in windowed:
    if 'Transpose' in r['type'] or len(r['kernel']) != n:
      break
    chain.append(r)
  for axis in range(n):
    fields = conv.receptive_field([conv.RFLayer(r['kernel'][axis], r['stride'][axis], r['dilation'][axis],
                                                r['pad_lo'][axis]) for r in chain])
    for r, f in zip(chain, fields[1:]):
      r.setdefault('receptive_field', []).append(f['r'])
      r.setdefault('jump', []).append(f['jump'])


def format_layer_outputs(rows: list[dict[str, Any]], title: str = '') -> str:
  """A text table of `layer_outputs`: name, type, output shape, kernel/stride and receptive field."""
  def dims(v):
    return '×'.join(map(str, v)) if v and not isinstance(v[0], list) else ', '.join(dims(u) for u in v) if v else '-'
  def window(r):
    if 'kernel' not in r:
      return ''
    return f"{dims(r['kernel'])} /{dims(r['stride'])}" + (f" d{dims(r['dilation'])}" if max(r['dilation']) > 1 else '')
  table = [(r['name'], r['type'], dims(r.get('output_shape', [])), window(r),
            dims(r['receptive_field']) if 'receptive_field' in r else '') for r in rows]
  head = ('layer', 'type', 'output', 'kernel /stride', 'receptive field')
  w = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
  out = [title] if title else []
  out.append('  '.join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip())
  out.append('-' * (sum(w) + 2 * (len(w) - 1)))
  out += ['  '.join(c.ljust(w[i]) for i, c in enumerate(t)).rstrip() for t in table]
  return '\n'.join(out)
