"""Kernel forms (nasnet_rl/kernels.py): the CPU reformulations and TF's native kernels give the
same outputs and gradients on every op and size the child ops reformulate, and the gin knob
(or the device, under "auto") picks which one runs."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import kernels
from nasnet_rl.child import ops

CASES = [  # (op, kernel size, stride, map size, channels)
    ("pointwise", 1, 1, 28, 12), ("pointwise", 1, 1, 7, 33),
    ("depthwise", 5, 1, 14, 6), ("depthwise", 7, 1, 9, 4), ("depthwise", 5, 2, 15, 5),
    ("depthwise", 7, 2, 16, 3), ("separable", 5, 1, 12, 8), ("separable", 7, 2, 11, 5),
    ("separable", 7, 1, 3, 4)]


def _run(op, k, stride, size, channels, form):
  gin.clear_config()
  gin.bind_parameter("kernel_forms.form", form)
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(3, size, size, channels)), tf.float32)
  dw = tf.constant(rng.normal(size=(k, k, channels, 1)), tf.float32)
  pw = tf.constant(rng.normal(size=(1, 1, channels, 7)), tf.float32)
  with tf.GradientTape() as tape:
    tape.watch([x, dw, pw])
    if op == "pointwise":
      y = ops.pointwise(x, pw, training=True)
    elif op == "depthwise":
      y = ops.depthwise_same(x, dw, stride)
    else:
      y = ops.separable_same(x, dw, pw, stride, training=True)
    weights = tf.reshape(tf.sin(tf.cast(tf.range(tf.size(y)), tf.float32)), tf.shape(y))
    loss = tf.reduce_sum(weights * y)  # an output gradient that is not all ones
  grads = tape.gradient(loss, [x, dw, pw])
  gin.clear_config()
  return [y.numpy()] + [None if g is None else g.numpy() for g in grads]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_both_forms_give_the_same_outputs_and_gradients(case):
  native = _run(*case, "native")
  reformulated = _run(*case, "cpu_reformulated")
  for a, b in zip(native, reformulated):
    if a is None or b is None:
      assert a is None and b is None
      continue
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-4 * max(1.0, float(np.abs(a).max())))


def _op_types(form, fn):
  gin.clear_config()
  gin.bind_parameter("kernel_forms.form", form)
  try:
    graph = tf.function(fn).get_concrete_function().graph
    return {op.type for op in graph.get_operations()}
  finally:
    gin.clear_config()


def test_the_knob_chooses_the_form_that_runs():
  x = tf.ones((2, 6, 6, 4))
  pw = tf.ones((1, 1, 4, 3))
  assert "MatMul" in _op_types("cpu_reformulated", lambda: ops.pointwise(x, pw, training=True))
  native = _op_types("native", lambda: ops.pointwise(x, pw, training=True))
  assert "Conv2D" in native and "MatMul" not in native
  # auto: reformulated on this CPU-only machine, native where a GPU is visible
  assert kernels.reformulated() == (not tf.config.list_logical_devices("GPU"))
  with pytest.raises(ValueError, match="kernel_forms.form"):
    kernels.kernel_forms("fast")
  assert kernels.describe().startswith("kernel forms: auto -> ")
