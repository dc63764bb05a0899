"""Per-layer activation and gradient statistics from one batch, and their figures.

A model that sows its per-layer values (the MLP: 'intermediates' pre{i} = the activation's input, act{i} = its
output, and 'perturbations' at pre{i}) is run once forward and once backward on a batch; everything after that
is a pure function of arrays:

  record(model, variables, batch, loss_fn)  -> Record(outputs, loss, values {name: array}, pre_grads, param_grads)
  activation_stats(values)                  -> {name: {mean, std, var, min, max, p15, p50, p85, zero_fraction,
                                                        dead_fraction}}
  gradient_stats(grads)                     -> {name: {norm, std, mean_abs, max_abs}}

The notes' use (seed 000, "INITIALIZATION AND THE DISTRIBUTIONS OF ACTIVATIONS AND GRADIENTS"; Glorot & Bengio
2010, Fig. 3-7; Ioffe & Szegedy 2015, Fig. 1): how activations/gradients spread through depth for an init, and
how their percentiles drift during training. A dead ReLU unit outputs 0 on every example of the batch.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

PERCENTILES = (15, 50, 85)


def _key(path) -> str:
  parts = []
  for k in path:
    if isinstance(k, jax.tree_util.DictKey):
      parts.append(str(k.key))
    elif isinstance(k, jax.tree_util.GetAttrKey):
      parts.append(k.name)
  return '/'.join(parts)


def flatten(tree: Mapping[str, Any]) -> dict[str, jax.Array]:
  """{'pre0': (x,), 'block': {'act1': (y,)}} -> {'pre0': x, 'block/act1': y} (the first value sown under a name)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = _key(path)
    if name not in out:            # sow appends a tuple: keep the first call's value
      out[name] = leaf
  return out


def layer_index(name: str) -> tuple[str, int]:
  """'block/pre12' -> ('block/pre', 12): sorts layers by depth."""
  m = re.match(r'^(.*?)(\d+)$', name)
  return (m.group(1), int(m.group(2))) if m else (name, -1)


def sorted_names(values: Mapping[str, Any], prefix: str = '') -> list[str]:
  names = [n for n in values if n.split('/')[-1].startswith(prefix)]
  return sorted(names, key=layer_index)


@dataclasses.dataclass
class Record:
  outputs: jax.Array
  loss: jax.Array | None
  values: dict[str, jax.Array]        # pre{i}, act{i}
  pre_grads: dict[str, jax.Array]     # ∂L/∂pre{i} (empty without a loss)
  param_grads: Any                    # ∂L/∂θ (None without a loss)


def record(model, variables: Mapping[str, Any], batch: Mapping[str, Any], loss_fn: Callable | None = None, *,
           train: bool = False, rngs: Mapping[str, jax.Array] | None = None) -> Record:
  """Runs `model` on batch['inputs'] recording its sown values; with a jaxdl loss, also ∂L/∂pre and ∂L/∂θ.

  L is the batch mean of loss_fn(outputs, batch)['loss']. In train mode batch norm uses the batch statistics
  (its running averages are not updated here) and dropout needs rngs={'dropout': key}.
  """
  variables = dict(variables)
  params = variables.pop('params')
  state = {k: v for k, v in variables.items() if k not in ('intermediates', 'perturbations')}
  x = batch['inputs']
  mutable = ['intermediates'] + (list(state) if train else [])

  def run(params, perts):
    extra = {'perturbations': perts} if perts is not None else {}
    out, coll = model.apply({'params': params, **state, **extra}, x, train=train, rngs=rngs,
                            mutable=mutable + ([] if perts is not None else ['perturbations']))
    return out, coll

  out, coll = run(params, None)
  perts = coll.get('perturbations', {})
  values = flatten(coll.get('intermediates', {}))
  if loss_fn is None:
    return Record(out, None, values, {}, None)

  def loss(params, perts):
    out, coll = run(params, perts)
    return jnp.mean(loss_fn(out, batch)['loss']), (out, coll)

  (l, (out, coll)), (g_params, g_perts) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, perts)
  return Record(out, l, flatten(coll.get('intermediates', {})), flatten(g_perts), g_params)


