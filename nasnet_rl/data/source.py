"""What a loader returns: its full train and test `Examples` plus metadata (a `Source`).

`load_dataset` (splits.py) turns a Source into `DataSplits`; the checks here run on plain numpy
before any TF op, so bad input is one clear ValueError rather than a TF traceback.
"""

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


class DatasetNotFoundError(ValueError):
  """The data is not where we looked; the message names the place and how to get the data."""


@dataclasses.dataclass(frozen=True)
class Examples:
  """One split: uint8 NHWC images `x` (or file paths that `decode` reads) with int64 labels `y`,
  or else a streamed tf.data `dataset` of `stream_size` (image, label) pairs."""
  x: Optional[np.ndarray] = None
  y: Optional[np.ndarray] = None
  decode: Optional[Callable] = None
  dataset: Optional[tf.data.Dataset] = None
  stream_size: int = 0

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
  def from_dataset(cls, dataset: tf.data.Dataset, size: int) -> "Examples":
    """A streamed split of known size (too big for memory, or of varying image size)."""
    return cls(dataset=dataset, stream_size=int(size))

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
    if not len(indices):
      return Examples.from_dataset(self.dataset.take(0), 0)
    keep = np.zeros(len(self), dtype=bool)
    keep[indices] = True
    keep = tf.constant(keep)
    ds = (self.dataset.enumerate().filter(lambda i, ex: tf.gather(keep, i))
          .map(lambda i, ex: ex)
          .apply(tf.data.experimental.assert_cardinality(len(indices))))
    return Examples.from_dataset(ds, len(indices))

  def to_dataset(self) -> tf.data.Dataset:
    """Unbatched (image uint8 [H, W, C], label int64) pairs."""
    if self.y is None:
      return self.dataset
    ds = tf.data.Dataset.from_tensor_slices((self.x, self.y))
    return ds.map(self.decode, num_parallel_calls=AUTOTUNE) if self.decode else ds


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
