"""Standalone child training: build a genotype's network, train it with SGD + cosine LR,
report validation and test accuracy. Used by `scripts/train.py` and by the standalone search.

Defaults are the NASNet CIFAR recipe (TF-slim nasnet.py "Notes for training NASNet Cifar
Model": batch 32, LR 0.025 cosine, aux weight 0.4, clip global norm 5, drop path keep 0.6,
weight decay 5e-4). Keras' L2(l) adds l*sum(w^2); slim's l2_regularizer(wd) adds
wd*sum(w^2)/2, so `weight_decay` here is slim's and is halved when passed to Keras.

With a workdir the training is resumable (`nasnet_rl/resume.py`): checkpoints every epoch (and
every `training_checkpoints.every_steps` steps) under workdir/checkpoints/, and the same command
run again continues from the newest one.
"""

import os
from typing import Any, Dict, Optional

import gin
import keras
import numpy as np
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl import distribute
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import jsonio
from nasnet_rl import loop as loop_lib
from nasnet_rl import optim
from nasnet_rl import precision as precision_lib
from nasnet_rl import progress as progress_lib
from nasnet_rl import resume
from nasnet_rl import rundir
from nasnet_rl import xla
from nasnet_rl.child import flops
from nasnet_rl.child import network
from nasnet_rl.child import ops


class ChildDivergedError(RuntimeError):
  """Training diverged: a NaN/inf loss, or non-finite weights or logits after training (a
  diverging last step can leave a finite loss while the weights overflow)."""


def check_finite_weights(model: keras.Model) -> None:
  """Raises ChildDivergedError naming the first weight that holds a NaN or inf."""
  for w in model.weights:
    if not np.all(np.isfinite(np.asarray(w))):
      raise ChildDivergedError(f"non-finite weights after training ({w.path})")


@gin.configurable
def build_child(geno: genotype_lib.Genotype, num_classes: int, input_shape, *,
                body: str = "cifar", num_cells: int = 6, filters: Optional[int] = 32,
                penultimate_filters: Optional[int] = None, aux_head: bool = False,
                dropout: float = 0.0, drop_path_rate: float = 0.0, weight_decay: float = 5e-4,
                bn_momentum: float = 0.9, bn_epsilon: float = 1e-5,
                stem_stride: int = 1, stem_multiplier: int = 3, stem_filters: int = 32,
                skip_reduction_input: bool = False,
                drop_path_progress: Optional[tf.Variable] = None) -> keras.Model:
  """The child network of a genotype; `body` is "cifar" (stem_stride, stem_multiplier) or
  "imagenet" (stem_filters); see child/network.py."""
  if penultimate_filters is not None:
    filters = None
  body_kwargs = ({"stem_stride": stem_stride, "stem_multiplier": stem_multiplier}
                 if body == "cifar" else {"stem_filters": stem_filters})
  kw = dict(num_classes=num_classes, input_shape=tuple(input_shape), num_cells=num_cells,
            filters=filters, penultimate_filters=penultimate_filters, aux_head=aux_head,
            dropout=dropout, drop_path_rate=drop_path_rate, drop_path_progress=drop_path_progress,
            bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, l2=weight_decay / 2,
            skip_reduction_input=skip_reduction_input, **body_kwargs)
  if body == "cifar":
    return network.build_cifar_network(geno, **kw)
  if body == "imagenet":
    return network.build_imagenet_network(geno, **kw)
  raise ValueError(f"unknown body {body!r}; expected 'cifar' or 'imagenet'")


def per_example_loss(label_smoothing: float):
  """Cross-entropy of integer labels and logits, one value per example (label smoothing as
  Keras' categorical cross-entropy applies it)."""
  if not label_smoothing:
    return lambda y, logits: keras.losses.sparse_categorical_crossentropy(
        y, logits, from_logits=True)

  def loss(y_true, logits):
    y = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), tf.shape(logits)[-1])
    return keras.losses.categorical_crossentropy(y, logits, from_logits=True,
                                                 label_smoothing=label_smoothing)
  return loss


def compile_classifier(model: keras.Model, optimizer) -> None:
  """Attaches `optimizer` to a child or transfer network (so `model.save` keeps its state and
  checkpoints find it); training runs through nasnet_rl/loop.py, not `fit`."""
  model.compile(optimizer)


