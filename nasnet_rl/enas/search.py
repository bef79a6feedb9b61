"""ENAS search loop (Pham et al. 2018): per epoch, shared-weight steps on the train split with a
fresh architecture per minibatch, then controller steps rewarded by the accuracy of the
sampled architecture on a validation minibatch; after the last epoch, derive.

Crash safety: after every epoch the supernet weights, optimizer state, controller and the
epoch counter are written into a fresh checkpoint folder that replaces the old one atomically;
a rerun on the same workdir continues after the last completed epoch. `epochs.jsonl` keeps one
line per completed epoch (append-only): on resume a torn last line is cut off, lines of epochs
the checkpoint does not hold are set aside (`epochs.jsonl.after-checkpoint`), and the line of the
checkpoint's last epoch is written back from the checkpoint if it was lost. The run directory is
locked for the whole search (rundir.py).
"""

import inspect
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl import checkpointing
from nasnet_rl import config
from nasnet_rl import controller as controller_lib
from nasnet_rl import data as data_lib
from nasnet_rl import distribute
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import query_budget
from nasnet_rl import history as history_lib
from nasnet_rl import jsonio
from nasnet_rl import objectives
from nasnet_rl import precision as precision_lib
from nasnet_rl import progress as progress_lib
from nasnet_rl import rundir
from nasnet_rl import search_space as search_space_lib
from nasnet_rl import viz
from nasnet_rl.controller import baselines
from nasnet_rl.enas import path_cost
from nasnet_rl.enas import trainer as trainer_lib


class NaNStormError(RuntimeError):
  """Too many consecutive shared-weight steps had a non-finite loss or gradient."""


def _batches(splits, batch_size, training, seed, epoch=0):
  ds = data_lib.make_batches(splits.train if training else splits.validation,
                             batch_size=batch_size, training=training, mean=splits.mean,
                             std=splits.std, seed=seed + 1000 * epoch)
  return ds


def _validation_stream(splits, batch_size, seed):
  """Endless shuffled validation minibatches (the controller's reward batches)."""
  ds = splits.validation.shuffle(max(1, splits.sizes["validation"]), seed=seed,
                                 reshuffle_each_iteration=True).repeat()
  return data_lib.make_batches(ds, batch_size=batch_size, training=False, mean=splits.mean,
                               std=splits.std)


def derive_batches_of(trainer, splits, batch_size: int, batches: int, seed: int):
  """The `batches` validation minibatches derive scores every candidate on (fixed per seed)."""
  return list(trainer.distribute(_validation_stream(splits, batch_size, seed + 7).take(batches)))


def fine_tune_batches_of(trainer, splits, batch_size: int, steps: int, seed: int):
  """The `steps` training minibatches every candidate is fine-tuned on before derive scores
  it (`Scorer(fine_tune=...)`; fixed per seed, so every candidate gets the same ones)."""
  if steps <= 0:
    return []
  return list(trainer.distribute(_batches(splits, batch_size, True, seed + 11).take(steps)))


def make_trainer(space, splits, settings: Dict[str, Any],
                 tf_strategy: Optional[tf.distribute.Strategy] = None
                 ) -> trainer_lib.SupernetTrainer:
  """The supernet and its optimizer as `enas_search` builds them from its arguments."""
  s = settings
  return trainer_lib.SupernetTrainer(
      space, splits.num_classes, splits.fixed_image_shape(), global_batch_size=s["batch_size"],
      distribution=s["distribution"], strategy=tf_strategy, momentum=s["momentum"], nesterov=s["nesterov"],
      l2=s["l2"], grad_clip_norm=s["grad_clip_norm"], aux_weight=s["aux_weight"],
      num_cells=s["num_cells"], filters=s["filters"], stem_stride=s["stem_stride"],
      aux_head=s["aux_head"], dropout=s["dropout"], drop_path_rate=s["drop_path_rate"],
      bn_momentum=s["bn_momentum"], precision=s.get("precision", "float32"))


class RestoredRun(NamedTuple):
  """A finished (or interrupted) ENAS run rebuilt from its directory (`restore_run`)."""
  trainer: trainer_lib.SupernetTrainer
  space: search_space_lib.SearchSpace
  splits: Any
  objective: objectives.Objective
  settings: Dict[str, Any]  # enas_search's arguments, `seed` included
  epochs_done: int


def _not_a_run(workdir: str, why: str) -> ValueError:
  return ValueError(f"{workdir} is not an ENAS run directory: {why}")


