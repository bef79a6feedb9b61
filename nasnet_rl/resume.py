"""Resumable Keras trainings (`scripts/train.py`, `scripts/transfer.py`).

A training checkpoints into `<workdir>/checkpoints/step-<global step>/` at the end of every epoch
and, with `training_checkpoints.every_steps = N`, every N steps; rerunning the same command
restores the newest complete checkpoint (one line says which) and ends with the weights,
`metrics.json` history and model files an uninterrupted run writes (wall times aside).

What a checkpoint holds (`state.npz`, then `progress.json` written last as the completeness
marker; the folder is written as `step-N.tmp` and renamed, the newest `keep` are kept):
* every model variable (weights, BatchNorm statistics, the seed state of Keras' Dropout);
* every optimizer variable, `iterations` included, so learning-rate schedules continue;
* the drop-path schedule's progress variable (and, through the global step, its position);
* at a mid-epoch checkpoint, the metric accumulators (loss and accuracy sums and counts), added
  back after the first resumed step, so the resumed epoch's logged means are the uninterrupted
  run's;
* in `progress.json`: the global step, the per-epoch history, epoch and training seconds, the
  variables' shapes and a fingerprint of the settings (a resume with other epochs, batch size,
  learning rate, network or data is one error, nothing changed on disk).

Data position: the trainers feed `fit` the stream of `nasnet_rl.data.augment.training_stream`,
where pass p over the training set is shuffled and augmented from (seed, p) and each batch's
index in it; a run resumed at global step g starts that stream at batch g (the skipped batches
of the current pass are not augmented). Keras counts epochs, not steps, so a mid-epoch resume
runs the rest of that epoch as one short `fit` (initial_epoch = that epoch) and the remaining
epochs as a second. ScheduledDropPath's masks come from (seed, layer, optimizer step)
(`child.ops.seed_drop_paths`), not from TF's stateful kernels, whose position no checkpoint holds.

Why not `keras.callbacks.BackupAndRestore` (Keras 3.15, read for this): (1) it writes
`latest.weights.h5` in place and then `training_metadata.json`, so a kill mid-save leaves a
truncated file or weights that do not match the epoch (`double_checkpoint` copies the previous
pair, but falls back only on an OSError while loading the weights); (2) it restores the epoch
number only: after a `save_freq=N` backup the interrupted epoch restarts from its first batch
with the later weights; (3) it knows nothing of our data position (a new process's tf.data
iterator starts at the first shuffle), the drop-path variable (not a model weight), the metric
accumulators or the history of the epochs before the resume; (4) by default it deletes its
backup when `fit` returns, so a kill during the final evaluation and export retrains from
scratch. Fixing (2) and (3) needs our data stream and a second `fit` anyway, so the module
writes its own small callback (`_Recorder`) over `checkpointing`'s atomic helpers.
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import gin
import keras
import numpy as np

from nasnet_rl import checkpointing

FORMAT = "nasnet_rl.training_checkpoint/1"
ARRAYS = "state.npz"


@dataclasses.dataclass(frozen=True)
class Options:
  """What `training_checkpoints` configured."""
  every_steps: Optional[int] = None
  keep: int = 2
  enabled: bool = True


@gin.configurable
def training_checkpoints(every_steps: Optional[int] = None, keep: int = 2,
                         enabled: bool = True) -> Options:
  """Checkpointing of `scripts/train.py` and `scripts/transfer.py` runs: always at the end of
  each epoch, also every `every_steps` training steps when set; the newest `keep` (>= 1; 2 lets a
  damaged newest one fall back to the previous) are kept; `enabled=False` turns it off."""
  if every_steps is not None and (not isinstance(every_steps, int)
                                  or isinstance(every_steps, bool) or every_steps < 1):
    raise ValueError(f"training_checkpoints.every_steps must be None or a positive int, got "
                     f"{every_steps!r}")
  if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
    raise ValueError(f"training_checkpoints.keep must be an int >= 1, got {keep!r}")
  return Options(every_steps=every_steps, keep=keep, enabled=bool(enabled))


@dataclasses.dataclass
class State:
  """Where a training is: global steps done, per-epoch logs and times of the finished epochs."""
  global_step: int = 0
  history: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
  epoch_seconds: List[float] = dataclasses.field(default_factory=list)
  train_seconds: float = 0.0
  epoch_started_seconds: float = 0.0  # seconds already spent in the unfinished epoch
  metrics: Optional[List[np.ndarray]] = None  # its metric accumulators (mid-epoch checkpoint)
  folder: Optional[str] = None  # restored from


def genotype_fingerprint(geno) -> Dict[str, Any]:
  """A genotype's cells and space without its name or source (a JSON file and the published
  name of the same cell agree)."""
  return {k: v for k, v in geno.to_dict().items() if k not in ("name", "source")}


def gin_bindings(configurable: str) -> Dict[str, Any]:
  """gin's bindings of `configurable`, for a fingerprint ({} when it has none)."""
  try:
    return dict(gin.get_bindings(configurable))
  except (ValueError, KeyError):
    return {}


