"""Do shared-weight scores predict standalone accuracy? Samples K distinct cells uniformly from a
finished ENAS run's space, scores each with the run's supernet exactly as derive scores its
candidates, trains each from scratch at compare_search's budget, and reports Kendall's tau-b and
Spearman's rho between score and test accuracy (rank_correlation.json, rank_correlation.png).

  nasnet-rank-correlation --enas_run=runs/enas_fmnist --num_cells=10

--enas_run is the ENAS run (read, not written; the supernet, data and derive batches come from
its config.gin and checkpoint); --gin_file/--gin set the standalone budget (default
train/compare_fashion_mnist_cpu.gin); --workdir (the report) defaults to
<enas_run>/rank_correlation.
Old form: --workdir=RUN without --enas_run still reads RUN, and --out is still the report.
"""

import math
import os
import sys
from typing import Any, Dict, List

import gin
import numpy as np

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import jsonio
from nasnet_rl import plots
from nasnet_rl import rank_stats
from nasnet_rl import rundir
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs
from nasnet_rl.cli import compare
from nasnet_rl.enas import search as enas_search_lib

FLAGS = common.FLAGS
flagdefs.define("rank_correlation")


BUDGET = "train/compare_fashion_mnist_cpu.gin"


def sample_cells(space: search_space_lib.SearchSpace, k: int, seed: int) -> List[List[int]]:
  """`k` distinct decision lists drawn uniformly from `space` (distinct as architectures)."""
  if k > space.size():
    raise ValueError(f"--num_cells={k} exceeds the {space.size()} cells of the space")
  rng = np.random.default_rng(seed)
  seen, out = set(), []
  while len(out) < k:
    arc = [int(rng.integers(0, n)) for n in space.num_choices()]
    key = space.key(space.decode(arc))
    if key not in seen:
      seen.add(key)
      out.append(arc)
  return out


def evaluate_cells(run: enas_search_lib.RestoredRun, arcs, bn_recalibrate: int, seed: int,
                   bn: str = None, batches: int = None, metric: str = None,
                   fine_tune_steps: int = None):
  """Derive's scorer (the run's `score_bn`, `score_metric` and `derive_fine_tune_steps` unless
  `bn` / `metric` / `fine_tune_steps` is given) and, for each architecture, its per-batch
  evaluations on derive's validation batches (`batches` of them instead of the run's
  `derive_batches`; the first ones are the same batches), optionally after re-estimating its
  path's BN statistics on `bn_recalibrate` training minibatches."""
  s = run.settings
  val = enas_search_lib.derive_batches_of(run.trainer, run.splits, s["batch_size"],
                                          batches or s["derive_batches"], s["seed"])
  steps = s.get("derive_fine_tune_steps", 0) if fine_tune_steps is None else fine_tune_steps
  fine_tune = (enas_search_lib.fine_tune_batches_of(run.trainer, run.splits, s["batch_size"],
                                                    steps, s["seed"]),
               s.get("derive_fine_tune_lr", 0.01))
  scorer = enas_search_lib.Scorer(run.trainer, run.objective, bn or s.get("score_bn", "moving"),
                                  metric or s.get("score_metric", "accuracy"), fine_tune)
  train = []
  if bn_recalibrate:
    train = list(run.trainer.distribute(data_lib.make_batches(
        run.splits.train, batch_size=s["batch_size"], training=True, mean=run.splits.mean,
        std=run.splits.std, seed=seed).take(bn_recalibrate)))
  evals = []
  for arc in arcs:
    if bn_recalibrate:
      with run.trainer.recalibrated_bn(train, arc):
        evals.append(scorer.evaluate(val, arc))
    else:
      evals.append(scorer.evaluate(val, arc))
  return scorer, evals


def score_cells(run: enas_search_lib.RestoredRun, arcs, bn_recalibrate: int,
                seed: int, bn: str = None, batches: int = None, metric: str = None,
                fine_tune_steps: int = None) -> List[Dict[str, float]]:
  """Derive's score of each architecture on its validation batches (`evaluate_cells`)."""
  scorer, evals = evaluate_cells(run, arcs, bn_recalibrate, seed, bn, batches, metric,
                                 fine_tune_steps)
  return [scorer.score(e, arc) for e, arc in zip(evals, arcs)]


