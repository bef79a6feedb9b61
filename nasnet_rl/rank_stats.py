"""Rank correlations in numpy (no scipy): Kendall's tau-b and Spearman's rho, ties handled.

Used to ask whether shared-weight scores predict standalone accuracy
(nasnet_rl/cli/rank_correlation.py). Both are nan when either column is constant (undefined).
"""

from typing import Sequence

import numpy as np


def _pair(x: Sequence[float], y: Sequence[float]):
  x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
  if x.shape != y.shape:
    raise ValueError(f"rank correlation needs two columns of one length, got {x.size} and "
                     f"{y.size}")
  if x.size < 2:
    raise ValueError(f"rank correlation needs at least 2 pairs, got {x.size}")
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    raise ValueError("rank correlation of non-finite values")
  return x, y


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
  """(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)) over all n0 = n(n-1)/2
  pairs; a pair tied in x or y is neither concordant nor discordant (tau-b, as
  scipy.stats.kendalltau's default)."""
  x, y = _pair(x, y)
  i, j = np.triu_indices(x.size, k=1)
  dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
  s = float(np.sum(dx * dy))
  untied_x, untied_y = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
  if untied_x == 0 or untied_y == 0:
    return float("nan")
  return s / np.sqrt(untied_x * untied_y)


def average_ranks(x: Sequence[float]) -> np.ndarray:
  """Ranks 1..n, tied values getting the mean of the ranks they span."""
  x = np.asarray(x, np.float64).ravel()
  order = np.argsort(x, kind="stable")
  ranks = np.empty(x.size, np.float64)
  sorted_x = x[order]
  start = 0
  for end in range(1, x.size + 1):
    if end == x.size or sorted_x[end] != sorted_x[start]:
      ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
      start = end
  return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
  """Pearson correlation of the average ranks (the tie-correct definition)."""
  x, y = _pair(x, y)
  rx, ry = average_ranks(x), average_ranks(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denom = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
  if denom == 0:
    return float("nan")
  return float(np.sum(rx * ry) / denom)


def retraining_reliability(accuracies) -> dict:
  """How much of the spread of cells' accuracies [cells, seeds] (each cell trained with the same
  seeds) is the cells' and how much the seeds': a one-way random-effects split after removing
  each seed's mean over the cells. `reliability` is the share of the variance of the cells'
  mean accuracy (over their seeds) that is between cells; `oracle_kendall_tau_b` is the tau a
  perfect predictor would have against that mean, 2/pi * arcsin(sqrt(reliability)) (Greiner's
  relation for normal data), the ceiling of any score's rank correlation with it; the
  `_one_seed` pair is the same for a single training per cell."""
  acc = np.asarray(accuracies, np.float64)
  if acc.ndim != 2 or acc.shape[0] < 2 or acc.shape[1] < 2:
    raise ValueError(f"retraining reliability needs [cells >= 2, seeds >= 2] accuracies, got "
                     f"shape {acc.shape}")
  acc = acc - acc.mean(axis=0)
  seeds = acc.shape[1]
  noise = float(np.mean(np.var(acc, axis=1, ddof=1)))
  between = max(0.0, float(np.var(acc.mean(axis=1), ddof=1)) - noise / seeds)
  share = lambda n: between / (between + noise / n) if between + noise > 0 else float("nan")
  oracle = lambda r: float(2.0 / np.pi * np.arcsin(np.sqrt(r)))
  return {"seed_noise_std": float(np.sqrt(noise)), "between_cell_std": float(np.sqrt(between)),
          "reliability": share(seeds), "oracle_kendall_tau_b": oracle(share(seeds)),
          "reliability_one_seed": share(1), "oracle_kendall_tau_b_one_seed": oracle(share(1))}
