"""nasnet_rl/distribute.py: the strategy choice, batch and learning-rate scaling, chief-only
writes, and a child trained under MirroredStrategy on two logical CPUs against one device."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import distribute
from nasnet_rl.child import ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cluster(task_type, index, chief=False):
  cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
  if chief:
    cluster["chief"] = ["127.0.0.1:3"]
  return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("tf_config, chief", [
    (None, True), (_cluster("worker", 0), True), (_cluster("worker", 1), False),
    (_cluster("worker", 0, chief=True), False), (_cluster("chief", 0, chief=True), True)])
def test_only_the_chief_writes(monkeypatch, tf_config, chief):
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", tf_config)
  assert distribute.is_chief() is chief


def test_bad_tf_config_and_kind_are_clear_errors(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", "[1, 2]")
  with pytest.raises(ValueError, match="TF_CONFIG is not a JSON object"):
    distribute.is_chief()
  monkeypatch.delenv("TF_CONFIG")
  with pytest.raises(ValueError, match="unknown distribution kind 'mirror'"):
    distribute.make_distribution("mirror")
  assert distribute.make_distribution("auto").num_replicas_in_sync == 1  # one CPU, no cluster


def test_global_batch_and_linear_learning_rate():
  assert distribute.global_batch(64, None, 2) == 64
  assert distribute.global_batch(None, 32, 4) == 128
  with pytest.raises(ValueError, match="exactly one of train_child.batch_size"):
    distribute.global_batch(32, 16, 2, "train_child")
  with pytest.raises(ValueError, match="does not split evenly across 4"):
    distribute.global_batch(30, None, 4)
  with pytest.raises(ValueError, match="batch_size must be a positive int"):
    distribute.global_batch(True, None, 1)
  assert distribute.scaled_learning_rate(0.04, 1600, 32, "linear") == pytest.approx(2.0)
  assert distribute.scaled_learning_rate(0.04, 1600, 32, "none") == 0.04
  with pytest.raises(ValueError, match="lr_scaling"):
    distribute.scaled_learning_rate(0.04, 64, 32, "sqrt")


def test_scheduled_drop_path_follows_the_step_in_the_graph():
  """After seed_drop_paths(total_steps=T) a DropPath drops with probability rate * step / T,
  read from the step variable inside the traced function (no per-batch callback)."""
  layer = ops.DropPath(0.6)
  inputs = tf.keras.Input((1, 1, 1))
  model = tf.keras.Model(inputs, layer(inputs, training=True))
  step = tf.Variable(0, dtype=tf.int64)
  ops.seed_drop_paths(model, step, seed=0, total_steps=4)
  run = tf.function(lambda x: layer(x, training=True))
  x = tf.ones([4000, 1, 1, 1])
  for s, keep in ((0, 1.0), (2, 0.7), (4, 0.4), (8, 0.4)):  # the schedule stops at the end
    step.assign(s)
    out = run(x).numpy().ravel()
    kept = out[out > 0]
    np.testing.assert_allclose(kept, 1.0 / keep, rtol=1e-6)  # survivors rescaled by 1 / keep
    assert abs(kept.size / out.size - keep) < 0.03


def _run_check(script):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", script)],
                        capture_output=True, text=True, timeout=600, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_synchronized_batch_norm_on_two_cpus_equals_the_fused_kernel_on_one():
  """A batch split over 2 replicas with synchronized BatchNorm: output, gradients and moving
  statistics (moving variance with the fused kernel's n/(n-1)) of the whole batch on one device."""
  out = _run_check("sync_bn_check.py")
  assert out["replicas"] == 2 and out["moved"] > 0.1
  for key in ("output", "d_input", "d_gamma", "moving_mean", "moving_variance"):
    assert out[key] < 1e-5, (key, out)


@pytest.mark.slow  # 50-80 s (the Mirrored child traces ~50 synchronized BatchNorm all-reduces)
def test_child_under_mirrored_two_cpus_equals_one_device():
  """Every weight after 3 steps (BatchNorm moving statistics included) under MirroredStrategy
  with synchronized BatchNorm, the 3 steps in one host call (steps_per_execution=3), equals the
  one-device run of one step per call."""
  out = _run_check("child_mirrored_check.py")
  assert out["replicas"] == 2 and out["weights"] > 50
  assert out["trained_moved"] > 1e-2  # the runs trained: equal weights are not trivially equal
  assert out["mirrored_diff"] < 1e-5
