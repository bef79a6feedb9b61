"""Batching, normalization and augmentation (pad-and-crop, flip, cutout) for tf.data.

Augmentation runs on whole batches (one gather per axis, one mask for cutout) rather than per
image: far fewer ops per example, which is what matters on a CPU. Randomness is stateless and
seeded per batch, so a pipeline replays exactly given its seed.

Resumable training (`make_batches(..., start_batch=k)`, `training_stream`): an endless stream of
passes over the training set where pass p is shuffled and augmented with seeds drawn from
(seed, p) and each batch's index within the pass, instead of tf.data's reshuffle on every
iteration (whose sequence of orders restarts at the first one in a new process). The stream can
therefore start at any batch k and give exactly the batches an uninterrupted run sees from k on;
the batches of pass k // per_pass before k are skipped before any augmentation runs.

Encoded input (`source.Encoded`, from `DataSplits.training_input()`: file names, or tfds records
with their image bytes undecoded): the pipeline shuffles the records (their files first, where
the source has files, with a third seed drawn from (seed, pass)), skips, and only then decodes,
so the shuffle buffer holds names or compressed bytes and skipped examples are never decoded.
Sharding across input pipelines happens before, on the records (`Encoded.shard`). Arrays in
memory (decode None) take the pipeline they always took.
"""

import contextlib
from typing import Callable, Optional, Sequence, Tuple

import gin
import tensorflow as tf

from nasnet_rl.data import source as source_lib

AUTOTUNE = tf.data.AUTOTUNE


def normalize(images: tf.Tensor, mean: Optional[Sequence[float]] = None,
              std: Optional[Sequence[float]] = None) -> tf.Tensor:
  """Pixels in 0..255 -> float32 (x / 255 - mean) / std (just x / 255 without mean/std)."""
  x = tf.cast(images, tf.float32) / 255.0
  if mean is not None:
    x = x - tf.constant(mean, tf.float32)
  if std is not None:
    x = x / tf.constant(std, tf.float32)
  return x


def _draws(shape_fn, rows: Optional[Tuple[int, int]], b):
  """Random draws for a batch of `b` rows: `shape_fn(n)` draws n; with `rows` = (first, total)
  the batch is rows first .. first + b - 1 of a batch of `total` and gets exactly those rows'
  draws (a worker's slice of a global batch is augmented as one process augments it)."""
  if rows is None:
    return shape_fn(b)
  first, total = rows
  return shape_fn(total)[first:first + b]


def random_crop_flip(images: tf.Tensor, seed: tf.Tensor, pad: int = 4,
                     flip: bool = True, rows: Optional[Tuple[int, int]] = None) -> tf.Tensor:
  """Zero-pads a [B, H, W, C] batch by `pad`, crops each image back to H x W at a random offset
  and mirrors half of them left-right; `seed` is a stateless seed of shape [2]; `rows`: see
  `_draws`."""
  shape = tf.shape(images)
  b, h, w = shape[0], shape[1], shape[2]
  seed_y, seed_x, seed_f = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) if pad else images
  offsets = lambda s: lambda n: tf.random.stateless_uniform([n], s, 0, 2 * pad + 1,
                                                            dtype=tf.int32)
  off_y = _draws(offsets(seed_y), rows, b)
  off_x = _draws(offsets(seed_x), rows, b)
  rows_ = off_y[:, None] + tf.range(h)[None, :]
  cols = tf.broadcast_to(tf.range(w)[None, :], [b, w])
  if flip:
    mirror = _draws(lambda n: tf.random.stateless_uniform([n], seed_f), rows, b) < 0.5
    cols = tf.where(mirror[:, None], w - 1 - cols, cols)
  cols = off_x[:, None] + cols
  out = tf.gather(padded, rows_, axis=1, batch_dims=1)
  out = tf.gather(out, cols, axis=2, batch_dims=1)
  return tf.ensure_shape(out, images.shape)


