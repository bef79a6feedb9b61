"""Training throughput of our NASNet-A Mobile at 224px (built by the transfer `mobile` preset)
against keras.applications.NASNetMobile(weights=None), same batch, interleaved in one run.

Same architecture (4@1056, ImageNet stem, 224x224x3), 1000 classes, same optimizer and
tf.function train step; for a like-for-like step our preset's auxiliary head and dropout are
off (Keras' application has neither). Prints images/s of each and the ratio ours/keras last.
The measuring loop is bench_child.py's (`run_interleaved`).

  python dev/bench_transfer.py --batch_size=32 --rounds=3 --steps=5
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top

import bench_child  # pylint: disable=g-import-not-at-top  (defines the shared flags)
from nasnet_rl import kernels
from nasnet_rl import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
from nasnet_rl.transfer import scaling  # pylint: disable=g-import-not-at-top

FLAGS = bench_child.FLAGS
FLAGS.set_default("image_size", 224)
FLAGS.set_default("batch_size", 32)
FLAGS.set_default("rounds", 3)
FLAGS.set_default("steps", 5)


def main(argv):
  print(kernels.describe(), flush=True)  # which kernel forms the ops train with
  del argv
  keras.utils.set_random_seed(0)
  size = FLAGS.image_size
  sc = scaling.scale("mobile", image_size=size, stem="preset", aux_head=False, dropout=0.0)
  models = {
      "ours": scaling.build(genotype_lib.published("nasnet_a"), sc, 1000),
      "keras": keras.applications.NASNetMobile(weights=None, input_shape=(size, size, 3),
                                               classes=1000, classifier_activation=None),
  }
  rates = bench_child.run_interleaved(models, FLAGS.batch_size, (size, size, 3), FLAGS.rounds,
                                      FLAGS.steps, num_classes=1000)
  bench_child.print_summary(rates, FLAGS.batch_size, size)


if __name__ == "__main__":
  app.run(main)
