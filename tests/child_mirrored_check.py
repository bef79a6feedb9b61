"""Subprocess body of tests/test_distribute.py's child test (two logical CPU devices must be set
before TensorFlow initializes): trains the same tiny child (`gin/tiny/train.gin`'s network,
auxiliary head included, 3 steps of a global batch of 16, no augmentation, dropout or drop
path, whose masks differ per replica by design) on one device, and under MirroredStrategy on
/cpu:0 and /cpu:1 with synchronized BatchNorm and `steps_per_execution=3`, then
prints one JSON line: the largest difference of each from the first over every weight (BatchNorm
moving statistics included), and how far training moved the weights from their start."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import config  # pylint: disable=g-import-not-at-top
from nasnet_rl import data as data_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
from nasnet_rl import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl.child import trainer  # pylint: disable=g-import-not-at-top
from small_genotypes import ONE_BLOCK  # pylint: disable=g-import-not-at-top


def train(**kwargs):
  splits = data_lib.load_dataset("synthetic", num_train=64, num_test=16, validation_size=0,
                                 image_shape=(12, 12, 3), seed=0)
  model_box = []
  original = trainer.check_finite_weights

  def keep(model):  # the trained model, without changing what train_child does
    model_box.append(model)
    original(model)
  trainer.check_finite_weights = keep
  try:
    settings = dict(epochs=1, steps_per_epoch=3, batch_size=16, augment=False,
                    save_model=False, evaluate_test=False, count_mult_adds=False, verbose=0,
                    seed=0)
    metrics = trainer.train_child(genotype_lib.Genotype.from_dict(ONE_BLOCK), splits, None,
                                  **{**settings, **kwargs})
  finally:
    trainer.check_finite_weights = original
  return metrics, [np.asarray(w) for w in model_box[0].weights]


def main():
  config.parse(["gin/tiny/train.gin"], ["build_child.drop_path_rate = 0.0",
                                        "build_child.dropout = 0.0"])
  _, one = train()
  mirrored_metrics, mirrored = train(  # and all 3 steps in one host call
      strategy=distribute.make_distribution("mirrored", ["/cpu:0", "/cpu:1"]),
      sync_batch_norm=True, steps_per_execution=3)
  keras.utils.set_random_seed(0)  # as train_child does: the untrained network's weights
  initial = [np.asarray(w) for w in trainer.build_child(
      genotype_lib.Genotype.from_dict(ONE_BLOCK), 10, (12, 12, 3)).weights]
  diff = lambda ws: max(float(np.max(np.abs(a - b))) for a, b in zip(ws, one))
  print(json.dumps({"replicas": mirrored_metrics["replicas"], "weights": len(one),
                    "mirrored_diff": diff(mirrored),
                    "trained_moved": diff(initial)}))


if __name__ == "__main__":
  os.chdir(ROOT)
  main()
