"""`load_dataset`: a registered loader's train/test sets plus the NAS proxy split.

The proxy split holds `validation_size` examples out of the TRAIN set (a permutation seeded by
`seed`) to score architectures on; the test set is never touched, so search never sees it.
"""

import dataclasses
import inspect
from typing import Dict, Optional, Sequence, Tuple, Union

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl.data import registry
from nasnet_rl.data import source as source_lib

DEFAULT_MEAN, DEFAULT_STD = 0.5, 0.25  # when pixels are not in memory to measure


@dataclasses.dataclass(frozen=True)
class DataSplits:
  """Unbatched (image uint8 [H, W, C], label int64) datasets plus what a model needs to know.

  image_shape is (None, None, C) when the images vary in size (ImageNet): pipelines that crop
  each example to the network's input (transfer's 'imagenet' style) take them as they are;
  code that needs one size calls `fixed_image_shape()`.

  train_encoded: the training set before decoding (file names or encoded records, see
  `source.Encoded`) when its images are not in memory; training pipelines take it from
  `training_input()` so that they shard and shuffle records and decode after."""
  train: tf.data.Dataset
  validation: tf.data.Dataset
  test: tf.data.Dataset
  num_classes: int
  image_shape: Tuple[Optional[int], Optional[int], int]
  sizes: Dict[str, int]
  mean: Tuple[float, ...]
  std: Tuple[float, ...]
  name: str
  train_encoded: Optional[source_lib.Encoded] = dataclasses.field(default=None, repr=False)

  def training_input(self, num_shards: int = 1, index: int = 0) -> source_lib.Encoded:
    """Shard `index` of `num_shards` of the training set for `make_batches` /
    `transfer.preprocess.make_pipeline`: encoded records dealt out to the shards (whole files
    where the source has several) and decoded by the pipeline after it shuffles them. In-memory
    data, or a `train` replaced after loading (`dataclasses.replace(splits, train=...)`), is
    dealt out example by example as it is, and nothing is decoded."""
    enc = self.train_encoded
    if enc is None or enc.decoded_as is not self.train:
      enc = source_lib.Encoded.of_dataset(self.train)
    return enc.shard(num_shards, index) if num_shards > 1 else enc

  def fixed_image_shape(self) -> Tuple[int, int, int]:
    """(H, W, C); a clear error when the images vary in size."""
    if None in self.image_shape:
      raise ValueError(f"images of dataset {self.name!r} vary in size; pass "
                       "load_dataset.image_size=(H, W) to resize them all")
    return tuple(int(d) for d in self.image_shape)


def proxy_split(num_examples: int, validation_size: int,
                seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """(train, validation) indices, each sorted: validation is the first `validation_size` of a
  permutation seeded by `seed`, so the same seed always gives the same split."""
  if (not isinstance(validation_size, (int, np.integer)) or isinstance(validation_size, bool)
      or not 0 <= validation_size < num_examples):
    raise ValueError(f"validation_size={validation_size!r} must be an int in "
                     f"[0, {num_examples}) ({num_examples} training examples)")
  perm = np.random.default_rng(seed).permutation(num_examples)
  return np.sort(perm[validation_size:]), np.sort(perm[:validation_size])


@gin.configurable
def load_dataset(name: str = "fashion_mnist", data_dir: Optional[str] = None,
                 validation_size: int = 5000, seed: int = 0,
                 image_size: Union[None, int, Sequence[int]] = None,
                 mean: Union[None, float, Sequence[float]] = None,
                 std: Union[None, float, Sequence[float]] = None,
                 **loader_kwargs) -> DataSplits:
  """Loads dataset `name` (see `registry.names()`) and carves the validation split.

  data_dir: where the data lives: tfds' data_dir, or a file loader's `path`. image_size: resize
  every image to (H, W). mean/std: per-channel (or scalar) overrides; by default measured on the
  train split when its pixels are in memory (at native size), else 0.5/0.25. loader_kwargs go to
  the loader.
  """
  loader = registry.get(name)
  size = _size(image_size)
  if not isinstance(validation_size, (int, np.integer)) or validation_size < 0:
    raise ValueError(f"validation_size must be a non-negative int, got {validation_size!r}")
  kwargs = _loader_kwargs(name, loader, data_dir, size, loader_kwargs)
  src = loader(**kwargs)
  train_idx, val_idx = proxy_split(len(src.train), validation_size, seed)
  train, val, test = src.train.subset(train_idx), src.train.subset(val_idx), src.test

  h, w, channels = src.image_shape
  datasets = [e.to_dataset() for e in (train, val, test)]
  encoded = train.to_encoded()
  if size and "image_size" not in kwargs and (h, w) != size:
    resize = lambda image, label: (source_lib.resize_uint8(image, size), label)
    datasets = [d.map(resize, num_parallel_calls=source_lib.AUTOTUNE) for d in datasets]
    encoded = encoded.map(resize) if encoded is not None else None
  if encoded is not None:
    encoded = dataclasses.replace(encoded, decoded_as=datasets[0])
  if size:
    h, w = size

  if (mean is None or std is None) and train.in_memory:
    mean_, std_ = source_lib.channel_stats(train.x)
  else:
    mean_, std_ = (DEFAULT_MEAN,) * channels, (DEFAULT_STD,) * channels
  mean_ = mean_ if mean is None else _per_channel(mean, channels, "mean")
  std_ = std_ if std is None else _per_channel(std, channels, "std")
  if min(std_) <= 0:
    raise ValueError(f"std must be positive, got {std_}")
  return DataSplits(train=datasets[0], validation=datasets[1], test=datasets[2],
                    num_classes=int(src.num_classes),
                    image_shape=(_dim(h), _dim(w), int(channels)),
                    sizes={"train": len(train), "validation": len(val), "test": len(test)},
                    mean=tuple(mean_), std=tuple(std_), name=src.name,
                    train_encoded=encoded)


def _loader_kwargs(name, loader, data_dir, size, given) -> dict:
  """Maps data_dir/image_size onto the loader's own parameters; unknown ones are a ValueError."""
  params = inspect.signature(loader).parameters
  kwargs = dict(given)
  if data_dir is not None:
    key = next((k for k in ("data_dir", "path") if k in params), None)
    if key is None:
      raise ValueError(f"dataset {name!r} reads no files, so data_dir={data_dir!r} means nothing")
    if key in kwargs:
      raise ValueError(f"dataset {name!r}: pass data_dir or {key}, not both")
    kwargs[key] = data_dir
  if size and "image_size" in params:
    kwargs["image_size"] = size
  if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
      known = [k for k, p in params.items()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
      raise ValueError(f"dataset {name!r} takes no argument(s) {unknown}; it takes {known} "
                       "(and load_dataset's own: data_dir, validation_size, seed, image_size, "
                       "mean, std)")
  return kwargs


def _dim(d) -> Optional[int]:
  return None if d is None else int(d)


def _size(image_size) -> Optional[Tuple[int, int]]:
  """None, an int (square) or (H, W) -> None or (H, W)."""
  if image_size is None:
    return None
  size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
  if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
    raise ValueError(f"image_size must be a positive int or (H, W), got {image_size!r}")
  return int(size[0]), int(size[1])


def _per_channel(value, channels: int, what: str) -> Tuple[float, ...]:
  """A scalar or a per-channel sequence -> a tuple of `channels` floats."""
  values = np.atleast_1d(np.asarray(value, dtype=np.float64))
  if values.ndim != 1 or len(values) not in (1, channels):
    raise ValueError(f"{what} must be a number or {channels} per-channel numbers, got {value!r}")
  return tuple(float(v) for v in np.broadcast_to(values, (channels,)))
