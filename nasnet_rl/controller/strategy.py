"""The search-strategy interface (PyGlove-style) and crash-safe checkpoint helpers.

A strategy proposes flat lists of categorical decisions and learns from their rewards; it never
sees a model. The search loop is only:

  for decisions in strategy.propose(n): reward = evaluate(decisions)  ...  strategy.feedback(...)

Checkpoints are one file per strategy, written under a temporary name, flushed to disk and
renamed over the old one (`os.replace` is atomic on POSIX), so a kill mid-save leaves the
previous checkpoint intact.
"""

import abc
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nasnet_rl.checkpointing import atomic_write, load_arrays, load_json, save_arrays, save_json  # noqa: F401  (re-exported for strategies)


class Strategy(abc.ABC):
  """Proposes decision lists over `num_choices` (one categorical size per decision) and takes
  their rewards back. Subclasses checkpoint everything needed to continue identically."""

  num_choices: List[int]

  @abc.abstractmethod
  def propose(self, n: int = 1) -> List[List[int]]:
    """`n` decision lists, each `len(num_choices)` ints with 0 <= d[i] < num_choices[i]."""

  @abc.abstractmethod
  def feedback(self, decisions: Sequence[Sequence[int]],
               rewards: Sequence[float]) -> Dict[str, float]:
    """Learns from evaluated decision lists; returns scalar stats for logging (may be empty)."""

  @abc.abstractmethod
  def save(self, directory: str) -> str:
    """Writes the full state under `directory` atomically; returns the checkpoint path."""

  @abc.abstractmethod
  def restore(self, directory: str) -> None:
    """Loads the state written by `save`; raises FileNotFoundError if there is none."""

  def best(self) -> Tuple[Optional[List[int]], Optional[float]]:
    """(decisions, reward) of the best result fed back so far; (None, None) before any."""
    return getattr(self, "best_decisions", None), getattr(self, "best_reward", None)

  def has_checkpoint(self, directory: str) -> bool:
    """Whether `directory` holds a checkpoint this strategy can restore."""
    return os.path.exists(os.path.join(directory, self.checkpoint_name))

  @property
  def checkpoint_name(self) -> str:
    """File name of this strategy's checkpoint inside the directory."""
    return type(self).__name__.lower() + ".ckpt"


def check_num_choices(num_choices: Sequence[int]) -> List[int]:
  """Validates decision sizes (a non-empty list of ints >= 1) and returns them as a list."""
  sizes = [int(n) for n in num_choices]
  if not sizes:
    raise ValueError("num_choices is empty: a strategy needs at least one decision")
  bad = [i for i, n in enumerate(sizes) if n < 1]
  if bad:
    raise ValueError(f"num_choices must all be >= 1; decision {bad[0]} has {sizes[bad[0]]}")
  return sizes


def check_decisions(decisions: Sequence[Sequence[int]], num_choices: Sequence[int],
                    rewards: Optional[Sequence[float]] = None) -> np.ndarray:
  """Decision lists as an int array [n, len(num_choices)], with a clear error when out of range."""
  arr = np.asarray(decisions, dtype=np.int64)
  if arr.size == 0:
    arr = arr.reshape(0, len(num_choices))
  if arr.ndim != 2 or arr.shape[1] != len(num_choices):
    raise ValueError(f"expected decision lists of length {len(num_choices)}, got shape "
                     f"{arr.shape}")
  bad = (arr < 0) | (arr >= np.asarray(num_choices)[None, :])
  if bad.any():
    k, i = np.argwhere(bad)[0]
    raise ValueError(f"decision list {k}: decision {i} = {arr[k, i]} is outside "
                     f"0..{num_choices[i] - 1}")
  if rewards is not None and len(rewards) != len(arr):
    raise ValueError(f"got {len(arr)} decision lists but {len(rewards)} rewards")
  return arr


def numpy_rng_state(rng: np.random.Generator) -> Dict[str, Any]:
  """A numpy Generator's bit-generator state as JSON-able data (ints stay exact in JSON)."""
  return rng.bit_generator.state


def set_numpy_rng_state(rng: np.random.Generator, state: Dict[str, Any]) -> None:
  """Restores what `numpy_rng_state` returned."""
  if state.get("bit_generator") != type(rng.bit_generator).__name__:
    raise ValueError(f"checkpoint RNG is {state.get('bit_generator')}, this strategy uses "
                     f"{type(rng.bit_generator).__name__}")
  rng.bit_generator.state = state
