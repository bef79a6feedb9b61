"""Transfer training: a scaled network of any genotype trained on a new dataset, on one device or
many (tf.distribute), with the NASNet ImageNet or CIFAR recipe, then reported and exported.

Recipes live in gin/transfer/*.gin with their sources. What this module adds to them:
* Batch: `batch_size` is the global batch (or give `batch_size_per_replica`, and the global batch
  is that times the number of replicas, as in slim's "batch size (per replica)" notes). Each
  replica gets batch_size / num_replicas examples.
* Learning rate: linear scaling (`lr_scaling="linear"`): lr = base_learning_rate * global batch
  / base_batch_size. slim's notes state the ImageNet rates that way ("0.04 * 50" for 50
  replicas of 32), and Goyal et al. 2017 give the rule; "none" keeps base_learning_rate.
* BatchNorm: statistics are per replica by default (as in slim's synchronous replicas), so keep
  the per-replica batch near the recipe's (32 Mobile, 16 Large); `sync_batch_norm=True`
  all-reduces the batch moments across replicas, which makes a step independent of the number
  of replicas (the Mirrored test checks it against one device). Moving averages keep the
  recipe's momentum per step.
"""

import dataclasses
import os
import time
from typing import Any, Dict, Optional, Tuple

import gin
import keras
import numpy as np
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import xla
from nasnet_rl.child import ops
from nasnet_rl.child import trainer
from nasnet_rl.transfer import distribute
from nasnet_rl.transfer import export
from nasnet_rl.transfer import preprocess
from nasnet_rl.transfer import report as report_lib
from nasnet_rl.transfer import scaling

OPTIMIZERS = ("rmsprop", "sgd")
SCHEDULES = ("exponential", "cosine", "cosine_restarts", "constant")


def _global_batch(batch_size, batch_size_per_replica, replicas) -> int:
  if (batch_size is None) == (batch_size_per_replica is None):
    raise ValueError("give exactly one of train_transfer.batch_size (global) or "
                     "train_transfer.batch_size_per_replica")
  batch = batch_size if batch_size is not None else batch_size_per_replica * replicas
  if batch < replicas or batch % replicas:
    raise ValueError(f"global batch {batch} does not split evenly across {replicas} replicas")
  return int(batch)


def make_schedule(kind: str, learning_rate: float, steps_per_epoch: int, epochs: int,
                  decay_rate: float = 0.97, epochs_per_decay: float = 2.4, lr_min: float = 0.0,
                  restart_epochs: int = 10, restart_mult: float = 2.0):
  """Learning-rate schedule by name, in optimizer steps."""
  total = max(1, steps_per_epoch * epochs)
  if kind == "exponential":  # slim train_image_classifier: exponential_decay(staircase=True)
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=max(1, int(round(epochs_per_decay * steps_per_epoch))),
        decay_rate=decay_rate, staircase=True)
  if kind == "cosine":
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total,
                                                  alpha=lr_min / learning_rate)
  if kind == "cosine_restarts":  # SGDR (Loshchilov & Hutter 2017), as in ENAS
    return keras.optimizers.schedules.CosineDecayRestarts(
        learning_rate, first_decay_steps=max(1, restart_epochs * steps_per_epoch),
        t_mul=restart_mult, m_mul=1.0, alpha=lr_min / learning_rate)
  if kind == "constant":
    return learning_rate
  raise ValueError(f"unknown lr_schedule {kind!r}; known: {list(SCHEDULES)}")


def make_optimizer(kind: str, schedule, momentum: float, rmsprop_decay: float,
                   epsilon: float, nesterov: bool, grad_clip_norm: Optional[float]):
  """RMSProp (slim train_image_classifier defaults: decay 0.9, momentum 0.9, epsilon 1.0; Keras
  adds epsilon outside the square root, TF1 inside, so the same number damps a little
  differently) or SGD with momentum; global-norm clipping."""
  if kind == "rmsprop":
    return keras.optimizers.RMSprop(schedule, rho=rmsprop_decay, momentum=momentum,
                                    epsilon=epsilon, global_clipnorm=grad_clip_norm)
  if kind == "sgd":
    return keras.optimizers.SGD(schedule, momentum=momentum, nesterov=nesterov,
                                global_clipnorm=grad_clip_norm)
  raise ValueError(f"unknown optimizer {kind!r}; known: {list(OPTIMIZERS)}")


