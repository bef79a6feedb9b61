"""Controller cost and Ray scaling of the standalone search, measured in one run.

1. Sample + REINFORCE update time per architecture of the LSTM controller on the NASNet space.
2. Its share of a search's wall time: the `strategy_share` of a finished search run
   (--search_workdir, written by nasnet-search) or, without one, controller time against
   the measured time of one child of the main-job recipe.
3. Children per hour of the tiny search (gin/tiny/search.gin) with the Ray executor on 1 and on
   2 local workers; the ratio 2/1 is printed last.

  python dev/bench_controller.py --search_workdir=runs/search_fmnist --ray_children=6
"""

import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import gin

from nasnet_rl import config
from nasnet_rl import controller as controller_lib
from nasnet_rl import search as search_lib
from nasnet_rl import search_space as search_space_lib

flags.DEFINE_integer("iterations", 50, "Controller propose+feedback iterations to time.")
flags.DEFINE_string("search_workdir", None, "A finished search run to read the share from.")
flags.DEFINE_integer("ray_children", 6, "Children per Ray measurement (0 skips Ray).")
FLAGS = flags.FLAGS


def controller_seconds_per_architecture(iterations: int) -> float:
  space = search_space_lib.SearchSpace("nasnet", 5)
  strat = controller_lib.make_strategy("reinforce", decisions=space.decisions(), seed=0)
  for _ in range(3):  # trace
    strat.feedback(strat.propose(1), [0.5])
  start = time.perf_counter()
  for i in range(iterations):
    strat.feedback(strat.propose(1), [0.5 + 0.001 * i])
  return (time.perf_counter() - start) / iterations


def ray_children_per_hour(workers: int, children: int) -> float:
  gin.clear_config()
  config.parse(["gin/tiny/search.gin"], ["make_executor.kind = 'ray'",
                                         f"RayExecutor.num_workers = {workers}",
                                         f"standalone_search.max_children = {children}"])
  workdir = tempfile.mkdtemp(prefix="bench_ray_")
  try:
    start = time.perf_counter()
    search_lib.standalone_search(workdir)
    return children * 3600 / (time.perf_counter() - start)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)


def main(argv):
  del argv
  per_arch = controller_seconds_per_architecture(FLAGS.iterations)
  print(f"controller sample+update: {per_arch * 1e3:.2f} ms per architecture "
        f"(NASNet space, 40 decisions, {FLAGS.iterations} iterations)", flush=True)
  if FLAGS.search_workdir:
    with open(os.path.join(FLAGS.search_workdir, "summary.json")) as f:
      summary = json.load(f)
    print(f"controller share of search wall time ({FLAGS.search_workdir}): "
          f"{100 * summary['strategy_share']:.3f}% ({summary['strategy_seconds']:.1f} s of "
          f"{summary['wall_seconds']:.0f} s, {summary['children']} children)", flush=True)
  if FLAGS.ray_children:
    # alternate the two settings twice so drift hits both
    rates = {1: [], 2: []}
    for workers in (1, 2, 2, 1):
      rates[workers].append(ray_children_per_hour(workers, FLAGS.ray_children))
      print(f"ray, {workers} worker(s): {rates[workers][-1]:.0f} children/hour", flush=True)
    one, two = (sum(rates[w]) / len(rates[w]) for w in (1, 2))
    print(f"ray children/hour: 1 worker {one:.0f}, 2 workers {two:.0f}")
    print(f"ratio 2 workers / 1 worker: {two / one:.2f}")


if __name__ == "__main__":
  app.run(main)
