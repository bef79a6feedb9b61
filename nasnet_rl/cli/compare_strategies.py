"""Search strategies against each other and against random search on a tabular benchmark.

  nasnet-compare-strategies --dataset=cifar100 --seeds=100 --workdir=runs/cmp_c100

For each strategy, `--seeds` seeded runs of up to max(--budgets) distinct queries; prints, per
budget, mean +- std (and standard error) of the test accuracy of the cell each run returns
(best validation among its queries), how often the table's best cell was found, distinct
queries and proposals per run; writes results.json, table.md and curves.png into --workdir.
"""

import os
import sys
import time

from absl import flags

from nasnet_rl import jsonio
from nasnet_rl import query_budget
from nasnet_rl import rundir
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs

FLAGS = flags.FLAGS
flagdefs.define("compare_strategies")


def _positive_ints(values, name):
  out = []
  for v in values:
    try:
      n = int(v)
    except ValueError:
      raise ValueError(f"--{name} must be integers, got {v!r}") from None
    if n < 1:
      raise ValueError(f"--{name} must be >= 1, got {n}")
    out.append(n)
  return out


def main(argv):
  del argv
  from nasnet_rl import plots  # pylint: disable=g-import-not-at-top
  from nasnet_rl.benchmarks import compare as compare_lib  # pylint: disable=g-import-not-at-top
  from nasnet_rl.benchmarks import table as table_lib  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  budgets = sorted(set(_positive_ints(FLAGS.budgets, "budgets")))
  (seeds,) = _positive_ints([FLAGS.seeds], "seeds")
  if FLAGS.out:  # an --out that cannot be written fails now, not after the comparison
    rundir.check_workdir(FLAGS.out, "--out")
  specs = [compare_lib.StrategySpec.parse(s) for s in FLAGS.strategy]
  table_kwargs = {"path": FLAGS.table, "dataset": FLAGS.dataset,
                  "reward_column": FLAGS.reward_column, "report_column": FLAGS.report_column}
  bench = table_lib.TabularBenchmark(**table_kwargs)  # bad tables fail here, in one line
  query_budget.check_within(max(budgets), bench.space.size(), "--budgets")
  print(f"{bench.describe()}; {seeds} seeds x {len(specs)} strategies, budgets {budgets}; "
        f"optimum (test of the best-validation cell) {bench.optimum_report * 100:.2f}",
        flush=True)
  t0 = time.time()
  first = FLAGS.seed or 0
  run_seeds = list(range(first, first + seeds))
  results = compare_lib.compare(specs, table_kwargs, run_seeds, max(budgets),
                                feedback_batch=FLAGS.feedback_batch, workers=FLAGS.workers)
  wall = time.time() - t0
  summaries = {label: compare_lib.summarize(runs, budgets) for label, runs in results.items()}
  lines = ["| strategy | " + " | ".join(f"{b} queries" for b in budgets)
           + " | optimum found | proposals / distinct | s / run |",
           "| --- | " + " | ".join("---" for _ in budgets) + " | --- | --- | --- |"]
  for label, s in summaries.items():
    cells = [f"{s[b]['mean']:.2f} ± {s[b]['std']:.2f} (se {s[b]['se']:.2f})" for b in budgets]
    found = "/".join(f"{s[b]['optimum_found'] * 100:.0f}%" for b in budgets)
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {found} | "
                 f"{s['proposals']:.0f} / {s['distinct']:.0f} | {s['seconds_per_run']:.2f} |")
  table_md = "\n".join(lines)
  print(table_md)
  print(f"wall {wall:.0f} s for {seeds * len(specs)} runs", flush=True)
  out = common.renamed("workdir", "out")
  if out:
    os.makedirs(out, exist_ok=True)
    command = " ".join(["nasnet-compare-strategies"] + sys.argv[1:])
    with open(os.path.join(out, "table.md"), "w") as f:
      f.write(f"{bench.describe()}, {seeds} seeds, wall {wall:.0f} s\n`{command}`\n\n"
              + table_md + "\n")
    payload = {"table": bench.describe(), "seeds": seeds, "budgets": budgets,
               "feedback_batch": FLAGS.feedback_batch, "wall_seconds": wall,
               "command": command, "summary": {k: {str(b): v for b, v in s.items()}
                                               for k, s in summaries.items()},
               "curves": {k: np.mean([r["curve"] for r in runs], axis=0).tolist()
                          for k, runs in results.items()}}
    with open(os.path.join(out, "results.json"), "w") as f:
      jsonio.dump(payload, f, indent=1, sort_keys=True)
    series = {}
    for label, runs in results.items():
      curves = np.array([r["curve"] for r in runs]) * 100.0
      mean = curves.mean(axis=0)
      se = curves.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else 0 * mean
      series[label] = (mean, mean - 2 * se, mean + 2 * se)
    plots.band_curves_png(series, os.path.join(out, "curves.png"),
                        title=f"{bench.report_column} of the returned cell, {seeds} runs "
                              f"(band: mean +- 2 s.e.)",
                        xlabel="distinct queries", ylabel="test accuracy (%)")
    print(f"wrote {out}/table.md, results.json, curves.png")


def run():
  """Console-script entry point (`nasnet-compare-strategies`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
