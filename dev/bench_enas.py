"""ENAS supernet step against the standalone child of the same architecture, side by side.

For one sampled architecture: a shared-weight supernet training step (our `SupernetTrainer`,
only the sampled path runs) and a training step of the standalone child built from the same
genotype at the same depth, width, input and batch (same SGD + clipping, tf.function), in
alternating rounds. Prints both step times, the peak memory of each (GPU: TF's peak counter;
CPU: peak RSS of a fresh process per model, started before this process builds anything, read
from /proc/self/status VmHWM: `ru_maxrss` would report the forking parent's peak, which Linux
keeps across fork + exec), the controller's share of an ENAS epoch's wall
time (from a finished run with --enas_run), and the ratio supernet/standalone last
(goal <= 1.15; a supernet that computed every op would be ~5x).

  python dev/bench_enas.py --rounds=5 --steps=5 [--enas_run=runs/enas_fmnist]
  [--sizes=main,enas_cifar]  (the main job's size and the ENAS paper's search size)
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

import nasnet_rl
from nasnet_rl import kernels
from nasnet_rl import optim
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.child import trainer as child_trainer
from nasnet_rl.enas import trainer as enas_trainer

flags.DEFINE_integer("batch_size", 64, "Images per step.")
flags.DEFINE_integer("rounds", 5, "Alternating measurement rounds.")
flags.DEFINE_integer("steps", 5, "Steps per round and model.")
flags.DEFINE_list("sizes", ["main", "enas_cifar"], "Sizes to measure (SIZES).")
flags.DEFINE_string("space", "enas", "Op vocabulary.")
flags.DEFINE_integer("seed", 0, "Picks the architecture.")
flags.DEFINE_string("enas_run", None, "A finished ENAS run: report its controller share.")
flags.DEFINE_string("only", None, "Internal: 'supernet' or 'child' measures one model's memory.")
FLAGS = flags.FLAGS

# (image side, channels, normal cells per stack, filters, stem stride)
SIZES = {
    "main": (28, 1, 1, 8, 2),  # gin/search/enas_fashion_mnist_cpu.gin
    "enas_cifar": (32, 3, 2, 20, 1),  # gin/search/enas_cifar10.gin (the ENAS paper's)
}


def architecture(space):
  rng = np.random.default_rng(FLAGS.seed)
  return [int(rng.integers(0, n)) for n in space.num_choices()]


def make_models(space, arc, size, which=("supernet", "standalone")):
  """({name: step fn}, child params, supernet trainer) on the same input and batch; only the
  models named in `which` are built (a memory measurement must hold one model only)."""
  side, channels, num_cells, filters, stem_stride = SIZES[size]
  shape = (side, side, channels)
  sizes = dict(num_cells=num_cells, filters=filters, stem_stride=stem_stride)
  keras.utils.set_random_seed(0)
  x = tf.random.uniform((FLAGS.batch_size,) + shape)
  y = tf.random.uniform((FLAGS.batch_size,), maxval=10, dtype=tf.int64)
  steps, child_params, sup = {}, None, None
  if "supernet" in which:
    sup = enas_trainer.SupernetTrainer(space, 10, shape, global_batch_size=FLAGS.batch_size,
                                       distribution="default", aux_head=False, dropout=0.0,
                                       drop_path_rate=0.0, **sizes)
    steps["supernet"] = lambda: sup.train_step(x, y, arc, 0.01)
  if "standalone" not in which:
    return steps, child_params, sup
  child = child_trainer.build_child(space.decode(arc), 10, shape, body="cifar", aux_head=False,
                                    dropout=0.0, drop_path_rate=0.0, weight_decay=2e-4, **sizes)
  opt = optim.SGD(0.01, momentum=0.9, nesterov=True, global_clipnorm=5.0)  # as the supernet's
  ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  @tf.function(jit_compile=False)
  def child_step(x, y):
    with tf.GradientTape() as tape:
      loss = ce(y, child(x, training=True)) + tf.add_n(child.losses)
    opt.apply_gradients(zip(tape.gradient(loss, child.trainable_variables),
                            child.trainable_variables))
    return loss

  steps["standalone"] = lambda: child_step(x, y).numpy()
  return steps, child.count_params(), sup


def own_peak_rss_mb() -> float:
  """Peak resident memory of this process image in MB: VmHWM, which exec resets. (ru_maxrss
  of RUSAGE_SELF or RUSAGE_CHILDREN keeps the peak of the process that forked us: a fresh
  Python started by a 400 MB parent reports 400 MB there, 14 MB in VmHWM.)"""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: an upper bound


def peak_memory_mb(name: str, size: str) -> str:
  """Peak memory of one model's training, measured in a fresh process of its own (running the
  same nasnet_rl as this one)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(nasnet_rl.__file__)))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  proc = subprocess.run([sys.executable, __file__, f"--only={name}", f"--sizes={size}"] +
                        [a for a in sys.argv[1:] if not a.startswith(("--only", "--sizes"))],
                        capture_output=True, text=True, timeout=1200, env=env)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("PEAK_RSS_MB")]
  return " ".join(lines[0].split()[1:]) if lines else f"failed: {proc.stderr[-300:]}"


