"""A seeded, learnable in-memory dataset for fast tests and smoke runs.

Every class is a random blocky prototype image; an example is its class prototype plus Gaussian
pixel noise, so a small network separates the classes in a few steps, yet no two images match.
"""

from typing import Sequence

import gin
import numpy as np

from nasnet_rl.data import registry
from nasnet_rl.data import source


@registry.register("synthetic")
@gin.configurable
def load_synthetic(num_train: int = 512, num_test: int = 128,
                   image_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
                   noise: float = 48.0, seed: int = 0) -> source.Source:
  """Balanced labels, uint8 images; the same seed always gives the same data."""
  for arg, value in (("num_train", num_train), ("num_test", num_test),
                     ("num_classes", num_classes)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"synthetic: {arg} must be a positive int, got {value!r}")
  shape = tuple(image_shape)
  if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
    raise ValueError(f"synthetic: image_shape must be (H, W, C) of positive ints, got "
                     f"{image_shape!r}")
  h, w, c = shape
  rng = np.random.default_rng(seed)
  # 4x4 grids of random levels blown up to H x W: structure a conv net can pick up.
  coarse = rng.uniform(0, 255, (num_classes, 4, 4, c))
  prototypes = coarse.repeat(-(-h // 4), axis=1).repeat(-(-w // 4), axis=2)[:, :h, :w]

  def draw(n):
    labels = rng.permutation(np.arange(n) % num_classes)
    images = prototypes[labels] + rng.normal(0.0, noise, (n, h, w, c))
    return source.Examples.from_arrays(np.clip(np.round(images), 0, 255).astype(np.uint8),
                                       labels, what="synthetic")
  return source.Source(train=draw(num_train), test=draw(num_test), num_classes=num_classes,
                       image_shape=shape, name="synthetic")
