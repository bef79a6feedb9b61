"""The one training loop: child training, transfer and the ENAS supernet step through it.

Shaped like TF Model Garden's Orbit runner: `Loop.run(iterator, n)` is one traced function that
runs n steps in a `tf.range` loop, each `strategy.run(replica_step, next(iterator))`, under any
tf.distribute strategy (one device, Mirrored, MultiWorkerMirrored). A replica step returns a
dict of float32 scalars (sums over its examples); the loop all-reduces them as one vector and
adds them to an accumulator variable on the device, so the host reads metrics only when it asks
(`read`), once per report interval, never inside the step loop.

`train_epochs` drives a loop over epochs and steps for the supervised trainings: checkpoints
(every epoch and every N steps, metric accumulators included mid-epoch: see resume.py),
per-epoch history and TensorBoard scalars, progress lines, and a stop at the first epoch whose
mean loss is not finite. Every decision that touches the model is made at a step count, never
at a time, so all workers of a cluster take the same ones.
"""

import os
import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from nasnet_rl import progress as progress_lib
from nasnet_rl import resume


class Loop:
  """Runs `replica_step(*batch, *per_step_args) -> {name: float32 scalar}` n steps per host
  call and keeps the cross-replica sums of its outputs in `self.sums` (a variable, in the order
  of `names`).

  Per-step inputs that are not data (the ENAS supernet's architecture and learning rate) come
  as tensors with one row per step (`run(..., per_step=...)`); `before_step(*rows)` runs in
  cross-replica context first and returns the replica step's extra arguments, and
  `after_step(sums)` sees each step's reduced vector (for state that is not a sum)."""

  def __init__(self, strategy: tf.distribute.Strategy, replica_step: Callable[..., Dict],
               names: Sequence[str], jit_compile: bool = False,
               before_step: Optional[Callable[..., Sequence[Any]]] = None,
               after_step: Optional[Callable[[tf.Tensor], None]] = None):
    self.strategy, self.names = strategy, tuple(names)
    step = tf.function(replica_step, jit_compile=True) if jit_compile else replica_step
    with strategy.scope():
      self.sums = tf.Variable(tf.zeros([len(self.names)], tf.float32), trainable=False,
                              name="loop_metric_sums")

    def one_step(batch, *extra):
      args = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
      out = step(*args, *extra)
      return tf.stack([tf.cast(out[k], tf.float32) for k in self.names])

    @tf.function(reduce_retracing=True)
    def run_steps(iterator, n, per_step):
      for i in tf.range(n):
        rows = tuple(t[i] for t in per_step)
        extra = tuple(before_step(*rows)) if before_step is not None else rows
        per_replica = strategy.run(one_step, args=(next(iterator),) + extra)
        reduced = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        self.sums.assign_add(reduced)
        if after_step is not None:
          after_step(reduced)
    self._run_steps = run_steps

  def run(self, iterator, steps: int, per_step: Sequence[Any] = ()) -> None:
    """`steps` training steps in one call (no host sync); `per_step`: tensors whose first
    `steps` rows feed the steps in order."""
    self._run_steps(iterator, tf.constant(int(steps), tf.int64),
                    tuple(tf.convert_to_tensor(t) for t in per_step))

  def read(self) -> Dict[str, float]:
    """The accumulated sums (a host sync)."""
    return dict(zip(self.names, (float(v) for v in self.sums.numpy())))

  def reset(self) -> None:
    self.sums.assign(tf.zeros_like(self.sums))


def classifier_step(model, optimizer, global_batch: int, loss_fn: Callable,
                    aux_weight: float = 0.4) -> Callable:
  """The supervised replica step of child and transfer training: cross-entropy of the logits
  (plus `aux_weight` times the auxiliary head's) over the global batch, the model's
  regularization losses, loss scaling when `optimizer` has it (mixed_float16), one optimizer
  update (nasnet_rl/optim.py clips and skips on the all-reduced gradient). Returns the sums the
  loop accumulates: `loss` (this replica's share of the step's loss), `correct`, `examples`."""

  def step(images, labels):
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    labels = tf.reshape(labels, [-1])
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      logits = out["logits"] if isinstance(out, dict) else out
      loss = tf.reduce_sum(loss_fn(labels, tf.cast(logits, tf.float32))) / global_batch
      if isinstance(out, dict) and "aux_logits" in out:
        aux = tf.reduce_sum(loss_fn(labels, tf.cast(out["aux_logits"], tf.float32)))
        loss += aux_weight * aux / global_batch
      if model.losses:
        loss += tf.add_n([tf.cast(l, tf.float32) for l in model.losses]) / replicas
      scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int64), tf.cast(labels, tf.int64))
    return {"loss": loss, "correct": tf.reduce_sum(tf.cast(hits, tf.float32)),
            "examples": tf.cast(tf.size(labels), tf.float32)}
  return step


def epoch_means(sums: Dict[str, float], steps: int) -> Dict[str, float]:
  """History entries from a classifier loop's sums over `steps` steps: mean loss per step,
  accuracy over the examples."""
  out = {"loss": sums["loss"] / max(steps, 1)}
  if sums.get("examples"):
    out["accuracy"] = sums["correct"] / sums["examples"]
  return out