def synchronize_batch_norm(model: keras.Model) -> int:
  """Makes every BatchNorm of `model` all-reduce its batch moments across replicas."""
  layers = [l for l in model._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
            if isinstance(l, ops.BatchNorm)]
  for layer in layers:
    layer.synchronized = True
  return len(layers)


@gin.configurable
def train_transfer(geno: genotype_lib.Genotype, splits: data_lib.DataSplits,
                   workdir: Optional[str] = None, *,
                   strategy: Optional[tf.distribute.Strategy] = None,
                   epochs: int = 1, steps_per_epoch: Optional[int] = None,
                   batch_size: Optional[int] = 32, batch_size_per_replica: Optional[int] = None,
                   preprocessing: str = "cifar", augment: bool = True, cutout: int = 0,
                   optimizer: str = "sgd", base_learning_rate: float = 0.025,
                   base_batch_size: int = 32, lr_scaling: str = "linear",
                   lr_schedule: str = "cosine", lr_decay_rate: float = 0.97,
                   epochs_per_decay: float = 2.4, lr_min: float = 0.0,
                   restart_epochs: int = 10, restart_mult: float = 2.0,
                   momentum: float = 0.9, rmsprop_decay: float = 0.9, epsilon: float = 1.0,
                   nesterov: bool = False, grad_clip_norm: Optional[float] = 5.0,
                   aux_weight: float = 0.4, label_smoothing: float = 0.0,
                   sync_batch_norm: bool = False, finetune_from: Optional[str] = None,
                   train_head_only: bool = False, seed: int = 0, export_model: bool = True,
                   saved_model: bool = True, evaluate_test: bool = True,
                   verbose: int = 2) -> Tuple[Dict[str, Any], keras.Model]:
  """Builds `scaling.scale()` (gin-configured) of `geno` for `splits`, trains, evaluates,
  exports to `workdir`; returns (metrics, trained model). Defaults are the NASNet CIFAR recipe; see
  gin/transfer/*.gin for the published recipes."""
  keras.utils.set_random_seed(seed)
  strategy = strategy or distribute.make_strategy()
  replicas = strategy.num_replicas_in_sync
  batch = _global_batch(batch_size, batch_size_per_replica, replicas)
  if lr_scaling not in ("linear", "none"):
    raise ValueError(f"lr_scaling must be 'linear' or 'none', got {lr_scaling!r}")
  lr = base_learning_rate * (batch / base_batch_size if lr_scaling == "linear" else 1.0)
  sc = scaling.scale()
  size = (sc.image_size, sc.image_size)
  channels = splits.image_shape[-1]
  steps = steps_per_epoch or max(1, splits.sizes["train"] // batch)

  with strategy.scope():
    progress = tf.Variable(0.0, trainable=False, name="drop_path_progress")
    model = scaling.build(geno, sc, splits.num_classes, channels, drop_path_progress=progress)
    copied = (export.load_body_weights(model, finetune_from, train_head_only)
              if finetune_from else 0)
    if sync_batch_norm:
      synchronize_batch_norm(model)
    schedule = make_schedule(lr_schedule, lr, steps, epochs, lr_decay_rate, epochs_per_decay,
                             lr_min, restart_epochs, restart_mult)
    opt = make_optimizer(optimizer, schedule, momentum, rmsprop_decay, epsilon, nesterov,
                         grad_clip_norm)
    loss = trainer._sparse_ce(label_smoothing)  # pylint: disable=protected-access
    has_aux = isinstance(model.output, dict)
    if has_aux:
      model.compile(opt, loss={"logits": loss, "aux_logits": loss},
                    loss_weights={"logits": 1.0, "aux_logits": aux_weight},
                    metrics={"logits": ["accuracy"]}, jit_compile=xla.enabled())
    else:
      model.compile(opt, loss=loss, metrics=["accuracy"], jit_compile=xla.enabled())

  mean, std = ((preprocess.IMAGENET_MEAN,) * channels, (preprocess.IMAGENET_STD,) * channels) \
      if preprocessing == "imagenet" else (splits.mean, splits.std)
  pipe = lambda ds, training, b, sd=seed: preprocess.make_pipeline(
      preprocessing, ds, b, training, size, mean, std, seed=sd, cutout=cutout if training else 0,
      augment=augment)

  def train_batches(local_batch, shards=1, index=0):
    ds = splits.train.shard(shards, index) if shards > 1 else splits.train
    ds = pipe(ds, True, local_batch, seed + index)
    if steps_per_epoch:
      ds = ds.repeat().take(steps_per_epoch * epochs)
    if has_aux:
      ds = ds.map(lambda x, y: (x, {"logits": y, "aux_logits": y}))
    return ds

  if replicas == 1:
    train = train_batches(batch)
  else:
    # Each input pipeline (one per worker) builds and augments whole local batches exactly as
    # one device would, then splits them in order across its replicas; tf.distribute's own
    # rebatching re-runs the pipeline at the per-replica batch size and so changes which
    # examples and augmentations a step sees.
    def per_worker(ctx: tf.distribute.InputContext):
      local = batch // ctx.num_input_pipelines
      return train_batches(local, ctx.num_input_pipelines, ctx.input_pipeline_id).rebatch(
          ctx.get_per_replica_batch_size(batch))
    train = strategy.distribute_datasets_from_function(per_worker)

  timer, guard = trainer._EpochTimer(), trainer._NanGuard()  # pylint: disable=protected-access
  callbacks = [trainer._DropPathSchedule(progress, steps * epochs), timer, guard]  # pylint: disable=protected-access
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    callbacks.append(trainer._EpochSummaries(os.path.join(workdir, "tensorboard")))  # pylint: disable=protected-access
  if verbose:
    print(f"transfer {geno.name or '(unnamed)'} at {sc.size_name} ({sc.body} body, "
          f"{size[0]}x{size[1]}x{channels}) on {splits.name}: {replicas} replica(s), global "
          f"batch {batch}, lr {lr:g}, {steps} steps x {epochs} epochs", flush=True)
  start = time.time()
  history = model.fit(train, epochs=epochs, steps_per_epoch=steps if steps_per_epoch else None,
                      callbacks=callbacks, verbose=verbose, shuffle=False)
  train_seconds = time.time() - start
  if guard.bad_batch is not None:
    raise trainer.ChildDivergedError(f"non-finite loss at epoch {len(history.history['loss'])}, "
                                     f"batch {guard.bad_batch}")

  evaluate = lambda ds: trainer.accuracy(model, pipe(ds, False, max(batch, 256)))
  net_report = report_lib.network_report(export.inference_model(model))
  metrics = {
      "genotype": geno.name, "scale": dataclasses.asdict(sc),
      "size": sc.size_name, "dataset": splits.name, "num_classes": splits.num_classes,
      "replicas": replicas, "global_batch_size": batch, "learning_rate": lr,
      "params": int(model.count_params()),
      "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
      "inference_params": net_report["params"], "mult_adds": net_report["mult_adds"],
      "finetuned_layers": copied, "epochs": epochs, "steps_per_epoch": steps,
      "train_seconds": round(train_seconds, 2),
      "images_per_second": round(steps * batch * max(1, len(timer.seconds) - 1)
                                 / sum(timer.seconds[1:] or timer.seconds), 1),
      "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
      "val_accuracy": evaluate(splits.validation) if splits.sizes.get("validation") else None,
  }
  if evaluate_test:
    metrics["test_accuracy"] = evaluate(splits.test)
  if workdir and export_model:
    preprocessing_info = {"style": preprocessing, "image_size": list(size), "channels": channels,
                          "mean": list(mean), "std": list(std),
                          "input": "float32 [N, H, W, C], (pixels / 255 - mean) / std"}
    export.export_run(model, workdir, geno, metrics, net_report, preprocessing_info,
                      saved_model=saved_model)
  return metrics, model
