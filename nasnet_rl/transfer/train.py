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
* Resuming: with a workdir the training checkpoints every epoch (and every
  `training_checkpoints.every_steps` steps) under workdir/checkpoints/, and the same command run
  again continues from the newest checkpoint (see nasnet_rl/resume.py); each input pipeline's
  batches are a stream of passes seeded by (seed + pipeline, pass) that starts at the restored
  step.
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import gin
import keras
import numpy as np
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import optim
from nasnet_rl import precision as precision_lib
from nasnet_rl import resume
from nasnet_rl import rundir
from nasnet_rl.child import ops
from nasnet_rl.child import trainer
from nasnet_rl import distribute
from nasnet_rl.transfer import export
from nasnet_rl.transfer import keras_weights
from nasnet_rl.transfer import preprocess
from nasnet_rl.transfer import report as report_lib
from nasnet_rl.transfer import scaling

OPTIMIZERS = ("rmsprop", "sgd")
SCHEDULES = ("exponential", "cosine", "cosine_restarts", "constant")


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
  differently) or SGD with momentum; global-norm clipping of the all-reduced gradient and a
  skipped step when it is non-finite, the same on every replica (nasnet_rl/optim.py)."""
  if kind == "rmsprop":
    return optim.RMSprop(schedule, rho=rmsprop_decay, momentum=momentum, epsilon=epsilon,
                         global_clipnorm=grad_clip_norm)
  if kind == "sgd":
    return optim.SGD(schedule, momentum=momentum, nesterov=nesterov,
                     global_clipnorm=grad_clip_norm)
  raise ValueError(f"unknown optimizer {kind!r}; known: {list(OPTIMIZERS)}")


def _is_head(layer) -> bool:
  """The classifier and auxiliary-head layers: new for the target task (Keras has no aux head)."""
  return layer.name == "logits" or layer.name.startswith("aux")


def _freeze_body(model: keras.Model) -> int:
  """Freezes every layer with weights but the heads (a frozen BatchNorm uses its moving
  statistics, so the body computes exactly what it did); returns how many were frozen."""
  frozen = 0
  for layer in model.layers:
    if layer.weights and not _is_head(layer):
      layer.trainable = False
      frozen += 1
  return frozen


def _to_rgb(splits: data_lib.DataSplits) -> data_lib.DataSplits:
  """Grey images repeated into 3 channels, for a network pretrained on RGB."""
  grey_to_rgb = lambda x, y: (tf.image.grayscale_to_rgb(x), y)
  rgb = lambda ds: ds.map(grey_to_rgb, num_parallel_calls=tf.data.AUTOTUNE)
  train = rgb(splits.train)
  encoded = splits.train_encoded
  if encoded is not None and encoded.decoded_as is splits.train:  # still decoded after shuffle
    encoded = dataclasses.replace(encoded.map(grey_to_rgb), decoded_as=train)
  else:
    encoded = None
  return dataclasses.replace(splits, train=train, train_encoded=encoded,
                             validation=rgb(splits.validation),
                             test=rgb(splits.test), image_shape=(*splits.image_shape[:2], 3),
                             mean=tuple(splits.mean) * 3 if len(splits.mean) == 1 else splits.mean,
                             std=tuple(splits.std) * 3 if len(splits.std) == 1 else splits.std)


def check_init_from(init_from: Optional[str], geno: genotype_lib.Genotype,
                    finetune_from: Optional[str] = None, preprocessing: str = "imagenet") -> None:
  """Cheap checks of `init_from` before anything is loaded or written: its form, the genotype
  (NASNet-A), the preprocessing, not together with `finetune_from`."""
  if not init_from:
    return
  if finetune_from:
    raise ValueError("give train_transfer.finetune_from or train_transfer.init_from, not both")
  if preprocessing != "imagenet":
    raise ValueError(f"init_from={init_from!r} needs train_transfer.preprocessing='imagenet' "
                     "(pixels in [-1, 1] as keras.applications.nasnet.preprocess_input makes "
                     f"them), got {preprocessing!r}")
  nasnet_a = genotype_lib.published("nasnet_a")
  if (geno.normal, geno.reduction) != (nasnet_a.normal, nasnet_a.reduction):
    raise ValueError(f"init_from={init_from!r} holds NASNet-A weights; transfer the nasnet_a "
                     f"genotype (--source=nasnet_a), not {geno.name or 'this cell'}")
  if init_from.startswith("keras:"):
    if init_from[len("keras:"):] not in keras_weights.APPLICATIONS:
      raise ValueError(f"init_from {init_from!r}: expected keras:mobile or keras:large")
  elif not os.path.isfile(init_from):
    raise ValueError(f"init_from {init_from!r}: no such file; expected "
                     f"{keras_weights.INIT_FROM_HELP}")


def query_init_from() -> Tuple[Optional[str], Optional[str], str]:
  """(init_from, finetune_from, preprocessing) as gin binds them for train_transfer."""
  def bound(name, default):
    try:
      return gin.query_parameter(f"train_transfer.{name}")
    except ValueError:
      return default
  return bound("init_from", None), bound("finetune_from", None), bound("preprocessing", "cifar")


def _keras_start(init_from, geno, sc, splits, finetune_from, preprocessing):
  """The Keras application to start from, our Scale for it and the (RGB) data: the network is
  the application's NASNet-A (N@F, stem, wiring, Keras' zero-padded strided pools, its BN
  settings); the gin Scale keeps the input size, auxiliary head, dropout, drop path and weight
  decay. Inputs must be Keras' nasnet.preprocess_input pixels ([-1, 1]): preprocessing
  'imagenet' (central 87.5% crops for evaluation)."""
  check_init_from(init_from, geno, finetune_from, preprocessing)
  if splits.image_shape[-1] not in (1, 3):
    raise ValueError(f"init_from={init_from!r} needs RGB or grey images, got "
                     f"{splits.image_shape[-1]} channels")
  keras_model = keras_weights.load_keras_application(init_from)
  arch = keras_weights.read_keras_nasnet(keras_model)
  sc = keras_weights.keras_scale(arch, image_size=sc.image_size, aux_head=sc.aux_head,
                                 dropout=sc.dropout, drop_path_rate=sc.drop_path_rate,
                                 weight_decay=sc.weight_decay)
  return keras_model, sc, (_to_rgb(splits) if splits.image_shape[-1] == 1 else splits)


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
                   init_from: Optional[str] = None, precision: str = "float32",
                   train_head_only: bool = False, steps_per_execution: int = 1,
                   seed: int = 0, export_model: bool = True,
                   saved_model: bool = True, evaluate_test: bool = True,
                   verbose: int = 2) -> Tuple[Dict[str, Any], keras.Model]:
  """Builds `scaling.scale()` (gin-configured) of `geno` for `splits`, trains, evaluates,
  exports to `workdir`; returns (metrics, trained model). Defaults are the NASNet CIFAR recipe; see
  gin/transfer/*.gin for the published recipes. Starting weights: `finetune_from` (one of our
  runs) or `init_from` (a Keras NASNetMobile/NASNetLarge, see `_keras_start`); both replace the
  classifier, and `train_head_only` freezes everything else."""
  keras.utils.set_random_seed(seed)
  strategy = strategy or distribute.make_distribution()
  replicas = strategy.num_replicas_in_sync
  batch = distribute.global_batch(batch_size, batch_size_per_replica, replicas, "train_transfer")
  lr = distribute.scaled_learning_rate(base_learning_rate, batch, base_batch_size, lr_scaling)
  sc = scaling.scale()
  keras_model = None
  if init_from:
    keras_model, sc, splits = _keras_start(init_from, geno, sc, splits, finetune_from,
                                           preprocessing)
  size = (sc.image_size, sc.image_size)
  channels = splits.image_shape[-1]
  steps = steps_per_epoch or max(1, splits.sizes["train"] // batch)

  with strategy.scope():
    with precision_lib.policy(precision):  # see nasnet_rl/precision.py
      model = scaling.build(geno, sc, splits.num_classes, channels)
    copied = (export.load_body_weights(model, finetune_from, train_head_only)
              if finetune_from else 0)
    initialised = 0
    if keras_model is not None:
      initialised = keras_weights.copy_keras_weights(keras_model, model, include_head=False)
      copied = _freeze_body(model) if train_head_only else sum(
          1 for l in model.layers if l.weights and not _is_head(l))
      del keras_model
    if sync_batch_norm:
      distribute.synchronize_batch_norm(model)
    schedule = make_schedule(lr_schedule, lr, steps, epochs, lr_decay_rate, epochs_per_decay,
                             lr_min, restart_epochs, restart_mult)
    opt = precision_lib.wrap_optimizer(
        make_optimizer(optimizer, schedule, momentum, rmsprop_decay, epsilon, nesterov,
                       grad_clip_norm), precision)
    trainer.compile_classifier(model, opt)

  mean, std = ((preprocess.IMAGENET_MEAN,) * channels, (preprocess.IMAGENET_STD,) * channels) \
      if preprocessing == "imagenet" else (splits.mean, splits.std)
  pipe = lambda ds, training, b, start=None, slices=1, index=0: preprocess.make_pipeline(
      preprocessing, ds, b, training, size, mean, std, seed=seed,
      cutout=cutout if training else 0, augment=augment, start_batch=start, num_slices=slices,
      slice_index=index)
  ops.seed_drop_paths(model, opt.iterations, seed, total_steps=steps * epochs)  # in-graph

  def batches(start: int, count: int):
    """Global steps start .. start + count - 1 of the run's stream of passes."""
    def local_batches(global_batch, slices, index):
      # shuffle the records (file names, encoded examples), decode this worker's slice after
      return pipe(splits.training_input(), True, global_batch, start, slices, index).take(count)
    return distribute.distributed_batches(strategy, batch, local_batches)

  fingerprint = None
  if workdir and resume.training_checkpoints().enabled:
    fingerprint = {
        "trainer": "train_transfer", "genotype": resume.genotype_fingerprint(geno),
        "scale": dataclasses.asdict(sc),
        "dataset": [splits.name, splits.sizes.get("train"), splits.num_classes,
                    list(splits.image_shape)],
        "replicas": replicas, "global_batch_size": batch, "learning_rate": lr, "epochs": epochs,
        "steps_per_epoch": steps, "preprocessing": preprocessing, "augment": augment,
        "cutout": cutout, "optimizer": optimizer, "lr_schedule": lr_schedule,
        "lr_decay_rate": lr_decay_rate, "epochs_per_decay": epochs_per_decay, "lr_min": lr_min,
        "restart_epochs": restart_epochs, "restart_mult": restart_mult, "momentum": momentum,
        "rmsprop_decay": rmsprop_decay, "epsilon": epsilon, "nesterov": nesterov,
        "grad_clip_norm": grad_clip_norm, "aux_weight": aux_weight,
        "label_smoothing": label_smoothing, "sync_batch_norm": sync_batch_norm,
        "finetune_from": finetune_from, "init_from": init_from,
        "train_head_only": train_head_only, "seed": seed,
        **({} if precision == "float32" else {"precision": precision})}
  banner = (f"transfer {geno.name or '(unnamed)'} at {sc.size_name} ({sc.body} body, "
            f"{size[0]}x{size[1]}x{channels}) on {splits.name}: {replicas} replica(s), global "
            f"batch {batch}, lr {lr:g}, {steps} steps x {epochs} epochs")
  state = trainer.run_training(model, strategy, batches, workdir=workdir,
                               fingerprint=fingerprint, epochs=epochs, steps_per_epoch=steps,
                               global_batch=batch, label_smoothing=label_smoothing,
                               aux_weight=aux_weight, steps_per_execution=steps_per_execution,
                               verbose=verbose, label=f"transfer {sc.size_name}",
                               banner=banner)
  if not distribute.is_chief():
    workdir = None  # a multi-worker run's other workers restore from it but never write
  train_seconds = state.train_seconds
  epoch_seconds = state.epoch_seconds or [train_seconds or 1.0]

  evaluate = lambda ds: trainer.accuracy(model, pipe(ds, False, max(batch, 256)))
  net_report = report_lib.network_report(export.inference_model(model))
  metrics = {
      "genotype": geno.name, "scale": dataclasses.asdict(sc),
      "size": sc.size_name, "dataset": splits.name, "num_classes": splits.num_classes,
      "replicas": replicas, "global_batch_size": batch, "learning_rate": lr,
      "precision": precision, "params": int(model.count_params()),
      "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
      "inference_params": net_report["params"], "mult_adds": net_report["mult_adds"],
      "finetuned_layers": copied, "init_from": init_from, "initialised_weights": initialised,
      "train_head_only": train_head_only, "epochs": epochs, "steps_per_epoch": steps,
      "train_seconds": round(train_seconds, 2),
      "images_per_second": round(steps * batch * max(1, len(epoch_seconds) - 1)
                                 / sum(epoch_seconds[1:] or epoch_seconds), 1),
      "history": {k: [float(v) for v in vals] for k, vals in state.history.items()},
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
