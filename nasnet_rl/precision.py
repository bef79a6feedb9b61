"""Mixed precision for every training: 'float32' | 'mixed_float16' | 'mixed_bfloat16'.

Models are built under the Keras dtype policy (variables stay float32, layers compute in the
half type); BatchNorm statistics and the classifier's logits (hence softmax and the loss) stay
float32. float16 also needs dynamic loss scaling, which `wrap_optimizer` adds.
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def check(precision: str) -> str:
  if precision not in PRECISIONS:
    raise ValueError(f"unknown precision {precision!r}; known: {list(PRECISIONS)}")
  return precision


@contextlib.contextmanager
def policy(precision: str):
  """Builds the layers created inside under `precision`'s dtype policy, then restores the old
  one (the policy is global in Keras; leaving it set would leak into the next model)."""
  check(precision)
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(precision)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, precision: str):
  """`optimizer` with dynamic loss scaling for float16 (bfloat16 has float32's exponent range
  and needs none)."""
  if check(precision) == "mixed_float16":
    return keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer
