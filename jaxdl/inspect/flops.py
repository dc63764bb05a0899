"""Forward-pass cost of a model in multiply-accumulates (MACs), counted from its jaxpr.

He et al. 2015 (Table 1) and most model zoos report "FLOPs" as multiply-adds: one multiply-add per kernel tap
per output value. This module counts the same thing, for ONE example by default, from the shapes of the
contractions in `jax.make_jaxpr(model.apply)` (nothing is computed or allocated):

  conv_general_dilated   output elements × kernel taps × input channels per group
                         = N·H_out·W_out·C_out · k_h·k_w · C_in/groups   (padding taps included, as in the paper)
  dot_general            output elements × contracted size (a Dense layer: N · d_in · d_out)

Sub-jaxprs are followed (jit, custom_vjp/jvp, remat); the body of a `scan` (nn.scan over repeated blocks) counts
`length` times; a `cond` counts its costliest branch. A convolution whose kernel does not depend on the model's
inputs or parameters (e.g. `lax.conv_general_dilated_patches`, a one-hot kernel that only gathers im2col patches)
moves data and is not counted, so a conv lowered as patches + matmul counts once, through its dot_general.
Element-wise work (BN, activations, additions, pooling) is not counted — the convention of the paper's FLOPs row.

XLA's own estimate, `jax.jit(f).lower(...).compile().cost_analysis()['flops']`, counts a multiply-add as 2 FLOPs,
adds the element-wise ops and leaves out the taps that fall on padding; on a bias-free, unpadded conv/dense net
it is exactly 2 × forward_flops (tests/test_flops.py).
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from jaxdl.inspect.summary import abstract_variables


def _is_var(v) -> bool:
  return not isinstance(v, jcore.Literal)


def _conv_macs(eqn) -> int:
  rhs = eqn.invars[1].aval.shape
  out = eqn.outvars[0].aval.shape
  dn = eqn.params['dimension_numbers']
  rhs_spec = dn.rhs_spec                      # (out-feature dim, in-feature dim, *spatial dims)
  taps = math.prod(rhs[d] for d in rhs_spec[2:]) * rhs[rhs_spec[1]]
  return math.prod(out) * taps // max(1, eqn.params.get('batch_group_count', 1))


def _dot_macs(eqn) -> int:
  (lhs_contract, _), _ = eqn.params['dimension_numbers']
  lhs = eqn.invars[0].aval.shape
  return math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)


def _subjaxprs(eqn) -> list[tuple[Any, float]]:
  """(jaxpr, how many times it runs) for each sub-jaxpr in the equation's params."""
  found = []
  for v in eqn.params.values():
    items = v if isinstance(v, (tuple, list)) else (v,)
    for item in items:
      if isinstance(item, jcore.ClosedJaxpr):
        found.append(item.jaxpr)
      elif isinstance(item, jcore.Jaxpr):
        found.append(item)
  times = eqn.params.get('length', 1) if eqn.primitive.name == 'scan' else 1
  return [(j, times) for j in found]


def count_macs(jaxpr, dependent: list[bool] | None = None, tally: dict[str, int] | None = None) -> int:
  """MACs of the convolutions and matrix products in `jaxpr` (a Jaxpr), added into `tally` by primitive.

  `dependent[i]`: whether invar i depends on the inputs/parameters (default: all); a conv whose kernel does not
  is a patch gather and counts 0. A `while` body (unknown trip count) counts once.
  """
  tally = {} if tally is None else tally
  before = sum(tally.values())
  dep = {v for v, d in zip(jaxpr.invars, dependent or [True] * len(jaxpr.invars)) if d}
  for eqn in jaxpr.eqns:
    in_dep = [_is_var(v) and v in dep for v in eqn.invars]
    name = eqn.primitive.name
    if name == 'conv_general_dilated':
      if in_dep[1]:
        tally[name] = tally.get(name, 0) + _conv_macs(eqn)
    elif name == 'dot_general':
      tally[name] = tally.get(name, 0) + _dot_macs(eqn)
    else:
      branches = []
      for sub, times in _subjaxprs(eqn):
        n = len(sub.invars)
        # Inner invars line up with the operands (jit, scan, remat, custom_*) or all but the first (cond's index).
        sub_dep = in_dep if n == len(in_dep) else in_dep[1:] if n == len(in_dep) - 1 else [True] * n
        sub_tally: dict[str, int] = {}
        count_macs(sub, sub_dep, sub_tally)
        branches.append({k: v * times for k, v in sub_tally.items()})
      if name == 'cond' and branches:       # one branch runs: count the costliest
        branches = [max(branches, key=lambda t: sum(t.values()))]
      for sub_tally in branches:
        for k, v in sub_tally.items():
          tally[k] = tally.get(k, 0) + v
    if any(in_dep):
      dep.update(eqn.outvars)
  return sum(tally.values()) - before


def forward_flops(model, input_shape: tuple[int, ...], batch: int = 1,
                  by_primitive: bool = False) -> int | dict[str, int]:
  """Multiply-accumulates of one forward pass of `model` on `batch` inputs of `input_shape` (He et al.'s FLOPs).

  `by_primitive=True` returns {'conv_general_dilated': n, 'dot_general': m, 'total': n + m}.
  """
  variables = abstract_variables(model, input_shape)
  x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)

  closed = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)   # inference mode
  tally: dict[str, int] = {}
  total = count_macs(closed.jaxpr, None, tally)
  if by_primitive:
    return {**tally, 'total': total}
  return total


def xla_flops(fn, *args) -> float:
  """XLA's flop estimate for jit(fn)(*args) after compilation (a multiply-add = 2 flops; padding taps excluded)."""
  analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get('flops', 0.0))
