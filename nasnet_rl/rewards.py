"""What a reward may be: a finite number; an accuracy (the default reward, and a table's report)
is also within [0, 1]. Each check returns the problem as text, or None."""

import math
from typing import Any, Dict, Optional, Sequence


def number_problem(value: Any) -> Optional[str]:
  """Why `value` is not a finite number, or None."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return f"{value!r} is not a number"
  if not math.isfinite(value):
    return f"{value} is not a finite number"
  return None


def accuracy_problem(value: Any, low: float = 0.0, high: float = 1.0) -> Optional[str]:
  """Why `value` is not an accuracy in [low, high], or None."""
  problem = number_problem(value)
  if problem is None and not low <= value <= high:
    problem = f"{value} is outside [{low:g}, {high:g}]"
  return problem


def entry_problem(entry: Dict[str, Any]) -> Optional[str]:
  """A history line's reward, accuracy and report: every reward finite; an ok child's accuracy
  (its reward, unless a cost objective recorded `accuracy`) and report within [0, 1]."""
  problem = number_problem(entry.get("reward"))
  if problem:
    return f"reward {problem}"
  if entry.get("status") != "ok":
    return None
  for name in ("accuracy", "report") if "accuracy" in entry else ("reward", "report"):
    if name == "report" and entry.get(name) is None:
      continue
    problem = accuracy_problem(entry.get(name))
    if problem:
      return f"{name} {problem}"
  return None


def divergence(losses: Sequence[float], num_classes: int, factor: float = 100.0) -> Optional[str]:
  """Why a training whose per-epoch mean losses are `losses` diverged, or None: its last loss is
  over `factor` x ln(num_classes), the loss of the uniform guess every training starts from."""
  if not losses or num_classes < 2:
    return None
  start, last = math.log(num_classes), float(losses[-1])
  if last > factor * start:
    return (f"the loss ended at {last:.3g}, {last / start:,.0f}x the starting loss "
            f"ln({num_classes}) = {start:.3g}")
  return None