def _normalized(fingerprint: Dict[str, Any]) -> Dict[str, Any]:
  return json.loads(json.dumps(fingerprint, sort_keys=True, default=repr))


def _signature(variables: Sequence[Any]) -> List[List[Any]]:
  """[shape, dtype name] of each variable (names are left out: Keras numbers unnamed layers
  and optimizers per process)."""
  def dtype(v):
    return getattr(v.dtype, "name", None) or str(v.dtype)
  return [[[int(d) for d in v.shape], dtype(v)] for v in variables]


def _groups(model: keras.Model, extra: Dict[str, Any], metrics: bool) -> Dict[str, List[Any]]:
  groups = {"model": list(model.variables), "optimizer": list(model.optimizer.variables),
            "extra": [extra[k] for k in sorted(extra)]}
  if metrics:
    groups["metrics"] = list(model.metrics_variables)
  return groups


class CannotResume(ValueError):
  """The workdir's checkpoints are of other settings (or all damaged): an error, not a reason
  to try an older checkpoint; the run's files, config.gin included, stay as they are."""


class Checkpoints:
  """The checkpoints of one training in `<workdir>/checkpoints/`."""

  def __init__(self, workdir: str, fingerprint: Dict[str, Any],
               options: Optional[Options] = None, writer: bool = True):
    self.root = os.path.join(workdir, "checkpoints")
    self.fingerprint = _normalized(fingerprint)
    self.options = options or Options()
    self.writer = writer  # False on a multi-worker run's non-chief workers: they only restore

  def save(self, model: keras.Model, extra: Dict[str, Any], state: State,
           mid_epoch: bool) -> Optional[str]:
    """Writes `state` and every variable as checkpoint `step-<global step>` (atomically)."""
    if not self.writer:
      return None
    groups = _groups(model, extra, metrics=mid_epoch)
    arrays = {f"{name}/{i}": np.asarray(v) for name, vs in groups.items()
              for i, v in enumerate(vs)}
    meta = {"format": FORMAT, "global_step": state.global_step, "history": state.history,
            "epoch_seconds": state.epoch_seconds, "train_seconds": state.train_seconds,
            "epoch_started_seconds": state.epoch_started_seconds if mid_epoch else 0.0,
            "mid_epoch": mid_epoch, "fingerprint": self.fingerprint, "extra": sorted(extra),
            "signature": {name: _signature(vs) for name, vs in groups.items()}}

    def write(folder):
      checkpointing.save_arrays(os.path.join(folder, ARRAYS), arrays, {"format": FORMAT})
      checkpointing.save_json(os.path.join(folder, checkpointing.MARKER), meta)  # last
    return checkpointing.save_numbered(self.root, state.global_step, write,
                                       keep=self.options.keep)

  def restore(self, model: keras.Model, extra: Dict[str, Any], *, epochs: int,
              steps_per_epoch: int) -> State:
    """Loads the newest complete checkpoint into `model`, its optimizer and `extra` and returns
    its State (a fresh State when there is none). A damaged one is skipped with a warning for
    the previous one; one written with other settings is a CannotResume naming the folder."""
    folders = checkpointing.numbered_complete(self.root)
    damaged = []
    for folder in folders:
      try:
        meta = checkpointing.load_json(os.path.join(folder, checkpointing.MARKER))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
          raise ValueError(f"not a {FORMAT} checkpoint")
        self._check_fingerprint(folder, meta)
        arrays, _ = checkpointing.load_arrays(os.path.join(folder, ARRAYS))
        state = self._load(folder, model, extra, meta, arrays)
      except CannotResume:
        raise
      except (ValueError, OSError, KeyError, TypeError, EOFError) as e:
        detail = (str(e).strip().splitlines() or [""])[0]
        print(f"warning: checkpoint {folder} is damaged ({type(e).__name__}: {detail}); "
              "trying the previous one", file=sys.stderr, flush=True)
        damaged.append(folder)
        continue
      total = epochs * steps_per_epoch
      epoch, step = divmod(state.global_step, steps_per_epoch)
      where = ("training already complete" if state.global_step >= total else
               f"epoch {epoch + 1} of {epochs}, step {step} of {steps_per_epoch}")
      print(f"resuming from {folder}: {where} ({state.global_step} of {total} steps done)",
            flush=True)
      return state
    if damaged:
      raise CannotResume(f"cannot resume: every checkpoint in {self.root} is damaged "
                       f"({len(damaged)} tried); delete the folder to start over")
    return State()

  def _check_fingerprint(self, folder: str, meta: Dict[str, Any]) -> None:
    old = meta.get("fingerprint")
    if old == self.fingerprint:
      return
    old = old if isinstance(old, dict) else {}
    keys = sorted(set(old) | set(self.fingerprint))
    # settings both sides have first: a changed value says more than a missing one
    diff = sorted((k for k in keys if old.get(k) != self.fingerprint.get(k)),
                  key=lambda k: (k not in old or k not in self.fingerprint, k))
    shown = "; ".join(f"{k}: {_short(old.get(k))} there, {_short(self.fingerprint.get(k))} now"
                      for k in diff[:3])
    raise CannotResume(f"cannot resume from the checkpoint in {folder}: it was written with "
                       f"other settings ({shown}). Rerun the command that started it, use a "
                       f"new --workdir, or delete {self.root} to start over")

  def _load(self, folder, model, extra, meta, arrays) -> State:
    strategy = getattr(model, "distribute_strategy", None)
    if model.optimizer is not None and not model.optimizer.built:
      if strategy is not None:
        with strategy.scope():
          model.optimizer.build(model.trainable_variables)
      else:
        model.optimizer.build(model.trainable_variables)
    if meta.get("extra") != sorted(extra):
      raise CannotResume(f"cannot resume from the checkpoint in {folder}: it holds "
                         f"{meta.get('extra')}, this training has {sorted(extra)}")
    mid_epoch = bool(meta.get("mid_epoch"))
    groups = _groups(model, extra, metrics=False)
    signature = meta["signature"]
    for name, variables in groups.items():
      if signature.get(name) != _signature(variables):
        raise CannotResume(f"cannot resume from the checkpoint in {folder}: its {name} "
                           f"variables ({len(signature.get(name) or [])}) do not match this "
                           f"training's ({len(variables)}): another network or optimizer?")
    values = {}
    for name, variables in groups.items():
      values[name] = [arrays[f"{name}/{i}"] for i in range(len(variables))]
    metrics = None
    if mid_epoch:
      metrics = [arrays[f"metrics/{i}"] for i in range(len(signature.get("metrics", [])))]
    for name, variables in groups.items():  # everything read: now assign
      for v, value in zip(variables, values[name]):
        v.assign(value)
    return State(global_step=int(meta["global_step"]),
                 history={k: [float(x) for x in v] for k, v in meta["history"].items()},
                 epoch_seconds=[float(x) for x in meta["epoch_seconds"]],
                 train_seconds=float(meta["train_seconds"]),
                 epoch_started_seconds=float(meta.get("epoch_started_seconds", 0.0)),
                 metrics=metrics, folder=folder)


