"""Console-script entry points: flags parsed and `--help` answered before TensorFlow loads."""

import importlib
import sys

from absl import flags

from nasnet_rl.cli import flagdefs

_HELP = ("--help", "-help", "-h", "--helpshort", "-?")


def main(tool: str) -> None:
  """Answers --help, checks the flags and the recipe, then runs the tool's CLI module."""
  argv = flagdefs.split_shortcuts(list(sys.argv))
  flagdefs.define(tool)
  if any(a in _HELP for a in argv[1:]):
    print(flagdefs.help_text(tool))
    sys.exit(0)
  if "--helpfull" not in argv:
    try:
      flags.FLAGS(argv)
    except flags.Error as e:
      sys.exit(f"error: {e} (see {flagdefs.command(tool)} --help)")
    refusal = flagdefs.missing_recipe(tool, flags.FLAGS["gin_file"].value
                                      if "gin_file" in flags.FLAGS else [])
    if refusal:
      sys.exit(refusal)
    if flagdefs.TOOLS[tool].needs_recipe:  # our first line, before TensorFlow's start-up notes
      print(f"{flagdefs.command(tool)}: {' + '.join(flags.FLAGS.gin_file)} -> "
            f"{flags.FLAGS.workdir} (loading TensorFlow)", flush=True)
  flags.FLAGS.unparse_flags()  # app.run parses again; repeatable flags would double
  import nasnet_rl  # pylint: disable=g-import-not-at-top
  nasnet_rl.register_keras_objects()
  importlib.import_module(flagdefs.TOOLS[tool].module).run()


def search() -> None:
  """nasnet-search."""
  main("search")


def train() -> None:
  """nasnet-train."""
  main("train")


def transfer() -> None:
  """nasnet-transfer."""
  main("transfer")


def show() -> None:
  """nasnet-show."""
  main("show")


def compare_cells() -> None:
  """nasnet-compare-cells."""
  main("compare_cells")


def rank_correlation() -> None:
  """nasnet-rank-correlation."""
  main("rank_correlation")


def compare_strategies() -> None:
  """nasnet-compare-strategies."""
  main("compare_strategies")


def doctor() -> None:
  """nasnet-doctor."""
  main("doctor")
