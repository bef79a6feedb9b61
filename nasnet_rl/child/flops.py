"""Mult-adds of a Keras model counted from its inference graph, op by op.

Counts what the NASNet paper counts: multiply-adds of convolutions (regular and depthwise)
and fully connected layers, per image. Works on any model (ours or keras.applications)."""

from typing import Dict, Sequence

import keras
import numpy as np
import tensorflow as tf


def _mult_adds_of(op) -> int:
  if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2"):
    out = op.outputs[0].shape
    if not out.is_fully_defined():
      return 0
    if op.type == "Conv2D":
      kh, kw, cin, _ = op.inputs[1].shape
      return int(np.prod(out[1:])) * int(kh) * int(kw) * int(cin)
    if op.type == "DepthwiseConv2dNative":
      kh, kw, _, _ = op.inputs[1].shape
      return int(np.prod(out[1:])) * int(kh) * int(kw)
    a = op.inputs[0].shape
    transpose_a = op.type == "MatMul" and op.get_attr("transpose_a")
    k = a[-2] if transpose_a else a[-1]
    return int(np.prod(out[1:])) * int(k)
  return 0


def mult_adds_of_graph(graph) -> Dict[str, int]:
  """{op type: mult-adds} of every counted op in a traced graph (shapes must be static)."""
  counts: Dict[str, int] = {}
  for op in graph.get_operations():
    n = _mult_adds_of(op)
    if n:
      counts[op.type] = counts.get(op.type, 0) + n
  return counts


def mult_adds_by_op(model: keras.Model, input_shape: Sequence[int]) -> Dict[str, int]:
  """{op type: mult-adds per image} of `model` applied to one image of `input_shape`."""
  fn = tf.function(lambda x: model(x, training=False))
  return mult_adds_of_graph(
      fn.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32)).graph)


def count_mult_adds(model: keras.Model, input_shape: Sequence[int]) -> int:
  """Total mult-adds per image."""
  return sum(mult_adds_by_op(model, input_shape).values())
