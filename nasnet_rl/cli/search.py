"""Run or resume an architecture search; the mode and everything else come from gin.

  python scripts/search.py --gin_file=gin/search/standalone_fashion_mnist_cpu.gin --workdir=runs/s1
Running it again on the same --workdir resumes from the last checkpoint with its history.
"""

import json
import os
import sys

from absl import app
from absl import flags
import gin

from nasnet_rl import config
from nasnet_rl import search as standalone

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Run directory; an existing one is resumed.", required=True)
flags.DEFINE_multi_string("gin_file", [], "gin config files (repeatable).")
flags.DEFINE_multi_string("gin_param", [], "gin bindings (repeatable); `--gin.X=V` also works.")
flags.DEFINE_integer("seed", None, "Seeds Python, NumPy and TF; overrides search_main.seed.")


@gin.configurable
def search_main(workdir: str, mode: str = "standalone", seed: int = 0):
  """Dispatches to the standalone search (ENAS mode comes with its own issue)."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  if mode == "standalone":
    return standalone.standalone_search(workdir, seed=seed)
  raise ValueError(f"unknown search mode {mode!r}; expected 'standalone'")


def main(argv):
  del argv
  params = list(FLAGS.gin_param)
  if FLAGS.seed is not None:
    params.append(f"search_main.seed = {FLAGS.seed}")
  config.parse(FLAGS.gin_file, params)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  saved = os.path.join(FLAGS.workdir, "config.gin")
  if os.path.exists(saved) and open(saved).read() != gin.config_str():
    print(f"warning: {saved} differs from this command's configuration; resuming with the "
          "new one (the old file is kept as config.gin.previous)", file=sys.stderr)
    os.replace(saved, saved + ".previous")
  config.write_config(FLAGS.workdir, "config.gin", gin.config_str())
  summary = search_main(FLAGS.workdir)
  config.write_config(FLAGS.workdir, "operative_config.gin")
  print(json.dumps(summary, sort_keys=True), flush=True)


def run():
  """Console-script entry point (`nasnet-search`)."""
  try:
    app.run(main, argv=config.split_shortcuts(sys.argv))
  except ValueError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  run()
