"""Subprocess body of tests/test_distribute.py's synchronized-BatchNorm test (two logical CPU
devices must be set before TensorFlow initializes): one training-mode call of ops.BatchNorm on
a batch of 8 under MirroredStrategy on /cpu:0 and /cpu:1 with `synchronized=True` (4 examples
per replica), against the fused kernel on one device: outputs, input and scale gradients, and
the moving statistics. Prints one JSON line of the largest differences."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
from nasnet_rl.child import ops  # pylint: disable=g-import-not-at-top


def step(layer, x, probe):
  """Outputs, d(sum(y * probe))/d(x, gamma) of one training call."""
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x, training=True)
    loss = tf.reduce_sum(y * probe)
  dx, dgamma = tape.gradient(loss, [x, layer.gamma])
  return y, dx, dgamma


def main():
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(2.0, 3.0, size=(8, 3, 3, 5)).astype("float32"))
  probe = tf.constant(rng.normal(size=(8, 3, 3, 5)).astype("float32"))
  one = ops.BatchNorm(momentum=0.9, epsilon=1e-3)
  one.build(x.shape)
  y1, dx1, dg1 = step(one, x, probe)

  strategy = distribute.make_distribution("mirrored", ["/cpu:0", "/cpu:1"])
  with strategy.scope():
    synced = ops.BatchNorm(momentum=0.9, epsilon=1e-3)
    synced.build(x.shape)
  synced.synchronized = True
  halves = strategy.experimental_distribute_values_from_function(
      lambda ctx: (x[4 * ctx.replica_id_in_sync_group:][:4],
                   probe[4 * ctx.replica_id_in_sync_group:][:4]))
  out = strategy.run(tf.function(lambda xp: step(synced, *xp)), args=(halves,))
  local = lambda t: tf.concat(strategy.experimental_local_results(t), 0)
  y2, dx2 = local(out[0]), local(out[1])
  dg2 = strategy.reduce(tf.distribute.ReduceOp.SUM, out[2], axis=None)
  diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
  print(json.dumps({
      "replicas": strategy.num_replicas_in_sync, "output": diff(y1, y2), "d_input": diff(dx1, dx2),
      "d_gamma": diff(dg1, dg2), "moving_mean": diff(one.moving_mean, synced.moving_mean),
      "moving_variance": diff(one.moving_variance, synced.moving_variance),
      "moved": diff(one.moving_variance, np.ones(5))}))


if __name__ == "__main__":
  main()
