"""Shared-weight training of the ENAS supernet: one compiled step serves every architecture.

`SupernetTrainer` owns the supernet, its optimizer and the tf.distribute strategy; its
`train_step(images, labels, arc)` and `accuracy(images, labels, arc)` are traced once (the
architecture is a tensor) and run under MirroredStrategy when several devices are given.
A non-finite loss or gradient skips the update on every replica (the decision is taken on the
all-reduced gradient, nasnet_rl/optim.py) and is reported to the caller.

`precision` ('float32' | 'mixed_bfloat16' | 'mixed_float16', nasnet_rl/precision.py) builds the
supernet under that dtype policy: float32 variables and BatchNorm statistics, half compute,
float32 logits and loss. 'mixed_float16' adds dynamic loss scaling inside the step (Keras'
LossScaleOptimizer rule: scale the loss, unscale the gradients, halve the scale on a non-finite
step, double it after `LOSS_SCALE_GROWTH_STEPS` finite ones). It is done here rather than by
wrapping the optimizer because the skip must stay the all-reduced one of optim.ReplicaSafe (the
wrapper decides on the first replica's local gradient); the scale is updated in cross-replica
context from every replica's view, so all replicas keep the same scale.
"""

import contextlib
import math
import re
from typing import Any, Dict, Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf

from nasnet_rl import search_space as search_space_lib
from nasnet_rl import checkpointing
from nasnet_rl import distribute
from nasnet_rl import loop as loop_lib
from nasnet_rl import optim
from nasnet_rl import precision as precision_lib
from nasnet_rl.enas import supernet as supernet_lib


# dynamic loss scaling (mixed_float16), Keras' LossScaleOptimizer defaults
LOSS_SCALE_INITIAL = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000


# how a shared-weight score normalizes: BN moving statistics, or the scored batch's own
SCORE_BN = ("moving", "batch")


class CheckpointMismatchError(ValueError):
  """A checkpoint was written for another search space, width or depth."""


def cosine_with_restarts(step: int, steps_per_epoch: int, lr_max: float, lr_min: float,
                         t_0: int, t_mul: int) -> float:
  """ENAS' child LR (src/cifar10/*_child.py, `child_lr_cosine`): cosine from lr_max to lr_min
  over a period of t_0 epochs, each next period t_mul times longer."""
  epoch = step / steps_per_epoch
  start, period = 0.0, float(t_0)
  while epoch >= start + period:
    start, period = start + period, period * t_mul
  return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * (epoch - start) / period))


