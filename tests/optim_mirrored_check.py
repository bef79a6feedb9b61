"""Subprocess body of tests/test_optim.py's Mirrored test (two logical CPUs must be configured
before TensorFlow initializes, so this runs in a fresh interpreter).

A tiny Dense model, SGD with momentum and global_clipnorm small enough that every step clips,
trained with model.fit for 3 steps on one global batch of 16: on one device and under
MirroredStrategy over /cpu:0 and /cpu:1 (8 examples each), with nasnet_rl.optim.SGD and with
the stock keras SGD. Then one step whose batch holds a NaN only in replica 1's half. Prints one
JSON line of norms and differences for the test to assert on.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import optim  # pylint: disable=g-import-not-at-top
from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top

CLIP, STEPS, BATCH = 0.1, 3, 16
rng = np.random.default_rng(0)
X = rng.normal(size=(BATCH, 6)).astype("float32") * 3
Y = rng.integers(0, 4, BATCH)
keras.utils.set_random_seed(0)
INIT = None


def build(strategy, cls):
  """The tiny model compiled under `strategy`, from the same initial weights every time."""
  global INIT
  with strategy.scope():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(4)])
    if INIT is None:
      INIT = [w.numpy() for w in model.weights]
    model.set_weights(INIT)
    model.compile(cls(0.1, momentum=0.9, global_clipnorm=CLIP),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  return model


def fit(strategy, cls, x, steps):
  model = build(strategy, cls)
  ds = tf.data.Dataset.from_tensor_slices((x, Y)).batch(BATCH).repeat()
  model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
  return model


def replica_copies(model):
  """Every replica's copy of every weight (one copy without a strategy)."""
  out = []
  for w in model.weights:
    values = getattr(w.value, "values", None)
    out.append([v.numpy() for v in values] if values else [w.numpy()])
  return out


def gradient(model, x, y):
  """The gradient of the mean loss over (x, y) at the model's weights."""
  with tf.GradientTape() as tape:
    loss = model.compute_loss(x=x, y=y, y_pred=model(x))
  return tape.gradient(loss, model.trainable_weights)


def max_diff(a, b):
  return max(float(np.max(np.abs(p - q))) for p, q in zip(a, b))


def main():
  single_strategy = tf.distribute.get_strategy()
  mirrored = distribute.make_distribution("mirrored", ["/cpu:0", "/cpu:1"])
  probe = build(single_strategy, optim.SGD)
  # each replica's gradient is that of its half's mean loss / 2 (Keras scales by 1 / replicas)
  half = lambda s: [g * 0.5 for g in gradient(probe, X[s], Y[s])]
  out = {"replicas": mirrored.num_replicas_in_sync, "clip": CLIP,
         "global_norm": float(optim.global_norm(gradient(probe, X, Y))),
         "half_norms": [float(optim.global_norm(half(s)))
                        for s in (slice(0, BATCH // 2), slice(BATCH // 2, BATCH))]}
  for name, cls in (("ours", optim.SGD), ("stock", keras.optimizers.SGD)):
    one = [w.numpy() for w in fit(single_strategy, cls, X, STEPS).weights]
    copies = replica_copies(fit(mirrored, cls, X, STEPS))
    out[f"{name}_max_diff"] = max(max_diff(one, [c[r] for c in copies]) for r in range(2))
  bad = X.copy()
  bad[BATCH - 1, 0] = np.nan  # replica 1's half only
  copies = replica_copies(fit(mirrored, optim.SGD, bad, 1))
  out["nan_moved"] = max(max_diff(INIT, [c[r] for c in copies]) for r in range(2))
  out["nan_replicas_differ"] = max_diff([c[0] for c in copies], [c[1] for c in copies])
  stock = replica_copies(fit(mirrored, keras.optimizers.SGD, bad, 1))
  out["stock_nan_weights"] = int(sum(np.isnan(c[0]).sum() for c in stock))
  print(json.dumps(out))


if __name__ == "__main__":
  main()
