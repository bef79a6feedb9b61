"""Subprocess body of tests/test_resume.py's Mirrored test (two logical CPU devices must be set
before TensorFlow initializes): trains a tiny transfer network under MirroredStrategy on two
logical CPUs with drop path and dropout, checkpointing every step into argv[1], and prints the
history and the final weights' file as JSON."""
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
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl import config  # pylint: disable=g-import-not-at-top
from nasnet_rl import data as data_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
from nasnet_rl.transfer import train  # pylint: disable=g-import-not-at-top
from transfer_mirrored_check import GENOTYPE  # pylint: disable=g-import-not-at-top


def main(workdir):
  config.parse(["gin/tiny/transfer.gin"], [
      "train_transfer.epochs = 2", "train_transfer.steps_per_epoch = 3",
      "train_transfer.batch_size = 8", "scale.drop_path_rate = 0.3", "scale.dropout = 0.5",
      "train_transfer.evaluate_test = False", "load_dataset.validation_size = 0",
      "load_dataset.num_train = 40", "training_checkpoints.every_steps = 1",
      "training_checkpoints.keep = 10"])
  strategy = distribute.make_distribution("mirrored", ["/cpu:0", "/cpu:1"])
  splits = data_lib.load_dataset(seed=0)
  metrics, model = train.train_transfer(genotype_lib.Genotype.from_dict(GENOTYPE), splits,
                                        workdir, strategy=strategy, seed=0, export_model=False)
  path = os.path.join(workdir, "final_weights.npz")
  np.savez(path, *[np.asarray(w) for w in model.weights])
  print(json.dumps({"history": metrics["history"], "replicas": metrics["replicas"],
                    "weights": path}))


if __name__ == "__main__":
  os.chdir(ROOT)
  main(sys.argv[1])
