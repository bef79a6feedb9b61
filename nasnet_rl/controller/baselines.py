"""Baseline strategies on the same propose/feedback interface as the RL controller, so every
search result can be compared with them on the same budget: random search and regularized
(aging) evolution (Real et al. 2019)."""

import collections
import os
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

import gin
import numpy as np

from nasnet_rl.controller import strategy as strategy_lib


@gin.configurable
class RandomSearch(strategy_lib.Strategy):
  """Every decision drawn uniformly and independently; keeps only the best result seen.
  `seed`: anything `np.random.default_rng` takes (an int, or a sequence such as (seed, epoch))."""

  def __init__(self, num_choices: Sequence[int], seed: Union[int, Sequence[int]] = 0):
    self.num_choices = strategy_lib.check_num_choices(num_choices)
    self.rng = np.random.default_rng(seed)
    self.num_feedback = 0
    self.best_reward: Optional[float] = None
    self.best_decisions: Optional[List[int]] = None

  def propose(self, n: int = 1) -> List[List[int]]:
    out = self.rng.integers(0, self.num_choices, size=(n, len(self.num_choices)))
    return out.tolist()

  def feedback(self, decisions, rewards) -> Dict[str, float]:
    arr = strategy_lib.check_decisions(decisions, self.num_choices, rewards)
    for d, r in zip(arr.tolist(), rewards):
      self.num_feedback += 1
      if self.best_reward is None or float(r) > self.best_reward:
        self.best_reward, self.best_decisions = float(r), d
    return {"best_reward": self.best_reward} if self.best_reward is not None else {}

  def _state(self) -> Dict:
    return {"num_choices": self.num_choices, "rng": strategy_lib.numpy_rng_state(self.rng),
            "num_feedback": self.num_feedback, "best_reward": self.best_reward,
            "best_decisions": self.best_decisions}

  def save(self, directory: str) -> str:
    path = os.path.join(directory, self.checkpoint_name)
    strategy_lib.save_json(path, self._state())
    return path

  def restore(self, directory: str) -> None:
    state = strategy_lib.load_json(os.path.join(directory, self.checkpoint_name))
    if state["num_choices"] != self.num_choices:
      raise ValueError("checkpoint was written for different num_choices")
    strategy_lib.set_numpy_rng_state(self.rng, state["rng"])
    self.num_feedback = state["num_feedback"]
    self.best_reward, self.best_decisions = state["best_reward"], state["best_decisions"]


@gin.configurable
class RegularizedEvolution(strategy_lib.Strategy):
  """Aging evolution (Real et al. 2019, Algorithm 1).

  Proposals are random until `population_size` results have come back; afterwards each
  proposal is a tournament: `sample_size` members drawn at random (without replacement), the
  best is the parent, the child is the parent with exactly one decision set to a different
  value. Every feedback joins the population and the oldest member dies once it is full.
  Proposals made in one batch all see the same population (as asynchronous workers would).
  """

  def __init__(self, num_choices: Sequence[int], population_size: int = 100,
               sample_size: int = 25, seed: int = 0):
    self.num_choices = strategy_lib.check_num_choices(num_choices)
    if not 1 <= sample_size <= population_size:
      raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size} and "
                       f"{population_size}")
    self.population_size, self.sample_size = int(population_size), int(sample_size)
    self.rng = np.random.default_rng(seed)
    self.population: Deque[Tuple[List[int], float]] = collections.deque()
    self.num_feedback = 0
    self.best_reward: Optional[float] = None
    self.best_decisions: Optional[List[int]] = None
    self._mutable = [i for i, n in enumerate(self.num_choices) if n > 1]

  def mutate(self, parent: Sequence[int]) -> List[int]:
    """A copy of `parent` with exactly one decision (of those with >1 choice) changed."""
    child = list(int(x) for x in parent)
    if not self._mutable:  # nothing can change: every decision has a single choice
      return child
    i = self._mutable[int(self.rng.integers(len(self._mutable)))]
    # Draw from the n-1 other values so the child always differs from its parent.
    v = int(self.rng.integers(self.num_choices[i] - 1))
    child[i] = v if v < child[i] else v + 1
    return child

  def propose(self, n: int = 1) -> List[List[int]]:
    out = []
    for _ in range(n):
      if len(self.population) < self.population_size:
        out.append(self.rng.integers(0, self.num_choices).tolist())
        continue
      idx = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
      # Ties go to the earliest sampled member (deterministic given the RNG).
      parent = max((self.population[int(i)] for i in idx), key=lambda m: m[1])
      out.append(self.mutate(parent[0]))
    return out

  def feedback(self, decisions, rewards) -> Dict[str, float]:
    arr = strategy_lib.check_decisions(decisions, self.num_choices, rewards)
    for d, r in zip(arr.tolist(), rewards):
      self.population.append((d, float(r)))
      while len(self.population) > self.population_size:
        self.population.popleft()  # aging: the oldest dies, not the worst
      self.num_feedback += 1
      if self.best_reward is None or float(r) > self.best_reward:
        self.best_reward, self.best_decisions = float(r), d
    if not self.population:
      return {}
    pop_rewards = [m[1] for m in self.population]
    return {"best_reward": self.best_reward, "population_size": float(len(pop_rewards)),
            "population_mean_reward": float(np.mean(pop_rewards))}

  def _state(self) -> Dict:
    return {"num_choices": self.num_choices, "population_size": self.population_size,
            "sample_size": self.sample_size, "rng": strategy_lib.numpy_rng_state(self.rng),
            "population": [[d, r] for d, r in self.population],
            "num_feedback": self.num_feedback, "best_reward": self.best_reward,
            "best_decisions": self.best_decisions}

  def save(self, directory: str) -> str:
    path = os.path.join(directory, self.checkpoint_name)
    strategy_lib.save_json(path, self._state())
    return path

  def restore(self, directory: str) -> None:
    state = strategy_lib.load_json(os.path.join(directory, self.checkpoint_name))
    if state["num_choices"] != self.num_choices:
      raise ValueError("checkpoint was written for different num_choices")
    if (state["population_size"], state["sample_size"]) != (self.population_size,
                                                            self.sample_size):
      raise ValueError(f"checkpoint has population_size={state['population_size']}, "
                       f"sample_size={state['sample_size']}; this strategy has "
                       f"{self.population_size}, {self.sample_size}")
    strategy_lib.set_numpy_rng_state(self.rng, state["rng"])
    self.population = collections.deque((list(d), float(r)) for d, r in state["population"])
    self.num_feedback = state["num_feedback"]
    self.best_reward, self.best_decisions = state["best_reward"], state["best_decisions"]
