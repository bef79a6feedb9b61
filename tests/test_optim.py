"""nasnet_rl.optim: Keras' update on one replica; clipping and skipping on the all-reduced
gradient under MirroredStrategy (two logical CPUs, in a subprocess)."""
import contextlib
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import optim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = 0.1


def _model():
  keras.utils.set_random_seed(0)
  return keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                           keras.layers.Dense(4)])


def _data():
  rng = np.random.default_rng(0)
  return rng.normal(size=(16, 6)).astype("float32") * 3, rng.integers(0, 4, 16)


def _loss(model, x, y):
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x))


@contextlib.contextmanager
def _no_arithmetic_rewrites():
  """Grappler's arithmetic optimizer rewrites the two graphs differently (1-ulp differences)."""
  tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": True})


@pytest.mark.parametrize("ours, stock, kwargs", [
    (optim.SGD, keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    (optim.RMSprop, keras.optimizers.RMSprop, {"momentum": 0.9, "epsilon": 1.0})])
def test_single_device_update_is_keras_bit_for_bit(ours, stock, kwargs):
  x, y = _data()
  results, norms = [], []
  for cls in (stock, ours):
    model = _model()
    opt = cls(0.1, global_clipnorm=CLIP, **kwargs)

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss = _loss(model, x, y)  # pylint: disable=cell-var-from-loop
      grads = tape.gradient(loss, model.trainable_weights)  # pylint: disable=cell-var-from-loop
      opt.apply(grads, model.trainable_weights)  # pylint: disable=cell-var-from-loop
      return optim.global_norm(grads)
    with _no_arithmetic_rewrites():
      norms.append([float(step()) for _ in range(4)])
    results.append([w.numpy() for w in model.weights + opt.variables])
  assert min(norms[0]) > CLIP  # every step clips
  assert norms[0] == norms[1]
  for a, b in zip(*results):
    np.testing.assert_array_equal(a, b)


def test_fit_matches_keras_and_model_keras_reloads(tmp_path):
  x, y = _data()
  weights = []
  for cls in (keras.optimizers.SGD, optim.SGD):
    model = _model()
    model.compile(cls(0.1, momentum=0.9, global_clipnorm=CLIP),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    weights.append([w.numpy() for w in model.weights])
  # not bit-equal inside fit: Grappler's arithmetic optimizer rewrites the stock graph (~1e-8)
  assert max(float(np.max(np.abs(a - b))) for a, b in zip(*weights)) < 1e-6
  path = str(tmp_path / "model.keras")
  model.save(path)
  assert keras.saving.get_registered_object("nasnet_rl>SGD") is optim.SGD  # on import nasnet_rl
  again = keras.models.load_model(path)
  assert type(again.optimizer) is optim.SGD  # pylint: disable=unidiomatic-typecheck
  assert again.optimizer.get_config() == model.optimizer.get_config()
  for a, b in zip(again.weights, model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  again.fit(x, y, batch_size=16, epochs=1, verbose=0)  # the reloaded optimizer trains
  stock = keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=CLIP)
  stock.build(model.trainable_weights)  # no variables of its own: checkpoints are unchanged
  assert [v.shape for v in stock.variables] == [v.shape for v in model.optimizer.variables]


def test_non_finite_gradient_skips_the_step_without_strategy():
  model = _model()
  opt = optim.SGD(0.1, momentum=0.9, global_clipnorm=CLIP)
  x, y = _data()
  with tf.GradientTape() as tape:
    loss = _loss(model, x, y)
  grads = tape.gradient(loss, model.trainable_weights)
  opt.apply(grads, model.trainable_weights)  # momentum is non-zero from here on
  state = lambda: [v.numpy() for v in model.weights + opt.variables if v is not opt.iterations]
  before = state()
  bad = [g + (np.nan if i == 1 else 0.0) for i, g in enumerate(grads)]
  tf.function(lambda: opt.apply(bad, model.trainable_weights))()
  for a, b in zip(before, state()):
    np.testing.assert_array_equal(a, b)
  assert int(opt.iterations) == 2  # a skipped step still counts


def test_mirrored_two_cpus_clips_the_global_gradient_and_skips_together():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "optim_mirrored_check.py")],
                        capture_output=True, text=True, timeout=300, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["replicas"] == 2
  assert out["global_norm"] > out["clip"] and min(out["half_norms"]) > out["clip"]
  assert out["ours_max_diff"] < 1e-5  # 3 clipped steps on 2 replicas == on one device
  assert out["stock_max_diff"] > 1e-3  # stock Keras clips each replica's half: the test sees it
  assert out["nan_moved"] == 0.0 and out["nan_replicas_differ"] == 0.0
  assert out["stock_nan_weights"] > 0


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