def restore_run(workdir: str) -> RestoredRun:
  """Parses the run's config.gin (replacing the gin config of this process), then builds its
  data and supernet the way `enas_search` does and restores the supernet from the run's
  checkpoint: for tools that score cells with a finished run's shared weights."""
  path = os.path.join(workdir, "config.gin")
  if not os.path.isdir(workdir):
    raise _not_a_run(workdir, "no such directory")
  if not os.path.isfile(path):
    raise _not_a_run(workdir, "it has no config.gin")
  gin.clear_config()
  config.parse([path])
  from nasnet_rl import search as search_lib  # pylint: disable=g-import-not-at-top  (it imports us)
  main_args = _arguments(search_lib.search_main)
  if main_args["mode"] != "enas":
    raise _not_a_run(workdir, f"its config.gin runs search_main.mode = {main_args['mode']!r}")
  folder = checkpointing.newest_complete(os.path.join(workdir, "checkpoints", "enas"))
  if folder is None:
    raise _not_a_run(workdir, "no complete checkpoint in checkpoints/enas (the search has not "
                              "finished its first epoch)")
  settings = {**_arguments(enas_search), "seed": main_args["seed"]}  # search_main passes it
  space = settings["space"] or search_space_lib.SearchSpace("enas", 5)
  splits = data_lib.load_dataset(seed=settings["seed"])
  trainer = make_trainer(space, splits, settings)
  with checkpointing.restoring(folder):
    with open(os.path.join(folder, checkpointing.MARKER)) as f:
      epochs_done = int(json.load(f)["epoch"])
    trainer.restore(os.path.join(folder, "supernet.npz"))
  return RestoredRun(trainer, space, splits, settings["objective"] or objectives.Objective(),
                     settings, epochs_done)


def _arguments(fn) -> Dict[str, Any]:
  """A configurable's keyword arguments under the parsed gin config (defaults where unbound)."""
  params = inspect.signature(fn).parameters.values()
  out = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
  out.update(gin.get_bindings(fn))
  return out


def repair_epochs_log(path: str, epoch: int, last_line: Optional[Dict[str, Any]]) -> None:
  """Makes epochs.jsonl agree with a checkpoint after `epoch` epochs (see module doc)."""
  lines = history_lib.repair_jsonl(path, "epoch line")
  for n, line in enumerate(lines):
    if not isinstance(line, dict) or not isinstance(line.get("epoch"), int):
      raise ValueError(f"{path} line {n + 1}: not an epoch record (no integer 'epoch')")
  keep = [l for l in lines if l["epoch"] <= epoch]
  if len(keep) < len(lines):
    history_lib.warn(f"{path}: {len(lines) - len(keep)} line(s) after the checkpoint's epoch "
                     f"{epoch} moved to {path}.after-checkpoint (those epochs run again)")
    with open(path + ".after-checkpoint", "a") as f:
      for l in lines[len(keep):]:
        f.write(jsonio.dumps(l, sort_keys=True) + "\n")
    checkpointing.atomic_write(path, lambda f: f.write(
        "".join(jsonio.dumps(l, sort_keys=True) + "\n" for l in keep).encode("utf-8")))
  if last_line is not None and epoch and not any(l["epoch"] == epoch for l in keep):
    history_lib.warn(f"{path}: the line of epoch {epoch} was lost; written back from the "
                     "checkpoint")
    history_lib.append_jsonl(path, last_line)


