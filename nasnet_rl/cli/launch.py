"""Console-script entry points: flags parsed and `--help` answered before TensorFlow loads."""

import functools
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
  if "--helpfull" in argv:  # every flag defined once the tool's modules are imported
    importlib.import_module(flagdefs.TOOLS[tool].module)
    print(flagdefs.help_text(tool) + "\n\nall flags, by module:\n" + flags.FLAGS.get_help())
    sys.exit(0)
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
  if flagdefs.TOOLS[tool].needs_keras:
    import nasnet_rl  # pylint: disable=g-import-not-at-top
    nasnet_rl.register_keras_objects()
  importlib.import_module(flagdefs.TOOLS[tool].module).run()


# The console scripts' entry points (setup.py): nasnet-search is launch:search, and so on.
search = functools.partial(main, "search")
train = functools.partial(main, "train")
transfer = functools.partial(main, "transfer")
show = functools.partial(main, "show")
compare_cells = functools.partial(main, "compare_cells")
rank_correlation = functools.partial(main, "rank_correlation")
compare_strategies = functools.partial(main, "compare_strategies")
doctor = functools.partial(main, "doctor")
