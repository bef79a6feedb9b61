"""Strategies x seeds x query budgets on a tabular benchmark, the NAS-Bench-201 way.

A run lets one strategy query up to `budget` distinct cells (duplicates are answered from the
cache through `QueryBudget`, as in the standalone search); its result after k queries is the
report (test) accuracy of the cell with the best reward (validation) among the first k. Runs
are spread over worker processes; each worker builds the table once, and controllers of one
shape share one trace (see lstm_controller._program).
"""

import ast
import dataclasses
import multiprocessing
import os
import signal
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nasnet_rl import query_budget


@dataclasses.dataclass(frozen=True)
class StrategySpec:
  """A strategy name with keyword settings, written `name` or `name:key=value,key=value`."""
  name: str
  settings: Tuple[Tuple[str, Any], ...] = ()

  @property
  def label(self) -> str:
    if not self.settings:
      return self.name
    return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.settings)

  @classmethod
  def parse(cls, text: str) -> "StrategySpec":
    from nasnet_rl import controller as controller_lib  # TF import only where needed
    name, _, rest = text.strip().partition(":")
    if name not in controller_lib.STRATEGIES:
      raise ValueError(f"unknown strategy {name!r} in {text!r}; expected one of "
                       f"{list(controller_lib.STRATEGIES)}")
    settings = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
      key, eq, value = item.partition("=")
      if not eq or not key:
        raise ValueError(f"strategy setting {item!r} in {text!r} is not key=value")
      try:
        parsed = ast.literal_eval(value)
      except (ValueError, SyntaxError):
        parsed = value  # a bare word: a string setting such as input_scoring=logits
      settings.append((key.strip(), parsed))
    spec = cls(name, tuple(settings))
    spec.make([2], seed=0)  # unknown settings fail here, before any worker starts
    return spec

  def make(self, num_choices: Sequence[int], seed: int):
    """The strategy for `seed`. The LSTM strategies default to `jit_compile=True` here: every
    seed of a worker shares one trace of one batch size, so XLA compiles once and then cuts
    each call's cost ~2x (REINFORCE) to ~3x (PPO) on CPU; the policy is the same."""
    from nasnet_rl import controller as controller_lib
    settings = dict(self.settings)
    if self.name in ("reinforce", "ppo"):
      settings.setdefault("jit_compile", True)
    return controller_lib.make_strategy(self.name, num_choices, seed=seed, **settings)


def run_search(strategy, benchmark, budget: int, feedback_batch: int = 1,
               max_proposals_factor: int = 20) -> Dict[str, Any]:
  """One search: returns per-query curves (best-so-far report, and whether the table's best
  cell by reward has been found) and the counts of distinct queries and proposals."""
  if isinstance(feedback_batch, bool) or feedback_batch < 1:
    raise ValueError(f"feedback_batch must be >= 1, got {feedback_batch}")
  budget_ = query_budget.QueryBudget(budget, max_proposals_factor)
  best_reward, best_report = -np.inf, np.nan
  top_reward = float(np.max(benchmark.reward))
  curve = np.full(budget, np.nan)
  found = np.zeros(budget, dtype=bool)
  while not budget_.exhausted():
    decisions = strategy.propose(feedback_batch)
    fed_d, fed_r = [], []
    for d in decisions:
      key = tuple(d)
      reward = budget_.lookup(key)
      if reward is None:
        if budget_.exhausted():
          break
        reward = benchmark.query(d)["reward"]
        budget_.add(key, reward)
        if reward > best_reward:
          best_reward, best_report = reward, benchmark.query(d)["report"]
        curve[budget_.distinct - 1] = best_report
        found[budget_.distinct - 1] = best_reward >= top_reward
      budget_.propose()
      fed_d.append(d)
      fed_r.append(reward)
    strategy.feedback(fed_d, fed_r)
  n = budget_.distinct  # fewer than `budget` only when the proposal cap ended the run
  curve[n:] = curve[n - 1] if n else np.nan
  found[n:] = found[n - 1] if n else False
  return {"curve": curve, "found": found, "distinct": n, "proposals": budget_.proposals}


# -- many runs over worker processes -----------------------------------------------------------

_WORKER: Dict[str, Any] = {}


def _init_worker(table_kwargs: Dict[str, Any], threads: int) -> None:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if multiprocessing.parent_process() is not None:  # Ctrl-C is the parent's to report
    signal.signal(signal.SIGINT, signal.SIG_IGN)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  from nasnet_rl.benchmarks import table  # pylint: disable=g-import-not-at-top
  _WORKER["benchmark"] = table.TabularBenchmark(**table_kwargs)


def _run_chunk(job):
  spec, seeds, budget, feedback_batch = job
  bench = _WORKER["benchmark"]
  out = []
  for seed in seeds:
    t0 = time.perf_counter()
    result = run_search(spec.make(bench.space.num_choices(), seed), bench, budget,
                        feedback_batch)
    result.update(seed=seed, seconds=time.perf_counter() - t0)
    out.append(result)
  return spec.label, out


def compare(specs: Sequence[StrategySpec], table_kwargs: Dict[str, Any], seeds: Sequence[int],
            budget: int, feedback_batch: int = 1, workers: Optional[int] = None,
            chunk: int = 5, progress=print) -> Dict[str, List[Dict[str, Any]]]:
  """Runs every spec on every seed; returns {label: [run results in seed order]}."""
  workers = workers or os.cpu_count() or 1
  jobs = [(spec, list(seeds[i:i + chunk]), budget, feedback_batch)
          for spec in specs for i in range(0, len(seeds), chunk)]
  results: Dict[str, List[Dict[str, Any]]] = {spec.label: [] for spec in specs}
  if workers == 1:
    _init_worker(table_kwargs, threads=0)
    finished = map(_run_chunk, jobs)
    pool = None
  else:
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_worker, initargs=(table_kwargs, 1))
    finished = pool.imap_unordered(_run_chunk, jobs)
  try:
    for label, runs in finished:
      results[label].extend(runs)
      if len(results[label]) == len(seeds) and progress:
        progress(f"  {label}: {len(seeds)} runs done")
  except BaseException:  # an error or Ctrl-C: the workers stop now, not after their queue
    if pool is not None:
      pool.terminate()
    raise
  finally:
    if pool is not None:
      pool.close()
      pool.join()
  for label in results:
    results[label].sort(key=lambda r: r["seed"])
  return results


def summarize(runs: List[Dict[str, Any]], budgets: Sequence[int]) -> Dict[int, Dict[str, float]]:
  """Per budget: mean, std and standard error of the returned cell's report (in percent),
  the share of runs that found the table's best cell, distinct queries and proposals."""
  out = {}
  for b in budgets:
    values = np.array([r["curve"][b - 1] for r in runs]) * 100.0
    out[b] = {"mean": float(values.mean()), "std": float(values.std()),
              "se": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0,
              "optimum_found": float(np.mean([r["found"][b - 1] for r in runs])),
              "runs": len(runs)}
  out["distinct"] = float(np.mean([r["distinct"] for r in runs]))
  out["proposals"] = float(np.mean([r["proposals"] for r in runs]))
  out["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs]))
  return out