# the scorings every report compares (name: (BN mode, recalibration minibatches, validation
# batches (None: the run's derive_batches), metric (enas_search.SCORE_METRICS), fine-tuning
# minibatches (at the run's derive_fine_tune_lr)))
SCORINGS = {"moving_statistics": ("moving", 0, None, "accuracy", 0),
            "batch_statistics": ("batch", 0, None, "accuracy", 0),
            "recalibrated_20": ("moving", 20, None, "accuracy", 0),
            "batch_statistics_32_batches": ("batch", 0, 32, "accuracy", 0),
            "moving_statistics_likelihood": ("moving", 0, None, "likelihood", 0),
            "batch_statistics_likelihood": ("batch", 0, None, "likelihood", 0),
            "recalibrated_20_likelihood": ("moving", 20, None, "likelihood", 0),
            "batch_statistics_fine_tuned_25": ("batch", 0, None, "accuracy", 25),
            "batch_statistics_fine_tuned_50": ("batch", 0, None, "accuracy", 50)}


def split_half_tau(scorer, arcs, evals) -> float:
  """Kendall tau-b between a scoring's scores of the same cells on the even and on the odd
  validation batches (from the evaluations `evaluate_cells` made): how far the scoring agrees
  with itself (its sampling noise), without any standalone training."""
  halves = [[scorer.score(e[half::2], arc)["reward"] for e, arc in zip(evals, arcs)]
            for half in (0, 1)]
  return rank_stats.kendall_tau_b(*halves)


def standalone_row(repeats: List[Dict[str, Any]]) -> Dict[str, Any]:
  """One cell's standalone result from its trainings (one per training seed): mean accuracies,
  the per-seed test accuracies when there are several, summed training time."""
  row = {k: float(np.mean([r[k] for r in repeats])) for k in ("test_accuracy", "val_accuracy")}
  row.update(params=repeats[0]["params"],
             train_seconds=float(sum(r["train_seconds"] for r in repeats)))
  if len(repeats) > 1:
    row["test_accuracies"] = [r["test_accuracy"] for r in repeats]
  return row


