"""Whether Keras trainings (children, `scripts/train.py`, transfer) compile their steps with XLA.

`xla_compile.enabled = None` (default) turns XLA on where a GPU is visible and off on CPU-only
machines, where children ran ~8x slower compiled (measured for issue 11 on 2 CPU cores);
True or False forces it either way.
"""

from typing import Optional

import gin
import tensorflow as tf


@gin.configurable("xla_compile")
def enabled(enabled: Optional[bool] = None) -> bool:  # pylint: disable=redefined-outer-name
  """The `jit_compile` value for `model.compile`: the binding, else 'is a GPU visible'."""
  if enabled is not None:
    if not isinstance(enabled, bool):
      raise ValueError(f"xla_compile.enabled must be True, False or None, got {enabled!r}")
    return enabled
  return bool(tf.config.list_logical_devices("GPU"))