@gin.configurable
@rundir.holds_workdir
def enas_search(workdir: str, *, space: Optional[search_space_lib.SearchSpace] = None,
                strategy: str = "reinforce", epochs: int = 150, batch_size: int = 160,
                steps_per_epoch: Optional[int] = None, num_cells: int = 2, filters: int = 20,
                stem_stride: int = 1, aux_head: bool = True, aux_weight: float = 0.4,
                dropout: float = 0.1, drop_path_rate: float = 0.4, l2: float = 1e-4,
                lr_max: float = 0.05, lr_min: float = 0.0005, lr_t0: int = 10, lr_tmul: int = 2,
                momentum: float = 0.9, nesterov: bool = True, grad_clip_norm: float = 5.0,
                bn_momentum: float = 0.9, controller_steps: int = 30,
                controller_batch: int = 10, derive_samples: int = 10, derive_batches: int = 1,
                top_k: int = 5, nan_storm: int = 20, distribution: Optional[str] = None,
                seed: int = 0, objective: Optional[objectives.Objective] = None,
                precision: str = "float32", score_bn: str = "batch",
                score_metric: str = "accuracy", warmup_epochs: int = 0,
                derive_fine_tune_steps: int = 0,
                derive_fine_tune_lr: float = 0.01,
                steps_per_execution: int = 20,
                tf_strategy: Optional[tf.distribute.Strategy] = None) -> Dict[str, Any]:
  """Runs (or resumes) an ENAS search in `workdir`; returns a summary (see module doc).
  `objective` turns a sampled cell's shared-weight accuracy and its path cost
  (`path_cost.path_cost`) into the controller's reward (default: accuracy alone).
  `precision` ('float32' | 'mixed_bfloat16' | 'mixed_float16') is the supernet's dtype policy
  (trainer.SupernetTrainer); a checkpoint resumes only under the precision it was written with.
  `score_bn` ('moving' | 'batch', trainer.SCORE_BN) is how the reward and derive normalize a
  sampled cell: by the BN moving statistics, or by the validation batch's own (ENAS' reward).
  `score_metric` ('accuracy' | 'likelihood', SCORE_METRICS) is what the reward and derive
  measure: the accuracy (ENAS'), or the geometric mean probability of the true label,
  exp(-cross-entropy), a continuous score with less sampling noise on few batches.
  The first `warmup_epochs` epochs train the shared weights on uniformly sampled paths and
  leave the controller untouched (a warm-up before the controller learns).
  `derive_fine_tune_steps` > 0: derive fine-tunes each candidate's path for that many training
  minibatches at `derive_fine_tune_lr` before scoring it, from the same shared weights each time
  (`SupernetTrainer.fine_tuned`); the controller's rewards are not fine-tuned.
  `steps_per_execution`: shared-weight steps per traced call of the one training loop
  (nasnet_rl/loop.py); losses, accuracies and skipped steps are read once per call at most.
  `tf_strategy`: the tf.distribute strategy, created by the caller before any other TF op
  (`enas_search_on_cluster`); default: `distribution`'s."""
  settings = dict(locals())  # the arguments, as restore_run rebuilds them from gin
  settings.pop("tf_strategy")
  precision_lib.check(precision)  # before any data is loaded
  if score_bn not in trainer_lib.SCORE_BN:
    raise ValueError(f"enas_search.score_bn must be one of {trainer_lib.SCORE_BN}, got "
                     f"{score_bn!r}")
  if score_metric not in SCORE_METRICS:
    raise ValueError(f"enas_search.score_metric must be one of {SCORE_METRICS}, got "
                     f"{score_metric!r}")
  space = space or search_space_lib.SearchSpace("enas", 5)
  objective = objective or objectives.Objective()
  splits = data_lib.load_dataset(seed=seed)
  os.makedirs(workdir, exist_ok=True)
  # A cell's shared-weight reward changes as the supernet trains: the controller must learn
  # from every sample, repeats included.
  repeats = {"learn_from_repeats": True} if strategy in ("reinforce", "ppo") else {}
  strat = controller_lib.make_strategy(strategy, space.num_choices(),
                                       decisions=space.decisions(), seed=seed, **repeats)
  trainer = make_trainer(space, splits, settings, tf_strategy)
  ckpt_dir = os.path.join(workdir, "checkpoints", "enas")
  progress = {"epoch": 0, "step": 0, "seconds": 0.0, "controller_seconds": 0.0,
              "skipped_steps": 0}
  folder = checkpointing.newest_complete(ckpt_dir)
  if folder is not None:
    with checkpointing.restoring(folder):
      with open(os.path.join(folder, checkpointing.MARKER)) as f:
        progress = json.load(f)
      trainer.restore(os.path.join(folder, "supernet.npz"))
      strat.restore(folder)
      print(f"resuming after epoch {progress['epoch']} ({progress['step']} shared steps)",
          flush=True)
  if distribute.num_workers(trainer.strategy) > 1:
    chief_epoch = distribute.broadcast_from_chief(trainer.strategy, [], progress["epoch"])
    if chief_epoch != progress["epoch"]:
      raise ValueError(f"this worker is at epoch {progress['epoch']} of the ENAS run, the chief "
                       f"at {chief_epoch}: an ENAS search resumes on a cluster only when every "
                       f"worker sees the chief's run directory (a shared file system)")
  steps = steps_per_epoch or splits.sizes["train"] // batch_size
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
  rewards_stream = iter(trainer.distribute(_validation_stream(splits, batch_size, seed)))
  epochs_log = os.path.join(workdir, "epochs.jsonl")
  repair_epochs_log(epochs_log, progress["epoch"], progress.get("last_line"))
  rundir.validated(workdir)  # the resume matches this run: config.gin may now be written
  start = time.time() - progress["seconds"]
  log = progress_lib.Log(workdir)
  report = progress_lib.Progress(log, "enas", epochs * steps, batch_size,
                                 start_step=progress["epoch"] * steps)

  def controller_time(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    progress["controller_seconds"] += time.perf_counter() - t0
    return out

  scorer = Scorer(trainer, objective, score_bn, score_metric)

  def reward(arc) -> float:
    images, labels = next(rewards_stream)
    return scorer([(images, labels)], arc)["reward"]

  for epoch in range(progress["epoch"], epochs):
    t_epoch = time.time()
    # 1. shared weights: a fresh architecture per minibatch (the controller does not change
    #    during this phase, so sampling all of them in one batched call is the same policy)
    warm = epoch < warmup_epochs
    archs = (_uniform_paths(space, steps, seed, epoch) if warm
             else controller_time(strat.propose, steps))
    train = iter(trainer.distribute(_batches(splits, batch_size, True, seed, epoch).take(steps)))
    lrs = [trainer_lib.cosine_with_restarts(progress["step"] + i, steps, lr_max, lr_min, lr_t0,
                                            lr_tmul) for i in range(steps)]
    lr = lrs[-1]
    trainer.model.drop_path_progress.assign(min(1.0, (epoch + 1) / epochs))
    done, shared = 0, {"loss": 0.0, "hits": 0.0, "steps": 0}
    while done < steps:  # calls of up to steps_per_execution steps, no host sync inside
      n = min(steps_per_execution, steps - done)
      trainer.train_steps(train, archs[done:done + n], lrs[done:done + n])
      done += n
      last_call = done == steps
      if not (last_call or report.due()):
        continue
      read = trainer.read_steps()  # a host sync, once per report or storm check
      shared["loss"] += read["loss"] * read["steps"] if read["steps"] else 0.0
      shared["hits"] += read["accuracy"] * read["steps"] if read["steps"] else 0.0
      shared["steps"] += read["steps"]
      progress["skipped_steps"] += read["skipped"]
      if read["skipped"]:
        log(f"  {read['skipped']} shared-weight step(s) with a non-finite loss or gradient: "
            "updates skipped")
      if read["longest_skipped_run"] >= nan_storm:
        raise NaNStormError(
            f"{read['longest_skipped_run']} consecutive shared-weight steps were non-finite "
            f"(epoch {epoch + 1}); the supernet diverged: lower lr_max or raise grad clipping, "
            f"and resume from the last checkpoint in {ckpt_dir}")
      report.report(epoch * steps + done, {"loss": read["loss"], "accuracy": read["accuracy"]},
                    suffix=f" (epoch {epoch + 1}/{epochs}, shared weights)")
    progress["step"] += steps
    losses = [shared["loss"] / shared["steps"]] if shared["steps"] else []
    accs = [shared["hits"] / shared["steps"]] if shared["steps"] else []
    # 2. controller: `controller_steps` updates of `controller_batch` sampled architectures
    ctrl_rewards, stats = [], {}
    scorer.seen.clear()
    for _ in range(0 if warm else controller_steps):
      batch = controller_time(strat.propose, controller_batch)
      r = [reward(arc) for arc in batch]
      stats = controller_time(strat.feedback, batch, r) or {}
      ctrl_rewards += r
    line = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None,
            "train_accuracy": float(np.mean(accs)) if accs else None,
            "controller_reward": float(np.mean(ctrl_rewards)) if ctrl_rewards else None,
            **scorer.means(),
            "lr": lr, "epoch_seconds": round(time.time() - t_epoch, 2),
            **{f"controller_{k}": float(v) for k, v in stats.items()}}
    progress["epoch"] = epoch + 1
    progress["seconds"] = time.time() - start
    progress["last_line"] = line  # so a line lost after the checkpoint can be written back
    _save(ckpt_dir, trainer, strat, progress)
    history_lib.append_jsonl(epochs_log, line)
    with writer.as_default():
      for k, v in line.items():
        if isinstance(v, float):
          tf.summary.scalar(k, v, step=epoch + 1)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    log(f"epoch {epoch + 1}/{epochs}: loss {fmt(line['train_loss'])} "
        f"acc {fmt(line['train_accuracy'])} | controller reward "
        f"{fmt(line['controller_reward'])} | {line['epoch_seconds']:.0f}s, about "
        f"{progress_lib.minutes((epochs - epoch - 1) * line['epoch_seconds'])} to go")

  fine_tune = (fine_tune_batches_of(trainer, splits, batch_size, derive_fine_tune_steps, seed),
               derive_fine_tune_lr)
  print(f"derive: scoring {derive_samples} distinct cells of the trained policy (its most likely "
        f"first) with the shared weights on {derive_batches} validation batches"
        + (f", each after {derive_fine_tune_steps} fine-tuning steps" if derive_fine_tune_steps
           else ""), flush=True)
  t0 = time.time()
  ranked = derive(trainer, strat, space, splits, batch_size, derive_samples, derive_batches,
                  seed, objective, score_bn, score_metric, fine_tune)
  if ranked:
    print(f"derive: best score {ranked[0]['score']:.4f} of {len(ranked)} cells "
          f"({time.time() - t0:.0f}s)", flush=True)
  return _finish(workdir, ranked, progress, top_k, time.time() - start)


