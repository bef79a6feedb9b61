"""tf.distribute for every training (standalone children, `scripts/train.py`, the ENAS supernet,
transfer): which strategy, how the batch and learning rate scale with it, synchronized
BatchNorm, and which worker writes the run directory.

`make_distribution.kind` (gin) picks the strategy:
* "auto" (default): MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
  MirroredStrategy over all visible GPUs when there are several (or over `devices`), else the
  default one-device strategy.
* "mirrored": MirroredStrategy over `devices`; without them every visible GPU, else every
  logical CPU device (`tf.config.set_logical_device_configuration` makes several, which is how
  the tests check multi-device code without a GPU).
* "multi_worker": MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
  ({"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": i}}), every
  machine runs the same command, and only the chief writes the run directory (`is_chief`).
  It must exist before any other TF op runs, so entry points create it first.
* "one_device" (the first GPU, else the CPU) / "default" (TF's default strategy).

Batches (`distributed_batches`): every worker's input pipeline walks the global batches one
process would build and decodes only its slice of each, which it splits in order across its
replicas, so a step's examples and augmentations do not depend on the number of workers or
replicas; each replica's loss is divided by the global batch (nasnet_rl/loop.py), so the
all-reduced gradient is the global batch's.
"""

import json
import os
from typing import Any, Callable, Optional, Sequence

import gin
import keras
import tensorflow as tf

KINDS = ("auto", "mirrored", "multi_worker", "one_device", "default")
LR_SCALING = ("linear", "none")


def _tf_config() -> dict:
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    return {}
  try:
    parsed = json.loads(raw)
  except json.JSONDecodeError:
    parsed = None
  if not isinstance(parsed, dict) or not isinstance(parsed.get("cluster", {}), dict):
    raise ValueError(f"TF_CONFIG is not a JSON object with a 'cluster' field: {raw[:200]!r}")
  return parsed


def _tf_config_workers() -> int:
  cluster = _tf_config().get("cluster", {})
  return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief() -> bool:
  """Whether this process writes the run directory: always without TF_CONFIG; in a cluster the
  "chief" task, or worker 0 when the cluster has no chief (TF's convention)."""
  conf = _tf_config()
  task = conf.get("task") or {}
  if not task:
    return True
  kind, index = task.get("type"), int(task.get("index", 0))
  if kind == "chief":
    return True
  return kind == "worker" and index == 0 and not conf.get("cluster", {}).get("chief")


CROSS_DEVICE_OPS = {"reduce_to_one": tf.distribute.ReductionToOneDevice,
                    "nccl": tf.distribute.NcclAllReduce,
                    "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce}


def _cross_device_ops(name: Optional[str], devices: Sequence[str]):
  """None lets TF choose (NCCL on GPUs), except on CPU-only device lists: there TF picks
  collective ops, whose launch order differs between replicas when a replica's graph has
  parallel branches holding all-reduces (synchronized BatchNorm in the auxiliary head): we saw
  shape-mismatch aborts, or worse, silently swapped statistics. ReductionToOneDevice wires the
  reduction into the graph and has no ordering to get wrong."""
  if name is None:
    cpu_only = bool(devices) and all("cpu" in d.lower() for d in devices)
    return tf.distribute.ReductionToOneDevice() if cpu_only else None
  if name not in CROSS_DEVICE_OPS:
    raise ValueError(f"unknown cross_device_ops {name!r}; known: {sorted(CROSS_DEVICE_OPS)}")
  return CROSS_DEVICE_OPS[name]()


@gin.configurable
def make_distribution(kind: str = "auto", devices: Optional[Sequence[str]] = None,
                      cross_device_ops: Optional[str] = None) -> tf.distribute.Strategy:
  """The strategy named by `kind` (see the module docstring); `cross_device_ops` picks the
  MirroredStrategy all-reduce ("reduce_to_one", "nccl", "hierarchical_copy"; None: TF's
  choice, ReductionToOneDevice on CPU-only devices)."""
  if kind not in KINDS:
    raise ValueError(f"unknown distribution kind {kind!r}; known: {list(KINDS)}")
  if kind == "multi_worker" or (kind == "auto" and _tf_config_workers() > 1):
    # before anything lists devices: that starts TF's context, and collective ops must be
    # configured first
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
  if kind == "auto":
    kind = "mirrored" if len(gpus) > 1 or devices else "default"
  if kind == "mirrored":
    devices = list(devices or gpus or [d.name for d in tf.config.list_logical_devices("CPU")])
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=_cross_device_ops(cross_device_ops, devices))
  if kind == "one_device":
    return tf.distribute.OneDeviceStrategy(devices[0] if devices else (gpus or ["/cpu:0"])[0])
  return tf.distribute.get_strategy()


