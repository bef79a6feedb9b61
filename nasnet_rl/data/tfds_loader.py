"""Datasets from tensorflow-datasets: "cifar10", and "tfds:<name>" for any supervised image set.

tensorflow_datasets is imported on first use (it is slow to import). Offline with no prepared
data, tfds would retry its download for minutes; we look first and raise one clear error instead.

Streamed (not in memory) splits keep their images encoded (`tfds.decode.SkipDecoding`) until the
training pipeline has sharded and shuffled them: tfds reads the files of the split one after
another (so the stored order, which the proxy split indexes, is file order); training reads them
through `_file_reader`: each input pipeline gets whole files (tfds' `ReadConfig(input_context)`)
where there are at least as many files as pipelines, else every n-th example; each pass orders
its files with its own seed (`shuffle_files=True`, `shuffle_seed`) and tfds interleaves them; the
records of the proxy split's training part are kept by their `tfds_id` (file and index).
"""

import os
import socket
from typing import Optional

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl.data import cifar10
from nasnet_rl.data import registry
from nasnet_rl.data import source

IN_MEMORY_LIMIT = 2 ** 30  # bytes of uint8 pixels held in numpy when in_memory is auto
INTERLEAVE = 16  # files read at once in a shuffled pass (tfds' default)


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


def _file_reader(tfds, builder, split: str, image_key: str, label_key: str):
  """A `source.Reader` over the files of `split` (None when tfds knows no files for it, as under
  `tfds.testing.mock_data`). The stored order it indexes is file after file, each file's records
  in order: the order `builder.as_dataset` gives with interleave_cycle_length=1."""
  try:
    instructions = list(builder.info.splits[split].file_instructions)
  except (KeyError, ValueError, AttributeError):
    return None
  names = [os.path.basename(os.fspath(fi.filename)) for fi in instructions]
  if not instructions or len(set(names)) != len(names):
    return None  # (files in several folders: tfds ids then carry folders too)
  takes = np.array([fi.take for fi in instructions], dtype=np.int64)
  starts = np.concatenate([[0], np.cumsum(takes)[:-1]])
  total = int(takes.sum())
  # stored index = base[file] + the record's index within its file (tfds_id counts from 0).
  base = starts - np.array([fi.skip for fi in instructions], dtype=np.int64)
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(tf.constant(names), tf.constant(base)), default_value=-1)
  decoders = {image_key: tfds.decode.SkipDecoding()}

  def stored_index(tfds_id):
    name = tf.strings.regex_replace(tfds_id, r"__[0-9]+$", "")
    offset = table.lookup(name)
    check = tf.debugging.Assert(offset >= 0, ["unknown tfds file of", tfds_id])
    with tf.control_dependencies([check]):
      return offset + tf.strings.to_number(
          tf.strings.regex_replace(tfds_id, r"^.*__", ""), tf.int64)

  def read(seed, num_shards, index, keep):
    by_file = num_shards > 1 and len(instructions) >= num_shards
    by_example = num_shards > 1 and not by_file
    mine = np.ones(total, dtype=bool) if keep is None else np.asarray(keep, dtype=bool).copy()
    if by_file:
      in_shard = np.zeros(total, dtype=bool)
      for k in range(index, len(instructions), num_shards):
        in_shard[starts[k]:starts[k] + takes[k]] = True
      mine &= in_shard
    elif by_example:
      mine &= np.arange(total) % num_shards == index
    config = tfds.ReadConfig(
        add_tfds_id=keep is not None or by_example, shuffle_seed=seed,
        shuffle_reshuffle_each_iteration=False if seed is not None else None,
        interleave_cycle_length=INTERLEAVE if seed is not None else 1,
        input_context=(tf.distribute.InputContext(num_shards, index, 1) if by_file else None),
        try_autocache=False)
    ds = builder.as_dataset(split=split, decoders=decoders, read_config=config,
                            shuffle_files=seed is not None)
    if keep is not None or by_example:
      wanted = tf.constant(mine)
      ds = ds.filter(lambda ex: tf.gather(wanted, stored_index(ex["tfds_id"])))
    ds = ds.map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int64)))
    return ds.apply(tf.data.experimental.assert_cardinality(int(mine.sum())))
  return read


def _load(tfds_name: str, data_dir, download, manual_dir, train_split, test_split,
          in_memory) -> source.Source:
  """Both splits as (image, label) Examples; see load_tfds."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  in_order = tfds.ReadConfig(interleave_cycle_length=1)  # file after file: the stored order
  (train, test), info = _open(tfds, tfds_name, data_dir, download, manual_dir,
                              split=[train_split, test_split], as_supervised=True,
                              with_info=True, read_config=in_order)
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
  image_feature = info.features[image_key]
  encoded = not in_memory and isinstance(image_feature, tfds.features.Image)
  if encoded:  # image bytes until the pipeline decodes them
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    decode = lambda image, label: (image_feature.decode_example(image), label)
  examples = []
  for ds, size, split in splits:
    if in_memory:
      images, labels = ds.batch(size).get_single_element()
      examples.append(source.Examples.from_arrays(images.numpy(), labels.numpy(),
                                                  f"{tfds_name}/{split}"))
    elif encoded:
      ds = builder.as_dataset(split=split, as_supervised=True, read_config=in_order,
                              decoders={image_key: tfds.decode.SkipDecoding()})
      ds = ds.map(as_int64).apply(tf.data.experimental.assert_cardinality(size))
      reader = _file_reader(tfds, builder, split, image_key, label_key)
      examples.append(source.Examples.from_dataset(ds, size, decode=decode, reader=reader))
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
  for fixed-size images under 1 GiB, else images stream from tfds' files every epoch, encoded
  until the training pipeline has sharded and shuffled them (see the module's notes)."""
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