def _short(value, limit: int = 60) -> str:
  text = json.dumps(value, sort_keys=True)
  return text if len(text) <= limit else text[:limit - 3] + "..."


class _Recorder(keras.callbacks.Callback):
  """Counts global steps, records per-epoch logs and times, restores the metric accumulators of a
  mid-epoch checkpoint and saves checkpoints (every epoch, every N steps)."""

  def __init__(self, state: State, steps_per_epoch: int, checkpoints: Optional[Checkpoints],
               extra: Dict[str, Any], clock: Callable[[], float]):
    super().__init__()
    self.state, self.steps, self.extra = state, steps_per_epoch, extra
    self.checkpoints = checkpoints
    self.clock = clock
    self._epoch_start = time.perf_counter()
    self._carried = 0.0
    self._first_step = state.global_step  # global step at this fit's current epoch start

  def _elapsed_in_epoch(self) -> float:
    return self._carried + time.perf_counter() - self._epoch_start

  def on_epoch_begin(self, epoch, logs=None):
    self._first_step = self.state.global_step
    self._epoch_start = time.perf_counter()
    self._carried = 0.0
    if self.state.metrics is not None:  # resumed mid-epoch
      self._carried = self.state.epoch_started_seconds

  def _add_restored_metrics(self) -> None:
    """Adds the checkpoint's metric accumulators to those of the first resumed step. Keras
    creates the compiled metrics' variables while tracing the first step and resets them at each
    epoch's start, so they cannot be assigned before it; every metric here is a Mean (a loss
    tracker or a MeanMetricWrapper: a sum and a count), and 0 + step, then + saved, is the very
    float32 sum saved + step an uninterrupted run forms."""
    variables = list(self.model.metrics_variables)
    if len(variables) != len(self.state.metrics):
      raise ValueError(f"cannot resume from {self.state.folder}: it holds "
                       f"{len(self.state.metrics)} metric variables, this training has "
                       f"{len(variables)}")
    for v, saved in zip(variables, self.state.metrics):
      now = np.asarray(v)
      v.assign((saved + now).astype(now.dtype))
    self.state.metrics = None

  def on_train_batch_end(self, batch, logs=None):
    """`batch` is the last step of the call (several with `steps_per_execution`). The loss is
    read (a host sync) only where a checkpoint is due: it is the epoch's running mean, so it is
    non-finite when any step of the epoch so far was."""
    if self.state.metrics is not None:
      self._add_restored_metrics()
    before, self.state.global_step = self.state.global_step, self._first_step + batch + 1
    every = self.checkpoints.options.every_steps if self.checkpoints else None
    if (every and self.state.global_step // every > before // every
        and self.state.global_step % self.steps
        and _finite_loss(logs) and not self.model.stop_training):
      self.state.train_seconds = self.clock()
      self.state.epoch_started_seconds = self._elapsed_in_epoch()
      self.checkpoints.save(self.model, self.extra, self.state, mid_epoch=True)

  def on_epoch_end(self, epoch, logs=None):
    for key, value in (logs or {}).items():
      self.state.history.setdefault(key, []).append(float(value))
    self.state.epoch_seconds.append(self._elapsed_in_epoch())
    self.state.train_seconds = self.clock()
    if self.checkpoints and _finite_loss(logs) and not self.model.stop_training:
      self.checkpoints.save(self.model, self.extra, self.state, mid_epoch=False)