def cutout(images: tf.Tensor, size: int, seed: tf.Tensor,
           rows: Optional[Tuple[int, int]] = None) -> tf.Tensor:
  """Zeroes one size x size square per image (all channels) centred uniformly at random and
  clipped at the border (DeVries & Taylor 2017); `seed` is a stateless seed of shape [2];
  `rows`: see `_draws`."""
  shape = tf.shape(images)
  b, h, w = shape[0], shape[1], shape[2]
  seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  top = _draws(lambda n: tf.random.stateless_uniform([n], seed_y, 0, h, dtype=tf.int32),
               rows, b) - size // 2
  left = _draws(lambda n: tf.random.stateless_uniform([n], seed_x, 0, w, dtype=tf.int32),
                rows, b) - size // 2
  ys, xs = tf.range(h)[None, :], tf.range(w)[None, :]
  in_y = (ys >= top[:, None]) & (ys < top[:, None] + size)
  in_x = (xs >= left[:, None]) & (xs < left[:, None] + size)
  keep = tf.logical_not(in_y[:, :, None] & in_x[:, None, :])
  return images * tf.cast(keep, images.dtype)[..., None]


_cutout = cutout  # make_batches' `cutout` argument shadows the function


NO_END = 2**62  # "forever" for Dataset.range


def pass_seeds(seed: int, pass_index) -> Tuple[tf.Tensor, tf.Tensor]:
  """(shuffle seed, augmentation seed) of pass `pass_index` (an int or an int64 scalar tensor):
  two int64 scalars drawn statelessly from (seed, pass_index)."""
  key = tf.stack([tf.constant(seed, tf.int64), tf.cast(pass_index, tf.int64)])
  both = tf.random.stateless_uniform([2], seed=key, minval=None, maxval=None, dtype=tf.int64)
  return both[0], both[1]


def file_seed(shuffle_seed: tf.Tensor, aug_seed: tf.Tensor) -> tf.Tensor:
  """The int64 seed that orders a pass's files, drawn from its two `pass_seeds`."""
  key = tf.stack([tf.cast(shuffle_seed, tf.int64), tf.cast(aug_seed, tf.int64)])
  return tf.random.stateless_uniform([], seed=key, minval=None, maxval=None, dtype=tf.int64)


def as_encoded(dataset) -> Optional[source_lib.Encoded]:
  """`dataset` when it is encoded records to decode in the pipeline, else None."""
  if isinstance(dataset, source_lib.Encoded) and dataset.decode is not None:
    return dataset
  return None


def as_dataset(dataset) -> tf.data.Dataset:
  """A tf.data.Dataset of examples: `dataset` itself, or an `Encoded`'s records decoded."""
  return dataset.decoded() if isinstance(dataset, source_lib.Encoded) else dataset


def shuffle_buffer_for(enc: source_lib.Encoded, size: int, shuffle_buffer: int) -> int:
  """The records' own buffer (every file name) or `shuffle_buffer`, at most `size`."""
  buffer = enc.shuffle_buffer or shuffle_buffer
  return max(1, min(size, buffer)) if size > 0 else buffer


def shuffled_records(enc: source_lib.Encoded, seed: int, pass_index, buffer: int):
  """(pass `pass_index`'s encoded records in shuffled order, its augmentation seed): the files
  ordered by `file_seed`, then the records by the pass's shuffle seed; nothing decoded. Call it
  inside `training_stream`'s pass function."""
  shuffle_seed, aug_seed = pass_seeds(seed, pass_index)
  with no_graph_seed():
    records = enc.records(file_seed(shuffle_seed, aug_seed))
    ds = records.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
  return ds, aug_seed


def num_examples(dataset: tf.data.Dataset) -> int:
  """The dataset's length: its cardinality, or a count when tf.data does not know it."""
  n = int(dataset.cardinality())
  if n == tf.data.INFINITE_CARDINALITY:
    raise ValueError("the training set is infinite: a pass over it never ends")
  if n < 0:
    n = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
  return n