def activation_stats(values: Mapping[str, Any], percentiles: Sequence[float] = PERCENTILES) -> dict[str, dict[str, float]]:
  """Per named array (batch first): moments, percentiles over all entries, zero and dead-unit fractions."""
  out = {}
  for name, v in values.items():
    a = np.asarray(v, np.float64)
    flat = a.ravel()
    units = a.reshape(a.shape[0], -1)
    s = {'mean': float(flat.mean()), 'std': float(flat.std()), 'var': float(flat.var()), 'min': float(flat.min()),
         'max': float(flat.max()), 'zero_fraction': float(np.mean(flat <= 0.0)),
         'dead_fraction': float(np.mean(np.all(units <= 0.0, axis=0)))}    # a unit off on the whole batch
    for q, p in zip(percentiles, np.percentile(flat, percentiles)):
      s[f'p{q:g}'] = float(p)
    out[name] = s
  return out


def unit_percentiles(v, percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
  """Percentiles over the batch of every unit: (len(percentiles), units)."""
  a = np.asarray(v, np.float64).reshape(np.shape(v)[0], -1)
  return np.percentile(a, percentiles, axis=0)


def gradient_stats(grads: Any) -> dict[str, dict[str, float]]:
  """Per leaf of a gradient tree (params or pre-activations): L2 norm, std, mean and max |g|."""
  flat = grads if isinstance(grads, dict) and all(not isinstance(v, dict) for v in grads.values()) else {
      _key(p): g for p, g in jax.tree_util.tree_flatten_with_path(grads)[0]}
  out = {}
  for name, g in flat.items():
    a = np.asarray(g, np.float64).ravel()
    out[name] = {'norm': float(np.sqrt(np.sum(a ** 2))), 'std': float(a.std()), 'mean_abs': float(np.mean(np.abs(a))),
                 'max_abs': float(np.max(np.abs(a)))}
  return out


def global_norm(grads: Any) -> float:
  return float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(grads))))


# ------------------------------------------------------------------------------------------------ figures
def plot_histograms(values: Mapping[str, Any], path, bins: int = 60, title: str = '', xlim=None) -> str:
  """One histogram per layer, overlaid (as Glorot & Bengio 2010, Fig. 6)."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for name in sorted(values, key=layer_index):
    a = np.asarray(values[name], np.float64).ravel()
    ax.hist(a, bins=bins, range=xlim, histtype='step', density=True, label=f'{name} (std {a.std():.2g})')
  ax.set_xlabel('value')
  ax.set_ylabel('density')
  if title:
    ax.set_title(title)
  ax.legend(fontsize=7)
  return plots.save(fig, path)


def plot_layer_profile(series: Mapping[str, Sequence[float]], path, ylabel: str = 'variance', logy: bool = True,
                       title: str = '', xlabel: str = 'layer') -> str:
  """One curve per setting of a per-layer statistic (e.g. the activation variance) against depth."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  return plots.curves({k: (list(range(1, len(v) + 1)), list(v)) for k, v in series.items()}, path, xlabel=xlabel,
                      ylabel=ylabel, logy=logy, title=title)


def plot_percentile_history(panels: Mapping[str, tuple[Sequence[int], np.ndarray]], path,
                            percentiles: Sequence[float] = PERCENTILES, ylabel: str = 'sigmoid input',
                            extra: tuple[str, Mapping[str, tuple[Sequence[int], Sequence[float]]]] | None = None) -> str:
  """Per panel (title -> (steps, array (steps, len(percentiles)))): the percentiles against training steps
  (Ioffe & Szegedy 2015, Fig. 1b/c). `extra=(ylabel, {label: (steps, values)})` adds a first panel (e.g. accuracy)."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = len(panels) + (extra is not None)
  fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.5), squeeze=False)
  axes = list(axes[0])
  if extra is not None:
    ax = axes.pop(0)
    for label, (xs, ys) in extra[1].items():
      ax.plot(xs, ys, label=label)
    ax.set_xlabel('step')
    ax.set_ylabel(extra[0])
    ax.legend()
    ax.grid(alpha=0.3)
  lo = min(float(np.min(v)) for _, v in panels.values())
  hi = max(float(np.max(v)) for _, v in panels.values())
  for ax, (title, (steps, v)) in zip(axes, panels.items()):
    v = np.asarray(v)
    for j, q in enumerate(percentiles):
      ax.plot(steps, v[:, j], label=f'{q:g}th', color='k', lw=1.5 if q == 50 else 1.0, ls='-' if q == 50 else '--')
    ax.set_title(title)
    ax.set_xlabel('step')
    ax.set_ylabel(ylabel)
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  return plots.save(fig, path)
