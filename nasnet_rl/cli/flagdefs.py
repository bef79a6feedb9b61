"""Every console script's description and flags, importable without TensorFlow.

`launch.py` parses a tool's flags with these definitions and answers `--help` before anything
heavy is imported; the CLI modules define the same flags through `define` (idempotent: absl
keeps one global registry, and tests import several CLIs into one process).
"""

import dataclasses
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

from absl import flags

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


@dataclasses.dataclass(frozen=True)
class Flag:
  """One flag: its absl definer, default, value placeholder and one-line help."""
  name: str
  define: Callable
  default: object
  help: str
  meta: str = "V"


@dataclasses.dataclass(frozen=True)
class Tool:
  """A console script: what it does, its CLI module, its flags and whether it needs a recipe."""
  description: str
  module: str
  flags: Tuple[Flag, ...]
  needs_recipe: bool = False
  needs_keras: bool = True  # False: runs without TensorFlow (its Keras objects unregistered)


def _run_flags(workdir_help: str) -> Tuple[Flag, ...]:
  return (
      Flag("workdir", flags.DEFINE_string, None, workdir_help, "DIR"),
      Flag("gin_file", flags.DEFINE_multi_string, [],
           "gin config file, repeatable: a recipe (gin/...; looked up in the package too).",
           "FILE"),
      Flag("gin_param", flags.DEFINE_multi_string, [],
           "gin binding X=V, repeatable; --gin.X=V is the same.", "X=V"),
      Flag("seed", flags.DEFINE_integer, None,
           "Seeds Python, NumPy and TF; overrides the recipe's seed.", "N"))


GENOTYPE = Flag("genotype", flags.DEFINE_string, None,
                "Genotype: a JSON file, a run directory (its best genotype) or a published "
                "name (nasnet_a, enas_micro, pnasnet_5).", "G")
ENAS_RUN = Flag("enas_run", flags.DEFINE_string, None,
                "The finished ENAS search run directory to read (not written).", "DIR")

TOOLS: Dict[str, Tool] = {
    "search": Tool(
        "Run or resume an architecture search (standalone, ENAS or a tabular benchmark, as "
        "the recipe says).", "nasnet_rl.cli.search",
        _run_flags("Run directory the search writes; run the same command again to resume."),
        needs_recipe=True),
    "train": Tool(
        "Train one cell's child network on a dataset (standalone training, resumable).",
        "nasnet_rl.cli.train",
        _run_flags("Run directory the training writes; run again to resume.") + (GENOTYPE,),
        needs_recipe=True),
    "transfer": Tool(
        "Scale a cell to a network size, train it on a dataset, export it (resumable).",
        "nasnet_rl.cli.transfer",
        _run_flags("Run directory the transfer writes; run again to resume.") + (
            GENOTYPE,
            Flag("source", flags.DEFINE_string, None,
                 "Cell to transfer: a JSON file, a published name or a search run directory.",
                 "G"),
            Flag("init_from", flags.DEFINE_string, None,
                 "Start NASNet-A from Keras' weights: keras:mobile, keras:large or a Keras "
                 ".keras / .h5 / .weights.h5 file.", "W"),
            Flag("report_only", flags.DEFINE_bool, False,
                 "Print parameters and mult-adds per stage, train nothing.")),
        needs_recipe=True),
    "show": Tool(
        "Draw a genotype's normal and reduction cells as a picture (PNG or SVG).",
        "nasnet_rl.cli.show",
        (GENOTYPE,
         Flag("out", flags.DEFINE_string, None, "Output picture (.png or .svg).", "FILE"),
         Flag("print", flags.DEFINE_bool, False, "Also print the genotype as text.")),
        needs_keras=False),
    "compare_cells": Tool(
        "Train an ENAS run's derived cell and K random cells of its space at one budget; "
        "print their test accuracies.", "nasnet_rl.cli.compare",
        _run_flags("Directory the comparison writes (one folder per training).") + (
            ENAS_RUN,
            Flag("enas_workdir", flags.DEFINE_string, None, "Old name of --enas_run.", "DIR"),
            Flag("k", flags.DEFINE_integer, 3, "Random cells to train.", "K"),
            Flag("repeats", flags.DEFINE_integer, 1,
                 "Training seeds per cell (--seed, --seed + 1, ...).", "R"))),
    "rank_correlation": Tool(
        "Do an ENAS supernet's scores predict standalone accuracy? Kendall's tau and "
        "Spearman's rho over sampled cells.", "nasnet_rl.cli.rank_correlation",
        _run_flags("Directory the report writes (default <enas_run>/rank_correlation).") + (
            ENAS_RUN,
            Flag("num_cells", flags.DEFINE_integer, 10,
                 "Cells to sample, score and train (at least 2).", "K"),
            Flag("out", flags.DEFINE_string, None, "Old name of --workdir.", "DIR"),
            Flag("bn_recalibrate", flags.DEFINE_integer, 0,
                 "Re-estimate each path's BN statistics on this many minibatches first.", "N"),
            Flag("reuse_trained", flags.DEFINE_boolean, False,
                 "Reuse cells already trained in --workdir under the same config."),
            Flag("train_repeats", flags.DEFINE_integer, 1,
                 "Train each cell this many times (seeds --seed, --seed + 1, ...).", "R"))),
    "compare_strategies": Tool(
        "Run search strategies on the same seeds and budget over a tabular benchmark "
        "(NAS-Bench-201 by default).", "nasnet_rl.cli.compare_strategies",
        (Flag("workdir", flags.DEFINE_string, None,
              "Directory for table.md, results.json, curves.png (else print only).", "DIR"),
         Flag("out", flags.DEFINE_string, None, "Old name of --workdir.", "DIR"),
         Flag("table", flags.DEFINE_string, None,
              "CSV(.gz) with an `arch` column and metric columns (default: the shipped "
              "NAS-Bench-201 table).", "CSV"),
         Flag("dataset", flags.DEFINE_string, "cifar100",
              "Shipped table columns: cifar100 or imagenet16_120.", "NAME"),
         Flag("reward_column", flags.DEFINE_string, None,
              "Column the strategies see (validation).", "COL"),
         Flag("report_column", flags.DEFINE_string, None,
              "Column a run is scored by (test).", "COL"),
         Flag("strategy", flags.DEFINE_multi_string,
              ["random", "evolution", "reinforce", "ppo"],
              "Strategy, repeatable: name or name:key=value,... (make_strategy settings).",
              "SPEC"),
         Flag("seeds", flags.DEFINE_integer, 100, "Runs per strategy.", "N"),
         Flag("seed", flags.DEFINE_integer, None,
              "First seed (default 0): runs use seeds seed .. seed + seeds - 1.", "N"),
         Flag("budgets", flags.DEFINE_list, ["100", "300"], "Query budgets to report.", "B,B"),
         Flag("feedback_batch", flags.DEFINE_integer, 1, "Proposals per feedback call.", "N"),
         Flag("workers", flags.DEFINE_integer, None,
              "Worker processes (default: CPU count).", "N"))),
    "doctor": Tool(
        "Check this machine: versions, GPUs, the distribution a training would pick, "
        "mixed precision, datasets.", "nasnet_rl.cli.doctor", ()),
}