def _uniform_paths(space: search_space_lib.SearchSpace, n: int, seed: int,
                   epoch: int) -> List[List[int]]:
  """`n` architectures drawn uniformly from `space` (the random-search baseline's sampler),
  the same for a (seed, epoch) whether the run resumed or not."""
  return baselines.RandomSearch(space.num_choices(), seed=[seed, epoch]).propose(n)


# what a shared-weight score measures on its validation batches: accuracy, or exp(-mean
# cross-entropy) (the geometric mean probability of the true label; in (0, 1] like accuracy)
SCORE_METRICS = ("accuracy", "likelihood")


class Scorer:
  """A cell's controller reward from shared-weight accuracy (or likelihood, SCORE_METRICS) on
  given batches and, for a cost-aware objective, its path cost; keeps what it scored for the
  epoch's means. `fine_tune` = (training batches, learning rate): each cell is scored after
  that path-wise fine-tuning of the shared weights, which are restored afterwards
  (`SupernetTrainer.fine_tuned`); no batches (the default) scores the shared weights as they
  are."""

  def __init__(self, trainer, objective: objectives.Objective, bn: str = "moving",
               metric: str = "accuracy", fine_tune: Tuple[Sequence[Any], float] = ((), 0.0)):
    if metric not in SCORE_METRICS:
      raise ValueError(f"score metric must be one of {SCORE_METRICS}, got {metric!r}")
    self.trainer, self.objective, self.bn, self.metric = trainer, objective, bn, metric
    self.fine_tune_batches, self.fine_tune_lr = fine_tune
    self.seen: List[Dict[str, float]] = []

  def __call__(self, batches, arc) -> Dict[str, float]:
    out = self.score(self.evaluate(batches, arc), arc)
    self.seen.append(out)
    return out

  def evaluate(self, batches, arc) -> List[Dict[str, float]]:
    """The per-batch `accuracy` and `loss` of `arc` (SupernetTrainer.evaluate), after the
    scorer's fine-tuning of its path, if any."""
    if not self.fine_tune_batches:
      return [self.trainer.evaluate(x, y, arc, bn=self.bn) for x, y in batches]
    with self.trainer.fine_tuned(self.fine_tune_batches, arc, self.fine_tune_lr):
      return [self.trainer.evaluate(x, y, arc, bn=self.bn) for x, y in batches]

  def score(self, evals: List[Dict[str, float]], arc) -> Dict[str, float]:
    """The reward (and its parts) from per-batch evaluations of `arc`, without recording it:
    any subset of a cell's batches scores without another forward pass."""
    accuracy = float(np.mean([e["accuracy"] for e in evals]))
    quality = accuracy
    out = {"reward": accuracy}
    if self.metric == "likelihood":
      quality = math.exp(-float(np.mean([e["loss"] for e in evals])))
      out = {"reward": quality, "accuracy": accuracy, "likelihood": quality}
    if self.objective.uses_cost:
      cost = path_cost.path_cost(self.trainer.model, arc)[self.objective.cost]
      reward, _ = self.objective(quality, cost)
      out.update(reward=reward, accuracy=accuracy, cost=float(cost))
    return out

  def means(self) -> Dict[str, float]:
    """Mean accuracy and cost of the cells scored since `seen` was cleared (cost-aware only)."""
    if not self.objective.uses_cost or not self.seen:
      return {}
    return {f"controller_{k}": float(np.mean([e[k] for e in self.seen]))
            for k in ("accuracy", "cost")}


