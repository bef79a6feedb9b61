"""What a reward may be: a finite number; an accuracy (the default reward, and a table's report)
is also within [0, 1]. Each check returns the problem as text, or None."""

import math
from typing import Any, Dict, Optional


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
