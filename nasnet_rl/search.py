"""Standalone search: propose -> evaluate children -> feedback -> checkpoint, until a budget.

The only place a strategy meets an evaluator (PyGlove's loop). Crash safety: every result is
appended to history.jsonl (flushed, fsynced) before the strategy sees it, and the strategy is
checkpointed after every feedback together with the number of history lines it has seen; on
resume, lines past that number are fed back again, so no completed child is lost or retrained.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl import benchmarks
from nasnet_rl import checkpointing as checkpoint_dir
from nasnet_rl import controller as controller_lib
from nasnet_rl import executors as executors_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import history as history_lib
from nasnet_rl import jsonio
from nasnet_rl import objectives
from nasnet_rl import plots
from nasnet_rl import progress as progress_lib
from nasnet_rl import query_budget
from nasnet_rl import rewards
from nasnet_rl import rundir
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.child import evaluate as evaluate_lib
from nasnet_rl.enas import search as enas_search_lib

gin.external_configurable(search_space_lib.SearchSpace, module="search_space")
gin.external_configurable(benchmarks.NB201Space, module="benchmarks")


def genotype_key(geno: genotype_lib.Genotype) -> str:
  """Canonical identity of an architecture (cells only), for the duplicate cache."""
  return history_lib.genotype_key(geno.to_dict())


@dataclasses.dataclass
class _Progress:
  fed: int = 0          # history entries the strategy checkpoint has seen
  fed_log: list = dataclasses.field(default_factory=list)  # history_lib.fed_record of each
  search_seconds: float = 0.0
  strategy_seconds: float = 0.0


def _save_checkpoint(directory: str, strat, progress: _Progress) -> None:
  """Strategy state and progress land together or not at all (progress.json is written last)."""
  def write(folder):
    strat.save(folder)
    with open(os.path.join(folder, checkpoint_dir.MARKER), "w") as f:
      jsonio.dump(dataclasses.asdict(progress), f)
  checkpoint_dir.save(directory, write)


def _restore_checkpoint(directory: str, strat) -> _Progress:
  """Restores the newest complete checkpoint; none -> fresh start."""
  folder = checkpoint_dir.newest_complete(directory)
  if folder is None:
    return _Progress()
  with checkpoint_dir.restoring(folder):
    with open(os.path.join(folder, checkpoint_dir.MARKER)) as f:
      progress = _Progress(**json.load(f))
    strat.restore(folder)
  return progress


@gin.configurable
@rundir.holds_workdir
def standalone_search(workdir: str, *, space: search_space_lib.SearchSpace = None,
                      strategy: str = "reinforce", max_children: int = 20,
                      max_seconds: Optional[float] = None, feedback_batch: int = 1,
                      penalty_reward: float = 0.0, top_k: int = 5, seed: int = 0,
                      executor: Optional[str] = None, max_proposals_factor: int = 20,
                      failure_streak: int = 3, preflight: bool = True,
                      objective: Optional[objectives.Objective] = None) -> Dict[str, Any]:
  """Runs (or resumes) a search in `workdir`; returns a summary. `max_children` counts
  architectures trained; duplicates reuse their cached reward without training (the
  `QueryBudget` rule). `space` is a NASNet `SearchSpace` or a tabular space such as
  `NB201Space` (with the 'table' executor). `executor` names the executor; None leaves it to
  `make_executor`'s gin binding (default 'local'). `objective` turns accuracy and cost into the reward
  (default: accuracy alone). `preflight` checks data, model build and one training step in
  the driver before the first child; `failure_streak` identical errors in a row stop the
  search."""
  space = space or search_space_lib.SearchSpace()
  objective = objective or objectives.Objective()
  if isinstance(max_children, bool) or not isinstance(max_children, int) or max_children < 1:
    raise ValueError(f"standalone_search.max_children must be a positive integer, got "
                     f"{max_children!r}")
  if max_seconds is not None and not max_seconds > 0:
    raise ValueError(f"standalone_search.max_seconds must be > 0 or None, got {max_seconds!r}")
  if isinstance(feedback_batch, bool) or not isinstance(feedback_batch, int) or feedback_batch < 1:
    raise ValueError(f"standalone_search.feedback_batch must be >= 1, got {feedback_batch!r}")
  query_budget.check_within(max_children, space.size(), "standalone_search.max_children")
  os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
  history = history_lib.History(os.path.join(workdir, "history.jsonl"))
  strat = controller_lib.make_strategy(strategy, space.num_choices(),
                                       decisions=space.decisions(), seed=seed)
  strategy_dir = os.path.join(workdir, "checkpoints", "strategy")
  progress = _restore_checkpoint(strategy_dir, strat)
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
  # completed but not yet fed back (crash between); children the history lost are written back
  def decode(d):
    arch = space.decode(d)
    return arch.to_dict(), space.key(arch)

  pending = history_lib.reconcile(history, progress.fed_log, progress.fed, decode=decode)
  progress.fed = len(progress.fed_log)
  rundir.validated(workdir)  # the resume matches this run: config.gin may now be written
  if history.entries:
    print(f"resuming: {len(history.entries)} children in history, "
          f"{len(pending)} to feed back again", flush=True)
  budget = query_budget.QueryBudget(max_children, max_proposals_factor)
  for key, entry in history.trained().items():
    budget.add(key, entry)
  start = time.time() - max(progress.search_seconds, history.elapsed_seconds())

  def feed(entries):
    if not entries:
      return
    t0 = time.perf_counter()
    stats = strat.feedback([e["decisions"] for e in entries],
                           [e["reward"] for e in entries]) or {}
    progress.fed += len(entries)
    progress.fed_log += [history_lib.fed_record(e) for e in entries]
    progress.search_seconds = time.time() - start
    _save_checkpoint(strategy_dir, strat, progress)
    # The strategy's share counts its updates, its first trace and its checkpoints.
    progress.strategy_seconds += time.perf_counter() - t0
    with writer.as_default():
      step = progress.fed
      for e in entries:
        tf.summary.scalar("reward", e["reward"], step=e["index"])
      for k, v in stats.items():
        tf.summary.scalar(f"strategy/{k}", float(v), step=step)
      # Choice histograms cost ~50 ms each (eager bucketing): every 25 children, not each.
      if step // 25 != (step - len(entries)) // 25:
        decisions = np.array([e["decisions"] for e in history.entries[-50:]])
        for j in range(decisions.shape[1]):
          tf.summary.histogram(f"decisions/{j:02d}", decisions[:, j], step=step)

  buffer = list(pending)
  if len(buffer) >= feedback_batch:
    feed(buffer)
    buffer = []

  ex = executors_lib.make_executor() if executor is None else executors_lib.make_executor(executor)
  executors_lib.check_fits(ex, space)
  # A broken set-up (missing data, a bad config) fails here, once, before any child is
  # trained, cached or fed back. A fixed architecture keeps the strategy's proposals as they are.
  if preflight:
    print("preflight: building and training one child for a step, to check the data and the "
          "set-up before the search", flush=True)
    ex.preflight(space.decode([0] * len(space.num_choices())).to_dict(), seed)
  streak = evaluate_lib.FailureStreak(limit=failure_streak)
  in_flight: Dict[Any, Dict[str, Any]] = {}
  best = {"reward": None, "index": None}  # for the progress line
  for e in history.entries:
    if e["status"] == "ok" and (best["reward"] is None or e["reward"] > best["reward"]):
      best.update(reward=e["reward"], index=e["index"])

  def record(info, result):
    reward, status, error = result.get("reward"), result.get("status") or "failed", result.get("error")
    problem = rewards.accuracy_problem(reward) if status == "ok" else None
    if problem:  # the evaluator is broken, not the architecture
      status, error = "failed", f"the evaluator's reward {problem}"
      result = dict(result, status=status, error=error, infrastructure=True)
    accuracy, cost = reward, result.get(objective.cost)
    if status == "ok":
      try:
        reward, cost = objective(accuracy, cost)
      except ValueError as e:
        status, error = "failed", str(e)
    entry = {"index": len(history.entries), "decisions": [int(d) for d in info["decisions"]],
             "genotype": info["genotype"].to_dict(), "key": info["key"],
             "reward": float(reward) if status == "ok" else float(penalty_reward),
             "status": status, "error": error, "params": result.get("params"),
             "mult_adds": result.get("mult_adds"), "train_seconds": result.get("train_seconds"),
             "cached": info.get("cached", False), "time": round(time.time() - start, 2)}
    if objective.uses_cost:
      entry.update(accuracy=accuracy, cost=cost)
    if result.get("worker"):
      entry["worker"] = result["worker"]
    if result.get("report") is not None:  # a table's test accuracy: recorded, never fed back
      entry["report"] = result["report"]
    if not entry["cached"] and status != "ok" and evaluate_lib.is_infrastructure_failure(result):
      entry["infrastructure"] = True  # says nothing about the architecture
    history.append(entry)
    if history_lib.counts_as_trained(entry):
      budget.add(entry["key"], entry)
    if not entry["cached"]:
      streak.observe(result)  # N identical failures in a row: the set-up, not the children
    status = "" if entry["status"] == "ok" else f" [{entry['status']}: {entry['error']}]"
    if entry["status"] == "ok" and (best["reward"] is None or entry["reward"] > best["reward"]):
      best.update(reward=entry["reward"], index=entry["index"])
    print(progress_lib.child_line(
        entry["index"], entry["reward"], (" (cached)" if entry["cached"] else "") + status,
        best["reward"], best["index"], progress_lib.remaining(
            budget.distinct, max_children, time.time() - start, max_seconds)), flush=True)
    return entry

  def out_of_budget():
    if max_seconds is not None and time.time() - start >= max_seconds:
      return True
    return budget.exhausted(len(in_flight))

  try:
    while True:
      while len(in_flight) < ex.capacity and not out_of_budget():
        t0 = time.perf_counter()
        decisions = strat.propose(1)[0]
        progress.strategy_seconds += time.perf_counter() - t0
        budget.propose()
        geno = space.decode(decisions, name=f"child_{len(history.entries) + len(in_flight)}")
        info = {"decisions": decisions, "genotype": geno, "key": space.key(geno)}
        prior = budget.lookup(info["key"])
        if prior is not None:  # duplicate: reuse the result, do not retrain
          buffer.append(record(dict(info, cached=True), {
              "status": prior["status"], "reward": prior.get("accuracy", prior["reward"]),
              "error": prior["error"], "params": prior["params"],
              "mult_adds": prior["mult_adds"], "report": prior.get("report")}))
        else:
          in_flight[ex.submit(geno.to_dict(), seed)] = info
        if len(buffer) >= feedback_batch:
          feed(buffer)
          buffer = []
      if not in_flight:
        break
      for handle, result in ex.wait(list(in_flight)):
        entry = record(in_flight.pop(handle), result)
        if history_lib.needs_feedback(entry):
          buffer.append(entry)
      if len(buffer) >= feedback_batch or not in_flight and out_of_budget():
        feed(buffer)
        buffer = []
    feed(buffer)
  finally:
    ex.shutdown()
  progress.search_seconds = time.time() - start
  return _finish(workdir, history, progress, space, top_k)


def _finish(workdir, history, progress, space, top_k):
  """best_genotypes.json (top-k unique), pictures, and a summary."""
  best: Dict[str, Dict[str, Any]] = {}
  for e in history.entries:
    if e["status"] == "ok" and not e["cached"]:
      best.setdefault(e["key"], e)
  ranked = sorted(best.values(), key=lambda e: -e["reward"])[:top_k]
  out = [{"rank": i + 1, "reward": e["reward"], "index": e["index"], "params": e["params"],
          "mult_adds": e["mult_adds"], "genotype": e["genotype"],
          **{k: e[k] for k in ("accuracy", "cost", "report") if k in e}}
         for i, e in enumerate(ranked)]
  tmp = os.path.join(workdir, "best_genotypes.json.tmp")
  with jsonio.writing(tmp), open(tmp, "w") as f:
    jsonio.dump(out, f, indent=2, sort_keys=True)
  os.replace(tmp, os.path.join(workdir, "best_genotypes.json"))
  if ranked:
    space.save_best(ranked[0]["genotype"], workdir)
  plots.reward_curve_png([e["reward"] for e in history.entries],
                       os.path.join(workdir, "reward_curve.png"), title="reward per child")
  wall = progress.search_seconds or 1.0
  summary = {"children": len(history.entries), "trained": len(history.trained()),
             "failed": sum(e["status"] != "ok" for e in history.entries),
             "best_reward": ranked[0]["reward"] if ranked else None,
             **({"best_report": ranked[0]["report"]} if ranked and "report" in ranked[0]
                else {}),
             "wall_seconds": round(wall, 1),
             "strategy_seconds": round(progress.strategy_seconds, 3),
             "strategy_share": round(progress.strategy_seconds / wall, 5)}
  path = os.path.join(workdir, "summary.json")
  with jsonio.writing(path), open(path, "w") as f:
    jsonio.dump(summary, f, indent=2, sort_keys=True)
  return summary


@gin.configurable
def search_main(workdir: str, mode: str = "standalone", seed: int = 0) -> Dict[str, Any]:
  """Entry of nasnet-search: seeds everything, then runs the search named by `mode`."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  if mode == "standalone":
    return standalone_search(workdir, seed=seed)
  if mode == "enas":
    return enas_search_lib.enas_search_on_cluster(workdir, seed=seed)
  raise ValueError(f"unknown search mode {mode!r}; expected 'standalone' or 'enas'")
