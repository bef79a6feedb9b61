"""Is the search better than chance? Train the derived cell and K random cells of the same space
with the same standalone budget and data seed; print mean +- std test accuracy and params.

  nasnet-compare-cells --enas_run=runs/enas_fmnist --workdir=runs/compare --k=3
"""

import json
import os
from typing import Any, Dict, Optional

import gin
import numpy as np

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import jsonio
from nasnet_rl import rundir
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.child import trainer
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs

FLAGS = common.FLAGS
flagdefs.define("compare_cells")


def random_genotypes(space: search_space_lib.SearchSpace, k: int, seed: int):
  rng = np.random.default_rng(seed)
  return [space.decode([int(rng.integers(0, n)) for n in space.num_choices()],
                       name=f"random_{i}") for i in range(k)]


def compare(derived: genotype_lib.Genotype, k: int, repeats: int, workdir: str, seed: int):
  """Trains everything with the gin-configured train_child, every cell with the training seeds
  seed .. seed + repeats - 1; returns the table rows (one per training)."""
  space = search_space_lib.SearchSpace(derived.ops, derived.num_blocks)
  runs = [("derived", derived, seed + r) for r in range(repeats)]
  randoms = random_genotypes(space, k, seed + 1)
  runs += [("random", g, seed + r) for g in randoms for r in range(repeats)]
  return train_standalone(runs, workdir, seed)


def _finished(folder: str, geno, seed: int) -> Optional[Dict[str, Any]]:
  """The metrics of a finished training of `geno` in `folder` with the same seed and gin
  config (trained_with.json), or None."""
  paths = [os.path.join(folder, n) for n in ("metrics.json", "genotype.json", "trained_with.json")]
  if not all(os.path.isfile(p) for p in paths):
    return None
  if genotype_lib.load(paths[1]).to_dict() != geno.to_dict():
    return None
  with open(paths[2]) as f:
    if json.load(f) != {"seed": seed, "config": gin.config_str()}:
      return None
  with open(paths[0]) as f:
    return json.load(f)


def train_standalone(runs, workdir: str, seed: int, reuse: bool = False):
  """Trains each (group, genotype, training seed) of `runs` from scratch with the gin-configured
  train_child on the same data (split with `seed`), each in workdir/NN_<name>; one row each
  (also the standalone side of nasnet-rank-correlation). `reuse`: a folder that already
  holds a finished training of the same cell under the same gin config is read, not retrained."""
  splits = data_lib.load_dataset(seed=seed)
  results = []
  for i, (group, geno, train_seed) in enumerate(runs):
    # the name comes from data (a genotype file): a slug, so the path stays under workdir
    folder = rundir.join_under(workdir, f"{i:02d}_{geno.name}")
    m = _finished(folder, geno, train_seed) if reuse else None
    if m is None:
      m = trainer.train_child(geno, splits, folder, seed=train_seed)
      os.makedirs(folder, exist_ok=True)
      with open(os.path.join(folder, "trained_with.json"), "w") as f:
        jsonio.dump({"seed": train_seed, "config": gin.config_str()}, f)
    results.append({"group": group, "name": geno.name, "seed": train_seed,
                    "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
                    "params": m["params"], "train_seconds": m["train_seconds"]})
    print(f"{group:8s} {geno.name:18s} test {m['test_accuracy']:.4f}  params {m['params']:,}",
          flush=True)
  return results


def table(results) -> str:
  """Markdown: per group, its cells and trainings, mean ± std test accuracy over the trainings."""
  lines = ["| cells | n (cells x seeds) | test accuracy (mean ± std) | params (mean) |",
           "| --- | --- | --- | --- |"]
  for group in ("derived", "random"):
    rows = [r for r in results if r["group"] == group]
    acc = np.array([r["test_accuracy"] for r in rows])
    cells = len({r["name"] for r in rows})
    lines.append(f"| {group} | {cells} x {len(rows) // cells} | "
                 f"{acc.mean():.4f} ± {acc.std():.4f} | "
                 f"{int(np.mean([r['params'] for r in rows])):,} |")
  return "\n".join(lines)


def main(argv):
  del argv
  for name in ("k", "repeats"):  # checked before anything trains
    if FLAGS[name].value < 1:
      raise ValueError(f"--{name} must be >= 1, got {FLAGS[name].value}")
  workdir = common.require_workdir()
  rundir.acquire(workdir)
  enas_run = common.renamed("enas_run", "enas_workdir")
  if not enas_run:
    raise ValueError("--enas_run is required (a search run with best_genotype.json)")
  path = os.path.join(enas_run, "best_genotype.json")
  if not os.path.exists(path):
    raise ValueError(f"{path} does not exist: run the search to its end first")
  files = FLAGS.gin_file or ["train/compare_fashion_mnist_cpu.gin"]
  config.parse(files, FLAGS.gin_param)
  derived = genotype_lib.load(path)
  config.write_config(workdir, "config.gin", gin.config_str())
  results = compare(derived, FLAGS.k, FLAGS.repeats, workdir, FLAGS.seed or 0)
  text = table(results)
  with open(os.path.join(workdir, "compare.json"), "w") as f:
    jsonio.dump(results, f, indent=2, sort_keys=True)
  with open(os.path.join(workdir, "compare.md"), "w") as f:
    f.write(text + "\n")
  print(text)


def run():
  """Console-script entry point (`nasnet-compare-cells`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
