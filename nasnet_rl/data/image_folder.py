"""Images in class folders: root/<class>/*.png|jpg|jpeg|bmp|gif, or root/{train,test}/<class>/.

Class names sorted give the label ids. Only the file list is held in memory; images are decoded
in tf.data, and once at load time with the same decoder, so a damaged file fails before training. Without `image_size` all images must share one size (read from the file headers),
unless `varying_sizes=True` keeps each at its own (image_shape (None, None, C), for the
'imagenet' transfer preprocessing that crops every image on its own). Grey, RGB and RGBA files
mix freely: each is decoded to `channels`.

Training reads the file list (`DataSplits.training_input()`): the pipeline shards and shuffles
file names (all of them, a complete permutation per pass) and reads and decodes each file only
after that.
"""

import os
from typing import List, Optional, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl.data import registry
from nasnet_rl.data import source

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_LAYOUT = ("expected root/<class>/<image> (or root/train/<class>/... and root/test/<class>/...) "
           f"with images ending in {', '.join(EXTENSIONS)}")


def _class_dirs(folder: str) -> List[str]:
  names = sorted(d for d in os.listdir(folder)
                 if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))
  if not names:
    raise source.DatasetNotFoundError(f"no class folders in {folder!r}; {_LAYOUT}")
  return names


def _scan(folder: str, classes: Sequence[str]) -> Tuple[List[str], List[int]]:
  """Image paths and label ids under folder/<class>/ for every class folder present."""
  paths, labels = [], []
  for label, name in enumerate(classes):
    class_dir = os.path.join(folder, name)
    if not os.path.isdir(class_dir):
      continue
    files = sorted(f for f in os.listdir(class_dir) if f.lower().endswith(EXTENSIONS))
    if not files:
      raise source.DatasetNotFoundError(f"class folder {class_dir!r} holds no images; {_LAYOUT}")
    paths += [os.path.join(class_dir, f) for f in files]
    labels += [label] * len(files)
  return paths, labels


def _common_size(paths: Sequence[str]) -> Tuple[int, int]:
  """The (H, W) all images share, from their headers; differing sizes are a ValueError."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  seen = {}
  for path in paths:
    try:
      with Image.open(path) as image:
        seen.setdefault((image.height, image.width), path)
    except Exception as e:  # PIL raises several types for unreadable files
      raise ValueError(f"{path}: not a readable image ({e})") from None
    if len(seen) > 1:
      examples = ", ".join(f"{h}x{w} ({p})" for (h, w), p in seen.items())
      raise ValueError(f"images differ in size: {examples}; pass image_size=(H, W) to resize, "
                       "or varying_sizes=True to keep them (preprocessing 'imagenet')")
  return next(iter(seen))


def _decode(path: tf.Tensor) -> tf.Tensor:
  """The pipeline's decoder: any format tf.io.decode_image knows, told by content (not by the
  file's extension), as RGB."""
  return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def check_decodable(paths: Sequence[str]) -> None:
  """Decodes every file once, in parallel, with the pipeline's decoder: a damaged or non-image
  file is a ValueError naming it now, not when a batch reaches it mid-training."""
  if not paths:
    return
  ds = tf.data.Dataset.from_tensor_slices(list(paths)).map(
      lambda p: (p, tf.shape(_decode(p))), num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=False).ignore_errors()
  good = {p.decode("utf-8") for p, _ in ds.as_numpy_iterator()}
  bad = [p for p in paths if p not in good]
  if not bad:
    return
  try:  # the decoder's own words for the first bad file
    _decode(tf.constant(bad[0]))
    reason = "it decodes alone, but not in the pipeline"
  except (tf.errors.OpError, ValueError) as e:
    reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
  more = f" (and {len(bad) - 1} more: {', '.join(bad[1:4])})" if len(bad) > 1 else ""
  raise ValueError(f"{bad[0]}: truncated or damaged image, tf.io.decode_image says: "
                   f"{reason}{more}")


def _decoder(size: Optional[Tuple[int, int]], channels: int, resize: bool):
  """(path, label) -> (uint8 [H, W, channels] image, label), for tf.data.map; size None: each
  image at its own size."""
  def decode(path, label):
    image = _decode(path)
    if channels == 1:
      image = tf.image.rgb_to_grayscale(image)
    if resize:
      image = source.resize_uint8(image, size)
    image = tf.ensure_shape(image, (size or (None, None)) + (channels,))
    return image, label
  return decode


@registry.register("image_folder")
@gin.configurable
def load_image_folder(path: Optional[str] = None, image_size: Optional[Sequence[int]] = None,
                      channels: int = 3, test_fraction: float = 0.1,
                      test_seed: int = 0, varying_sizes: bool = False,
                      verify: bool = True) -> source.Source:
  """Class-folder images; without root/train + root/test, `test_fraction` of them (a permutation
  seeded by `test_seed`) become the test set. channels: 1 (grayscale) or 3 (RGB).
  varying_sizes: images keep their own sizes (no common size needed; ignored with
  `image_size`). verify: decode every file once at load (`check_decodable`); False skips that
  for a large folder already known good."""
  if path is None:
    raise ValueError("image_folder needs the root folder: load_dataset.data_dir=<root>")
  if not os.path.isdir(path):
    raise source.DatasetNotFoundError(f"image folder {path!r} does not exist; {_LAYOUT}")
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels!r}")
  train_dir, test_dir = os.path.join(path, "train"), os.path.join(path, "test")
  rng = np.random.default_rng(test_seed)
  if os.path.isdir(train_dir) and os.path.isdir(test_dir):
    classes = _class_dirs(train_dir)
    extra = sorted(set(_class_dirs(test_dir)) - set(classes))
    if extra:
      raise ValueError(f"{test_dir!r} has classes {extra} that {train_dir!r} lacks")
    train_paths, train_labels = _scan(train_dir, classes)
    test_paths, test_labels = _scan(test_dir, classes)
  else:
    classes = _class_dirs(path)
    paths, labels = _scan(path, classes)
    num_test = int(round(len(paths) * test_fraction))
    if not 0 < test_fraction < 1 or not 0 < num_test < len(paths):
      raise ValueError(f"test_fraction={test_fraction!r} of {len(paths)} images gives "
                       f"{num_test} test images; need at least one test and one train image")
    perm = rng.permutation(len(paths))
    test_idx = np.sort(perm[:num_test])
    train_idx = perm[num_test:]
    train_paths, train_labels = [paths[i] for i in train_idx], [labels[i] for i in train_idx]
    test_paths, test_labels = [paths[i] for i in test_idx], [labels[i] for i in test_idx]
  # Train files in seeded random order: class-sorted lists would defeat a finite shuffle buffer.
  order = rng.permutation(len(train_paths))
  train_paths, train_labels = [train_paths[i] for i in order], [train_labels[i] for i in order]

  if image_size is not None:
    size = tuple(int(s) for s in np.broadcast_to(image_size, (2,)))
  elif varying_sizes:
    size = None
  else:
    size = _common_size(train_paths + test_paths)
  if verify:
    check_decodable(train_paths + test_paths)
  if len(classes) < 2:
    raise ValueError(f"image folder {path!r} has {len(classes)} class folder ({classes}); a "
                     f"classifier needs at least 2 (it would reach accuracy 1.0 trivially); "
                     f"{_LAYOUT}")
  decode = _decoder(size, channels, resize=image_size is not None)
  return source.Source(train=source.Examples.from_files(train_paths, train_labels, decode),
                       test=source.Examples.from_files(test_paths, test_labels, decode),
                       num_classes=len(classes), image_shape=(*(size or (None, None)), channels),
                       name="image_folder")