def training_stream(make_pass: Callable[[tf.Tensor, tf.Tensor], tf.data.Dataset],
                    batches_per_pass: int, start_batch: int = 0) -> tf.data.Dataset:
  """Batches `start_batch`, `start_batch` + 1, ... of the endless stream pass 0, pass 1, ...,
  where `make_pass(pass_index, skip)` gives pass `pass_index` from its batch `skip` on (both
  int64 scalar tensors: every pass, the first one too, is built inside tf.data's flat_map, so
  that a pass is the same graph whichever batch the stream starts at) and each pass holds
  `batches_per_pass` batches."""
  if batches_per_pass < 1:
    raise ValueError(f"a pass over the training set holds {batches_per_pass} batches")
  if start_batch < 0:
    raise ValueError(f"start_batch must be >= 0, got {start_batch}")
  first, skip = divmod(int(start_batch), batches_per_pass)
  return tf.data.Dataset.range(first, NO_END).flat_map(
      lambda p: make_pass(p, tf.where(tf.equal(p, first), tf.constant(skip, tf.int64),
                                      tf.constant(0, tf.int64))))


@contextlib.contextmanager
def no_graph_seed():
  """Inside a tf.data function graph, makes a tensor op seed work whatever the global seed:
  TF's random_seed.get_seed evaluates `(global, op) == (0, 0)` in Python, which fails on a
  symbolic op seed when the global seed is 0 (`--seed=0`). Without a graph seed the pair is
  (DEFAULT_GRAPH_SEED, op seed), the same in every process."""
  graph = tf.compat.v1.get_default_graph()
  saved = graph.seed
  graph.seed = None
  try:
    yield
  finally:
    graph.seed = saved


def check_slices(batch_size: int, num_slices: int, slice_index: int,
                 start_batch: Optional[int]) -> Tuple[int, Optional[Tuple[int, int]]]:
  """(local batch, rows of the global batch this slice holds or None) for `make_batches`."""
  if not isinstance(num_slices, int) or num_slices < 1 or not 0 <= slice_index < num_slices:
    raise ValueError(f"slice {slice_index} of {num_slices} is not a slice")
  if num_slices == 1:
    return batch_size, None
  if start_batch is None or batch_size % num_slices:
    raise ValueError(f"slices of a global batch need the resumable stream (start_batch) and a "
                     f"global batch ({batch_size}) that splits into {num_slices}")
  local = batch_size // num_slices
  return local, (slice_index * local, batch_size)