def global_batch(batch_size: Optional[int], batch_size_per_replica: Optional[int],
                 replicas: int, owner: str = "train") -> int:
  """The global batch: `batch_size` as given, or `batch_size_per_replica` times the replicas
  (slim's recipes state batch sizes per replica). Exactly one must be given, and the global
  batch must split evenly."""
  if (batch_size is None) == (batch_size_per_replica is None):
    raise ValueError(f"give exactly one of {owner}.batch_size (global) or "
                     f"{owner}.batch_size_per_replica")
  for name, value in (("batch_size", batch_size),
                      ("batch_size_per_replica", batch_size_per_replica)):
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
      raise ValueError(f"{owner}.{name} must be a positive int, got {value!r}")
  batch = batch_size if batch_size is not None else batch_size_per_replica * replicas
  if batch % replicas:
    raise ValueError(f"global batch {batch} does not split evenly across {replicas} replicas")
  return int(batch)


def scaled_learning_rate(base_learning_rate: float, batch: int,
                         base_batch_size: Optional[int], rule: str) -> float:
  """"linear" (Goyal et al. 2017; slim's notes state ImageNet rates as "0.04 * 50" for 50
  replicas): base_learning_rate * batch / base_batch_size; "none": base_learning_rate."""
  if rule not in LR_SCALING:
    raise ValueError(f"lr_scaling must be one of {list(LR_SCALING)}, got {rule!r}")
  if rule == "none" or not base_batch_size:
    return float(base_learning_rate)
  return float(base_learning_rate) * batch / base_batch_size


def synchronize_batch_norm(model: keras.Model) -> int:
  """Makes every BatchNorm of `model` all-reduce its batch moments across replicas, so a step
  does not depend on how the global batch is split; returns how many layers."""
  from nasnet_rl.child import ops  # pylint: disable=g-import-not-at-top
  layers = [l for l in model._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
            if isinstance(l, ops.BatchNorm)]
  for layer in layers:
    layer.synchronized = True
  return len(layers)


def distributed_batches(strategy: tf.distribute.Strategy, batch: int,
                        local_batches: Callable[[int, int, int], tf.data.Dataset]) -> Any:
  """The training input of the loop: `local_batches(global_batch, num_slices, slice_index)`
  builds one worker's slice of every global batch (the same global batches one process builds,
  cut in order: `data.augment.make_batches`' slices); under several replicas each slice is split
  in order across the worker's replicas. So any number of workers and replicas trains on the
  examples and augmentations of one process (tf.distribute's own rebatching would re-run the
  pipeline at the per-replica batch size and change them)."""
  if strategy.num_replicas_in_sync == 1:
    return local_batches(batch, 1, 0)

  def per_worker(ctx: tf.distribute.InputContext):
    return local_batches(batch, ctx.num_input_pipelines, ctx.input_pipeline_id).rebatch(
        ctx.get_per_replica_batch_size(batch))
  return strategy.distribute_datasets_from_function(per_worker)


def num_workers(strategy: tf.distribute.Strategy) -> int:
  """How many worker processes take part in `strategy` (1 unless multi-worker)."""
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return int(strategy.extended._num_workers)  # pylint: disable=protected-access
  return 1


def broadcast_from_chief(strategy: tf.distribute.Strategy, variables: Sequence[tf.Variable],
                         global_step: int) -> int:
  """Gives every worker the chief's `variables` and global step (the others add zeros to an
  all-reduce, so the sum is the chief's value exactly). A resume is read by the chief alone and
  reaches the other workers this way, whether or not the machines share a file system. Returns
  the chief's global step; a no-op on one worker."""
  if num_workers(strategy) == 1:
    return global_step
  chief = is_chief()
  local = max(1, strategy.num_replicas_in_sync // num_workers(strategy))
  variables = list(variables)

  def replica_fn():
    ctx = tf.distribute.get_replica_context()
    source = tf.logical_and(tf.constant(chief), tf.equal(ctx.replica_id_in_sync_group % local, 0))
    values = [tf.cast(tf.convert_to_tensor(v), tf.float64) for v in variables]
    values.append(tf.constant(float(global_step), tf.float64))
    return [ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(source, x, tf.zeros_like(x)))
            for x in values]

  reduced = tf.function(lambda: strategy.run(replica_fn))()
  reduced = [strategy.experimental_local_results(r)[0] for r in reduced]
  for v, value in zip(variables, reduced):
    v.assign(tf.cast(value, v.dtype))
  return int(reduced[-1].numpy())