def time_steps(steps: Dict[str, Callable[[], Any]]) -> Dict[str, List[float]]:
  """Per model, its mean step time (s) in each of --rounds rounds of --steps steps, after a
  first (tracing) step and a warm-up step; the models alternate step by step, so that the
  machine's drift reaches all of them alike."""
  for name, fn in steps.items():  # trace + warm up
    t0 = time.perf_counter()
    fn()
    print(f"{name}: first step (tracing) {time.perf_counter() - t0:.1f}s", flush=True)
    fn()
  times = {n: [] for n in steps}
  for r in range(FLAGS.rounds):
    spent = {n: 0.0 for n in steps}
    for _ in range(FLAGS.steps):
      for name, fn in steps.items():
        t0 = time.perf_counter()
        fn()
        spent[name] += time.perf_counter() - t0
    for name in steps:
      times[name].append(spent[name] / FLAGS.steps)
    print(f"round {r}: " + ", ".join(f"{n} {v[-1] * 1000:.0f} ms/step" for n, v in times.items()),
          flush=True)
  return times


def measure(space, arc, size):
  """Step times, trace times and peak memory of both models at one size; returns the ratio."""
  side, channels, num_cells, filters, stem_stride = SIZES[size]
  print(f"== size {size}: {side}x{side}x{channels}, {num_cells} cell(s) per stack, "
        f"{filters} filters, stem stride {stem_stride}, batch {FLAGS.batch_size}", flush=True)
  # each model's memory in a process of its own, started while this one is still small
  memory = ({} if tf.config.list_physical_devices("GPU") else
            {name: peak_memory_mb(name, size) for name in ("supernet", "child")})
  steps, child_params, sup = make_models(space, arc, size)
  print(f"parameters: standalone child {child_params:,}; supernet "
        f"{sum(int(np.prod(v.shape)) for v in sup.model.weights):,} (all candidate ops)")
  times = time_steps(steps)
  if tf.config.list_physical_devices("GPU"):
    print("GPU peak memory (both models in one process): "
          f"{tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2**20:.0f} MB")
  else:
    print(f"peak RSS (VmHWM, one process per model, 3 training steps): supernet "
          f"{memory['supernet']}, standalone child {memory['child']}")
  ratio = statistics.median(s / c for s, c in zip(times["supernet"], times["standalone"]))
  print(f"median ms/step: supernet {1000 * statistics.median(times['supernet']):.0f}, standalone "
        f"{1000 * statistics.median(times['standalone']):.0f} ({os.cpu_count()} CPUs)")
  print(f"[{size}] ratio supernet/standalone step time (median of per-round ratios): "
        f"{ratio:.2f}", flush=True)
  return ratio


def main(argv):
  print(kernels.describe(), flush=True)  # which kernel forms the ops train with
  del argv
  space = search_space_lib.SearchSpace(FLAGS.space, 5)
  arc = architecture(space)
  unknown = [s for s in FLAGS.sizes if s not in SIZES]
  if unknown:
    raise ValueError(f"unknown --sizes {unknown}; known: {sorted(SIZES)}")
  if FLAGS.only:
    key = "standalone" if FLAGS.only == "child" else "supernet"
    base = own_peak_rss_mb()
    steps, _, _ = make_models(space, arc, FLAGS.sizes[0], which=(key,))
    for _ in range(3):
      steps[key]()
    print("PEAK_RSS_MB", f"{own_peak_rss_mb():.1f} MB ({base:.1f} MB after the imports)")
    return
  print(f"architecture: {space.decode(arc)}")
  ratios = {size: measure(space, arc, size) for size in FLAGS.sizes}
  if FLAGS.enas_run:
    with open(os.path.join(FLAGS.enas_run, "summary.json")) as f:
      summary = json.load(f)
    print(f"controller share of the ENAS run's wall time ({FLAGS.enas_run}): "
          f"{100 * summary['controller_share']:.2f}%")
  print("ratios supernet/standalone (goal <= 1.15): " +
        ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
  app.run(main)