def standalone_agreement(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
  """What the standalone side itself gives: Kendall tau-b / Spearman rho of parameter count vs
  accuracy (a predictor that needs no supernet) and, with several training seeds, tau-b between
  the cells' mean accuracies over even and over odd seeds (retraining noise: a predictor can
  hardly rank the cells better than their own retraining does)."""
  accuracy = [r["test_accuracy"] for r in rows]
  params = [r["params"] for r in rows]
  out = {"params_kendall_tau_b": _finite_or_none(rank_stats.kendall_tau_b(params, accuracy)),
         "params_spearman_rho": _finite_or_none(rank_stats.spearman_rho(params, accuracy))}
  fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
  print(f"standalone: params vs accuracy Kendall tau-b {fmt(out['params_kendall_tau_b'])}, "
        f"Spearman rho {fmt(out['params_spearman_rho'])}", flush=True)
  if "test_accuracies" in rows[0]:
    halves = [[float(np.mean(r["test_accuracies"][h::2])) for r in rows] for h in (0, 1)]
    out["split_seeds_kendall_tau_b"] = _finite_or_none(rank_stats.kendall_tau_b(*halves))
    split = rank_stats.retraining_reliability([r["test_accuracies"] for r in rows])
    out.update({k: _finite_or_none(v) for k, v in split.items()})
    print(f"standalone: even vs odd training seeds tau-b "
          f"{fmt(out['split_seeds_kendall_tau_b'])}; seed noise std "
          f"{split['seed_noise_std']:.4f}, between-cell std {split['between_cell_std']:.4f}; "
          f"a perfect predictor's expected tau-b against the "
          f"mean {fmt(out['oracle_kendall_tau_b'])}, against one seed "
          f"{fmt(out['oracle_kendall_tau_b_one_seed'])}", flush=True)
  return out


def _finite_or_none(v: float):
  return None if v is None or not math.isfinite(v) else float(v)


def _parse_budget(gin_files: List[str], gin_params: List[str], out: str, searched_on) -> None:
  """Replaces the ENAS run's gin config by the standalone budget's (written to out/config.gin)."""
  gin.clear_config()
  config.parse(gin_files or [BUDGET], gin_params)
  trained_on = gin.get_bindings("load_dataset").get("name")
  if trained_on != searched_on:
    print(f"warning: the standalone budget trains on {trained_on!r}, the ENAS run searched on "
          f"{searched_on!r}", file=sys.stderr, flush=True)
  config.write_config(out, "config.gin", gin.config_str())


def _write(out: str, result: Dict[str, Any]) -> None:
  """rank_correlation.json and the scatter plot rank_correlation.png."""
  with open(os.path.join(out, "rank_correlation.json"), "w") as f:
    jsonio.dump(result, f, indent=2, sort_keys=True)
  fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
  cells = result["cells"]
  stats = (f"Kendall tau-b {fmt(result['kendall_tau_b'])}, Spearman rho "
           f"{fmt(result['spearman_rho'])}")
  plots.scatter_png([(c["score"], c["test_accuracy"]) for c in cells],
                  os.path.join(out, "rank_correlation.png"),
                  title=f"{stats} ({len(cells)} cells)", xlabel="shared-weight score",
                  ylabel="standalone test accuracy", labels=[str(i) for i in range(len(cells))])
  print(f"{stats} over {len(cells)} cells; wrote {os.path.join(out, 'rank_correlation.json')} "
        "and rank_correlation.png", flush=True)


def rank_correlation(enas_workdir: str, out: str, num_cells: int, seed: int,
                     gin_files: List[str], gin_params: List[str], bn_recalibrate: int = 0,
                     command: Dict[str, Any] = None, reuse_trained: bool = False,
                     train_repeats: int = 1) -> Dict[str, Any]:
  """Scores, trains and correlates (module doc); writes out/rank_correlation.{json,png}."""
  if train_repeats < 1:
    raise ValueError(f"--train_repeats must be at least 1, got {train_repeats}")
  if num_cells < 2:
    raise ValueError(f"--num_cells must be at least 2 (a rank correlation needs two cells), "
                     f"got {num_cells}")
  if bn_recalibrate < 0:
    raise ValueError(f"--bn_recalibrate must be >= 0, got {bn_recalibrate}")
  enas_run = enas_search_lib.restore_run(enas_workdir)  # parses the run's config.gin
  if not os.path.exists(os.path.join(enas_workdir, "summary.json")):
    print(f"warning: {enas_workdir} has not finished its search; scoring the supernet after "
          f"epoch {enas_run.epochs_done}", file=sys.stderr, flush=True)
  searched_on = gin.get_bindings("load_dataset").get("name")
  with rundir.locked(out):
    arcs = sample_cells(enas_run.space, num_cells, seed)
    genotypes = [enas_run.space.decode(a, name=f"cell_{i:02d}") for i, a in enumerate(arcs)]
    # a SCORINGS setting -> (scorer, per-cell evaluations): each scoring's forward passes run
    # once, for its scores and its split halves alike
    evaluated = {}
    run_bn = enas_run.settings.get("score_bn", "moving")
    run_metric = enas_run.settings.get("score_metric", "accuracy")
    run_fine_tune = enas_run.settings.get("derive_fine_tune_steps", 0)
    run_setting = (run_bn, bn_recalibrate, None, run_metric, run_fine_tune)
    evaluated[run_setting] = evaluate_cells(enas_run, arcs, bn_recalibrate, seed, run_bn, None,
                                            run_metric, run_fine_tune)
    scorer, evals = evaluated[run_setting]
    scores = [scorer.score(e, arc) for e, arc in zip(evals, arcs)]
    for g, sc in zip(genotypes, scores):
      print(f"{g.name}  shared-weight score {sc['reward']:.4f}", flush=True)
    for setting in SCORINGS.values():
      if setting not in evaluated:
        bn, recalibrate, batches, metric, fine_tune = setting
        evaluated[setting] = evaluate_cells(enas_run, arcs, recalibrate, seed, bn, batches,
                                            metric, fine_tune)
    other_scores, self_agreement = {}, {}
    for name, setting in SCORINGS.items():
      scorer, evals = evaluated[setting]
      other_scores[name] = [scorer.score(e, arc)["reward"] for e, arc in zip(evals, arcs)]
      self_agreement[name] = split_half_tau(scorer, arcs, evals)
    _parse_budget(gin_files, gin_params, out, searched_on)
    # repeat-major, so the first repeat's folders are those of a run with one repeat
    trained = compare.train_standalone(
        [("sampled", g, seed + r) for r in range(train_repeats) for g in genotypes], out, seed,
        reuse=reuse_trained)
    rows = [standalone_row(trained[i::num_cells]) for i in range(num_cells)]
    score = [sc["reward"] for sc in scores]
    accuracy = [r["test_accuracy"] for r in rows]
    standalone = standalone_agreement(rows)
    by_scoring = {}  # the same trained cells against every scoring of SCORINGS
    for name, other in other_scores.items():
      by_scoring[name] = {
          "scores": other,
          "kendall_tau_b": _finite_or_none(rank_stats.kendall_tau_b(other, accuracy)),
          "spearman_rho": _finite_or_none(rank_stats.spearman_rho(other, accuracy)),
          "split_half_kendall_tau_b": _finite_or_none(self_agreement[name])}
      fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
      print(f"scoring {name:30s} Kendall tau-b {fmt(by_scoring[name]['kendall_tau_b'])}, "
            f"Spearman rho {fmt(by_scoring[name]['spearman_rho'])}, even vs odd batches "
            f"tau-b {fmt(by_scoring[name]['split_half_kendall_tau_b'])}", flush=True)
    cells = [{"name": g.name, "decisions": a, "genotype": g.to_dict(), "score": sc["reward"],
              **{k: v for k, v in sc.items() if k != "reward"},  # a cost-aware run's parts
              **r} for g, a, sc, r in zip(genotypes, arcs, scores, rows)]
    result = {
        "enas_workdir": os.path.abspath(enas_workdir), "epochs_done": enas_run.epochs_done,
        "num_cells": num_cells, "flags": command or {}, "cells": cells,
        "kendall_tau_b": _finite_or_none(rank_stats.kendall_tau_b(score, accuracy)),
        "spearman_rho": _finite_or_none(rank_stats.spearman_rho(score, accuracy)),
        "by_scoring": by_scoring, "standalone": standalone,
        "score": "derive's score: the run's reward with the shared weights on its derive "
                 "validation batches" + (f", after BN recalibration on {bn_recalibrate} "
                                         "training minibatches" if bn_recalibrate else ""),
        "accuracy": "test_accuracy of each cell trained from scratch with config.gin (the mean "
                    "over its training seeds when --train_repeats > 1)"}
    _write(out, result)
  return result


def main(argv):
  del argv
  enas_run, out = run_and_report_dirs()
  command = {name: FLAGS[name].value for name in ("enas_run", "workdir", "num_cells", "seed",
                                                  "gin_file", "gin_param", "bn_recalibrate",
                                                  "reuse_trained", "train_repeats")}
  command.update(enas_run=enas_run, workdir=out, seed=FLAGS.seed or 0)
  rank_correlation(enas_run, out, FLAGS.num_cells, FLAGS.seed or 0, FLAGS.gin_file,
                   FLAGS.gin_param, FLAGS.bn_recalibrate, command, FLAGS.reuse_trained,
                   FLAGS.train_repeats)


def run_and_report_dirs():
  """(ENAS run, report directory) from --enas_run and --workdir, or the old --workdir / --out."""
  if FLAGS.enas_run:
    return FLAGS.enas_run, FLAGS.workdir or FLAGS.out or os.path.join(FLAGS.enas_run,
                                                                      "rank_correlation")
  if not FLAGS.workdir:
    raise ValueError("--enas_run is required (a finished ENAS search run)")
  print("warning: --workdir as the ENAS run is the old form; use --enas_run=RUN (and --workdir "
        "for the report)", file=sys.stderr, flush=True)
  return FLAGS.workdir, FLAGS.out or os.path.join(FLAGS.workdir, "rank_correlation")


def run():
  """Console-script entry point (`nasnet-rank-correlation`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
