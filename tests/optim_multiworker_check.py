"""Subprocess body of tests/test_optim.py's MultiWorkerMirroredStrategy test: run as a worker
(TF_CONFIG set by the test, two local processes on 127.0.0.1), it trains the tiny model of
optim_mirrored_check.py for 3 clipped steps on its half of the global batch of 16 (the
project's `make_distribution("multi_worker")`), then one step whose batch holds a NaN only in worker
1's half, and saves its weights before and after each to the .npz given as argv[1].
`reference()` is the same training on one device (the test calls it in its own process).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import optim  # pylint: disable=g-import-not-at-top

CLIP, STEPS, BATCH = 0.1, 3, 16


def data(nan: bool = False):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(BATCH, 6)).astype("float32") * 3
  if nan:
    x[BATCH - 1, 0] = np.nan  # the second half only
  return x, rng.integers(0, 4, BATCH)


def build():
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                            keras.layers.Dense(4)])
  model.compile(optim.SGD(0.1, momentum=0.9, global_clipnorm=CLIP),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  return model


def reference(init):
  """(weights after 3 steps on one device from `init`, global-batch gradient norm there)."""
  model = build()
  model.set_weights(init)
  x, y = data()
  with tf.GradientTape() as tape:
    loss = model.compute_loss(x=x, y=y, y_pred=model(x))
  norm = float(optim.global_norm(tape.gradient(loss, model.trainable_weights)))
  model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat(),
            steps_per_epoch=STEPS, epochs=1, verbose=0, shuffle=False)
  return [w.numpy() for w in model.weights], norm


def worker(out_path: str):
  """A custom loop, not model.fit: Keras 3.15's fit under MultiWorkerMirroredStrategy fails
  before the first step (its `_maybe_symbolic_build` reduces the (x, y) batch with
  `strategy.reduce`, and the collective strategy's `_reduce_to` does not take nested values)."""
  from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
  strategy = distribute.make_distribution("multi_worker")  # before any other TF op
  assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
  saved = {}
  for name, nan, steps in (("clipped", False, STEPS), ("nan", True, 1)):
    x, y = data(nan)

    def per_worker(ctx, x=x, y=y):
      half = slice(ctx.input_pipeline_id * BATCH // 2, (ctx.input_pipeline_id + 1) * BATCH // 2)
      return tf.data.Dataset.from_tensor_slices((x[half], y[half])).batch(BATCH // 2).repeat()
    with strategy.scope():
      model = build()
    for i, w in enumerate(model.weights):
      saved[f"{name}_init/{i}"] = w.numpy()

    def replica_step(xb, yb, model=model):
      with tf.GradientTape() as tape:  # the mean over the global batch, as fit computes it
        loss = model.compute_loss(x=xb, y=yb, y_pred=model(xb)) / strategy.num_replicas_in_sync
      model.optimizer.apply(tape.gradient(loss, model.trainable_weights),
                            model.trainable_weights)
    step = tf.function(lambda batch, fn=replica_step: strategy.run(fn, args=batch))
    batches = iter(strategy.distribute_datasets_from_function(per_worker))
    for _ in range(steps):
      step(next(batches))
    for i, w in enumerate(model.weights):
      saved[f"{name}/{i}"] = w.numpy()
  np.savez(out_path, **saved)


if __name__ == "__main__":
  worker(sys.argv[1])
