"""Search objectives: accuracy alone, or accuracy traded against a cost (MnasNet).

MnasNet (Tan et al. 2019, eq. 2): reward = accuracy * (cost / target)^w with w = alpha when
cost <= target and beta otherwise. Its soft constraint is alpha = beta = -0.07; its hard
constraint is alpha = 0, beta = -1 (a model over the target is penalised sharply, one under it
not at all). Cost is a child's `mult_adds` or `params`, as its evaluation reports them.
"""

from typing import Optional, Tuple

import gin

COSTS = ("mult_adds", "params")
_KINDS = {"accuracy": None, "soft": (-0.07, -0.07), "hard": (0.0, -1.0)}


@gin.configurable
class Objective:
  """Turns a child's accuracy and cost into the reward its strategy sees."""

  def __init__(self, kind: str = "accuracy", cost: str = "mult_adds",
               target: Optional[float] = None, alpha: Optional[float] = None,
               beta: Optional[float] = None):
    if kind not in _KINDS:
      raise ValueError(f"unknown objective {kind!r}; expected one of {sorted(_KINDS)}")
    if cost not in COSTS:
      raise ValueError(f"unknown cost {cost!r}; expected one of {list(COSTS)}")
    self.kind, self.cost = kind, cost
    if kind != "accuracy":
      if target is None or not target > 0:
        raise ValueError(f"objective {kind!r} needs a positive target {cost}, got {target}")
      default_alpha, default_beta = _KINDS[kind]
      self.alpha = default_alpha if alpha is None else float(alpha)
      self.beta = default_beta if beta is None else float(beta)
    self.target = target

  @property
  def uses_cost(self) -> bool:
    return self.kind != "accuracy"

  def __call__(self, accuracy: float, cost: Optional[float]) -> Tuple[float, Optional[float]]:
    """(reward, cost) of a child; a cost-aware objective needs the cost."""
    if not self.uses_cost:
      return float(accuracy), cost
    if cost is None or not cost > 0:
      raise ValueError(f"objective {self.kind!r} needs the child's {self.cost}, got {cost}")
    w = self.alpha if cost <= self.target else self.beta
    return float(accuracy) * (float(cost) / self.target) ** w, float(cost)
