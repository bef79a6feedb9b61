"""Curves, bands and scatter plots of searches, drawn with matplotlib (cells: viz.py)."""

import math
import os
from typing import Dict, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, none opened
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _save(fig, path: str) -> None:
  """Writes the figure (format from the extension) atomically and closes it."""
  root, ext = os.path.splitext(path)
  tmp = f"{root}.tmp{ext}"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, path)


def _figure(title: str, xlabel: str, ylabel: str, size: Tuple[float, float]):
  fig, ax = plt.subplots(figsize=size, layout="constrained")
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.grid(True, color="#e4e4e4")
  ax.set_axisbelow(True)
  return fig, ax


def _finite(values: Sequence[float]):
  return [float(v) if math.isfinite(float(v)) else math.nan for v in values]


def reward_curve_png(rewards: Sequence[float], path: str, title: str = "") -> None:
  """Reward per child with its running max; non-finite rewards are gaps."""
  fig, ax = _figure(title, "child", "reward", (6.4, 3.6))
  values = _finite(rewards)
  best, top = [], -math.inf
  for v in values:
    top = max(top, v) if not math.isnan(v) else top
    best.append(top if top > -math.inf else math.nan)
  steps = range(len(values))
  ax.plot(steps, values, "o-" if len(values) <= 60 else "-", color="#7aa7d6", markersize=3,
          linewidth=1.2, label="reward")
  ax.plot(steps, best, color="#e07b00", linewidth=2, label="running max")
  if any(not math.isnan(v) for v in values):
    ax.legend(loc="lower right", title=f"max {max(v for v in best if not math.isnan(v)):.4g}")
  else:
    ax.text(0.5, 0.5, "no rewards yet", transform=ax.transAxes, ha="center", color="#888888")
  _save(fig, path)


def band_curves_png(series: Dict[str, Tuple[Sequence[float], Sequence[float],
                                             Sequence[float]]],
                    path: str, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
  """Curves (mean, lower, upper per x = 1..n) with shaded bands and a legend."""
  fig, ax = _figure(title, xlabel, ylabel, (7.2, 4.2))
  for name, (mean, lower, upper) in series.items():
    x = range(1, len(mean) + 1)
    line, = ax.plot(x, _finite(mean), linewidth=2, label=name)
    ax.fill_between(x, _finite(lower), _finite(upper), color=line.get_color(), alpha=0.2,
                    linewidth=0)
  if series:
    ax.legend(loc="lower right")
  _save(fig, path)


def scatter_png(points: Sequence[Tuple[float, float]], path: str, title: str = "",
                xlabel: str = "", ylabel: str = "",
                labels: Optional[Sequence[str]] = None) -> None:
  """One dot per finite (x, y), optionally labelled (e.g. score vs. standalone accuracy)."""
  fig, ax = _figure(title, xlabel, ylabel, (5.6, 4.4))
  shown = [(i, float(x), float(y)) for i, (x, y) in enumerate(points)
           if math.isfinite(float(x)) and math.isfinite(float(y))]
  ax.scatter([x for _, x, _ in shown], [y for _, _, y in shown], s=30, color="#1f6fb4")
  ax.margins(0.1)
  for i, x, y in shown if labels is not None else ():
    ax.annotate(str(labels[i]), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
  if not shown:
    ax.text(0.5, 0.5, "no points", transform=ax.transAxes, ha="center", color="#888888")
  _save(fig, path)