# 13 s on a quiet 2-core machine, 18 s on a busy one (two TF processes start and connect)
def test_multi_worker_two_processes_step_matches_single_device(tmp_path):
  """MultiWorkerMirroredStrategy over two local processes (one CPU each, TF_CONFIG on
  127.0.0.1): 3 clipped steps equal one device's; a NaN in worker 1's half skips on both."""
  import optim_multiworker_check as check  # pylint: disable=import-outside-toplevel
  workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
  procs = []
  for i in range(2):
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "optim_multiworker_check.py"),
         str(tmp_path / f"w{i}.npz")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
                            TF_CONFIG=json.dumps(tf_config))))
  try:
    errors = [p.communicate(timeout=240)[1] for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-2000:] for e in errors)
  out = [np.load(str(tmp_path / f"w{i}.npz")) for i in range(2)]
  n = len([k for k in out[0] if k.startswith("clipped/")])
  get = lambda w, key: [w[f"{key}/{j}"] for j in range(n)]
  expected, norm = check.reference(get(out[0], "clipped_init"))
  assert norm > check.CLIP
  diffs = [max(float(np.max(np.abs(a - b))) for a, b in zip(get(w, "clipped"), expected))
           for w in out]
  print("multi-worker max |difference| to one device:", diffs)
  assert max(diffs) < 1e-5
  for w in out:  # the NaN step was skipped by both workers
    for a, b in zip(get(w, "nan"), get(out[0], "nan_init")):
      np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("nesterov", [True, False])
def test_flat_sgd_is_keras_sgd_with_l2_in_the_loss_and_clipping(nesterov):
  """optim.FlatSGD (one fused update, the ENAS supernet's) = Keras' SGD on a loss with
  `l2 * sum(w ** 2)` and global-norm clipping (active here), over three steps; a NaN gradient
  skips the step and leaves the weights and momentum unchanged."""
  x, y = _data()
  l2 = 1e-2
  reference, fused = _model(), _model()
  keras_sgd = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=nesterov, global_clipnorm=CLIP)
  flat = optim.FlatSGD(0.1, momentum=0.9, nesterov=nesterov, l2=l2, global_clipnorm=CLIP)
  flat.build(fused.trainable_variables)
  for _ in range(3):
    with tf.GradientTape() as tape:
      loss = _loss(reference, x, y) + l2 * tf.add_n(
          [tf.reduce_sum(tf.square(v)) for v in reference.trainable_variables])
    keras_sgd.apply_gradients(zip(tape.gradient(loss, reference.trainable_variables),
                                  reference.trainable_variables))
    with tf.GradientTape() as tape:
      loss = _loss(fused, x, y)
    flat.apply(optim.FlatSGD.flat(tape.gradient(loss, fused.trainable_variables)))
  for a, b in zip(reference.trainable_variables, fused.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
  before = [v.numpy() for v in fused.trainable_variables] + [flat.variables[2].numpy()]
  with tf.GradientTape() as tape:
    loss = _loss(fused, x, y)
  grad = optim.FlatSGD.flat(tape.gradient(loss, fused.trainable_variables))
  flat.apply(tf.tensor_scatter_nd_update(grad, [[0]], [np.nan]))
  after = [v.numpy() for v in fused.trainable_variables] + [flat.variables[2].numpy()]
  assert all(np.array_equal(a, b) for a, b in zip(before, after))
  assert int(flat.iterations.numpy()) == 4
