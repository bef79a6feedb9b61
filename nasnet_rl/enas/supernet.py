"""ENAS shared-weight supernet: one weight set per (cell, block, input slot, op); the
architecture is an int tensor, and one Case op per op slot runs only the sampled input and op.

The path of an architecture computes exactly the standalone child of `child/network.py`
(`build_cifar_network` of the decoded genotype; `enas/export.child_from_supernet` copies the
path's weights into it and tests/test_enas_equivalence.py checks logits and a training step),
so a cell derived here is trained later by the same code it was scored with, unlike the
official ENAS code whose search and fixed cells differ. The wiring is the child's (TF-slim
`nasnet_utils.py`): the first cell takes the stem output raw as h(i-2) (its ops then read
`stem_multiplier * filters` channels, from op banks of their own); h(i-2) gets a 1x1 conv only
when its channels differ from the cell's (a factorized reduction when its resolution does);
h(i-1) always gets ReLU-1x1 conv-BN; the cell output is the concatenation of the unused
states, those at the input resolution of a reduction cell factorized-reduced first.

The concatenation has a per-architecture channel count; a supernet cell outputs instead all
its states, as a tuple and as a TensorList (`StateList`), plus a mask of the ones the child
concatenates. A consumer (the next cells' 1x1 convs) gathers the masked states from the list
and runs one 1x1 conv over them with the matching kernel rows (`gathered`): the child's conv
over its concatenation, and a gradient that touches no unused state. The heads pool every
state and mask the classifier's rows. Layers that only some architectures use (the reduction
of an unused cell input, the 1x1 of an h(i-2) whose channels may match) run under `tf.cond`,
so an architecture that does not use them neither computes them nor updates their BN
statistics. A block reads its input from the cell's list inside its op slot's Case
(`state_list.ListRead`, enas/slot_case.py), and the slot's gradient runs only the sampled op's
backward, from the intermediates its forward saved.

Architecture tensor = the search space's decision list, int32 [2 * B * 4]: per cell (normal,
reduction) and block, (input 0, input 1, op 0, op 1) — see `search_space.SearchSpace`.

Built under a mixed dtype policy (`precision.policy`, as `SupernetTrainer(precision=...)`
does), the body computes in the half type with float32 variables; BatchNorm keeps float32
statistics (child/ops.BatchNorm, and the op banks: op_bank.py), and the heads pool in float32
and give float32 logits, so softmax and the loss are float32 (as the child's float32 Dense).
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import tensorflow as tf
from tensorflow.python.ops import control_flow_switch_case

from nasnet_rl import search_space as search_space_lib
from nasnet_rl.child import ops
from nasnet_rl.enas import op_bank
from nasnet_rl.enas import slot_case
from nasnet_rl.enas import state_list

# a cell output: (all its S states, each [batch, H, W, C]; float32 mask [S] that is 1 for the
# states the child concatenates and 0 for the others; the states as a `StateList` when the cell
# has one, else None: a Python object, since Keras rejects variant tensors among call arguments)
CellOutput = Tuple[Tuple[tf.Tensor, ...], tf.Tensor, Optional[state_list.StateList]]


def single(x: tf.Tensor) -> CellOutput:
  """A plain feature map as a one-state cell output."""
  return (x,), tf.ones([1], tf.float32), None


def masked_indices(mask: tf.Tensor) -> tf.Tensor:
  """The indices (int32, ascending: the child's concatenation order) where `mask` is 1."""
  return tf.cast(tf.reshape(tf.where(mask > 0), [-1]), tf.int32)


def gathered(inputs: CellOutput) -> tf.Tensor:
  """The child's concatenation of the masked states of `inputs`, [batch, H, W, k * C] for k
  masked states (k varies with the architecture): one TensorListGather of the k states, then
  a transpose into channel order. Its gradient is a sparse list, so the states left out get no
  zero tensors (enas/state_list.py); a per-state 1x1 conv summed over all states (zeros for the
  left-out ones) took an extra MatMul per state and an AddN of zero tensors, forward and back."""
  states, mask, listed = inputs
  listed = state_list.StateList(states) if listed is None else listed
  x = listed.gather(masked_indices(mask))  # [k, batch, H, W, C]
  shape = tf.shape(x)
  x = tf.transpose(x, [1, 2, 3, 0, 4])
  return tf.reshape(x, tf.concat([shape[1:4], [shape[0] * shape[4]]], 0))


def fit_channels(x: tf.Tensor, channels: int) -> tf.Tensor:
  """`x` ([batch, H, W, dynamic C]) with a static channel count `channels`: the identity when C
  is `channels`, and for any other C a pad or a cut rather than a failure (Grappler may run the
  stateless ops of an untaken `tf.cond` branch: seen with TF 2.21, a reshape to `channels`
  failed on a concatenation of the other branch's size)."""
  x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, channels]])[..., :channels]
  return tf.ensure_shape(x, x.shape[:3].concatenate([channels]))