def derive(trainer, strat, space, splits, batch_size, samples, batches, seed, objective=None,
           score_bn: str = "moving", score_metric: str = "accuracy", fine_tune=((), 0.0)):
  """ENAS' derive: score `samples` distinct cells from the trained policy (its most likely cell
  first, then samples; duplicates are skipped through `QueryBudget`) with the shared weights
  on the same `batches` validation batches, best first (Pham et al. 2018, sec. 2.2: "the
  highest reward model is re-trained from scratch"). The score is the search's reward (the
  objective's, with `accuracy` and `cost` kept beside it when it is cost-aware); `fine_tune`
  as in `Scorer`."""
  scorer = Scorer(trainer, objective or objectives.Objective(), score_bn, score_metric,
                  fine_tune)
  val = derive_batches_of(trainer, splits, batch_size, batches, seed)
  budget = query_budget.QueryBudget(samples)
  ranked = []
  proposals = [strat.most_likely()] if hasattr(strat, "most_likely") else []
  while not budget.exhausted():
    for arc in proposals or strat.propose(samples - budget.distinct):
      budget.propose()
      key = tuple(int(d) for d in arc)
      if key in budget or budget.distinct >= budget.max_distinct:
        continue
      scored = scorer(val, arc)
      budget.add(key, scored["reward"])
      ranked.append({"decisions": list(key), "score": scored["reward"],
                     **{k: v for k, v in scored.items() if k != "reward"}})
    proposals = []
  ranked.sort(key=lambda e: -e["score"])
  for i, e in enumerate(ranked):
    e["genotype"] = space.decode(e["decisions"], name=f"enas_derived_{i}").to_dict()
  return ranked