class WorkerLost(RuntimeError):
  """A collective of a multi-worker run failed: another worker died or cannot be reached."""


# what a collective raises when a peer is gone (connection reset, health check, timeout)
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.CancelledError,
                tf.errors.DeadlineExceededError, tf.errors.AbortedError)


def _run_or_explain(loop: Loop, iterator, steps: int, step: int, saved: Optional[int]) -> None:
  """`loop.run`; on a cluster, a peer's failure becomes one WorkerLost line saying how to go on."""
  try:
    loop.run(iterator, steps)
  except _PEER_ERRORS as e:
    from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
    if distribute.num_workers(loop.strategy) == 1:
      raise
    where = (f"the chief's last checkpoint (step {saved})" if saved else
             "the start (no checkpoint was written yet)")
    during = f"step {step + 1}" if steps == 1 else f"steps {step + 1}-{step + steps}"
    raise WorkerLost(f"another worker of the cluster stopped responding during {during} "
                     f"({type(e).__name__}); run the same command on "
                     f"every worker again to resume from {where}") from None


class Diverged(RuntimeError):
  """An epoch's mean loss was not finite (the optimizer skipped those steps)."""

  def __init__(self, epoch: int):
    super().__init__(f"non-finite loss in epoch {epoch}")
    self.epoch = epoch


def _save(checkpoints, model, extra, state, loop, mid_epoch):
  """Every worker reads the variables (a multi-worker read may be collective); only the chief's
  `Checkpoints` writes."""
  if checkpoints is not None:
    checkpoints.save(model, extra, state, metrics=[loop.sums] if mid_epoch else None)


def train_epochs(loop: Loop, model, batches: Callable[[int, int], Any], *, epochs: int,
                 steps_per_epoch: int, global_batch: int, steps_per_call: int = 1,
                 checkpoints: Optional["resume.Checkpoints"] = None,
                 state: Optional["resume.State"] = None, extra: Optional[Dict[str, Any]] = None,
                 workdir: Optional[str] = None, label: str = "train",
                 verbose: int = 1) -> "resume.State":
  """Trains from `state` (fresh when None) to `epochs` x `steps_per_epoch` steps and returns the
  final State; raises Diverged after an epoch whose mean loss is not finite (no checkpoint of
  it is written). `batches(start, count)` gives `count` batches from global batch `start` of a
  stream that does not depend on where it starts. `workdir` (the chief's) gets TensorBoard
  scalars and log.txt."""
  state = state or resume.State()
  extra = dict(extra or {})
  total = epochs * steps_per_epoch
  log = progress_lib.Log(workdir, quiet=not verbose)
  report = progress_lib.Progress(log, label, total, global_batch, start_step=state.global_step)
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard")) if workdir \
      else None
  every = checkpoints.options.every_steps if checkpoints is not None else None
  if state.global_step % steps_per_epoch == 0:  # mid-epoch: the caller restored the sums
    loop.reset()
  base, started = state.train_seconds, time.time()
  clock = lambda: base + time.time() - started
  epoch_start = time.perf_counter() - state.epoch_started_seconds
  if state.global_step >= total:
    return state
  iterator = iter(batches(state.global_step, total - state.global_step))
  saved = state.global_step or None
  while state.global_step < total:
    step = state.global_step
    epoch_end = (step // steps_per_epoch + 1) * steps_per_epoch
    stop = min(epoch_end, step + steps_per_call)
    if every:
      stop = min(stop, (step // every + 1) * every)
    _run_or_explain(loop, iterator, stop - step, step, saved)
    state.global_step = stop
    done_in_epoch = stop - (epoch_end - steps_per_epoch)
    if stop == epoch_end:
      means = epoch_means(loop.read(), steps_per_epoch)
      loop.reset()
      for key, value in means.items():
        state.history.setdefault(key, []).append(float(value))
      state.epoch_seconds.append(time.perf_counter() - epoch_start)
      epoch_start = time.perf_counter()
      state.train_seconds, state.epoch_started_seconds = clock(), 0.0
      epoch = stop // steps_per_epoch
      report.report(stop, means, suffix=f" (end of epoch {epoch}/{epochs})")
      if writer is not None:
        with writer.as_default():
          for key, value in means.items():
            tf.summary.scalar(key, value, step=epoch)
          tf.summary.scalar("learning_rate", _learning_rate(model), step=epoch)
        writer.flush()
      if not np.isfinite(means["loss"]):
        raise Diverged(epoch)
      _save(checkpoints, model, extra, state, loop, mid_epoch=False)
      saved = stop if checkpoints is not None else saved
      continue
    if every and stop % every == 0:
      sums = loop.read()
      if np.isfinite(sums["loss"]):
        state.train_seconds = clock()
        state.epoch_started_seconds = time.perf_counter() - epoch_start
        _save(checkpoints, model, extra, state, loop, mid_epoch=True)
        saved = stop if checkpoints is not None else saved
    if report.due():
      report.report(stop, epoch_means(loop.read(), done_in_epoch))
  state.train_seconds = clock()
  return state


def _learning_rate(model) -> float:
  """The optimizer's current learning rate (schedules evaluated at its iterations)."""
  optimizer = model.optimizer
  lr = optimizer.learning_rate
  return float(lr.numpy() if hasattr(lr, "numpy") else lr)
