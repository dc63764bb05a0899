"""Figures for reports (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import json
import pathlib
from typing import Callable, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # noqa: E402


def save(fig, path) -> str:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)


def decision_boundaries(panels: Sequence[tuple[str, np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]],
                        path, lim: tuple[float, float, float, float] | None = None) -> str:
  """One panel per (title, x (N, 2), labels, predict(grid (M, 2)) -> scores); the boundary is score = 0."""
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
  for ax, (title, x, y, predict) in zip(axes[0], panels):
    x0, x1, y0, y1 = lim or (x[:, 0].min() - 0.5, x[:, 0].max() + 0.5, x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    z = np.asarray(predict(np.c_[gx.ravel(), gy.ravel()].astype(np.float32))).reshape(gx.shape)
    ax.contourf(gx, gy, z >= 0, levels=[-0.5, 0.5, 1.5], colors=['#f4c7c3', '#c6dbef'], alpha=0.8)
    ax.contour(gx, gy, z, levels=[0.0], colors='k', linewidths=1.5)
    pos = np.asarray(y) > 0
    ax.scatter(x[pos, 0], x[pos, 1], marker='o', c='#1f77b4', edgecolors='k', s=30, label='+1')
    ax.scatter(x[~pos, 0], x[~pos, 1], marker='^', c='#d62728', edgecolors='k', s=30, label='−1')
    ax.set_title(title)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
  axes[0][0].legend(loc='best', fontsize=8)
  return save(fig, path)


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], path, xlabel='step', ylabel='loss',
           logy=False, title='') -> str:
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for label, (xs, ys) in series.items():
    ax.plot(xs, ys, label=label, marker='o' if len(xs) < 25 else None, ms=3)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if logy:
    ax.set_yscale('log')
  if title:
    ax.set_title(title)
  ax.legend()
  ax.grid(alpha=0.3)
  return save(fig, path)


def metric_history(workdir, split: str, metric: str) -> tuple[list[int], list[float]]:
  """(steps, values) of one metric from a run's metrics.jsonl."""
  steps, values = [], []
  for line in (pathlib.Path(workdir) / 'metrics.jsonl').read_text().splitlines():
    r = json.loads(line)
    if r['split'] == split and metric in r:
      steps.append(r['step'])
      values.append(r[metric])
  return steps, values
