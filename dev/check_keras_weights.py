"""Converts a keras.applications NASNetMobile / NASNetLarge to our NASNet-A network and prints
how closely the two agree on random images (max |log-prob difference|, top-1 agreement).

With --weights=none (the default, offline) the Keras model's BatchNorm statistics and affine
parameters are randomised so that they matter, and its head bias is centred on the batch so
random images get different top-1 classes; --weights=imagenet or a weights file checks real
weights as they are.

  python dev/check_keras_weights.py --model=mobile --image_size=224 --images=8
  python dev/check_keras_weights.py --model=large --images=4
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nasnet_rl.transfer import keras_weights  # pylint: disable=g-import-not-at-top

flags.DEFINE_enum("model", "mobile", ["mobile", "large"], "Which Keras application.")
flags.DEFINE_integer("image_size", None, "Input size (default 224 mobile, 331 large).")
flags.DEFINE_integer("images", 8, "How many random images to compare on.")
flags.DEFINE_string("weights", "none", "none (random, BN randomised), imagenet, or a file.")
flags.DEFINE_integer("seed", 0, "Seed of the randomisation and the images.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  size = FLAGS.image_size or (224 if FLAGS.model == "mobile" else 331)
  build = (keras.applications.NASNetMobile if FLAGS.model == "mobile"
           else keras.applications.NASNetLarge)
  weights = None if FLAGS.weights == "none" else FLAGS.weights
  keras_model = build(weights=weights, input_shape=(size, size, 3), classes=1000,
                      classifier_activation=None)
  rng = np.random.default_rng(FLAGS.seed)
  images = rng.uniform(-1, 1, (FLAGS.images, size, size, 3)).astype("float32")
  if weights is None:
    keras_weights.randomise_batchnorm(keras_model, rng)
    head = keras_model.get_layer("predictions")
    head.bias.assign(head.bias.numpy() - keras_model(images, training=False).numpy().mean(0))
  start = time.time()
  ours = keras_weights.from_keras_application(keras_model)
  out = {"model": FLAGS.model, "image_size": size, "weights": FLAGS.weights,
         "params": int(ours.count_params()), "convert_seconds": round(time.time() - start, 1)}
  out.update(keras_weights.agreement(keras_model, ours, images))
  print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
  app.run(main)
