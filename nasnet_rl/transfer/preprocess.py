"""Input pipelines for transfer training, chosen by recipe:

* "cifar": the standalone trainer's pipeline (pad-4 random crop, flip, optional cutout,
  per-channel mean/std of the training set), after resizing to the network's input size.
* "imagenet": Inception-style (TF-slim `inception_preprocessing.py`): training takes a random
  crop covering 5-100% of the image with aspect ratio 3/4-4/3 (`distorted_bounding_box_crop`
  defaults: area_range=(0.05, 1.0), aspect_ratio_range=(0.75, 1.33), min_object_covered=0.1),
  resizes it to the input size and flips half the images; evaluation takes the central 87.5%
  (`central_fraction=0.875`) and resizes it. Pixels map to [-1, 1] (slim's `(x - 0.5) * 2`,
  Keras applications nasnet `preprocess_input`, mode "tf"). slim's colour distortion is left out.

Randomness is stateless and seeded per example, so a pipeline replays exactly given its seed.
With `start_batch` the training pipeline is the resumable stream of passes (see
`nasnet_rl.data.augment.training_stream`) from that batch on.

Both take a tf.data.Dataset of (uint8 image, label) or a `data.Encoded` training input
(`DataSplits.training_input()`): the records (image file names, tfds examples with their image
bytes) are sharded, shuffled (files first, then records) and skipped before `decode` runs, so
each example is decoded and cropped once, by the pipeline that uses it.
"""

from typing import Optional, Sequence, Tuple

import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl.data import augment as augment_lib
from nasnet_rl.data import source as data_source

AUTOTUNE = tf.data.AUTOTUNE
STYLES = ("cifar", "imagenet")
IMAGENET_MEAN, IMAGENET_STD = 0.5, 0.5  # [0, 1] -> [-1, 1]


def random_resized_crop(image: tf.Tensor, size: Tuple[int, int], seed: tf.Tensor,
                        area_range: Sequence[float] = (0.05, 1.0),
                        aspect_ratio_range: Sequence[float] = (0.75, 1.33),
                        min_object_covered: float = 0.1, flip: bool = True) -> tf.Tensor:
  """A random crop of one [H, W, C] image resized to `size` (float32 0..255), maybe mirrored."""
  seed_box, seed_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  shape = tf.shape(image)
  whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
  begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=whole, seed=seed_box, min_object_covered=min_object_covered,
      aspect_ratio_range=aspect_ratio_range, area_range=area_range, max_attempts=100,
      use_image_if_no_bounding_boxes=True)
  crop = tf.slice(image, begin, box_size)
  out = tf.image.resize(tf.cast(crop, tf.float32), size)
  if flip:
    out = tf.image.stateless_random_flip_left_right(out, seed_flip)
  return tf.ensure_shape(out, (size[0], size[1], image.shape[-1]))


