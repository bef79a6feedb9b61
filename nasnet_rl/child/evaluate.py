"""Evaluate one child for a search: train it on the proxy split, reward = validation accuracy.

Runs in-process or inside a Ray worker (which first re-applies the driver's gin config).
Never raises for a failing child: NaN, out of memory or a crash come back as a status and
an error string, so the search can give a penalty reward and go on."""

import time
import traceback
from typing import Any, Dict, Optional

import gin
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import trainer

_SPLITS_CACHE: Dict[Any, data_lib.DataSplits] = {}


def _splits(seed: int) -> data_lib.DataSplits:
  """The proxy dataset, loaded once per process (and per gin config)."""
  key = (gin.config_str(), seed)
  if key not in _SPLITS_CACHE:
    _SPLITS_CACHE.clear()
    _SPLITS_CACHE[key] = data_lib.load_dataset(seed=seed)
  return _SPLITS_CACHE[key]


@gin.configurable
def evaluate_child(genotype: Dict[str, Any], seed: int = 0, count_flops: bool = True,
                   gin_config: Optional[str] = None, threads: Optional[int] = None) -> Dict[str, Any]:
  """Trains the child of `genotype` (a genotype dict) and returns a result record."""
  if gin_config is not None:  # a fresh worker process: adopt the driver's configuration
    if threads and not tf.config.threading.get_intra_op_parallelism_threads():
      tf.config.threading.set_intra_op_parallelism_threads(threads)
      tf.config.threading.set_inter_op_parallelism_threads(threads)
    gin.clear_config()
    gin.parse_config(gin_config, skip_unknown=True)  # driver-only configurables
  start = time.time()
  result: Dict[str, Any] = {"status": "ok", "error": None, "reward": None}
  try:
    geno = genotype_lib.Genotype.from_dict(genotype)
    splits = _splits(seed)
    metrics = trainer.train_child(geno, splits, None, seed=seed, save_model=False,
                                  evaluate_test=False, count_mult_adds=count_flops, verbose=0)
    result.update(reward=metrics["val_accuracy"], val_accuracy=metrics["val_accuracy"],
                  params=metrics["params"], train_seconds=metrics["train_seconds"],
                  mult_adds=metrics.get("mult_adds"))
  except trainer.ChildDivergedError as e:
    result.update(status="diverged", error=str(e))
  except tf.errors.ResourceExhaustedError as e:
    result.update(status="oom", error=f"out of memory: {e.message.splitlines()[0]}")
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=f"{type(e).__name__}: {e}",
                  traceback=traceback.format_exc(limit=5))
  result["seconds"] = round(time.time() - start, 2)
  return result
