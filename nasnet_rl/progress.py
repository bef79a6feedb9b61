"""One-line progress of a search: what is left of the budget that will end it, and when."""

from typing import Optional


def minutes(seconds: float) -> str:
  """90 -> `1.5 min`, 40 -> `40 s`."""
  return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def remaining(trained: int, max_children: int, elapsed: float,
              max_seconds: Optional[float]) -> str:
  """The budget left, in the unit that stops the search first (children or time), with an ETA
  from the time per trained child so far."""
  left = max(0, max_children - trained)
  per_child = elapsed / trained if trained else None
  by_children = left * per_child if per_child is not None else None
  if max_seconds is not None:
    time_left = max(0.0, max_seconds - elapsed)
    if by_children is None:
      return (f"{trained}/{max_children} trained, {minutes(time_left)} of "
              f"{minutes(max_seconds)} left")
    if time_left < by_children:
      more = f", ~{int(time_left / per_child)} more children" if per_child else ""
      return (f"{trained}/{max_children} trained; time ends the search: "
              f"{minutes(time_left)} of {minutes(max_seconds)} left{more}")
  eta = f", ETA {minutes(by_children)}" if by_children is not None else ""
  return f"{trained}/{max_children} trained, {left} to go{eta}"


def child_line(index: int, reward: float, note: str, best: Optional[float],
               best_index: Optional[int], budget_left: str) -> str:
  """`child 13: reward 0.7312 | best 0.7490 (child 9) | 14/40 trained, 26 to go, ETA 17.2 min`."""
  best_part = f"best {best:.4f} (child {best_index})" if best is not None else "no best yet"
  return f"child {index}: reward {reward:.4f}{note} | {best_part} | {budget_left}"
