"""Normalisation layers (flax.linen's) configured by name, and pure references (jnp) of what each computes.

For x of shape (N, H, W, C) — (N, C) in an MLP, (N, L, C) for sequences — each normaliser computes a mean μ
and a (biased) variance σ² over the axes below, then y = γ (x − μ)/√(σ² + ε) + β with a learned γ, β per channel
(seed 001 "Norms, Norms, Norms"; seed 004 §VIII.4 / F25; Wu & He 2018, Fig. 2):

  kind       statistics per          reduced over        at test time
  batch      channel c               (N, H, W)           running averages m ← μ m + (1 − μ) stat_batch (μ = 0.9)
  layer      example n               (H, W, C)           the same computation as in training
  instance   example n, channel c    (H, W)              "
  group      example n, group g      (H, W, C/G)         "

On an MLP (no H, W) instance norm normalises every unit by itself (the output is β whatever the input): the MLP
refuses it. Batch norm over a batch sharded across devices: under jit the mean over N is over the GLOBAL batch.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxdl.errors import UserError

KINDS = ('none', 'batch', 'layer', 'instance', 'group')
AXES = {'batch': '(N, H, W)', 'layer': '(H, W, C)', 'instance': '(H, W)', 'group': '(H, W, C/G)'}
PREFIX = {'batch': 'bn', 'layer': 'ln', 'instance': 'in', 'group': 'gn'}


def reduce_axes(kind: str, ndim: int) -> tuple[int, ...]:
  """The axes of an (N, ..., C) array that `kind` takes its statistics over (group: after splitting C into G)."""
  spatial = tuple(range(1, ndim - 1))
  return {'batch': (0, *spatial), 'layer': (*spatial, ndim - 1), 'instance': spatial,
          'group': (*spatial, ndim)}[kind]


def reference(kind: str, x, groups: int = 1, eps: float = 1e-5, gamma=1.0, beta=0.0, stats=None):
  """y = γ (x − μ)/√(σ² + ε) + β with μ, σ² over `reduce_axes(kind)` (jnp, written out from the table).

  `stats=(mean, var)` (per channel) replaces the batch statistics: batch norm at test time.
  """
  x = jnp.asarray(x, jnp.float32)
  if kind == 'batch' and stats is not None:
    mean, var = stats
  elif kind == 'group':
    c = x.shape[-1]
    xg = x.reshape(*x.shape[:-1], groups, c // groups)       # (N, ..., G, C/G)
    axes = (*range(1, x.ndim - 1), x.ndim)                    # spatial + within-group channel axis
    mean = xg.mean(axis=axes, keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=axes, keepdims=True)
    xhat = ((xg - mean) / jnp.sqrt(var + eps)).reshape(x.shape)
    return gamma * xhat + beta
  else:
    axes = reduce_axes(kind, x.ndim)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
  return gamma * (x - mean) / jnp.sqrt(var + eps) + beta


def make_norm(kind: str, ndim: int = 2, *, train: bool = False, groups: int = 4, momentum: float = 0.9,
              eps: float = 1e-5, name: str | None = None) -> nn.Module:
  """The flax.linen layer for `kind` on (N, ..., C) inputs of rank `ndim`, reducing over `reduce_axes(kind)`."""
  if kind == 'batch':
    # Statistics over every axis but the last (features); running averages in eval.
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=eps, name=name)
  if kind == 'layer':
    return nn.LayerNorm(epsilon=eps, reduction_axes=tuple(range(1, ndim)), feature_axes=-1, name=name)
  if kind == 'instance':
    if ndim < 3:
      raise UserError('instance norm on (N, C) features normalises each unit by itself (output = β)',
                      'inputs with spatial axes (N, H, W, C)', "use norm='layer' or 'group' in an MLP")
    return nn.InstanceNorm(epsilon=eps, feature_axes=-1, name=name)
  if kind == 'group':
    return nn.GroupNorm(num_groups=groups, epsilon=eps, name=name)
  raise UserError(f'unknown norm {kind!r}', 'one of: ' + ', '.join(KINDS), 'fix config.model.norm')


def check(kind: str, width: int | None = None, groups: int = 4) -> None:
  if kind not in KINDS:
    raise UserError(f'unknown norm {kind!r}', 'one of: ' + ', '.join(KINDS), 'fix config.model.norm')
  if kind == 'group' and width is not None and (groups < 1 or width % groups):
    raise UserError(f'group norm with {groups} groups on a layer of {width} units', f'a width divisible by {groups}',
                    'change config.model.group_norm_groups or the widths')
