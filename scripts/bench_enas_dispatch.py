"""Where the ENAS supernet's step time goes: its dispatch, measured by taking it away.

`bench_enas.py` compares the supernet step (one graph for every architecture: each op slot a
Case over shared branch functions, each branch calling its op's shared function) with the
standalone child. This ablation traces the same supernet for the one architecture it measures,
so that the slot's candidate is known while tracing, in alternating rounds:

  supernet   the training step as `SupernetTrainer` runs it (bench_enas' number)
  direct     each slot calls its sampled branch function itself: no Case op
  inlined    as direct, and the op functions lose `_noinline`, so Grappler inlines every call
             and optimizes the step as one graph, as it does the child's
  standalone the child of the same genotype (bench_enas' child step)

`inlined` is what the supernet's arithmetic (flat weight slices, state lists, the gathered
1x1 conv) costs without any dispatch; it is no ENAS (it retraces for every architecture).

  python scripts/bench_enas_dispatch.py --rounds=5 --steps=5 [--sizes=main,enas_cifar]
"""

import os
import statistics
import sys
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.eager import execute

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_enas  # pylint: disable=g-import-not-at-top
from nasnet_rl import search_space as search_space_lib
from nasnet_rl.enas import op_bank
from nasnet_rl.enas import slot_case

FLAGS = flags.FLAGS


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
  usual = dict(op_bank._SharedOp.CALL_ATTRIBUTES)  # pylint: disable=protected-access
  return mock.patch.object(op_bank._SharedOp, "CALL_ATTRIBUTES",  # pylint: disable=protected-access
                           {} if inline_ops else usual)


def fixed_architecture_step(sup, arc, inline_ops: bool):
  """A training step of the `SupernetTrainer` `sup` traced for `arc` alone (a constant of the
  graph), each slot calling its sampled branch directly: (loss, hits, finite) of (x, y) at the
  optimizer's current learning rate. Build `sup` under `op_function_attributes(inline_ops)`."""
  values = sup.arc(arc).numpy()

  @tf.function
  def step(x, y):
    with mock.patch.object(slot_case, "_case", direct_case), op_function_attributes(inline_ops):
      return sup._distributed_train(x, y, tf.constant(values))  # pylint: disable=protected-access
  return step


def fixed_step(size, space, arc, inline_ops):
  """bench_enas' supernet at `size`, stepped by `fixed_architecture_step` on a random batch."""
  with op_function_attributes(inline_ops):
    _, _, sup = bench_enas.make_models(space, arc, size, which=("supernet",))
  side, channels = bench_enas.SIZES[size][:2]
  x = tf.random.uniform((FLAGS.batch_size, side, side, channels))
  y = tf.random.uniform((FLAGS.batch_size,), maxval=10, dtype=tf.int64)
  sup.optimizer.learning_rate.assign(0.01)
  step = fixed_architecture_step(sup, arc, inline_ops)
  return lambda: [t.numpy() for t in step(x, y)]


def measure(space, arc, size):
  steps, _, _ = bench_enas.make_models(space, arc, size)
  steps = {"supernet": steps["supernet"],
           "direct": fixed_step(size, space, arc, inline_ops=False),
           "inlined": fixed_step(size, space, arc, inline_ops=True),
           "standalone": steps["standalone"]}
  print(f"== size {size}", flush=True)
  for name, fn in steps.items():
    t0 = time.perf_counter()
    fn()
    print(f"{name}: first step {time.perf_counter() - t0:.1f}s", flush=True)
    fn()
  times = {n: [] for n in steps}
  for _ in range(FLAGS.rounds):
    for name, fn in steps.items():
      t0 = time.perf_counter()
      for _ in range(FLAGS.steps):
        fn()
      times[name].append((time.perf_counter() - t0) / FLAGS.steps)
  child = times["standalone"]
  for name, t in times.items():
    ratio = statistics.median(a / b for a, b in zip(t, child))
    print(f"[{size}] {name:10s} {1000 * statistics.median(t):6.0f} ms/step, "
          f"ratio to the standalone child {ratio:.2f}", flush=True)


def main(argv):
  del argv
  space = search_space_lib.SearchSpace(FLAGS.space, 5)
  arc = bench_enas.architecture(space)
  print(f"architecture: {space.decode(arc)}")
  for size in FLAGS.sizes:
    measure(space, arc, size)


if __name__ == "__main__":
  app.run(main)