def center_crop(image: tf.Tensor, size: Tuple[int, int],
                central_fraction: float = 0.875) -> tf.Tensor:
  """The central `central_fraction` of one image resized to `size` (float32 0..255)."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  ch = tf.maximum(1, tf.cast(tf.round(tf.cast(h, tf.float32) * central_fraction), tf.int32))
  cw = tf.maximum(1, tf.cast(tf.round(tf.cast(w, tf.float32) * central_fraction), tf.int32))
  crop = tf.image.crop_to_bounding_box(image, (h - ch) // 2, (w - cw) // 2, ch, cw)
  out = tf.image.resize(tf.cast(crop, tf.float32), size)
  return tf.ensure_shape(out, (size[0], size[1], image.shape[-1]))


def imagenet_batches(dataset: tf.data.Dataset, batch_size: int, training: bool,
                     size: Tuple[int, int], seed: int = 0, central_fraction: float = 0.875,
                     area_range: Sequence[float] = (0.05, 1.0), augment: bool = True,
                     shuffle_buffer: int = 10000, start_batch: Optional[int] = None,
                     num_slices: int = 1, slice_index: int = 0) -> tf.data.Dataset:
  """Batched (float32 images in [-1, 1], int64 labels) with Inception-style crops (training
  without `augment`: shuffled, whole batches, central crops). Training reshuffles on every
  iteration, or with `start_batch` is the resumable stream of passes from that batch on (pass p
  shuffled and cropped with seeds drawn from (seed, p) and each example's index in the pass).
  `dataset` may be a `data.Encoded`: training shuffles its records and decodes each one only
  after the shuffle and the skip, in the map that crops it. `num_slices` / `slice_index`: this
  worker's slice of each global batch `batch_size` (as in `data.augment.make_batches`)."""
  def finish(x, y):
    return data_lib.normalize(x, IMAGENET_MEAN, IMAGENET_STD), tf.cast(y, tf.int64)

  enc = augment_lib.as_encoded(dataset) if training else None
  if enc is None:
    dataset = augment_lib.as_dataset(dataset)
  if not training:
    ds = dataset.map(lambda x, y: (center_crop(x, size, central_fraction), y),
                     num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size).map(finish, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
  n = len(enc) if enc is not None else int(dataset.cardinality())
  if 0 <= n < batch_size:
    raise ValueError(f"training set has {n} examples, fewer than batch_size={batch_size}")
  buffer = max(1, min(n, shuffle_buffer)) if n > 0 else shuffle_buffer
  local, _ = augment_lib.check_slices(batch_size, num_slices, slice_index, start_batch)
  crop = (lambda x, s: random_resized_crop(x, size, s, area_range=area_range)) if augment else (
      lambda x, s: center_crop(x, size, central_fraction))
  if enc is not None:
    buffer = augment_lib.shuffle_buffer_for(enc, n, shuffle_buffer)

    def decode_crop(record, s):
      image, label = enc.decode(*record)
      return crop(image, s), label
  if enc is not None and start_batch is not None:
    def one_encoded_pass(pass_index, skip):
      ds, crop_seed = augment_lib.shuffled_records(enc, seed, pass_index, buffer)
      first = skip * batch_size  # records skipped before any decode or crop runs
      seeds = tf.data.Dataset.range(first, augment_lib.NO_END).map(
          lambda i: tf.stack([crop_seed, i]))
      ds = tf.data.Dataset.zip(ds.take(n // batch_size * batch_size).skip(first), seeds)
      ds = augment_lib.own_slice(ds, batch_size, num_slices, slice_index)
      ds = ds.map(decode_crop, num_parallel_calls=AUTOTUNE)
      return ds.batch(local, drop_remainder=True).map(finish, num_parallel_calls=AUTOTUNE)
    return augment_lib.training_stream(one_encoded_pass, n // batch_size,
                                       start_batch).prefetch(AUTOTUNE)
  if start_batch is not None:
    def one_pass(pass_index, skip):
      shuffle_seed, crop_seed = augment_lib.pass_seeds(seed, pass_index)
      with augment_lib.no_graph_seed():
        ds = dataset.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
      first = skip * batch_size  # examples skipped before any crop runs
      seeds = tf.data.Dataset.range(first, augment_lib.NO_END).map(
          lambda i: tf.stack([crop_seed, i]))
      per_pass_records = per_pass * batch_size
      ds = tf.data.Dataset.zip(ds.take(per_pass_records).skip(first), seeds)
      ds = augment_lib.own_slice(ds, batch_size, num_slices, slice_index).map(
          lambda ex, s: (crop(ex[0], s), ex[1]), num_parallel_calls=AUTOTUNE)
      return ds.batch(local, drop_remainder=True).map(finish, num_parallel_calls=AUTOTUNE)
    per_pass = (n if n >= 0 else augment_lib.num_examples(dataset)) // batch_size
    return augment_lib.training_stream(one_pass, per_pass, start_batch).prefetch(AUTOTUNE)
  seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
  if enc is not None:  # shuffle the records, decode after
    ds = enc.records(tf.constant(seed, tf.int64)).shuffle(buffer, seed=seed,
                                                          reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds).map(decode_crop, num_parallel_calls=AUTOTUNE)
  else:
    ds = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds).map(lambda ex, s: (crop(ex[0], s), ex[1]),
                                            num_parallel_calls=AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=True).map(finish, num_parallel_calls=AUTOTUNE)
  return ds.prefetch(AUTOTUNE)


def make_pipeline(style: str, dataset: tf.data.Dataset, batch_size: int, training: bool,
                  size: Tuple[int, int], mean, std, seed: int = 0, cutout: int = 0,
                  augment: bool = True, start_batch: Optional[int] = None,
                  num_slices: int = 1, slice_index: int = 0) -> tf.data.Dataset:
  """Batches of `dataset` (a tf.data.Dataset, or a `data.Encoded` training input decoded after
  its shuffle) for a network with (H, W) input `size`, in the named style (training with
  `start_batch`: the resumable stream of passes from that batch on; `num_slices` /
  `slice_index`: a worker's slice of each global batch)."""
  if style == "imagenet":
    if cutout:
      raise ValueError("cutout belongs to the 'cifar' preprocessing style")
    return imagenet_batches(dataset, batch_size, training, size, seed=seed, augment=augment,
                            start_batch=start_batch, num_slices=num_slices,
                            slice_index=slice_index)
  if style != "cifar":
    raise ValueError(f"unknown preprocessing {style!r}; known: {list(STYLES)}")
  if isinstance(dataset, data_source.Encoded) and (dataset.decode is None or not training):
    dataset = dataset.decoded()
  if isinstance(dataset, data_source.Encoded):  # resized after decoding, where it must be
    dataset = dataset.map(lambda x, y: (x if tuple(x.shape[:2]) == tuple(size)
                                        else data_source.resize_uint8(x, size), y))
  elif tuple(dataset.element_spec[0].shape[:2]) != tuple(size):
    dataset = dataset.map(lambda x, y: (data_source.resize_uint8(x, size), y),
                          num_parallel_calls=AUTOTUNE)
  return data_lib.make_batches(dataset, batch_size=batch_size, training=training, mean=mean,
                               std=std, augment=augment, cutout=cutout, seed=seed,
                               start_batch=start_batch if training else None,
                               num_slices=num_slices, slice_index=slice_index)
