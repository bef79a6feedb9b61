"""Flags every entry point shares, defined once so that several CLIs can live in one process.

absl keeps one global flag registry; two modules that each `DEFINE_string("workdir", ...)` cannot
both be imported (tests import several CLIs). `define_run_flags()` is idempotent instead.
"""

import sys
from typing import Callable, Sequence

from absl import app
from absl import flags
import gin

from nasnet_rl import config

FLAGS = flags.FLAGS


def _define_once(define, name, default, help_text, **kwargs):
  if name not in FLAGS:
    define(name, default, help_text, **kwargs)


def define_run_flags() -> None:
  """--workdir, --gin_file, --gin_param and --seed (the t5x-style run flags)."""
  _define_once(flags.DEFINE_string, "workdir", None,
               "Run directory (config, history, checkpoints, metrics); an existing search "
               "run directory is resumed.")
  _define_once(flags.DEFINE_multi_string, "gin_file", [], "gin config files (repeatable).")
  _define_once(flags.DEFINE_multi_string, "gin_param", [],
               "gin bindings (repeatable); `--gin.X=V` also works.")
  _define_once(flags.DEFINE_integer, "seed", None,
               "Seeds Python, NumPy and TF; overrides the gin seed of the entry point.")


def define_genotype_flag(default=None) -> None:
  """--genotype: a genotype JSON file or a published name."""
  _define_once(flags.DEFINE_string, "genotype", default,
               "Genotype JSON file or published name (see nasnet_rl.genotype.published_names()).")


def require_workdir() -> str:
  """The --workdir value, or a clear error (flags are shared, so `required=` cannot be used)."""
  if not FLAGS.workdir:
    raise ValueError("--workdir is required")
  return FLAGS.workdir


def start_run(params: Sequence[str]) -> str:
  """Checks --workdir, parses --gin_file plus `params`, writes workdir/config.gin; the workdir."""
  workdir = require_workdir()
  config.parse(FLAGS.gin_file, params)
  config.write_config(workdir, "config.gin", gin.config_str())
  return workdir


def run_main(main: Callable) -> None:
  """Runs an absl main with the `--gin.X=V` shortcut; a ValueError (bad genotype, gin binding,
  dataset, source...) becomes one `error: ...` line and a non-zero exit, without a traceback."""
  try:
    app.run(main, argv=config.split_shortcuts(sys.argv))
  except ValueError as e:
    sys.exit(f"error: {e}")
