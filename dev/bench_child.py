"""Training throughput of our NASNet-A against keras.applications.NASNetMobile, side by side.

Same architecture (NASNet-A 4@1056, ImageNet stem), same 32x32x3 input, 10 classes, batch,
optimizer and tf.function train step; the two models alternate in rounds so machine noise
hits both. Prints images/s of each and the ratio ours/keras last.

  python dev/bench_child.py --batch_size=64 --rounds=5 --steps=10
  python dev/bench_child.py --precision=mixed_bfloat16   # both sides under bfloat16
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import keras
import tensorflow as tf

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import kernels
from nasnet_rl import precision
from nasnet_rl.child import network

flags.DEFINE_integer("batch_size", 64, "Images per step.")
flags.DEFINE_integer("rounds", 5, "Alternating measurement rounds.")
flags.DEFINE_integer("steps", 10, "Train steps per round and model.")
flags.DEFINE_integer("image_size", 32, "Input height and width.")
flags.DEFINE_enum("precision", "float32", list(precision.PRECISIONS),
                  "Dtype policy both models are built under (the same on both sides).")
FLAGS = flags.FLAGS


def make_step(model):
  """One SGD step on the model (same loss, optimizer and tracing for both)."""
  opt = keras.optimizers.SGD(0.01, momentum=0.9)
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  @tf.function(jit_compile=False)
  def step(x, y):
    with tf.GradientTape() as tape:
      loss = loss_fn(y, tf.cast(model(x, training=True), tf.float32))
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                            model.trainable_variables))
    return loss
  return step


def run_interleaved(models, batch_size, shape, rounds, steps, num_classes=10):
  """Traces a train step per model, then alternates single steps so that machine noise hits all
  models alike; a round's rate is images / summed step time. Prints per-round rates and
  returns {name: [images/s per round]}."""
  x = tf.random.uniform((batch_size,) + tuple(shape))
  y = tf.random.uniform((batch_size,), maxval=num_classes, dtype=tf.int32)
  step_fns = {name: make_step(m) for name, m in models.items()}
  for name, step in step_fns.items():  # trace + warm up
    step(x, y).numpy()
    step(x, y).numpy()
    print(f"{name}: {models[name].count_params():,} parameters", flush=True)
  rates = {name: [] for name in models}
  for r in range(rounds):
    spent = {name: 0.0 for name in models}
    for _ in range(steps):
      for name, step in step_fns.items():
        start = time.perf_counter()
        step(x, y).numpy()
        spent[name] += time.perf_counter() - start
    for name in models:
      rates[name].append(steps * batch_size / spent[name])
    print(f"round {r}: " + ", ".join(f"{n} {v[-1]:.1f} img/s" for n, v in rates.items()),
          flush=True)
  return rates


def print_summary(rates, batch_size, image_size):
  """Median images/s of "ours" and "keras", then the median per-round ratio (printed last)."""
  med = {n: statistics.median(v) for n, v in rates.items()}
  ratio = statistics.median(o / k for o, k in zip(rates["ours"], rates["keras"]))
  print(f"median images/s: ours {med['ours']:.1f}, keras {med['keras']:.1f} "
        f"(batch {batch_size}, {image_size}x{image_size}x3, {os.cpu_count()} CPUs)")
  print(f"ratio ours/keras (median of per-round ratios): {ratio:.2f}")


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  shape = (FLAGS.image_size, FLAGS.image_size, 3)
  with precision.policy(FLAGS.precision):
    models = {
        "ours": network.build_imagenet_network(genotype_lib.published("nasnet_a"),
                                               num_classes=10, input_shape=shape,
                                               penultimate_filters=1056),
        "keras": keras.applications.NASNetMobile(weights=None, input_shape=shape, classes=10,
                                                 classifier_activation=None),
    }
  print(f"precision: {FLAGS.precision} (both models)")
  print(kernels.describe(), flush=True)
  rates = run_interleaved(models, FLAGS.batch_size, shape, FLAGS.rounds, FLAGS.steps)
  print_summary(rates, FLAGS.batch_size, FLAGS.image_size)


if __name__ == "__main__":
  app.run(main)
