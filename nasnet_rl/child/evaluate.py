"""Evaluate one child for a search: train it on the proxy split, reward = validation accuracy.

Runs in-process or inside a Ray actor (which re-applies the driver's gin config for every child
and keeps the loaded dataset between children).
Never raises for a failing child: NaN, out of memory or a crash come back as a status and
a one-line error string, so the search can give a penalty reward and go on.

Only `diverged` and `oom` say something about the architecture. Any other failure (a missing
dataset, a gin value of the wrong type, a bug, a dead worker) is marked `infrastructure`: the
search must neither count it as trained nor cache it nor feed it to the strategy, and
`FailureStreak` stops the search when the same error repeats. `preflight` checks the data, a
model build and one training step once in the driver before the first child.
"""

import dataclasses
import os
import re
import socket
import time
import traceback
from typing import Any, Dict, Optional

import gin
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import rewards
from nasnet_rl.child import trainer

_SPLITS_CACHE: Dict[Any, data_lib.DataSplits] = {}
_DATA_LOADS = 0  # calls of the dataset loader in this process (reported in each result)


def _splits(seed: int) -> data_lib.DataSplits:
  """The proxy dataset, loaded once per process for each (gin config, seed), so a Ray actor
  trains child after child on one load.

  The key is the whole config text, not only the data bindings: what the loader reads can come
  from macros, `@references` or a loader registered in any module, and children of one search
  share one config anyway (they differ only in genotype, an argument), so the whole text hits
  just as often and can never hand back data loaded under other settings. Only the newest
  entry is kept."""
  global _DATA_LOADS
  key = (gin.config_str(), seed)
  if key not in _SPLITS_CACHE:
    _SPLITS_CACHE.clear()
    _DATA_LOADS += 1
    _SPLITS_CACHE[key] = data_lib.load_dataset(seed=seed)
  return _SPLITS_CACHE[key]


def apply_config(gin_config: str, threads: Optional[int] = None) -> None:
  """Makes this (worker) process's gin configuration the driver's `gin_config`, replacing
  whatever the previous child left; `threads` sizes TF's thread pools if nothing ran yet."""
  if threads and not tf.config.threading.get_intra_op_parallelism_threads():
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  gin.clear_config()
  gin.parse_config(gin_config, skip_unknown=True)  # driver-only configurables


@gin.configurable
def evaluate_child(genotype: Dict[str, Any], seed: int = 0, count_flops: bool = True,
                   gin_config: Optional[str] = None, threads: Optional[int] = None) -> Dict[str, Any]:
  """Trains the child of `genotype` (a genotype dict) and returns a result record.

  `gin_config` (a worker process): adopt the driver's configuration first. gin fills this
  function's own parameters (`count_flops`) when the call starts, before that config is parsed,
  so the call is made again under it; otherwise a fresh worker's first child would use the
  defaults and every later child the previous child's bindings."""
  if gin_config is not None:
    try:
      apply_config(gin_config, threads)
    except Exception as e:  # pylint: disable=broad-except  # the same for every child
      return {"status": "failed", "reward": None, "infrastructure": True,
              "error": f"gin config: {one_line_error(e)}",
              "worker": f"{socket.gethostname()}:{os.getpid()}"}
    return evaluate_child(genotype, seed)
  start = time.time()
  result: Dict[str, Any] = {"status": "ok", "error": None, "reward": None}
  try:
    geno = genotype_lib.Genotype.from_dict(genotype)
    loads = _DATA_LOADS
    splits = _splits(seed)
    result["data_cache_hit"] = _DATA_LOADS == loads  # this process had the data loaded
    metrics = trainer.train_child(geno, splits, None, seed=seed, save_model=False,
                                  evaluate_test=False, count_mult_adds=count_flops, verbose=0)
    diverged = rewards.divergence(metrics.get("history", {}).get("loss"), splits.num_classes)
    if diverged:  # finite weights, a reward below chance: not `ok`
      raise trainer.ChildDivergedError(diverged)
    result.update(reward=metrics["val_accuracy"], val_accuracy=metrics["val_accuracy"],
                  params=metrics["params"], train_seconds=metrics["train_seconds"],
                  mult_adds=metrics.get("mult_adds"))
  except trainer.ChildDivergedError as e:
    result.update(status="diverged", error=one_line_error(e))
  except tf.errors.ResourceExhaustedError as e:
    result.update(status="oom", error=f"out of memory: {one_line_error(e, with_type=False)}")
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=one_line_error(e), infrastructure=True,
                  traceback=traceback.format_exc(limit=5))
  result["seconds"] = round(time.time() - start, 2)
  result["worker"] = f"{socket.gethostname()}:{os.getpid()}"  # which process trained it
  result["data_loads"] = _DATA_LOADS  # dataset loads this process has made so far
  return result


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def one_line_error(e: BaseException, with_type: bool = True) -> str:
  """`Type: first line` of an exception, without gin's "In call to configurable ..." context and
  memory addresses (so identical failures have identical text, and history lines stay short)."""
  text = str(getattr(e, "message", None) or e)
  lines = [l.strip() for l in text.splitlines()
           if l.strip() and not l.strip().startswith("In call to configurable")]
  first = _ADDRESS.sub("", lines[0] if lines else "")[:500]
  return f"{type(e).__name__}: {first}" if with_type else first