class SupernetTrainer:
  """Supernet + SGD(momentum, Nesterov) + global-norm clipping + L2 (optim.FlatSGD: one fused
  update over all variables), optionally mirrored."""

  def __init__(self, space: search_space_lib.SearchSpace, num_classes: int, image_shape,
               *, global_batch_size: int, distribution: Optional[str] = None, momentum: float = 0.9,
               nesterov: bool = True, l2: float = 1e-4, grad_clip_norm: Optional[float] = 5.0,
               aux_weight: float = 0.4, precision: str = "float32",
               strategy: Optional[tf.distribute.Strategy] = None, **supernet_kwargs):
    self.space = space
    self.precision = precision_lib.check(precision)
    self._limits = np.asarray(space.num_choices(), np.int64)
    # None: gin's make_distribution (kind "auto" unless bound), else that kind
    self.strategy = strategy or (distribute.make_distribution(distribution) if distribution
                                 else distribute.make_distribution())
    self.global_batch_size = global_batch_size
    self.l2, self.aux_weight = l2, aux_weight
    self.config = {"ops": space.ops, "num_blocks": space.num_blocks,
                   "num_classes": int(num_classes), "image_shape": list(image_shape),
                   **{k: v for k, v in supernet_kwargs.items()
                      if isinstance(v, (int, float, bool, str))}}
    if precision != "float32":  # float32 checkpoints written before this option still match
      self.config["precision"] = precision
    with self.strategy.scope():
      with precision_lib.policy(precision):
        self.model = supernet_lib.Supernet(space, num_classes, image_shape, **supernet_kwargs)
      self.model(tf.zeros((2,) + tuple(image_shape)), tf.zeros([space.num_blocks * 8], tf.int32))
      # one fused update for the supernet's hundreds of variables (L2 included)
      self.optimizer = optim.FlatSGD(learning_rate=0.0, momentum=momentum, nesterov=nesterov,
                                     l2=l2, global_clipnorm=grad_clip_norm)
      self.optimizer.build(self.model.trainable_variables)
      self.loss_scale = self.good_steps = None
      if precision == "mixed_float16":
        self.loss_scale = tf.Variable(LOSS_SCALE_INITIAL, trainable=False, dtype=tf.float32,
                                      name="loss_scale")
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name="good_steps")
    self._train = tf.function(self._distributed_train, reduce_retracing=True)
    with self.strategy.scope():  # shared-weight phase statistics (not checkpointed)
      self._good = tf.Variable(tf.zeros([3]), trainable=False, name="good_step_sums")
      self._counts = tf.Variable(tf.zeros([3], tf.int64), trainable=False,
                                 name="skipped_streak_longest")
    self.loop = loop_lib.Loop(self.strategy, self._loop_step, ("loss", "correct", "finite"),
                              before_step=self._before_loop_step,
                              after_step=self._after_loop_step)
    self._eval = tf.function(self._distributed_eval, reduce_retracing=True)
    self._forward = None  # recalibrated_bn's training-mode forward, traced on first use
    self._eval_batch_stats = None  # accuracy(bn='batch'), traced on first use

  @property
  def num_replicas(self) -> int:
    return self.strategy.num_replicas_in_sync

  def distribute(self, dataset: tf.data.Dataset):
    return self.strategy.experimental_distribute_dataset(dataset)

  def _loss(self, outputs, labels):
    ce = lambda logits: tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True)) / self.global_batch_size
    loss = ce(outputs["logits"])
    if "aux_logits" in outputs:
      loss += self.aux_weight * ce(outputs["aux_logits"])
    return loss

  def _replica_train(self, images, labels, arc):
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      outputs = self.model(images, arc, training=True)
      loss = self._loss(outputs, labels)
      scaled = loss if self.loss_scale is None else loss * self.loss_scale
    grads = tape.gradient(scaled, variables)
    grad = optim.FlatSGD.flat([tf.zeros_like(v) if g is None else g
                               for g, v in zip(grads, variables)])
    # A non-finite loss poisons this replica's gradient, hence the all-reduced one: the optimizer
    # then skips the update on every replica. `finite` (this replica's view) is reported, and
    # lowers the float16 loss scale (_distributed_train).
    weights = optim.FlatSGD.flat(variables)  # read once: the L2 term and the update
    if self.l2:  # reported with the loss; its gradient is the optimizer's (FlatSGD.l2)
      loss += self.l2 * tf.reduce_sum(tf.square(weights)) / self.num_replicas
    loss_ok = tf.math.is_finite(loss)
    grad = tf.where(loss_ok, grad, tf.constant(np.nan, grad.dtype))
    if self.loss_scale is not None:  # unscaled in float32 (the variables' and gradients' dtype)
      grad = grad / self.loss_scale
    finite = loss_ok & tf.math.is_finite(tf.reduce_sum(tf.square(grad)))
    self.optimizer.apply(grad, weights)
    hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(outputs["logits"], -1), labels), tf.float32))
    return loss, hits, tf.cast(finite, tf.float32)

  def _loop_step(self, images, labels, arc):
    loss, hits, finite = self._replica_train(images, labels, arc)
    return {"loss": loss, "correct": hits, "finite": finite}

  def _before_loop_step(self, arc, learning_rate):
    self.optimizer.learning_rate.assign(learning_rate)
    return (arc,)

  def _after_loop_step(self, sums):
    """A step counts when every replica was finite (else it was skipped everywhere): its loss
    and hits go to the good-step sums; skipped steps, the current and the longest run of them
    are counted; the float16 loss scale follows the same decision."""
    ok = sums[2] >= self.num_replicas
    self._good.assign_add(tf.where(ok, tf.stack([sums[0], sums[1], 1.0]), tf.zeros([3])))
    skipped, streak, longest = tf.unstack(self._counts)
    bad = tf.cast(tf.logical_not(ok), tf.int64)
    streak = (streak + 1) * bad
    self._counts.assign(tf.stack([skipped + bad, streak, tf.maximum(longest, streak)]))
    if self.loss_scale is not None:
      self._update_loss_scale(ok)

  def train_steps(self, iterator, arcs: Sequence[Sequence[int]],
                  learning_rates: Sequence[float]) -> None:
    """Shared-weight steps through the one training loop (nasnet_rl/loop.py), all in one
    traced call: step i trains `arcs[i]` at `learning_rates[i]` on the next batch of
    `iterator` (a distributed iterator). Nothing is read back; see `read_steps`."""
    arcs = np.stack([self._checked(a) for a in arcs]).astype(np.int32)
    self.loop.run(iterator, len(arcs), (arcs, np.asarray(learning_rates, np.float32)))

  def read_steps(self) -> Dict[str, float]:
    """Since the last read (a host sync): mean loss and accuracy of the steps that trained,
    how many trained and were skipped, and the longest run of consecutive skipped steps."""
    loss, hits, good = (float(v) for v in self._good.numpy())
    skipped, _, longest = (int(v) for v in self._counts.numpy())
    self._good.assign(tf.zeros([3]))
    self._counts.assign(tf.stack([tf.constant(0, tf.int64), self._counts[1],
                                  tf.constant(0, tf.int64)]))
    self.loop.reset()
    return {"loss": loss / good if good else float("nan"),
            "accuracy": hits / (good * self.global_batch_size) if good else float("nan"),
            "steps": int(good), "skipped": skipped, "longest_skipped_run": longest}

  def _distributed_train(self, images, labels, arc):
    loss, hits, finite = self.strategy.run(self._replica_train, args=(images, labels, arc))
    s = lambda t: self.strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
    finite = s(finite)
    if self.loss_scale is not None:
      self._update_loss_scale(finite >= self.num_replicas)
    return s(loss), s(hits), finite

  def _update_loss_scale(self, all_finite):
    """LossScaleOptimizer's rule, in cross-replica context (one decision for all replicas):
    a skipped step halves the scale, `LOSS_SCALE_GROWTH_STEPS` finite steps in a row double it."""
    good = self.good_steps + 1
    grow = all_finite & (good >= LOSS_SCALE_GROWTH_STEPS)
    self.loss_scale.assign(tf.where(all_finite, tf.where(grow, 2.0, 1.0), 0.5) * self.loss_scale)
    self.good_steps.assign(tf.where(all_finite & ~grow, good, tf.zeros_like(good)))

  def _replica_eval(self, images, labels, arc, batch_stats=False):
    if batch_stats:
      # ENAS' reward (micro_child.py build_valid_rl: the model with is_training=True): BN
      # normalizes by this batch's statistics; unlike ENAS, without dropout or drop path, so a
      # cell's score is a function of the weights and the batch. The forward's EMA updates are
      # undone here (automatic control dependencies order the read, the forward, the restore).
      stats = self.model.non_trainable_weights
      saved = [tf.identity(v.value) for v in stats]
      progress = tf.identity(self.model.drop_path_progress.read_value())
      self.model.drop_path_progress.assign(0.0)
      logits = self.model(images, arc, training=True, dropout=False)["logits"]
      with tf.control_dependencies([logits]):
        for v, value in zip(stats, saved):
          v.assign(value)
        self.model.drop_path_progress.assign(progress)
    else:
      logits = self.model(images, arc, training=False)["logits"]
    hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32))
    nll = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
        labels, tf.cast(logits, tf.float32), from_logits=True))
    return hits, nll, tf.cast(tf.shape(labels)[0], tf.float32)

  def _distributed_eval(self, images, labels, arc, batch_stats=False):
    hits, nll, n = self.strategy.run(self._replica_eval,
                                     args=(images, labels, arc, batch_stats))
    s = lambda t: self.strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
    return s(hits), s(nll), s(n)

  def arc(self, arc: Sequence[int]) -> tf.Tensor:
    """The architecture tensor, checked on the host first: `tf.switch_case` would silently run
    its last branch for an out-of-range index."""
    return tf.constant(self._checked(arc), tf.int32)

  def _checked(self, arc: Sequence[int]) -> np.ndarray:
    """`arc` as int64 decisions, or a clear error naming the first out-of-range one."""
    values = np.asarray(arc, np.int64).ravel()
    if values.shape != self._limits.shape:
      raise ValueError(f"architecture has {values.size} decisions; the {self.space.ops} space "
                       f"with B={self.space.num_blocks} has {self._limits.size}")
    bad = np.flatnonzero((values < 0) | (values >= self._limits))
    if bad.size:
      i = int(bad[0])
      raise ValueError(f"architecture decision {i} = {values[i]} is outside "
                       f"0..{self._limits[i] - 1}")
    return values

  def train_step(self, images, labels, arc: Sequence[int], learning_rate: float):
    """One shared-weight step on the architecture `arc`: (loss, accuracy, finite); not finite
    (some replica's loss or gradient was not) means the update was skipped everywhere."""
    self.optimizer.learning_rate.assign(learning_rate)
    loss, hits, finite = self._train(images, labels, self.arc(arc))
    return float(loss), float(hits) / self.global_batch_size, bool(finite >= self.num_replicas)

  def accuracy(self, images, labels, arc: Sequence[int], bn: str = "moving") -> float:
    """Accuracy of the architecture `arc` with the shared weights on one (distributed) batch.
    `bn`: 'moving' normalizes with the BN moving statistics (inference mode), 'batch' with the
    batch's own statistics, as ENAS' reward does (but deterministic: dropout and drop path off;
    no statistic changes)."""
    return self.evaluate(images, labels, arc, bn)["accuracy"]

  def evaluate(self, images, labels, arc: Sequence[int], bn: str = "moving") -> Dict[str, float]:
    """`accuracy` and mean cross-entropy `loss` of `arc` on one (distributed) batch, from one
    forward pass (`bn` as in `accuracy`)."""
    if bn not in SCORE_BN:
      raise ValueError(f"bn must be one of {SCORE_BN}, got {bn!r}")
    if bn == "batch":
      if self._eval_batch_stats is None:
        self._eval_batch_stats = tf.function(
            lambda x, y, a: self._distributed_eval(x, y, a, batch_stats=True),
            reduce_retracing=True)
      hits, nll, n = self._eval_batch_stats(images, labels, self.arc(arc))
    else:
      hits, nll, n = self._eval(images, labels, self.arc(arc))
    n = max(float(n), 1.0)
    return {"accuracy": float(hits) / n, "loss": float(nll) / n}

  def _replica_forward(self, images, arc):
    self.model(images, arc, training=True)  # updates the path's BN moving statistics only
    return tf.constant(0.0)

  @contextlib.contextmanager
  def recalibrated_bn(self, batches, arc: Sequence[int]) -> Iterator[None]:
    """Inside the block, the BN moving statistics of the path of `arc` are the mean of their
    per-batch statistics on `batches` ((images, labels) pairs; labels unused), one-shot NAS'
    "BN recalibration": a cell is scored with statistics of its own path, not the EMA over every
    cell the supernet trained. On exit every statistic is restored; no weight changes.

    Each batch is a training-mode forward (drop path off) whose EMA update
    new = m * old + (1 - m) * batch the host inverts for the batch statistic; statistics off the
    path do not move (tests/test_rank_correlation.py checks the stem BN's mean)."""
    arc_t = self.arc(arc)
    stats = self.model.non_trainable_weights  # the BN moving statistics, nothing else
    saved = [v.numpy() for v in stats]
    progress = self.model.drop_path_progress.numpy()
    m = float(self.model.child_kwargs["bn_momentum"])
    if self._forward is None:
      self._forward = tf.function(
          lambda x, a: self.strategy.run(self._replica_forward, args=(x, a)),
          reduce_retracing=True)
    try:
      self.model.drop_path_progress.assign(0.0)
      total, n = [np.zeros_like(s) for s in saved], 0
      for images, _ in batches:
        for v, s in zip(stats, saved):
          v.assign(s)
        self._forward(images, arc_t)
        for t, v, s in zip(total, stats, saved):
          after = v.numpy()
          t += np.where(after != s, (after - m * s) / (1.0 - m), s)
        n += 1
      for v, s, t in zip(stats, saved, total):
        v.assign(t / n if n else s)
      yield
    finally:
      for v, s in zip(stats, saved):
        v.assign(s)
      self.model.drop_path_progress.assign(progress)

  @contextlib.contextmanager
  def fine_tuned(self, batches, arc: Sequence[int], learning_rate: float) -> Iterator[None]:
    """Inside the block, the supernet is the shared weights after one training step of `arc`
    per (images, labels) batch of `batches` at a constant `learning_rate`, from zero momentum:
    a short path-wise fine-tuning before a cell is scored, so that every candidate starts from
    the same shared weights and is measured after the same few steps of its own. On exit every
    weight, BN statistic and optimizer state is restored (no trace of the candidate is left)."""
    state = list(self._named_variables().values())
    saved = [v.numpy() for v in state]
    try:
      self.optimizer.reset_velocity()
      for images, labels in batches:
        self.train_step(images, labels, arc, learning_rate)
      yield
    finally:
      for v, s in zip(state, saved):
        v.assign(s)

  # --- checkpoints -------------------------------------------------------------------------

  def _named_variables(self) -> Dict[str, tf.Variable]:
    out = {}
    for i, v in enumerate(self.model.weights):
      out[f"model/{i:04d}/{v.path}"] = v
    for i, v in enumerate(self.optimizer.variables):
      out[f"optimizer/{i:04d}/{v.name.split(':')[0]}"] = v
    if self.loss_scale is not None:  # mixed_float16 only (the config records the precision)
      out["loss_scale/scale"], out["loss_scale/good_steps"] = self.loss_scale, self.good_steps
    return out

  def save(self, path: str, state: Dict[str, Any]) -> None:
    arrays = {k: np.asarray(v.numpy()) for k, v in self._named_variables().items()}
    checkpointing.save_arrays(path, arrays, {"config": self.config, **state})

  def restore(self, path: str) -> Dict[str, Any]:
    """Loads weights and optimizer state; a checkpoint of another space/width is a clear error."""
    arrays, state = checkpointing.load_arrays(path)
    if state.get("config") != self.config:
      raise CheckpointMismatchError(
          f"checkpoint {path} was written for supernet {state.get('config')}, but this run "
          f"builds {self.config}; use a fresh --workdir or the original configuration")
    named = {_unnumbered(k): v for k, v in self._named_variables().items()}
    arrays = {_unnumbered(k): a for k, a in arrays.items()}
    missing = sorted(set(named) - set(arrays))
    for key, v in named.items():
      if key not in arrays or tuple(arrays[key].shape) != tuple(v.shape):
        raise CheckpointMismatchError(
            f"checkpoint {path} does not match this supernet at {key} "
            f"({missing[:3] if missing else arrays[key].shape} vs {tuple(v.shape)})")
      v.assign(arrays[key])
    return state


def _unnumbered(key: str) -> str:
  """A checkpoint key without Keras' per-process layer counters ('supernet_2/logits_kernel',
  'sgd/batch_norm_28_gamma_momentum'): they depend on how many layers the process built before,
  so a supernet built after another model (a resume or a restore in the same process) gets other
  names. Keys stay unique through their index prefix ('model/0007/...')."""
  return re.sub(r"_\d+(?=[_/]|$)", "", key)
