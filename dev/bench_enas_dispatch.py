"""Where the ENAS supernet's step time goes: its dispatch, measured by taking it away.

`bench_enas.py` compares the supernet step (one graph for every architecture: each op slot a
Case over shared branch functions, each branch calling its op's shared function) with the
standalone child. This ablation traces the same supernet for the one architecture it measures,
so that the slot's candidate is known while tracing (nasnet_rl/enas/dispatch_ablation.py),
alternating step by step as bench_enas does (`bench_enas.time_steps`):

  supernet   the training step as `SupernetTrainer` runs it (bench_enas' number)
  constant   the same step with the architecture a constant of the graph: Grappler folds what
             depends on it (the slot indices, the unused-state reductions' conditions, ...)
  direct     as constant, and each slot calls its sampled branch function itself: no Case op
  inlined    as direct, and the op functions lose `_noinline`, so Grappler inlines every call
             and optimizes the step as one graph, as it does the child's
  standalone the child of the same genotype (bench_enas' child step)

`inlined` is what the supernet's arithmetic (flat weight slices, state lists, the gathered
1x1 conv) costs without any dispatch; it is no ENAS (it retraces for every architecture).

  python dev/bench_enas_dispatch.py --rounds=5 --steps=5 [--sizes=main,enas_cifar]
"""

import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_enas  # pylint: disable=g-import-not-at-top
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.enas.dispatch_ablation import fixed_architecture_step
from nasnet_rl.enas.dispatch_ablation import op_function_attributes

flags.DEFINE_list("variants", ["supernet", "constant", "direct", "inlined", "standalone"],
                  "Which steps to time (standalone is the reference).")
FLAGS = flags.FLAGS


def fixed_step(size, space, arc, inline_ops, direct=True):
  """bench_enas' supernet at `size`, stepped by `fixed_architecture_step` on a random batch."""
  with op_function_attributes(inline_ops):
    _, _, sup = bench_enas.make_models(space, arc, size, which=("supernet",))
  side, channels = bench_enas.SIZES[size][:2]
  x = tf.random.uniform((FLAGS.batch_size, side, side, channels))
  y = tf.random.uniform((FLAGS.batch_size,), maxval=10, dtype=tf.int64)
  sup.optimizer.learning_rate.assign(0.01)
  step = fixed_architecture_step(sup, arc, inline_ops, direct)
  return lambda: [t.numpy() for t in step(x, y)]


def measure(space, arc, size):
  usual, _, _ = bench_enas.make_models(space, arc, size)
  builders = {"supernet": lambda: usual["supernet"],
              "constant": lambda: fixed_step(size, space, arc, inline_ops=False, direct=False),
              "direct": lambda: fixed_step(size, space, arc, inline_ops=False),
              "inlined": lambda: fixed_step(size, space, arc, inline_ops=True),
              "standalone": lambda: usual["standalone"]}
  unknown = set(FLAGS.variants) - set(builders)
  if unknown:
    raise ValueError(f"unknown --variants {sorted(unknown)}; known: {list(builders)}")
  steps = {name: build() for name, build in builders.items()
           if name in FLAGS.variants or name == "standalone"}
  print(f"== size {size}", flush=True)
  times = bench_enas.time_steps(steps)
  child = times["standalone"]
  for name, t in times.items():
    ratio = statistics.median(a / b for a, b in zip(t, child))
    print(f"[{size}] {name:10s} {1000 * statistics.median(t):6.0f} ms/step, "
          f"ratio to the standalone child {ratio:.2f}", flush=True)


def main(argv):
  del argv
  space = search_space_lib.SearchSpace(FLAGS.space, 5)
  arc = bench_enas.architecture(space)
  print(f"architecture: {space.decode(arc)}")
  for size in FLAGS.sizes:
    measure(space, arc, size)


if __name__ == "__main__":
  app.run(main)
