"""The ENAS supernet's training step traced for one architecture, its dispatch taken away: the
ablation of `dev/bench_enas_dispatch.py`, which times it against the usual step to show
what the Case ops and the op-function calls cost (no search uses it: it retraces for every
architecture)."""

import contextlib
from unittest import mock

import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.eager import execute

from nasnet_rl.enas import op_bank
from nasnet_rl.enas import slot_case


def static_value(t: tf.Tensor):
  """The value of a graph tensor computed from constants alone (None otherwise), evaluated
  op by op eagerly: `tf.get_static_value` stops at ops such as StridedSlice."""
  value = tf.get_static_value(t)
  if value is not None:
    return value
  if not t.op.inputs or t.op.op_def.is_stateful:  # a placeholder, a variable read, ...
    return None
  inputs = [static_value(i) for i in t.op.inputs]
  if any(v is None for v in inputs):
    return None
  attrs = []
  for name in t.op.node_def.attr:
    v = t.op.get_attr(name)
    if isinstance(v, tf.DType):
      v = v.as_datatype_enum
    elif isinstance(v, list) and v and isinstance(v[0], tf.DType):
      v = [d.as_datatype_enum for d in v]
    attrs += [name, v]
  with tf.init_scope():
    outputs = execute.execute(t.op.type, len(t.op.outputs), [tf.constant(v) for v in inputs],
                              tuple(attrs), context.context())
    return outputs[t.value_index].numpy()


def direct_case(index, inputs, functions):
  """slot_case._case for an index known while tracing: a call of that branch alone."""
  k = static_value(index)
  if k is None:
    raise ValueError("the architecture must be a constant of the traced step")
  return list(functions[int(k)](*inputs))


def op_function_attributes(inline_ops: bool):
  """A context in which the supernet's op functions are made inlinable (`inline_ops`) or as
  usual. They are made when a supernet is built and when its step is traced."""
  if not inline_ops:
    return contextlib.nullcontext()
  return mock.patch.object(op_bank._SharedOp, "CALL_ATTRIBUTES", {})  # pylint: disable=protected-access


def fixed_architecture_step(sup, arc, inline_ops: bool, direct: bool = True):
  """A training step of the `SupernetTrainer` `sup` traced for `arc` alone (a constant of the
  graph, so Grappler folds whatever depends on it), each slot calling its sampled branch
  directly (`direct`; else through its Case as usual): (loss, hits, finite) of (x, y) at the
  optimizer's current learning rate. Build `sup` under `op_function_attributes(inline_ops)`."""
  values = sup.arc(arc).numpy()

  @tf.function
  def step(x, y):
    dispatch = (mock.patch.object(slot_case, "_case", direct_case) if direct else
                contextlib.nullcontext())
    with dispatch, op_function_attributes(inline_ops):
      return sup._distributed_train(x, y, tf.constant(values))  # pylint: disable=protected-access
  return step