def is_infrastructure_failure(result: Dict[str, Any]) -> bool:
  """Whether a result failed for a reason that is not the architecture's (see module doc):
  anything but ok, diverged or oom, including a result from a worker that died."""
  return bool(result.get("infrastructure")) or result.get("status") not in (
      "ok", "diverged", "oom")


class SearchAbortedError(RuntimeError):
  """The search cannot go on: its set-up is broken (the same error keeps coming back)."""


@dataclasses.dataclass
class FailureStreak:
  """Stops a search after `limit` consecutive fresh evaluations failed with the same error.

  Call `observe(result)` with every result of a child actually evaluated (not a cached
  duplicate); it raises SearchAbortedError naming the error at the limit. A success, or a
  different error, starts the count again."""
  limit: int = 3
  error: Optional[str] = None
  count: int = 0

  def observe(self, result: Dict[str, Any]) -> None:
    if result.get("status") == "ok" or self.limit <= 0:
      self.error, self.count = None, 0
      return
    error = f"{result.get('status')}: {result.get('error')}"
    self.count = self.count + 1 if error == self.error else 1
    self.error = error
    if self.count >= self.limit:
      raise SearchAbortedError(
          f"{self.count} children in a row failed with the same error, so the set-up is "
          f"broken, not the architectures: {error}")


@gin.configurable
def preflight(genotype: Dict[str, Any], seed: int = 0) -> None:
  """Loads the proxy dataset, builds the child of `genotype` and runs one training step and a
  small evaluation with the configured settings, in the driver, before the first child; any
  problem is one ValueError ("the search cannot start: ..."), so a broken set-up never uses up
  the budget, fills the duplicate cache or teaches the strategy penalty rewards."""
  try:
    geno = genotype_lib.Genotype.from_dict(genotype)
    splits = _splits(seed)
    if splits.num_classes < 2:
      raise ValueError(f"dataset {splits.name!r} has {splits.num_classes} class; a classifier "
                       "needs at least 2")
    if not splits.sizes.get("validation"):
      raise ValueError(f"dataset {splits.name!r} has no validation split (the search's reward); "
                       "set load_dataset.validation_size")
    small = dataclasses.replace(splits, validation=splits.validation.take(64))
    trainer.train_child(geno, small, None, seed=seed, epochs=1, steps_per_epoch=1,
                        save_model=False, evaluate_test=False, count_mult_adds=False, verbose=0)
  except trainer.ChildDivergedError:
    return  # one step of one architecture may diverge; the set-up itself works
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"the search cannot start: {one_line_error(e)}") from None
