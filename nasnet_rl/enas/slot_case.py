"""A supernet op slot in training: one `Case` op whose branches are functions shared by every
slot of the same layout, and a second one for its gradient.

A slot reads its input from a list of states (`state_list.ListRead`), runs the sampled
candidate of its op banks and saves that op's intermediates for the backward
(`OpBank.train_saving`). `tf.switch_case` over Python callables traces a FuncGraph
per branch and per slot: ~900 of them for the main job's training step, most of its 16 s of
Python tracing, and each branch then ran as a function of its own around the shared op
function. Here every branch is traced once per layout (the lists' entry shapes, the banks'
configurations, the candidate) with one signature for all candidates of a slot, so any slot of
that layout calls the same functions.

Branch signature (m list reads, nb banks): list handles [m], read indices [m], the banks' flat
parameters [nb] and BN statistics [nb]. The forward branch returns the op output, every bank's
statistics (the sampled op's slice updated, as a training-mode BatchNorm does) and the saved
intermediates (one variant); the backward branch also takes those and the output gradient, and
returns a gradient list per read (only the read entry set; an empty list for the reads it did
not use) and a gradient per bank's flat parameters (zeros for the banks it did not use).
"""

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from nasnet_rl.enas import state_list


class SlotFunctions:
  """The branch functions of a supernet's op slots, traced once per (layout, candidate) and
  outside any device scope (as `op_bank._SharedOp`: under MirroredStrategy every replica's
  slots call the same functions, on the replica's device)."""

  def __init__(self):
    self._cache: Dict[tuple, Tuple[List, List]] = {}

  def branches(self, banks, candidates, reads):
    """(forward functions, backward functions), one per candidate (bank position, candidate
    index in the bank, read position)."""
    elements = tuple((tuple(r.shape.as_list()), r.dtype.name) for r in reads)
    key = (elements, tuple(b.layout_key for b in banks), tuple(candidates))
    if key not in self._cache:
      with tf.device(None):
        self._cache[key] = self._trace(banks, candidates, reads)
    return self._cache[key]

  @staticmethod
  def _trace(banks, candidates, reads):
    m, nb = len(reads), len(banks)
    shapes = [(r.shape, r.dtype) for r in reads]
    specs = ([tf.TensorSpec([], tf.variant)] * m + [tf.TensorSpec([], tf.int32)] * m +
             [tf.TensorSpec([b.params.shape[0]], tf.float32) for b in banks] +
             [tf.TensorSpec([b.stats.shape[0]], tf.float32) for b in banks])

    def split(args):
      return args[:m], args[m:2 * m], args[2 * m:2 * m + nb], args[2 * m + nb:2 * m + 2 * nb]

    forwards, backwards = [], []
    for pos, k, w in candidates:
      bank = banks[pos]

      def forward(*args, pos=pos, k=k, w=w, bank=bank):
        handles, idxs, flats, stats = split(args)
        x = state_list.get_item(handles[w], idxs[w], *shapes[w])
        y, new_stats, saved = bank.train_saving(k, x, flats[pos], stats[pos])
        return [y] + [new_stats if n == pos else s for n, s in enumerate(stats)] + [saved]

      concrete = tf.function(forward, autograph=False).get_concrete_function(*specs)
      forwards.append(concrete)
      y_spec = tf.TensorSpec(concrete.outputs[0].shape, concrete.outputs[0].dtype)

      def backward(*args, pos=pos, k=k, w=w, bank=bank):
        handles, idxs, flats, stats = split(args[:-2])
        saved, dy = args[-2:]
        x = state_list.get_item(handles[w], idxs[w], *shapes[w])
        dx, dp = bank.grad_saved(k, x, flats[pos], stats[pos], saved, dy)
        out = []
        for n in range(m):
          empty = state_list.empty_like(handles[n], *shapes[n])
          out.append(tf.raw_ops.TensorListSetItem(input_handle=empty, index=idxs[n],
                                                  item=tf.cast(dx, shapes[n][1]))
                     if n == w else empty)
        return out + [dp if n == pos else tf.zeros_like(f) for n, f in enumerate(flats)]

      backwards.append(tf.function(backward, autograph=False).get_concrete_function(
          *specs, tf.TensorSpec([], tf.variant), y_spec))
    return forwards, backwards


def _case(index, inputs, functions):
  """A functional (not lowered) Case op over the traced `functions` (same signature). Stateless:
  the branches touch no variable (the statistics are outputs), and tf.function would run a
  stateful Case after every stateful op before it (program order), i.e. the two slots of a
  block one after the other."""
  outputs = functions[0].outputs
  out = tf.raw_ops.StatelessCase(branch_index=index, input=list(inputs),
                                 Tout=[t.dtype for t in outputs], branches=list(functions),
                                 output_shapes=[t.shape for t in outputs])
  # run as a function call: lowered to Switch/Merge, Grappler would optimize every branch's
  # body inside the step's graph (a slower first step)
  if not tf.executing_eagerly():
    out[0].op._set_attr("_lower_using_switch_merge",  # pylint: disable=protected-access
                        attr_value_pb2.AttrValue(b=False))
  return out


def run_slot(index: tf.Tensor, banks: Sequence, candidates: Sequence[Tuple[int, int, int]],
             reads: Sequence, functions: SlotFunctions) -> tf.Tensor:
  """The output of `candidates[index]` in training mode (its BN statistics updated), with a
  gradient that runs the sampled op's backward alone from its saved intermediates."""
  forwards, backwards = functions.branches(banks, candidates, reads)
  m, nb = len(reads), len(banks)
  idxs = [r.index for r in reads]
  stats = [tf.convert_to_tensor(b.stats.value) for b in banks]

  @tf.custom_gradient
  def run(*args):
    handles, flats = args[:m], args[m:]
    outs = _case(index, [*handles, *idxs, *flats, *stats], forwards)
    y, new_stats, saved = outs[0], outs[1:1 + nb], outs[-1]
    for bank, value in zip(banks, new_stats):
      bank.stats.value.assign(value)

    def grad(dy, variables=None):
      grads = _case(index, [*handles, *idxs, *flats, *stats, saved, dy], backwards)
      if variables is not None:
        return list(grads), [None] * len(variables)
      return list(grads)
    return y, grad

  return run(*[r.handle for r in reads],
             *[tf.convert_to_tensor(bank.params.value) for bank in banks])