def switch_case(index: tf.Tensor, branches: Sequence[Any]):
  """`tf.switch_case(index, branches)` kept as one functional Case op at run time, for the op
  slots in inference (training builds its Cases in enas/slot_case.py). By default TF lowers
  each Case of a tf.function into Switch/Merge nodes in one graph, and Grappler then optimizes
  every branch's nodes there: the main job's first step took 21.4-22.5 s lowered vs 14.2-14.4 s
  not, the ENAS CIFAR size's 56.3 vs 30.4 s, for a step 0-5% slower (the taken branch runs as a
  function call; measured side by side in one process, see the README's ENAS section). TF's
  public `switch_case` has no switch for this; its helper (TF 2.21) takes one, and without the
  helper the lowered Case gives the same results."""
  helper = getattr(control_flow_switch_case, "_indexed_case_helper", None)
  if helper is None:  # another TF: the lowered Case, same results
    return tf.switch_case(index, branches)
  return helper(list(branches), None, index, "switch_case", lower_using_switch_merge=False)


def masked_rows(kernel: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """A kernel with rows per state slot [S, C, F] as the [S * C, F] matrix over the
  concatenation of all S states whose rows for states outside `mask` are zero: the child's
  kernel over its concatenation of the masked states."""
  kernel = tf.convert_to_tensor(kernel)
  num_states, channels, filters = kernel.shape
  if num_states > 1:
    kernel = kernel * tf.cast(mask, kernel.dtype)[:, None, None]
  return tf.reshape(kernel, [num_states * channels, filters])


def skipped_unless(on: tf.Tensor, fn, x: tf.Tensor, kernels: Sequence[tf.Tensor],
                   zeros) -> tf.Tensor:
  """`fn(x, *kernels)` if `on`, else `zeros()` (its shape), in training: when `on` is false
  neither the forward nor the gradient computes anything. The gradient is a second lowered
  `tf.cond` that differentiates `fn` (a 1x1 conv: its recomputed output is unused and pruned)
  rather than TF's gradient of the forward `tf.cond`, whose rewrite added ~4 functions per
  state for Grappler to optimize on the first step (the ENAS CIFAR size's: 52 vs 33 s)."""

  @tf.custom_gradient
  def run(x, *kernels):
    y = tf.cond(on, lambda: fn(x, *kernels), zeros)

    def grad(dy):
      def backward():
        with tf.GradientTape() as tape:
          tape.watch([x, *kernels])
          out = fn(x, *kernels)
        return tape.gradient(out, [x, *kernels], output_gradients=dy)
      return tf.cond(on, backward, lambda: [tf.zeros_like(t) for t in (x, *kernels)])
    return y, grad
  return run(x, *kernels)


class MaskedConv1x1(keras.layers.Layer):
  """ReLU -> 1x1 conv over the concatenation of the masked states -> BN, as the sum over the
  `num_states` states (of `channels` each) of each state's 1x1 conv by its kernel rows, the
  unmasked states skipped: a static shape for every architecture, and exactly the child's conv
  over its concatenation. `reduce=True` is the factorized reduction (two half convs on the
  even and shifted grid). `skip_if_matching=True` passes the child's concatenation through
  unchanged when it already has `filters` channels (the child's h(i-2) rule; decided per
  architecture with `tf.cond`)."""

  def __init__(self, num_states: int, channels: int, filters: int, norm: Dict[str, Any],
               reduce: bool = False, relu: bool = True, skip_if_matching: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    self.num_states, self.channels, self.filters = num_states, channels, filters
    self.reduce, self.relu = reduce, relu
    # the number of concatenated states for which the input already has `filters` channels
    k = filters // channels
    self.matching_states = (k if skip_if_matching and not reduce and k * channels == filters
                            and 1 <= k <= num_states else None)
    halves = (filters // 2, filters - filters // 2) if reduce else (filters,)
    # kernel rows per state slot (enas/export.py copies the concatenated states' rows)
    self.kernels = [self.add_weight(name=f"kernel_{i}", shape=(num_states, channels, f),
                                    initializer="he_normal") for i, f in enumerate(halves)]
    self.bn = ops.batch_norm(norm)
    self.bn.build((None, None, None, filters))
    self.built = True  # else Keras' first call traces `call` symbolically to build sublayers

  def _conv(self, inputs: CellOutput, training, skip: Optional[tf.Tensor] = None,
            concat: Optional[tf.Tensor] = None):
    """The 1x1 conv (before BN) over the masked states; computes nothing when `skip`.
    `concat`: `gathered(inputs)` when the caller has it already."""
    states, mask = inputs[0], inputs[1]
    kernels = [tf.convert_to_tensor(w) for w in self.kernels]

    def conv(x, *rows):  # x's share of the conv over the concatenation (its kernel rows)
      x = tf.nn.relu(x) if self.relu else x
      rows = [r[None, None] for r in rows]
      if self.reduce:
        return ops.factorized_reduction(x, rows[0], rows[1], training=bool(training))
      return ops.pointwise(x, rows[0], training=bool(training))

    def zeros(x):  # what conv(x) gives with the rows zeroed, without computing it
      dims = tf.unstack(tf.shape(x)[:3])
      if self.reduce:
        dims[1:] = [(d + 1) // 2 for d in dims[1:]]
      return tf.zeros(tf.stack(dims + [self.filters]), x.dtype)

    rows = lambda s: [tf.cast(k[s], states[s].dtype) for k in kernels]
    if len(states) == 1 and skip is None:
      return conv(states[0], *rows(0))
    if not self.reduce:  # one conv over the gathered concatenation, as the child's
      x = gathered(inputs) if concat is None else concat
      used = masked_indices(mask)
      flat = [tf.reshape(tf.cast(tf.gather(k, used), x.dtype), [-1, k.shape[-1]])
              for k in kernels]
      fn = lambda x, kernel: self._pointwise(x, kernel, training)
      if skip is None:
        return fn(x, *flat)
      if training:
        return skipped_unless(~skip, fn, x, flat, lambda: zeros(x))
      return tf.cond(skip, lambda: zeros(x), lambda: fn(x, *flat))
    # the factorized reduction of a multi-state h(i-2): per state (its static channels), the
    # unmasked states skipped
    on = [mask[s] > 0 if skip is None else (mask[s] > 0) & ~skip for s in range(len(states))]
    if training:
      return tf.add_n([skipped_unless(on[s], conv, states[s], rows(s),
                                      lambda s=s: zeros(states[s]))
                       for s in range(len(states))])
    return tf.add_n([tf.cond(on[s], lambda s=s: conv(states[s], *rows(s)),
                             lambda s=s: zeros(states[s]))
                     for s in range(len(states))])

  def _pointwise(self, x: tf.Tensor, kernel: tf.Tensor, training) -> tf.Tensor:
    """ReLU (if `relu`) and the 1x1 conv of `x` ([batch, H, W, dynamic C]) by `kernel` [C, F]:
    a MatMul while training, Conv2D in inference (as `ops.pointwise`)."""
    x = tf.nn.relu(x) if self.relu else x
    if not training:
      return tf.nn.conv2d(x, kernel[None, None], 1, "VALID")
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, shape[3]]), kernel)
    y = tf.reshape(y, tf.concat([shape[:3], [self.filters]], 0))
    return tf.ensure_shape(y, x.shape[:3].concatenate([self.filters]))

  def call(self, inputs: CellOutput, training=None):
    if self.matching_states is None:
      return self.bn(self._conv(inputs, training), training=training)
    if self.num_states == 1:  # statically one state of `filters` channels
      return inputs[0][0]
    count = tf.cast(tf.reduce_sum(inputs[1]), tf.int32)
    matching = tf.equal(count, self.matching_states)
    # the conv outside the tf.cond (it computes nothing when matching): TF's gradient of a cond
    # around it would rewrite it (first step +50%, with the per-state convs of before)
    concat = gathered(inputs)
    y = self._conv(inputs, training, skip=matching, concat=concat)
    return tf.cond(matching, lambda: fit_channels(concat, self.filters),
                   lambda: self.bn(y, training=training))


class SuperCell(keras.layers.Layer):
  """All candidate ops of one cell position; `call(pp, p, arc_cell)` runs the sampled cell.

  `pp`, `p` are `CellOutput`s with `pp_channels`/`p_channels` per state and `pp_states`/
  `p_states` state slots; `pp_reduce` when h(i-2) is at twice the resolution of h(i-1);
  `pp_raw` when h(i-2) is the stem output, taken as it is (the first cell)."""

  def __init__(self, op_names: Sequence[str], num_blocks: int, filters: int, reduction: bool,
               pp: Tuple[int, int], p: Tuple[int, int], pp_reduce: bool,
               norm: Dict[str, Any], drop_prob: float = 0.0,
               drop_path_progress: Optional[tf.Variable] = None, pp_raw: bool = False,
               shared_ops: Optional[op_bank.SharedOps] = None, **kwargs):
    super().__init__(**kwargs)
    self.op_names, self.num_blocks = tuple(op_names), num_blocks
    self.filters, self.reduction = filters, reduction
    f = filters
    if pp_raw and (pp[0] != 1 or pp_reduce):
      raise ValueError("a raw h(i-2) is one state at the resolution of h(i-1)")
    self.pp_raw = pp_raw
    self.adjust = (None if pp_raw else
                   MaskedConv1x1(pp[0], pp[1], f, norm, reduce=pp_reduce,
                                 skip_if_matching=True, name="adjust"))
    self.squeeze = MaskedConv1x1(p[0], p[1], f, norm, name="squeeze")
    # channels of h(i-2) inside the cell when they differ from `filters` (a raw stem output)
    self.raw_channels = pp[1] if pp_raw and pp[1] != f else None
    strides = (2, 1) if reduction else (1,)
    # banks[b][slot]: ops at stride 2 (cell inputs of a reduction cell), then at stride 1
    self.banks: List[List[op_bank.OpBank]] = [
        [op_bank.OpBank(self.op_names, f, strides, norm, shared=shared_ops,
                        name=f"b{b}_{j}") for j in range(2)]
        for b in range(num_blocks)]
    # raw_banks[b][slot]: the ops reading a raw h(i-2) of `raw_channels` channels
    self.raw_banks: Optional[List[List[op_bank.OpBank]]] = None
    if self.raw_channels is not None:
      self.raw_banks = [
          [op_bank.OpBank(self.op_names, f, strides[:1], norm, in_channels=self.raw_channels,
                          shared=shared_ops,
                          name=f"b{b}_{j}_raw") for j in range(2)]
          for b in range(num_blocks)]
    self.identity_index = (self.op_names.index("identity") if "identity" in self.op_names
                           else -1)
    self.drop = (ops.DropPath(drop_prob, drop_path_progress, name="drop_path")
                 if drop_prob > 0 else None)
    # an unused state of another shape than the last block's, matched to it before the concat
    # (child/cell.py concat_fix): cell inputs of a reduction cell are factorized-reduced, a
    # raw h(i-2) of other channels gets a 1x1 conv (no ReLU) + BN
    in_channels = [self.raw_channels or f, f]
    self.concat_fix: Dict[int, MaskedConv1x1] = {}
    for i in range(2):
      if reduction or in_channels[i] != f:
        self.concat_fix[i] = MaskedConv1x1(1, in_channels[i], f, norm, reduce=reduction,
                                           relu=False, name=f"concat_fix_{i}")
    # every weight exists now: without this, Keras' first call would build the sublayers by
    # tracing `call` symbolically, i.e. every switch_case branch (most of the construction time)
    self.built = True

  @property
  def num_states(self) -> int:
    return self.num_blocks + 2

  @property
  def all_banks(self) -> List[op_bank.OpBank]:
    """Every op bank of the cell (the raw-input ones included)."""
    rows = self.banks + (self.raw_banks or [])
    return [bank for row in rows for bank in row]

  def branch_bank(self, b: int, j: int, i: int, o: int) -> Tuple[op_bank.OpBank, int]:
    """The op bank and the candidate index in it that block `b`, slot `j` runs when it reads
    state `i` with op `o` (the dispatch of `call`, for export and cost counting)."""
    if self.raw_banks is not None and i == 0:
      return self.raw_banks[b][j], o
    return self.banks[b][j], o + (len(self.op_names) if self.reduction and i >= 2 else 0)

  def _branch(self, b, j, sources, raw_source, index, training):
    """The sampled op of slot j of block b: one `tf.switch_case`, so only it runs. Candidates:
    the raw-input bank's (if any), then the slot bank's, `sources[k]` (a `state_list.ListRead`)
    feeding its candidate k.

    In training the slot is `slot_case.run_slot`: a Case over branch functions shared by every
    slot of the same layout, differentiated from the sampled op's saved intermediates."""
    banks, feeds = [self.banks[b][j]], [sources]  # feeds[i][k]: the input of candidate k
    if self.raw_banks is not None:
      banks.insert(0, self.raw_banks[b][j])
      feeds.insert(0, [raw_source] * len(self.raw_banks[b][j]))
    inputs = []  # distinct sources, by identity
    candidates = []  # (bank position, candidate index in the bank, input position)
    for pos, srcs in enumerate(feeds):
      for k, x in enumerate(srcs):
        where = next((n for n, t in enumerate(inputs) if t is x), None)
        if where is None:
          inputs.append(x)
          where = len(inputs) - 1
        candidates.append((pos, k, where))
    if not training:
      return switch_case(index, [
          lambda pos=pos, k=k, w=w: banks[pos].infer(k, inputs[w].get(inputs[w].handle))
          for pos, k, w in candidates])
    return slot_case.run_slot(index, banks, candidates, inputs, self.banks[0][0].shared_ops.slots)

  def call(self, pp: CellOutput, p: CellOutput, arc_cell: tf.Tensor,
           training=None) -> CellOutput:
    h0 = pp[0][0] if self.adjust is None else self.adjust.call(pp, training=training)
    # `.call`, not Keras' __call__: a cell output holds a StateList, which Keras rejects as an
    # argument (the layers are built and cast their kernels themselves)
    h1 = self.squeeze.call(p, training=training)
    raw = self.raw_banks is not None
    n = len(self.op_names)
    states = [h0, h1]
    static = h1.shape.as_list()
    static[-1] = self.filters
    if self.reduction:
      static[1:3] = [None if d is None else (d + 1) // 2 for d in static[1:3]]
    arc = tf.reshape(arc_cell, [self.num_blocks, 4])

    # the states a block can read, as lists (one read per slot; enas/state_list.py). The cell
    # inputs and the block outputs of a reduction cell live at different resolutions; a raw
    # h(i-2) has its own channels and op bank
    first = 1 if raw else 0
    readable = state_list.StateList(states[first:2])
    raw_read = state_list.StateList([h0]).read(tf.constant(0)) if raw else None
    block_outputs: Optional[state_list.StateList] = None
    for b in range(self.num_blocks):
      if b and self.reduction:
        if block_outputs is None:
          block_outputs = state_list.StateList([states[-1]])
        else:
          block_outputs.push(states[-1])
      elif b:
        readable.push(states[-1])
      outs = []
      for j in range(2):
        i, o = arc[b, j], arc[b, 2 + j]
        if self.reduction:
          x_in = readable.read(i - first)
          # block 0 can read only the cell inputs: the stride-2 candidates alone
          sources = [x_in] * n + ([block_outputs.read(i - 2)] * n if b else [])
          index = o + n * tf.cast(i >= 2, tf.int32)
        else:
          sources = [readable.read(i - first)] * n
          index = o
        if raw:
          index = tf.where(tf.equal(i, 0), o, n + index)
        y = self._branch(b, j, sources, raw_read, index, training)
        y = tf.ensure_shape(y, static)
        if self.drop is not None:  # ScheduledDropPath on every op but identity
          y = tf.where(tf.equal(o, self.identity_index), y, self.drop(y, training=training))
        outs.append(y)
      states.append(outs[0] + outs[1])
    used = tf.reduce_sum(tf.one_hot(tf.reshape(arc[:, :2], [-1]), self.num_states,
                                    dtype=tf.int32), axis=0)
    for i, layer in self.concat_fix.items():  # only when the state is concatenated
      zeros = lambda: tf.zeros_like(states[2])
      states[i] = tf.cond(tf.equal(used[i], 0),
                          lambda layer=layer, x=states[i]: layer.call(single(x), training=training),
                          zeros)
    mask = tf.cast(tf.equal(used, 0), tf.float32)
    if raw or self.concat_fix:  # the states differ from the readable ones: a list of their own
      return tuple(states), mask, state_list.StateList(states)
    # the readable list continued, so that the consumers' gradients (sparse lists) and the
    # picks' add up before any entry is materialized
    readable.push(states[-1])
    return tuple(states), mask, readable


class Supernet(keras.layers.Layer):
  """CIFAR-body supernet (stem, 3 stacks of `num_cells` cells, 2 reduction cells, optional aux
  head, classifier), the shared-weight twin of `child.network.build_cifar_network`."""

  def __init__(self, space: search_space_lib.SearchSpace, num_classes: int,
               input_shape: Sequence[int], num_cells: int = 2, filters: int = 20,
               stem_multiplier: int = 3, stem_stride: int = 1, aux_head: bool = False,
               dropout: float = 0.0, drop_path_rate: float = 0.0,
               bn_momentum: float = 0.9, bn_epsilon: float = 1e-5, **kwargs):
    super().__init__(**kwargs)
    if space.search_combine:
      raise ValueError("the ENAS supernet searches add-combined blocks only; use a search space "
                       "with search_combine=False")
    self.space, self.num_classes = space, num_classes
    self.image_shape = tuple(int(d) for d in input_shape)
    self.num_cells, self.filters = num_cells, filters
    # the child of an architecture is `build_cifar_network(genotype, **self.child_kwargs)`
    self.child_kwargs = dict(
        num_classes=num_classes, input_shape=self.image_shape, num_cells=num_cells,
        filters=filters, stem_multiplier=stem_multiplier, stem_stride=stem_stride,
        aux_head=aux_head, dropout=dropout, drop_path_rate=drop_path_rate,
        bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    self.drop_path_progress = tf.Variable(0.0, trainable=False, name="drop_path_progress")
    norm = {"bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon, "l2": 0.0}
    self.stem = keras.layers.Conv2D(stem_multiplier * filters, 3, strides=stem_stride,
                                    padding="same", use_bias=False,
                                    kernel_initializer="he_normal", name="stem_conv")
    self.stem_bn = ops.batch_norm(norm, name="stem_bn")
    self.stem.build((None,) + self.image_shape)
    self.stem_bn.build((None, None, None, stem_multiplier * filters))
    total = 3 * num_cells + 2
    states = space.num_blocks + 2
    prev = [(1, stem_multiplier * filters), (1, stem_multiplier * filters)]
    pp_reduce = False
    self.cells: List[SuperCell] = []
    self._shared_ops = op_bank.SharedOps()  # each op configuration traced once
    self.aux_after: Optional[int] = None
    for stack in range(3):
      f = filters * 2 ** stack
      kinds = ([True] if stack else []) + [False] * num_cells
      for reduction in kinds:
        index = len(self.cells)
        if reduction and stack == 2 and aux_head:
          self.aux_after = index - 1
        self.cells.append(SuperCell(
            space.op_names, space.num_blocks, f, reduction, pp=prev[0], p=prev[1],
            pp_reduce=pp_reduce, norm=norm, drop_prob=drop_path_rate * (index + 1) / total,
            drop_path_progress=self.drop_path_progress, pp_raw=index == 0,
            shared_ops=self._shared_ops,
            name=f"{'reduction' if reduction else 'normal'}_{index}"))
        prev = [prev[1], (states, f)]
        pp_reduce = reduction
    last_states, last_f = prev[1]
    # read as float32 under a mixed policy: the classifier computes in float32
    self.head_kernel = self.add_weight(name="logits_kernel",
                                       shape=(last_states, last_f, num_classes),
                                       initializer="glorot_uniform", autocast=False)
    self.head_bias = self.add_weight(name="logits_bias", shape=(num_classes,), initializer="zeros",
                                     autocast=False)
    self.dropout = keras.layers.Dropout(dropout, dtype="float32") if dropout else None
    if aux_head:  # child/network._aux_head (TF-slim _build_aux_head)
      side = math.ceil(math.ceil(self.image_shape[0] / stem_stride) / 2)  # second stack's maps
      if side < 5:
        raise ValueError(f"aux_head needs the second stack's maps to be at least 5x5 for its "
                         f"5x5 average pool; {self.image_shape[0]}px images with stem_stride="
                         f"{stem_stride} give {side}x{side}")
      pooled = (side - 5) // 3 + 1
      self.aux_proj = MaskedConv1x1(states, filters * 2, 128, norm, relu=False, name="aux_proj")
      self.aux_conv = keras.layers.Conv2D(768, pooled, padding="same", use_bias=False,
                                          kernel_initializer="he_normal", name="aux_conv")
      self.aux_conv.build((None, pooled, pooled, 128))
      self.aux_bn = ops.batch_norm(norm, name="aux_bn")
      self.aux_bn.build((None, pooled, pooled, 768))
      self.aux_logits = keras.layers.Dense(num_classes, name="aux_logits", dtype="float32")
      self.aux_logits.build((None, 768))
    # every weight exists now (no build pass: it would trace every switch_case branch)
    self.built = True

  def _aux(self, x: CellOutput, training):
    states, mask = x[0], x[1]
    pooled = tuple(tf.nn.avg_pool2d(tf.nn.relu(s), 5, 3, "VALID") for s in states)
    x = tf.nn.relu(self.aux_proj.call((pooled, mask, None), training=training))
    x = tf.nn.relu(self.aux_bn(self.aux_conv(x), training=training))
    return self.aux_logits(tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2]))

  def call(self, images: tf.Tensor, arc: tf.Tensor, training=None,
           dropout: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Logits (and aux logits) of the architecture `arc` on `images`; `dropout` (default:
    `training`) applies the classifier's dropout (off for a batch-statistics score)."""
    arc = tf.reshape(tf.cast(arc, tf.int32), [2, -1])
    x = self.stem_bn(self.stem(images), training=training)
    pp = p = single(x)
    aux = None
    for index, cell in enumerate(self.cells):
      # `.call`: Keras rejects a StateList argument (every cell is built; see SuperCell.call)
      out = cell.call(pp, p, arc[1 if cell.reduction else 0], training=training)
      pp, p = p, out
      if index == self.aux_after and training:
        aux = self._aux(p, training)
    states, mask = p[0], p[1]
    pooled = tf.concat([tf.reduce_mean(tf.cast(tf.nn.relu(s), tf.float32), axis=[1, 2])
                        for s in states], axis=-1)  # [batch, S * C], in float32 for the head
    if self.dropout is not None:
      pooled = self.dropout(pooled, training=training if dropout is None else dropout)
    logits = tf.matmul(pooled, masked_rows(self.head_kernel, mask)) + self.head_bias
    out = {"logits": logits}
    if aux is not None:
      out["aux_logits"] = aux
    return out
