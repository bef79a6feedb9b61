"""Resumable trainings (`scripts/train.py`, `scripts/transfer.py`): the checkpoints of
`loop.train_epochs`.

A training checkpoints into `<workdir>/checkpoints/step-<global step>/` at the end of every epoch
and, with `training_checkpoints.every_steps = N`, every N steps; rerunning the same command
restores the newest complete checkpoint (one line says which) and ends with the weights,
`metrics.json` history and model files an uninterrupted run writes (wall times aside).

What a checkpoint holds (`state.npz`, then `progress.json` written last as the completeness
marker; the folder is written as `step-N.tmp` and renamed, the newest `keep` are kept):
* every model variable (weights, BatchNorm statistics, the seed state of Keras' Dropout);
* every optimizer variable, `iterations` included, so learning-rate schedules continue;
* the drop-path schedule's progress variable (and, through the global step, its position);
* at a mid-epoch checkpoint, the training loop's metric sums, so the resumed epoch's logged
  means are the uninterrupted run's;
* in `progress.json`: the global step, the per-epoch history, epoch and training seconds, the
  variables' shapes and a fingerprint of the settings (a resume with other epochs, batch size,
  learning rate, network or data is one error, nothing changed on disk).

Data position: the trainers feed the loop the stream of `nasnet_rl.data.augment.training_stream`,
where pass p over the training set is shuffled and augmented from (seed, p) and each batch's
index in it; a run resumed at global step g starts that stream at batch g (the skipped batches
of the current pass are not augmented). ScheduledDropPath's masks come from (seed, layer,
optimizer step) (`child.ops.seed_drop_paths`), not from TF's stateful kernels, whose position no
checkpoint holds.

In a cluster every worker restores from the chief's run directory and takes part in each save
(reading a distributed variable may be collective); only the chief writes.

Why not `keras.callbacks.BackupAndRestore` (Keras 3.15, read for this): it writes
`latest.weights.h5` in place and then `training_metadata.json` (a kill mid-save leaves a torn
pair), restores the epoch number only, knows nothing of our data position, drop-path variable or
history, and deletes its backup when `fit` returns; and `fit` is not how we train.
"""

import dataclasses
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

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


def _groups(model: keras.Model, extra: Dict[str, Any],
            metrics: Optional[Sequence[Any]] = None) -> Dict[str, List[Any]]:
  groups = {"model": list(model.variables), "optimizer": list(model.optimizer.variables),
            "extra": [extra[k] for k in sorted(extra)]}
  if metrics is not None:
    groups["metrics"] = list(metrics)
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
           mid_epoch: bool = False, metrics: Optional[Sequence[Any]] = None) -> Optional[str]:
    """Writes `state` and every variable as checkpoint `step-<global step>` (atomically);
    `metrics`: the training loop's accumulators, at a mid-epoch checkpoint. Every worker of a
    cluster calls it (reading a distributed variable may take all of them); only the writer
    writes."""
    mid_epoch = mid_epoch or metrics is not None
    groups = _groups(model, extra, metrics)
    arrays = {f"{name}/{i}": np.asarray(v) for name, vs in groups.items()
              for i, v in enumerate(vs)}
    if not self.writer:
      return None
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
    groups = _groups(model, extra)
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
