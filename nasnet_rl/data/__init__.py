"""tf.data input pipelines: dataset loaders by name, the NAS proxy split, batching, augmentation.

  splits = data.load_dataset("fashion_mnist", validation_size=5000, seed=0)
  train = data.make_batches(splits.train, 64, training=True, mean=splits.mean, std=splits.std)

Loaders: fashion_mnist, cifar10 (tfds), cifar10_local, image_folder, synthetic, tfds:<name>;
add one with `@data.register("name")` on a function returning a `data.Source`.
"""

from nasnet_rl.data.augment import cutout
from nasnet_rl.data.augment import make_batches
from nasnet_rl.data.augment import normalize
from nasnet_rl.data.augment import random_crop_flip
from nasnet_rl.data.registry import get as get_loader
from nasnet_rl.data.registry import names as loader_names
from nasnet_rl.data.registry import register
from nasnet_rl.data.source import DatasetNotFoundError
from nasnet_rl.data.source import Encoded
from nasnet_rl.data.source import Examples
from nasnet_rl.data.source import Source
from nasnet_rl.data.splits import DataSplits
from nasnet_rl.data.splits import load_dataset
from nasnet_rl.data.splits import proxy_split
# Importing the loader modules registers them.
from nasnet_rl.data import cifar10  # pylint: disable=g-bad-import-order
from nasnet_rl.data import fashion_mnist
from nasnet_rl.data import image_folder
from nasnet_rl.data import synthetic
from nasnet_rl.data import tfds_loader