def _finite_loss(logs) -> bool:
  loss = (logs or {}).get("loss")
  return loss is None or math.isfinite(float(loss))


def fit(model: keras.Model, batches: Callable[[int, int], Any], *, epochs: int,
        steps_per_epoch: int, callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: Any = 1, checkpoints: Optional[Checkpoints] = None,
        state: Optional[State] = None, extra: Optional[Dict[str, Any]] = None) -> State:
  """Trains `model` (compiled) from `state` (global step, history; fresh when None) to
  `epochs` x `steps_per_epoch` steps, saving checkpoints when given; returns the final State.

  `batches(start, count)` must return `count` training batches starting at global batch `start`
  of a stream that does not depend on where it starts (a dataset or distributed dataset)."""
  state = state or State()
  extra = dict(extra or {})
  base, start = state.train_seconds, time.time()
  recorder = _Recorder(state, steps_per_epoch, checkpoints, extra,
                       clock=lambda: base + time.time() - start)
  callbacks = list(callbacks) + [recorder]
  epoch, done = divmod(state.global_step, steps_per_epoch)
  run = lambda first, last, steps: model.fit(
      batches(state.global_step, (last - first) * steps), initial_epoch=first, epochs=last,
      steps_per_epoch=steps, callbacks=callbacks, verbose=verbose, shuffle=False)
  if done and epoch < epochs:  # the rest of the interrupted epoch
    run(epoch, epoch + 1, steps_per_epoch - done)
    epoch += 1
  if epoch < epochs and not getattr(model, "stop_training", False):
    run(epoch, epochs, steps_per_epoch)
  state.train_seconds = recorder.clock()
  return state