def command(tool: str) -> str:
  """The console-script name of `tool` (nasnet-compare-cells for compare_cells)."""
  return "nasnet-" + tool.replace("_", "-")


def define(tool: str, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines `tool`'s flags in `flag_values`; a flag already there is left as it is."""
  for f in TOOLS[tool].flags:
    if f.name not in flag_values:
      f.define(f.name, f.default, f.help, flag_values=flag_values)


def split_shortcuts(argv: List[str]) -> List[str]:
  """Turns `--gin.X=V` flags into `--gin_param=X=V` (t5x's shortcut) before absl parses them."""
  return ["--gin_param=" + a[len("--gin."):] if a.startswith("--gin.") and "=" in a else a
          for a in argv]


def recipes(tool: str, gin_dir: str = GIN_DIR) -> List[str]:
  """The gin files whose header's `Run:` line runs `tool`, as gin/<folder>/<file>.gin."""
  pattern = re.compile(r"^#\s*Run:\s*" + re.escape(command(tool)) + r"\s")
  out = []
  for folder in sorted(os.listdir(gin_dir)) if os.path.isdir(gin_dir) else []:
    if folder == "tiny" or not os.path.isdir(os.path.join(gin_dir, folder)):
      continue
    for name in sorted(os.listdir(os.path.join(gin_dir, folder))):
      if name.endswith(".gin") and _header_runs(os.path.join(gin_dir, folder, name), pattern):
        out.append(f"gin/{folder}/{name}")
  return out


def _header_runs(path: str, pattern: "re.Pattern") -> bool:
  with open(path) as f:
    for line in f:
      if not line.startswith("#"):
        return False
      if pattern.match(line):
        return True
  return False


def missing_recipe(tool: str, gin_files: List[str]) -> Optional[str]:
  """One error line listing the recipes when a tool that needs one got no --gin_file."""
  if not TOOLS[tool].needs_recipe or gin_files:
    return None
  return (f"error: {command(tool)} needs a recipe, --gin_file=RECIPE, one of: "
          f"{', '.join(recipes(tool))} (README 'Recipes')")


def help_text(tool: str) -> str:
  """`--help`: the description, a usage line, each flag with its one-line help, the recipes."""
  spec, name = TOOLS[tool], command(tool)
  usage = f"usage: {name}"
  if spec.needs_recipe:
    usage += " --gin_file=RECIPE [--gin.X=V ...] --workdir=DIR"
  lines = [f"{name}: {spec.description}", "", usage + (" [flags]" if spec.flags else ""), ""]
  if spec.flags:
    lines.append("flags:")
    width = max(len(f"--{f.name}={f.meta}") for f in spec.flags) + 2
    for f in spec.flags:
      left = f"--{f.name}" if f.define in (flags.DEFINE_bool, flags.DEFINE_boolean) \
          else f"--{f.name}={f.meta}"
      default = "" if f.default in (None, [], False) else f" (default: {_show(f.default)})"
      lines.append(f"  {left.ljust(width)}{f.help}{default}")
    lines.append("")
  found = recipes(tool) if spec.needs_recipe else []
  if found:
    lines += ["recipes:"] + [f"  {r}" for r in found] + [""]
  lines.append("--helpfull also lists absl's and TensorFlow's flags.")
  return "\n".join(lines)


def _show(value) -> str:
  return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
