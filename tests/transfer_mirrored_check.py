"""Subprocess body of tests/test_transfer.py's Mirrored test: two logical CPU devices must be
configured before TensorFlow initializes, so this runs in a fresh interpreter.

Trains a tiny transfer network for one step on one device and under MirroredStrategy on two
logical CPUs (same seed and initial weights; synchronized BatchNorm) and prints the two losses
and the largest difference of the updated weights as JSON. The training set is exactly one
batch without augmentation: Keras may open the distributed dataset's iterator more than once,
and each opening reshuffles, so a larger set would put different examples into the first step;
with one batch every order holds the same examples, and the step must agree.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gin  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import config  # pylint: disable=g-import-not-at-top
from nasnet_rl import data as data_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
from nasnet_rl.child import trainer  # pylint: disable=g-import-not-at-top
from nasnet_rl.transfer import train  # pylint: disable=g-import-not-at-top

GENOTYPE = {"format": genotype_lib.FORMAT, "space": {"ops": "enas", "num_blocks": 2},
            "normal": {"blocks": [{"inputs": [1, 0], "ops": ["sep_conv_3x3", "identity"]},
                                  {"inputs": [2, 1], "ops": ["avg_pool_3x3", "sep_conv_5x5"]}]},
            "reduction": {"blocks": [{"inputs": [0, 1], "ops": ["max_pool_3x3", "sep_conv_3x3"]},
                                     {"inputs": [2, 0], "ops": ["identity", "avg_pool_3x3"]}]}}


def one_step(kind, sync):
  gin.clear_config()
  config.parse(["gin/tiny/transfer.gin"], [
      "train_transfer.epochs = 1", "train_transfer.steps_per_epoch = 1",
      "train_transfer.batch_size = 8", "scale.drop_path_rate = 0.0",
      f"train_transfer.sync_batch_norm = {sync}", "train_transfer.evaluate_test = False",
      "load_dataset.validation_size = 0", "load_dataset.num_train = 8",
      "train_transfer.augment = False"])
  strategy = distribute.make_distribution(kind, ["/cpu:0", "/cpu:1"] if kind == "mirrored" else None)
  splits = data_lib.load_dataset(seed=0)
  start = []
  original = trainer.run_training

  def keep(model, *args, **kwargs):  # the weights the step starts from
    start.extend(np.asarray(w).copy() for w in model.trainable_weights)
    return original(model, *args, **kwargs)
  trainer.run_training = keep
  try:
    metrics, model = train.train_transfer(genotype_lib.Genotype.from_dict(GENOTYPE), splits,
                                          None, strategy=strategy, seed=0)
  finally:
    trainer.run_training = original
  weights = [np.asarray(w) for w in model.trainable_weights]
  moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, start))
  return metrics["history"]["loss"][0], metrics["replicas"], weights, moved


def main():
  sync = sys.argv[1] if len(sys.argv) > 1 else "True"
  loss1, r1, w1, moved = one_step("default", sync)
  loss2, r2, w2, _ = one_step("mirrored", sync)
  diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
  print(json.dumps({"single_loss": loss1, "mirrored_loss": loss2, "replicas": [r1, r2],
                    "max_weight_diff": diff, "moved": moved}))


if __name__ == "__main__":
  os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  main()
