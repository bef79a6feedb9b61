"""Run or resume an architecture search; the mode and everything else come from gin.

  nasnet-search --gin_file=gin/search/standalone_fashion_mnist_cpu.gin --workdir=runs/s1
Running it again on the same --workdir resumes from the last checkpoint with its history.
"""

import json

from nasnet_rl import search as search_lib
from nasnet_rl.cli import banner
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs

FLAGS = common.FLAGS
flagdefs.define("search")


def main(argv):
  del argv
  params = list(FLAGS.gin_param)
  if FLAGS.seed is not None:
    params.append(f"search_main.seed = {FLAGS.seed}")
  # lock, parse and type-check; config.gin is written only once the search has validated its
  # resume (a checkpoint of another strategy or space changes nothing on disk)
  workdir = common.start_run(params)
  print(banner.search(workdir), flush=True)
  summary = search_lib.search_main(workdir)
  common.finish_run(workdir)
  print(json.dumps(summary, sort_keys=True), flush=True)


def run():
  """Console-script entry point (`nasnet-search`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