def own_slice(records: tf.data.Dataset, batch_size: int, num_slices: int,
              slice_index: int) -> tf.data.Dataset:
  """The records of slice `slice_index` of each run of `batch_size` records (the dataset starts
  at a global batch boundary), nothing decoded; all of them for one slice."""
  if num_slices == 1:
    return records
  local = batch_size // num_slices
  mine = lambda k, _: tf.equal(k % batch_size // local, slice_index)
  return records.enumerate().filter(mine).map(lambda _, r: r)


@gin.configurable
def make_batches(dataset: tf.data.Dataset, batch_size: int = 64, training: bool = False,
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 augment: bool = True, cutout: int = 0, seed: int = 0, pad: int = 4,
                 flip: bool = True, shuffle_buffer: int = 50000,
                 start_batch: Optional[int] = None, num_slices: int = 1,
                 slice_index: int = 0) -> tf.data.Dataset:
  """Batched (float32 normalized images, int64 labels), prefetched.

  training=True: seeded shuffle, whole batches only (drop_remainder), pad-and-crop plus flip when
  `augment`, then cutout of `cutout` pixels (after normalization, so the square reads 0). The
  dataset reshuffles on every iteration (tf.data's seeded sequence of orders); with
  `start_batch` it is instead the endless resumable stream of passes (`training_stream`) from
  that batch on, each pass's order and augmentation a function of (seed, pass, batch index).
  training=False: dataset order, no augmentation, the last partial batch kept.
  `dataset` may be a `source.Encoded` (`DataSplits.training_input()`): training then shuffles
  its records (file names, encoded examples) and decodes after the shuffle and the skip.
  `num_slices` > 1 (with `start_batch`): `batch_size` is the global batch, and the stream holds
  slice `slice_index` of each global batch, exactly as one process would cut it (only that
  slice's records are decoded): each worker of a cluster reads its part of the same global
  batch.
  """
  for arg, value, low in (("batch_size", batch_size, 1), ("cutout", cutout, 0), ("pad", pad, 0)):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
      raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
  labels = lambda y: tf.cast(y, tf.int64)
  enc = as_encoded(dataset) if training else None
  if enc is None:
    dataset = as_dataset(dataset)
  if not training:
    ds = dataset.batch(batch_size).map(lambda x, y: (normalize(x, mean, std), labels(y)),
                                       num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)

  size = len(enc) if enc is not None else int(dataset.cardinality())
  if 0 <= size < batch_size:
    raise ValueError(f"training set has {size} examples, fewer than batch_size={batch_size} "
                     "(training drops partial batches)")
  buffer = max(1, min(size, shuffle_buffer)) if size > 0 else shuffle_buffer
  local, rows = check_slices(batch_size, num_slices, slice_index, start_batch)

  def transform(batch, batch_seed):
    x, y = batch
    seed_aug, seed_cut = tf.unstack(tf.random.experimental.stateless_split(batch_seed, 2))
    x = tf.cast(x, tf.float32)
    if augment:
      x = random_crop_flip(x, seed_aug, pad=pad, flip=flip, rows=rows)
    x = normalize(x, mean, std)
    if cutout:
      x = _cutout(x, cutout, seed_cut, rows=rows)
    return x, labels(y)

  if enc is not None:
    buffer = shuffle_buffer_for(enc, size, shuffle_buffer)
  if enc is not None and start_batch is not None:
    def one_encoded_pass(pass_index, skip):
      ds, aug_seed = shuffled_records(enc, seed, pass_index, buffer)
      ds = ds.take(size // batch_size * batch_size).skip(skip * batch_size)
      ds = own_slice(ds, batch_size, num_slices, slice_index)
      ds = ds.map(enc.decode, num_parallel_calls=AUTOTUNE).batch(local, drop_remainder=True)
      seeds = tf.data.Dataset.range(skip, NO_END).map(lambda i: tf.stack([aug_seed, i]))
      return tf.data.Dataset.zip(ds, seeds).map(transform, num_parallel_calls=AUTOTUNE)
    return training_stream(one_encoded_pass, size // batch_size, start_batch).prefetch(AUTOTUNE)

  if start_batch is not None:
    def one_pass(pass_index, skip):
      shuffle_seed, aug_seed = pass_seeds(seed, pass_index)
      with no_graph_seed():
        ds = dataset.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
      ds = ds.batch(batch_size, drop_remainder=True).skip(skip)
      if num_slices > 1:
        ds = ds.map(lambda x, y: (x[rows[0]:rows[0] + local], y[rows[0]:rows[0] + local]))
      seeds = tf.data.Dataset.range(skip, NO_END).map(lambda i: tf.stack([aug_seed, i]))
      return tf.data.Dataset.zip(ds, seeds).map(transform, num_parallel_calls=AUTOTUNE)
    per_pass = (size if size >= 0 else num_examples(dataset)) // batch_size
    return training_stream(one_pass, per_pass, start_batch).prefetch(AUTOTUNE)

  if enc is not None:  # shuffle the records, decode after
    ds = enc.records(tf.constant(seed, tf.int64)).shuffle(buffer, seed=seed,
                                                          reshuffle_each_iteration=True)
    ds = ds.map(enc.decode, num_parallel_calls=AUTOTUNE)
  else:
    ds = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=True)
  seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
  ds = tf.data.Dataset.zip(ds, seeds).map(transform, num_parallel_calls=AUTOTUNE)
  return ds.prefetch(AUTOTUNE)
