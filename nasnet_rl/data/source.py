"""What a loader returns: its full train and test `Examples` plus metadata (a `Source`).

`load_dataset` (splits.py) turns a Source into `DataSplits`; the checks here run on plain numpy
before any TF op, so bad input is one clear ValueError rather than a TF traceback.

Examples that are not pixels in memory (file paths, tfds records) also give an `Encoded` view of
themselves: the records before decoding plus the `decode` function, so that a training pipeline
shards and shuffles file names or encoded bytes and decodes only what it then uses.
"""

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


class DatasetNotFoundError(ValueError):
  """The data is not where we looked; the message names the place and how to get the data."""


# reader(seed, num_shards, index, keep) -> the encoded records of shard `index` of `num_shards`
# (files dealt out before any shuffle), in a file order shuffled by the int64 scalar `seed` (None:
# the stored order), only those whose index in the stored order is True in `keep` (None: all),
# with a known cardinality. See tfds_loader for the one loader that has it.
Reader = Callable[[Optional[tf.Tensor], int, int, Optional[np.ndarray]], tf.data.Dataset]


@dataclasses.dataclass(frozen=True)
class Encoded:
  """A training set before decoding: `records(seed)` gives its records (file names or encoded
  examples, each with its label) and `decode(*record)` turns one into (uint8 [H, W, C] image,
  int64 label); decode None means the records are decoded examples already (arrays in memory).

  `read(seed, num_shards, index)` gives shard `index` of `num_shards` (a fixed deal: the same
  records whatever the seed), with its file order shuffled by the int64 scalar `seed` where the
  source has files to shuffle (tfds shards; None: stored order). `shuffle_buffer` is the buffer
  that shuffles the records completely when they are small (file names), else None (the
  pipeline's own buffer). `decoded_as`: the decoded dataset this stands for (see
  `DataSplits.training_input`)."""
  read: Callable[[Optional[tf.Tensor], int, int], tf.data.Dataset]
  decode: Optional[Callable] = None
  num_shards: int = 1
  index: int = 0
  shuffle_buffer: Optional[int] = None
  unit: str = "example"
  decoded_as: Optional[tf.data.Dataset] = dataclasses.field(default=None, compare=False,
                                                            repr=False)

  @classmethod
  def of_dataset(cls, dataset: tf.data.Dataset) -> "Encoded":
    """Decoded (image, label) examples as they are, dealt out to shards example by example."""
    return cls(read=lambda seed, n, i: dataset.shard(n, i) if n > 1 else dataset)

  def records(self, seed: Optional[tf.Tensor] = None) -> tf.data.Dataset:
    """This shard's records (file order shuffled by `seed` where there are files)."""
    return self.read(seed, self.num_shards, self.index)

  def shard(self, num_shards: int, index: int) -> "Encoded":
    """Shard `index` of `num_shards` of these (unsharded) records, before any decoding."""
    if num_shards < 1 or not 0 <= index < num_shards:
      raise ValueError(f"shard {index} of {num_shards}")
    if self.num_shards != 1:
      raise ValueError("these records are a shard already")
    return dataclasses.replace(self, num_shards=num_shards, index=index,
                               shuffle_buffer=None if self.shuffle_buffer is None
                               else max(1, -(-self.shuffle_buffer // num_shards)))

  def map(self, fn: Callable) -> "Encoded":
    """`fn(image, label) -> (image, label)` applied after decoding."""
    if self.decode is None:
      read = self.read
      return dataclasses.replace(self, decoded_as=None, read=lambda seed, n, i: read(
          seed, n, i).map(fn, num_parallel_calls=AUTOTUNE))
    decode = self.decode
    return dataclasses.replace(self, decoded_as=None, decode=lambda *r: fn(*decode(*r)))

  def decoded(self, seed: Optional[tf.Tensor] = None) -> tf.data.Dataset:
    """This shard's (image, label) examples in record order."""
    ds = self.records(seed)
    return ds if self.decode is None else ds.map(self.decode, num_parallel_calls=AUTOTUNE)

  def __len__(self) -> int:
    """How many records this shard holds (from tf.data's cardinality, else counted)."""
    n = int(self.records().cardinality())
    if n < 0:
      n = int(self.records().reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    return n


@dataclasses.dataclass(frozen=True)
class Examples:
  """One split: uint8 NHWC images `x` (or file paths that `decode` reads) with int64 labels `y`,
  or else a streamed tf.data `dataset` of `stream_size` (image, label) pairs, or of encoded
  records that `decode` turns into (image, label). A stream with a `reader` can also be read
  file by file in shuffled order (see `Reader`); `keep` marks the examples of the stream's
  stored order that this subset holds (None: all)."""
  x: Optional[np.ndarray] = None
  y: Optional[np.ndarray] = None
  decode: Optional[Callable] = None
  dataset: Optional[tf.data.Dataset] = None
  stream_size: int = 0
  reader: Optional[Reader] = None
  keep: Optional[np.ndarray] = None

  @classmethod
  def from_arrays(cls, images, labels, what: str = "images") -> "Examples":
    """Validated in-memory examples; [N, H, W] images get a channel axis."""
    images, labels = check_images(images, what), check_labels(labels, what)
    if len(labels) != len(images):
      raise ValueError(f"{what}: {len(images)} images but {len(labels)} labels")
    return cls(x=images, y=labels)

  @classmethod
  def from_files(cls, paths: Sequence[str], labels, decode: Callable) -> "Examples":
    """Examples decoded lazily in tf.data: `decode(path, label) -> (image, label)`."""
    return cls(x=np.asarray(paths, dtype=str), y=check_labels(labels, "labels"),
               decode=decode)

  @classmethod
  def from_dataset(cls, dataset: tf.data.Dataset, size: int, decode: Optional[Callable] = None,
                   reader: Optional[Reader] = None) -> "Examples":
    """A streamed split of known size (too big for memory, or of varying image size): decoded
    (image, label) pairs, or encoded records that `decode` turns into them; `reader` reads the
    same records file by file (its stored order is `dataset`'s)."""
    return cls(dataset=dataset, stream_size=int(size), decode=decode, reader=reader)

  @property
  def in_memory(self) -> bool:
    """True when the pixels themselves are numpy arrays (so statistics are cheap)."""
    return self.x is not None and self.decode is None

  def __len__(self) -> int:
    return len(self.y) if self.y is not None else self.stream_size

  def subset(self, indices: np.ndarray) -> "Examples":
    """The examples at `indices` (sorted), in their current order."""
    indices = np.asarray(indices, dtype=np.int64)
    if self.y is not None:
      return dataclasses.replace(self, x=self.x[indices], y=self.y[indices])
    if np.array_equal(indices, np.arange(len(self))):
      return self  # all of them (validation_size=0): no filter to run
    mine = np.flatnonzero(self.keep) if self.keep is not None else None
    stored = np.zeros(self.stream_size if mine is None else len(self.keep), dtype=bool)
    stored[indices if mine is None else mine[indices]] = True
    if not len(indices):
      return dataclasses.replace(self, dataset=self.dataset.take(0), stream_size=0, keep=stored)
    keep = np.zeros(len(self), dtype=bool)
    keep[indices] = True
    keep = tf.constant(keep)
    ds = (self.dataset.enumerate().filter(lambda i, ex: tf.gather(keep, i))
          .map(lambda i, ex: ex)
          .apply(tf.data.experimental.assert_cardinality(len(indices))))
    return dataclasses.replace(self, dataset=ds, stream_size=len(indices),
                               keep=None if stored.all() else stored)

  def to_dataset(self) -> tf.data.Dataset:
    """Unbatched (image uint8 [H, W, C], label int64) pairs."""
    ds = self.dataset if self.y is None else tf.data.Dataset.from_tensor_slices((self.x, self.y))
    return ds.map(self.decode, num_parallel_calls=AUTOTUNE) if self.decode else ds

  def to_encoded(self) -> Optional[Encoded]:
    """These examples before decoding (None when there is nothing to decode): file paths
    (shuffled completely: the buffer holds every name), or a stream's encoded records, read file
    by file when the stream has a `reader`."""
    if self.decode is None:
      return None
    if self.y is not None:
      paths = tf.data.Dataset.from_tensor_slices((self.x, self.y))
      return Encoded(read=lambda seed, n, i: paths.shard(n, i) if n > 1 else paths,
                     decode=self.decode, shuffle_buffer=max(1, len(self.y)), unit="file name")
    if self.reader is not None:
      reader, keep = self.reader, self.keep
      return Encoded(read=lambda seed, n, i: reader(seed, n, i, keep), decode=self.decode,
                     unit="encoded example")
    stream = self.dataset
    return Encoded(read=lambda seed, n, i: stream.shard(n, i) if n > 1 else stream,
                   decode=self.decode, unit="encoded example")


@dataclasses.dataclass(frozen=True)
class Source:
  """A loader's full train and test sets; `image_shape` may hold None where sizes vary."""
  train: Examples
  test: Examples
  num_classes: int
  image_shape: Tuple[Optional[int], Optional[int], int]
  name: str


def check_images(images, what: str = "images") -> np.ndarray:
  """uint8 [N, H, W, C] (C in 1..4) from NHWC or NHW input; anything else is a ValueError."""
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or not 1 <= images.shape[-1] <= 4:
    hint = ""
    if images.ndim == 4 and images.shape[1] in (1, 3, 4):
      hint = " (looks channel-first; transpose to [N, H, W, C])"
    raise ValueError(f"{what}: expected images of shape [N, H, W, C] with C in 1..4, or "
                     f"[N, H, W], got shape {images.shape}{hint}")
  if images.dtype != np.uint8:
    if not np.issubdtype(images.dtype, np.integer):
      raise ValueError(f"{what}: expected uint8 pixels in 0..255, got dtype {images.dtype} "
                       "(scale to 0..255 and cast first)")
    if images.size and (images.min() < 0 or images.max() > 255):
      raise ValueError(f"{what}: pixel values outside 0..255 "
                       f"(min {images.min()}, max {images.max()})")
    images = images.astype(np.uint8)
  return images


def check_labels(labels, what: str = "labels") -> np.ndarray:
  """1-D non-negative int64 labels."""
  labels = np.asarray(labels)
  if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
    raise ValueError(f"{what}: expected a 1-D array of integer labels, got shape {labels.shape} "
                     f"dtype {labels.dtype}")
  if labels.size and labels.min() < 0:
    raise ValueError(f"{what}: negative label {labels.min()}")
  return labels.astype(np.int64)


def channel_stats(images: np.ndarray, chunk: int = 4096) -> Tuple[Tuple[float, ...], ...]:
  """Per-channel mean and std of uint8 images in [0, 1] units, in chunks (no float copy)."""
  channels = images.shape[-1]
  total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
  for start in range(0, len(images), chunk):
    block = images[start:start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
    total += block.sum(0)
    total_sq += np.square(block).sum(0)
    count += len(block)
  if not count:
    raise ValueError("cannot compute mean/std of an empty training set")
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
  return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def resize_uint8(image: tf.Tensor, size: Tuple[int, int]) -> tf.Tensor:
  """Resizes one uint8 [H, W, C] image (bilinear, antialiased) and rounds back to uint8."""
  out = tf.image.resize(image, size, antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 255.0)), tf.uint8)
