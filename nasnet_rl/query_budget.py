"""The one place that owns duplicate architectures and the distinct-children budget.

A search's budget counts distinct architectures evaluated. A proposal whose architecture was
already evaluated is answered from the cache (its reward is fed back to the strategy again;
the strategy decides whether a repeat teaches it anything), costs nothing, and is not
evaluated twice. Proposals
are capped at `max_proposals_factor` x the budget, so a strategy that only repeats itself ends
the search instead of spinning. The standalone search, the ENAS derive step and
compare_strategies all use this class.
"""

from typing import Any, Dict, Hashable, Optional


class QueryBudget:
  """Counts proposals and distinct evaluations; caches results by architecture key."""

  def __init__(self, max_distinct: int, max_proposals_factor: int = 20):
    if isinstance(max_distinct, bool) or int(max_distinct) != max_distinct or max_distinct < 1:
      raise ValueError(f"the query budget must be a positive integer, got {max_distinct!r}")
    if max_proposals_factor < 1:
      raise ValueError(f"max_proposals_factor must be >= 1, got {max_proposals_factor}")
    self.max_distinct = int(max_distinct)
    self.max_proposals = int(max_proposals_factor) * self.max_distinct
    self.proposals = 0
    self._results: Dict[Hashable, Any] = {}

  def __contains__(self, key: Hashable) -> bool:
    return key in self._results

  def lookup(self, key: Hashable) -> Optional[Any]:
    """The cached result of an architecture already evaluated, else None."""
    return self._results.get(key)

  def add(self, key: Hashable, result: Any) -> None:
    """Records a distinct evaluation (the first result of a key wins)."""
    self._results.setdefault(key, result)

  def forget(self, key: Hashable) -> None:
    """Drops a key (e.g. an evaluation that failed for reasons outside the architecture)."""
    self._results.pop(key, None)

  def propose(self) -> None:
    """Counts one proposal against the proposal cap."""
    self.proposals += 1

  @property
  def distinct(self) -> int:
    return len(self._results)

  def exhausted(self, in_flight: int = 0) -> bool:
    """No room for another distinct evaluation (counting those still running), or the
    strategy has used up its proposals."""
    return (self.distinct + in_flight >= self.max_distinct
            or self.proposals >= self.max_proposals)


def check_within(budget: int, space_size: int, name: str) -> None:
  """A budget of more distinct architectures than the space holds is one ValueError naming the
  setting `name`, before any work starts."""
  if budget > space_size:
    raise ValueError(f"{name}={budget:,} exceeds the search space's {space_size:,} "
                     f"architectures; use at most {space_size:,}")