def run_training(model: keras.Model, strategy: tf.distribute.Strategy, batches, *,
                 workdir: Optional[str], fingerprint: Optional[Dict[str, Any]], epochs: int,
                 steps_per_epoch: int, global_batch: int, label_smoothing: float,
                 aux_weight: float, steps_per_execution: int, verbose: int,
                 label: str, banner: Optional[str] = None) -> resume.State:
  """Trains a compiled classifier through the one training loop (nasnet_rl/loop.py): restores
  the newest checkpoint of `workdir` when `fingerprint` is given (checkpoints enabled), marks the
  run directory validated, trains, checkpoints. Only the chief writes. Raises
  ChildDivergedError after an epoch with a non-finite loss. `banner`: a first line saying what
  runs (printed and logged once the run directory is validated)."""
  step = loop_lib.classifier_step(model, model.optimizer, global_batch,
                                  per_example_loss(label_smoothing), aux_weight)
  loop = loop_lib.Loop(strategy, step, ("loss", "correct", "examples"), jit_compile=xla.enabled())
  writer = distribute.is_chief()
  checkpoints, state = None, resume.State()
  if workdir and fingerprint is not None:
    checkpoints = resume.Checkpoints(workdir, fingerprint, resume.training_checkpoints(),
                                     writer=writer)
    if writer:  # the chief reads the run directory; broadcast_from_chief tells the others
      state = checkpoints.restore(model, {}, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if state.metrics is not None:  # resumed mid-epoch: the epoch's sums so far
      loop.sums.assign(np.asarray(state.metrics[0], np.float32))
      state.metrics = None
  if distribute.num_workers(strategy) > 1:
    if not model.optimizer.built:
      with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    state.global_step = distribute.broadcast_from_chief(
        strategy, list(model.variables) + list(model.optimizer.variables) + [loop.sums],
        state.global_step)
  if workdir:
    rundir.validated(workdir)  # the resume state is good too: a CLI's config.gin may be written
    if writer:
      os.makedirs(workdir, exist_ok=True)
  if banner:
    progress_lib.Log(workdir if writer else None, quiet=not verbose)(banner)
  try:
    return loop_lib.train_epochs(
        loop, model, batches, epochs=epochs, steps_per_epoch=steps_per_epoch,
        global_batch=global_batch, steps_per_call=steps_per_execution, checkpoints=checkpoints,
        state=state, workdir=workdir if writer else None, label=label, verbose=verbose)
  except loop_lib.Diverged as e:
    raise ChildDivergedError(str(e)) from None


def accuracy(model: keras.Model, batches: tf.data.Dataset) -> float:
  """Top-1 accuracy of the main logits over a batched dataset (works with aux-head models)."""
  @tf.function
  def correct(x, y):
    out = model(x, training=False)
    logits = out["logits"] if isinstance(out, dict) else out
    pred = tf.argmax(logits, axis=-1, output_type=tf.int64)
    finite = tf.reduce_all(tf.math.is_finite(logits))
    return (tf.reduce_sum(tf.cast(tf.equal(pred, tf.cast(y, tf.int64)), tf.int64)), tf.size(y),
            finite)

  hits, total = 0, 0
  for x, y in batches:
    h, n, finite = correct(x, y)
    if not bool(finite):  # argmax of NaN logits is class 0: a meaningless accuracy
      raise ChildDivergedError("non-finite logits on evaluation")
    hits, total = hits + int(h), total + int(n)
  return hits / total if total else float("nan")


@gin.configurable
def train_child(geno: genotype_lib.Genotype, splits: data_lib.DataSplits,
                workdir: Optional[str] = None, *, epochs: int = 600,
                batch_size: Optional[int] = 32, batch_size_per_replica: Optional[int] = None,
                learning_rate: float = 0.025, lr_scaling: str = "none",
                base_batch_size: int = 32, lr_min: float = 0.0, momentum: float = 0.9,
                nesterov: bool = False, grad_clip_norm: Optional[float] = 5.0,
                aux_weight: float = 0.4, label_smoothing: float = 0.0, augment: bool = True,
                cutout: int = 0, steps_per_epoch: Optional[int] = None, seed: int = 0,
                save_model: bool = True, evaluate_test: bool = True,
                count_mult_adds: bool = True, precision: str = "float32",
                sync_batch_norm: bool = False, steps_per_execution: int = 1,
                strategy: Optional[tf.distribute.Strategy] = None,
                verbose: int = 1) -> Dict[str, Any]:
  """Trains the child of `geno` on `splits.train`; returns metrics (also written to workdir).

  Distribution (nasnet_rl/distribute.py): `strategy`, else gin's `make_distribution()`;
  `batch_size` is the global batch (or give `batch_size_per_replica`); `lr_scaling="linear"`
  scales `learning_rate` by global batch / `base_batch_size`; `sync_batch_norm` all-reduces the
  BatchNorm moments across replicas. `steps_per_execution` runs up to that many steps in one
  traced call (nasnet_rl/loop.py; calls end at epoch ends and checkpoint steps). Only the chief of a
  multi-worker run writes `workdir`. Raises ChildDivergedError on a non-finite loss, weights or
  logits."""
  for name, value in (("epochs", epochs), ("steps_per_execution", steps_per_execution)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"train_child.{name} must be a positive int, got {value!r}")
  if steps_per_epoch is not None and (not isinstance(steps_per_epoch, int)
                                      or isinstance(steps_per_epoch, bool)
                                      or steps_per_epoch < 1):
    raise ValueError(f"train_child.steps_per_epoch must be None (full epochs) or a positive "
                     f"int, got {steps_per_epoch!r}")
  keras.utils.set_random_seed(seed)
  strategy = strategy or distribute.make_distribution()
  replicas = strategy.num_replicas_in_sync
  batch = distribute.global_batch(batch_size, batch_size_per_replica, replicas, "train_child")
  lr = distribute.scaled_learning_rate(learning_rate, batch, base_batch_size, lr_scaling)
  steps = steps_per_epoch or max(1, splits.sizes["train"] // batch)
  with strategy.scope():
    with precision_lib.policy(precision):  # 'mixed_bfloat16' / 'mixed_float16': precision.py
      model = build_child(geno, splits.num_classes, splits.fixed_image_shape())
    if sync_batch_norm:
      distribute.synchronize_batch_norm(model)
    schedule = keras.optimizers.schedules.CosineDecay(
        lr, decay_steps=steps * epochs, alpha=lr_min / lr)
    optimizer = precision_lib.wrap_optimizer(
        optim.SGD(schedule, momentum=momentum, nesterov=nesterov,
                  global_clipnorm=grad_clip_norm), precision)
    compile_classifier(model, optimizer)
  # masks from (seed, layer, step) and ScheduledDropPath's linear schedule, both in the graph
  ops.seed_drop_paths(model, optimizer.iterations, seed, total_steps=steps * epochs)

  def batches(start: int, count: int):
    """Global steps start .. start + count - 1 of the run's stream of shuffled passes."""
    def local_batches(global_batch, slices, index):
      return data_lib.make_batches(splits.training_input(), batch_size=global_batch,
                                   training=True, mean=splits.mean, std=splits.std,
                                   augment=augment, cutout=cutout, seed=seed, start_batch=start,
                                   num_slices=slices, slice_index=index).take(count)
    return distribute.distributed_batches(strategy, batch, local_batches)

  fingerprint = None
  if workdir and resume.training_checkpoints().enabled:
    fingerprint = {
        "trainer": "train_child", "genotype": resume.genotype_fingerprint(geno),
        "network": resume.gin_bindings("build_child"),
        "dataset": [splits.name, splits.sizes.get("train"), splits.num_classes,
                    list(splits.image_shape)],
        "epochs": epochs, "steps_per_epoch": steps, "batch_size": batch,
        "learning_rate": lr, "lr_min": lr_min, "momentum": momentum,
        "nesterov": nesterov, "grad_clip_norm": grad_clip_norm, "aux_weight": aux_weight,
        "label_smoothing": label_smoothing, "augment": augment, "cutout": cutout, "seed": seed,
        **({} if precision == "float32" else {"precision": precision}),
        **({} if replicas == 1 else {"replicas": replicas}),
        **({} if not sync_batch_norm else {"sync_batch_norm": True})}
  state = run_training(model, strategy, batches, workdir=workdir, fingerprint=fingerprint,
                       epochs=epochs, steps_per_epoch=steps, global_batch=batch,
                       label_smoothing=label_smoothing, aux_weight=aux_weight,
                       steps_per_execution=steps_per_execution, verbose=verbose,
                       label=f"train {geno.name or 'child'}")
  if not distribute.is_chief():
    workdir = None  # a multi-worker run's other workers restore from it but never write
  train_seconds = state.train_seconds
  epoch_seconds = state.epoch_seconds or [train_seconds or 1.0]
  check_finite_weights(model)

  evaluate = lambda ds: accuracy(model, data_lib.make_batches(
      ds, batch_size=max(batch, 256), training=False, mean=splits.mean, std=splits.std))
  metrics = {
      "genotype": geno.name, "params": int(model.count_params()),
      "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
      "epochs": epochs, "train_seconds": round(train_seconds, 2),
      # steady state: the first epoch also traces the graph
      "replicas": replicas, "global_batch_size": batch,
      "images_per_second": round(steps * batch * max(1, len(epoch_seconds) - 1)
                                 / sum(epoch_seconds[1:] or epoch_seconds), 1),
      "history": {k: [float(v) for v in vals] for k, vals in state.history.items()},
      "val_accuracy": evaluate(splits.validation) if splits.sizes.get("validation") else None,
  }
  if evaluate_test:
    metrics["test_accuracy"] = evaluate(splits.test)
  if count_mult_adds:
    metrics["mult_adds"] = flops.count_mult_adds(model, splits.image_shape)
  if workdir:
    with open(os.path.join(workdir, "metrics.json"), "w") as f:
      jsonio.dump(metrics, f, indent=2, sort_keys=True)
    genotype_lib.save(geno, os.path.join(workdir, "genotype.json"))
    if save_model:
      model.save(os.path.join(workdir, "model.keras"))
  return metrics
