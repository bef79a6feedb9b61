"""Datasets from tensorflow-datasets: "cifar10", and "tfds:<name>" for any supervised image set.

tensorflow_datasets is imported on first use (it is slow to import). Offline with no prepared
data, tfds would retry its download for minutes; we look first and raise one clear error instead.
"""

import socket
from typing import Optional

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl.data import cifar10
from nasnet_rl.data import registry
from nasnet_rl.data import source

IN_MEMORY_LIMIT = 2 ** 30  # bytes of uint8 pixels held in numpy when in_memory is auto


def _online(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
  """True when a TCP connection to the tfds download mirror opens within `timeout`."""
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _how_to_get(name: str, data_dir: Optional[str], reason: str) -> str:
  where = data_dir or "~/tensorflow_datasets"
  text = (f"tensorflow-datasets {name!r}: no prepared data in {where!r} and {reason}. To get it: "
          f"run once on a machine with network access, which downloads and prepares it "
          f"(--gin.load_dataset.data_dir=/path/to/tfds to choose where); or copy a prepared "
          f"tensorflow_datasets folder (one holding {name}/) and pass it as data_dir")
  if name == "cifar10":
    text += (f"; or use load_dataset.name='cifar10_local' with the python batches from "
             f"{cifar10.URL} (unpacked folder or the .tar.gz as data_dir)")
  return text


def _open(tfds, name: str, data_dir, download: bool, manual_dir, **kwargs):
  """tfds.load from prepared data; downloads only when allowed and the network is reachable."""
  try:
    return tfds.load(name, data_dir=data_dir, download=False, **kwargs)
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(f"tensorflow-datasets has no dataset named {name!r} (see "
                     "https://www.tensorflow.org/datasets/catalog)") from None
  except AssertionError:  # tfds' "could not find data in <data_dir>": not prepared there
    pass
  except ValueError as e:  # no supervised keys, unknown split, ...
    raise ValueError(f"tensorflow-datasets {name!r}: {str(e).splitlines()[0]}") from None
  if not download:
    raise source.DatasetNotFoundError(_how_to_get(name, data_dir, "download=False"))
  if not _online():
    raise source.DatasetNotFoundError(_how_to_get(name, data_dir, "this machine is offline"))
  config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  try:
    return tfds.load(name, data_dir=data_dir, download=True, **kwargs,
                     download_and_prepare_kwargs={"download_config": config})
  except Exception as e:  # network, checksum and manual-download errors alike
    reason = f"the download failed ({type(e).__name__}: {str(e).splitlines()[0][:300]})"
    raise source.DatasetNotFoundError(_how_to_get(name, data_dir, reason)) from None


def _load(tfds_name: str, data_dir, download, manual_dir, train_split, test_split,
          in_memory) -> source.Source:
  """Both splits as (image, label) Examples; see load_tfds."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  (train, test), info = _open(tfds, tfds_name, data_dir, download, manual_dir,
                              split=[train_split, test_split], as_supervised=True,
                              with_info=True)
  image_key, label_key = info.supervised_keys[:2]
  image_shape = tuple(info.features[image_key].shape)
  num_classes = getattr(info.features[label_key], "num_classes", None)
  if len(image_shape) != 3 or image_shape[-1] is None:
    raise ValueError(f"tensorflow-datasets {tfds_name!r}: {image_key!r} has shape {image_shape}; "
                     "expected images [H, W, C]")
  if not num_classes:
    raise ValueError(f"tensorflow-datasets {tfds_name!r}: {label_key!r} is not a class label")
  fixed = None not in image_shape
  splits = []
  for ds, split in ((train, train_split), (test, test_split)):
    size = int(ds.cardinality())
    size = size if size >= 0 else info.splits[split].num_examples
    if not size:
      raise ValueError(f"tensorflow-datasets {tfds_name!r}: split {split!r} is empty")
    splits.append((ds, size, split))
  if in_memory is None:
    in_memory = fixed and sum(s[1] for s in splits) * int(np.prod(image_shape)) <= IN_MEMORY_LIMIT
  if in_memory and not fixed:
    raise ValueError(f"tensorflow-datasets {tfds_name!r}: images vary in size {image_shape}, "
                     "so they cannot be held in memory; use in_memory=False and image_size")
  as_int64 = lambda image, label: (image, tf.cast(label, tf.int64))
  examples = []
  for ds, size, split in splits:
    if in_memory:
      images, labels = ds.batch(size).get_single_element()
      examples.append(source.Examples.from_arrays(images.numpy(), labels.numpy(),
                                                  f"{tfds_name}/{split}"))
    else:
      examples.append(source.Examples.from_dataset(ds.map(as_int64), size))
  return source.Source(train=examples[0], test=examples[1], num_classes=int(num_classes),
                       image_shape=image_shape, name=f"tfds:{tfds_name}")


@registry.register("tfds:")
@gin.configurable
def load_tfds(tfds_name: str, data_dir: Optional[str] = None, download: bool = True,
              manual_dir: Optional[str] = None, train_split: str = "train",
              test_split: str = "test", in_memory: Optional[bool] = None) -> source.Source:
  """Any supervised tfds image dataset (name="tfds:<tfds_name>").

  in_memory: decode everything into numpy once (fast epochs, exact mean/std); None chooses it
  for fixed-size images under 1 GiB, else images stream from tfds' files every epoch."""
  return _load(tfds_name, data_dir, download, manual_dir, train_split, test_split, in_memory)


@registry.register("cifar10")
@gin.configurable
def load_cifar10(data_dir: Optional[str] = None, download: bool = True,
                 manual_dir: Optional[str] = None,
                 in_memory: Optional[bool] = None) -> source.Source:
  """CIFAR-10 via tensorflow-datasets: 50000 train / 10000 test 32x32x3 images, 10 classes."""
  src = _load("cifar10", data_dir, download, manual_dir, "train", "test", in_memory)
  return source.Source(train=src.train, test=src.test, num_classes=src.num_classes,
                       image_shape=src.image_shape, name="cifar10")
