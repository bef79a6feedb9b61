"""Run or resume an architecture search; the mode and everything else come from gin.

  python scripts/search.py --gin_file=gin/search/standalone_fashion_mnist_cpu.gin --workdir=runs/s1
Running it again on the same --workdir resumes from the last checkpoint with its history.
"""

import json
import os
import sys

import gin

from nasnet_rl import config
from nasnet_rl import search as search_lib
from nasnet_rl.cli import common

FLAGS = common.FLAGS
common.define_run_flags()


def main(argv):
  del argv
  params = list(FLAGS.gin_param)
  if FLAGS.seed is not None:
    params.append(f"search_main.seed = {FLAGS.seed}")
  common.require_workdir()
  config.parse(FLAGS.gin_file, params)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  saved = os.path.join(FLAGS.workdir, "config.gin")
  if os.path.exists(saved) and open(saved).read() != gin.config_str():
    print(f"warning: {saved} differs from this command's configuration; resuming with the "
          "new one (the old file is kept as config.gin.previous)", file=sys.stderr)
    os.replace(saved, saved + ".previous")
  config.write_config(FLAGS.workdir, "config.gin", gin.config_str())
  summary = search_lib.search_main(FLAGS.workdir)
  config.write_config(FLAGS.workdir, "operative_config.gin")
  print(json.dumps(summary, sort_keys=True), flush=True)


def run():
  """Console-script entry point (`nasnet-search`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