def enas_search_on_cluster(workdir: str, seed: int = 0) -> Dict[str, Any]:
  """`enas_search` as every entry point runs it: the tf.distribute strategy first
  (MultiWorkerMirroredStrategy must precede every other TF op); on a cluster's other workers the
  search writes to a temporary directory that is removed afterwards (holding a copy of the
  chief's checkpoints when the run directory is on a shared file system), so only the chief
  writes `workdir`."""
  try:
    kind = gin.query_parameter("enas_search.distribution")
  except ValueError:
    kind = None
  tf_strategy = distribute.make_distribution(kind) if kind else distribute.make_distribution()
  if distribute.is_chief():
    return enas_search(workdir, seed=seed, tf_strategy=tf_strategy)
  with tempfile.TemporaryDirectory(prefix="nasnet_rl_worker_") as private:
    shared = os.path.join(workdir, "checkpoints")
    if os.path.isdir(shared):
      shutil.copytree(shared, os.path.join(private, "checkpoints"))
    return enas_search(private, seed=seed, tf_strategy=tf_strategy)


def _save(ckpt_dir, trainer, strat, progress):
  def write(folder):
    trainer.save(os.path.join(folder, "supernet.npz"), {"epoch": progress["epoch"]})
    strat.save(folder)
    with open(os.path.join(folder, checkpointing.MARKER), "w") as f:
      jsonio.dump(progress, f)
  checkpointing.save(ckpt_dir, write)


def _finish(workdir, ranked: List[Dict[str, Any]], progress, top_k, seconds):
  best = ranked[:top_k]
  checkpointing.save_json(os.path.join(workdir, "best_genotypes.json"),
                          [{"rank": i + 1, **{k: e[k] for k in
                                               ("score", "accuracy", "cost") if k in e},
                            "decisions": e["decisions"], "genotype": e["genotype"]}
                           for i, e in enumerate(best)], strict=True)
  geno = genotype_lib.Genotype.from_dict(best[0]["genotype"])
  genotype_lib.save(geno, os.path.join(workdir, "best_genotype.json"))
  try:
    viz.save_picture(geno, os.path.join(workdir, "best_cells.png"))
  except Exception as e:  # a picture is a nicety; never lose a search over it
    print(f"warning: could not draw the best cells: {e}", flush=True)
  summary = {"mode": "enas", "epochs": progress["epoch"], "best_score": best[0]["score"],
             "wall_seconds": round(seconds, 1),
             "controller_share": round(progress["controller_seconds"] / max(seconds, 1e-9), 4),
             "skipped_steps": progress["skipped_steps"], "best_genotype": "best_genotype.json"}
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    jsonio.dump(summary, f, indent=2, sort_keys=True)
  return summary
