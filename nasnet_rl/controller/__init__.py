"""Search strategies behind one propose/feedback interface: the LSTM controller trained with
REINFORCE or PPO, random search and regularized evolution."""

from typing import Optional, Sequence

import gin

from nasnet_rl import search_space as search_space_lib
from nasnet_rl.controller.baselines import RandomSearch, RegularizedEvolution
from nasnet_rl.controller.lstm_controller import LSTMController
from nasnet_rl.controller.reinforce import ReinforceStrategy
from nasnet_rl.controller.strategy import Strategy

STRATEGIES = ("reinforce", "random", "evolution")


@gin.configurable
def make_strategy(name: str = "reinforce", num_choices: Optional[Sequence[int]] = None,
                  decisions: Optional[Sequence[search_space_lib.Decision]] = None,
                  seed: int = 0) -> Strategy:
  """A strategy by name over `num_choices` (or a `Decision` list, which the LSTM controller
  uses for attention over earlier blocks). Other settings come from gin bindings of the
  classes (LSTMController, ReinforceStrategy, RegularizedEvolution)."""
  if decisions is not None:
    sizes = [d.num_choices for d in decisions]
    if num_choices is not None and list(num_choices) != sizes:
      raise ValueError("num_choices and decisions disagree; pass one of them")
    num_choices = sizes
  if num_choices is None:
    raise ValueError("make_strategy needs num_choices or decisions")
  if name == "reinforce":
    return ReinforceStrategy(LSTMController(decisions=decisions, num_choices=num_choices,
                                            seed=seed))
  if name == "random":
    return RandomSearch(num_choices, seed=seed)
  if name == "evolution":
    return RegularizedEvolution(num_choices, seed=seed)
  raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")


__all__ = ["LSTMController", "RandomSearch", "RegularizedEvolution", "ReinforceStrategy",
           "Strategy", "STRATEGIES", "make_strategy"]
