"""tf.distribute strategy for transfer training, chosen by gin (`make_strategy.kind`).

* "auto" (default): MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
  MirroredStrategy over all visible GPUs when there are several, else the default strategy.
* "mirrored": MirroredStrategy over `devices` (default: every visible GPU, or the CPU).
* "multi_worker": MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
  ({"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": i}}), and
  every machine runs the same command.
* "one_device" / "default": a single device.

Batches: each worker's input pipeline builds whole local batches (global batch / workers, its
shard of the examples) and splits each in order across its replicas (transfer/train.py), so
every replica sees batch_size / num_replicas examples and the gradient is that of the global
batch (Keras scales each replica's loss by 1 / num_replicas). MultiWorkerMirroredStrategy must exist before
any other TF op runs, so entry points create the strategy first.
"""

import json
import os
from typing import Optional, Sequence

import gin
import tensorflow as tf

KINDS = ("auto", "mirrored", "multi_worker", "one_device", "default")


def _tf_config_workers() -> int:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    return 0
  try:
    cluster = json.loads(raw).get("cluster", {})
  except (json.JSONDecodeError, AttributeError):
    raise ValueError(f"TF_CONFIG is not a JSON object with a 'cluster' field: {raw[:200]!r}") from None
  return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


CROSS_DEVICE_OPS = {"reduce_to_one": tf.distribute.ReductionToOneDevice,
                    "nccl": tf.distribute.NcclAllReduce,
                    "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce}


def _cross_device_ops(name: Optional[str], devices: Optional[Sequence[str]]):
  """None lets TF choose (NCCL on GPUs), except on CPU-only device lists: there TF picks
  collective ops, whose launch order differs between replicas when a replica's graph has
  parallel branches holding all-reduces (synchronized BatchNorm in the auxiliary head): we saw
  shape-mismatch aborts, or worse, silently swapped statistics. ReductionToOneDevice wires the
  reduction into the graph and has no ordering to get wrong."""
  if name is None:
    cpu_only = devices and all("cpu" in d.lower() for d in devices)
    return tf.distribute.ReductionToOneDevice() if cpu_only else None
  if name not in CROSS_DEVICE_OPS:
    raise ValueError(f"unknown cross_device_ops {name!r}; known: {sorted(CROSS_DEVICE_OPS)}")
  return CROSS_DEVICE_OPS[name]()


@gin.configurable
def make_strategy(kind: str = "auto", devices: Optional[Sequence[str]] = None,
                  cross_device_ops: Optional[str] = None) -> tf.distribute.Strategy:
  """The strategy named by `kind` (see the module docstring); `cross_device_ops` picks the
  MirroredStrategy all-reduce ("reduce_to_one", "nccl", "hierarchical_copy"; None: TF's
  choice, ReductionToOneDevice on CPU-only devices)."""
  if kind not in KINDS:
    raise ValueError(f"unknown strategy kind {kind!r}; known: {list(KINDS)}")
  if kind == "auto":
    if _tf_config_workers() > 1:
      kind = "multi_worker"
    elif len(tf.config.list_logical_devices("GPU")) > 1 or devices:
      kind = "mirrored"
    else:
      kind = "default"
  if kind == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if kind == "mirrored":
    return tf.distribute.MirroredStrategy(
        list(devices) if devices else None,
        cross_device_ops=_cross_device_ops(cross_device_ops, devices))
  if kind == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    device = devices[0] if devices else (gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.OneDeviceStrategy(device)
  return tf.distribute.get_strategy()
