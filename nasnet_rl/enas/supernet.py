"""ENAS shared-weight supernet: one weight set per (cell, block, input slot, op); the
architecture is an int tensor, and `tf.switch_case` runs only the sampled input and op.

The cell is the NASNet cell of `child/cell.py` (same preprocessing, stride-2 ops on the cell
inputs of a reduction cell, unused states concatenated), so a cell derived here is trained later
by the same code that it was scored with, unlike the official ENAS code whose search and fixed
cells differ. The concatenated output has a per-architecture channel count; it is kept as a
stack of states plus the indices of the concatenated ones, and every consumer (the next cells'
1x1 convs, the heads) contracts it with the matching rows of its kernel (`tf.gather`), which is
exactly a 1x1 conv over the concatenation.

Architecture tensor = the search space's decision list, int32 [2 * B * 4]: per cell (normal,
reduction) and block, (input 0, input 1, op 0, op 1) — see `search_space.SearchSpace`.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from nasnet_rl import search_space as search_space_lib
from nasnet_rl.child import ops
from nasnet_rl.enas import op_bank

# a cell output: (stack of states [S, batch, H, W, C], int32 indices of the concatenated ones)
Stacked = Tuple[tf.Tensor, tf.Tensor]


def stacked(x: tf.Tensor) -> Stacked:
  """A plain feature map as a one-state stack."""
  return x[None], tf.zeros([1], tf.int32)


class GatheredConv1x1(keras.layers.Layer):
  """ReLU -> 1x1 conv over the concatenation of the selected states -> BN; kernel rows per
  state slot, so any subset of up to `num_states` states of `channels` each can come in.
  `reduce=True` is the factorized reduction (two half convs on the even and shifted grid)."""

  def __init__(self, num_states: int, channels: int, filters: int, norm: Dict[str, Any],
               reduce: bool = False, relu: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.num_states, self.channels, self.filters = num_states, channels, filters
    self.reduce, self.relu = reduce, relu
    halves = (filters // 2, filters - filters // 2) if reduce else (filters,)
    self.kernels = [self.add_weight(name=f"kernel_{i}", shape=(num_states, channels, f),
                                    initializer="he_normal") for i, f in enumerate(halves)]
    self.bn = ops.batch_norm(norm)
    self.bn.build((None, None, None, filters))

  def call(self, inputs: Stacked, training=None):
    stack, idx = inputs
    x = tf.gather(stack, idx)
    if self.relu:
      x = tf.nn.relu(x)
    if self.reduce:
      paths = [x[:, :, ::2, ::2, :],
               tf.pad(x, [[0, 0], [0, 0], [0, 1], [0, 1], [0, 0]])[:, :, 1::2, 1::2, :]]
    else:
      paths = [x]
    outs = [tf.einsum("kbhwc,kcf->bhwf", p, tf.gather(w, idx)) for p, w in zip(paths, self.kernels)]
    return self.bn(outs[0] if len(outs) == 1 else tf.concat(outs, -1), training=training)


class SuperCell(keras.layers.Layer):
  """All candidate ops of one cell position; `call(pp, p, arc_cell)` runs the sampled cell.

  `pp`, `p` are `Stacked` inputs with `pp_channels`/`p_channels` per state and `pp_states`/
  `p_states` state slots; `pp_reduce` when h(i-2) is at twice the resolution of h(i-1)."""

  def __init__(self, op_names: Sequence[str], num_blocks: int, filters: int, reduction: bool,
               pp: Tuple[int, int], p: Tuple[int, int], pp_reduce: bool,
               norm: Dict[str, Any], drop_prob: float = 0.0,
               drop_path_progress: Optional[tf.Variable] = None, **kwargs):
    super().__init__(**kwargs)
    self.op_names, self.num_blocks = tuple(op_names), num_blocks
    self.filters, self.reduction = filters, reduction
    f = filters
    self.adjust = GatheredConv1x1(pp[0], pp[1], f, norm, reduce=pp_reduce, name="adjust")
    self.squeeze = GatheredConv1x1(p[0], p[1], f, norm, name="squeeze")
    strides = (2, 1) if reduction else (1,)
    # banks[b][slot]: ops at stride 2 (cell inputs of a reduction cell), then at stride 1
    self.banks: List[List[op_bank.OpBank]] = [
        [op_bank.OpBank(self.op_names, f, strides, norm, name=f"b{b}_{j}") for j in range(2)]
        for b in range(num_blocks)]
    self.identity_index = (self.op_names.index("identity") if "identity" in self.op_names
                           else -1)
    self.drop = (ops.DropPath(drop_prob, drop_path_progress, name="drop_path")
                 if drop_prob > 0 else None)
    self.concat_reduce = ([ops.FactorizedReduce(f, relu=False, norm=norm, name=f"concat_reduce_{i}")
                           for i in range(2)] if reduction else [])

  @property
  def num_states(self) -> int:
    return self.num_blocks + 2

  def _branch(self, b, j, x_in, x_blk, op_index, from_input, training):
    """The sampled op of slot j of block b: one `tf.switch_case`, so only it runs."""
    n = len(self.op_names)
    if self.reduction:  # stride-2 candidates read the cell input, stride-1 ones a block output
      index = op_index + n * (1 - tf.cast(from_input, tf.int32))
      sources = [x_in] * n + [x_blk] * n
    else:
      index, sources = op_index, [x_in] * n
    return tf.switch_case(index, self.banks[b][j].branches(sources, bool(training)))

  def call(self, pp: Stacked, p: Stacked, arc_cell: tf.Tensor, training=None) -> Stacked:
    h0, h1 = self.adjust(pp, training=training), self.squeeze(p, training=training)
    states = [h0, h1]
    static = h1.shape.as_list()
    if self.reduction:
      static[1:3] = [None if d is None else (d + 1) // 2 for d in static[1:3]]
    arc = tf.reshape(arc_cell, [self.num_blocks, 4])
    inputs_stack = tf.stack([h0, h1])
    for b in range(self.num_blocks):
      # inputs are picked with tf.gather (cheap to trace and to differentiate); in a
      # reduction cell the cell inputs and the block outputs live at different resolutions
      if self.reduction:
        blocks_stack = tf.stack(states[2:]) if b else None
      else:
        inputs_stack = tf.stack(states)
      outs = []
      for j in range(2):
        i, o = arc[b, j], arc[b, 2 + j]
        x_in = tf.gather(inputs_stack, tf.minimum(i, len(states) - 1 if not self.reduction else 1))
        x_blk = (tf.gather(blocks_stack, tf.maximum(i - 2, 0)) if self.reduction and b
                 else x_in[:, ::2, ::2, :] if self.reduction else None)
        y = self._branch(b, j, x_in, x_blk, o, i < 2, training)
        y = tf.ensure_shape(y, static)
        if self.drop is not None:  # ScheduledDropPath on every op but identity
          y = tf.where(tf.equal(o, self.identity_index), y, self.drop(y, training=training))
        outs.append(y)
      states.append(outs[0] + outs[1])
    if self.reduction:
      states[:2] = [layer(s, training=training) for layer, s in zip(self.concat_reduce, states[:2])]
    used = tf.reduce_sum(tf.one_hot(tf.reshape(arc[:, :2], [-1]), self.num_states,
                                    dtype=tf.int32), axis=0)
    unused = tf.cast(tf.reshape(tf.where(tf.equal(used, 0)), [-1]), tf.int32)
    return tf.stack(states), unused


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
    self.drop_path_progress = tf.Variable(0.0, trainable=False, name="drop_path_progress")
    norm = {"bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon, "l2": 0.0}
    self.stem = keras.layers.Conv2D(stem_multiplier * filters, 3, strides=stem_stride,
                                    padding="same", use_bias=False,
                                    kernel_initializer="he_normal", name="stem_conv")
    self.stem_bn = ops.batch_norm(norm, name="stem_bn")
    total = 3 * num_cells + 2
    states = space.num_blocks + 2
    prev = [(1, stem_multiplier * filters), (1, stem_multiplier * filters)]
    pp_reduce = False
    self.cells: List[SuperCell] = []
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
            drop_path_progress=self.drop_path_progress,
            name=f"{'reduction' if reduction else 'normal'}_{index}"))
        prev = [prev[1], (states, f)]
        pp_reduce = reduction
    last_states, last_f = prev[1]
    self.head_kernel = self.add_weight(name="logits_kernel",
                                       shape=(last_states, last_f, num_classes),
                                       initializer="glorot_uniform")
    self.head_bias = self.add_weight(name="logits_bias", shape=(num_classes,), initializer="zeros")
    self.dropout = keras.layers.Dropout(dropout) if dropout else None
    if aux_head:
      aux_f = filters * 2
      self.aux_proj = GatheredConv1x1(states, aux_f, 128, norm, relu=False, name="aux_proj")
      self.aux_rest = keras.Sequential([
          keras.layers.ReLU(), keras.layers.Conv2D(768, 1, use_bias=False),
          ops.batch_norm(norm), keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(),
          keras.layers.Dense(num_classes)], name="aux_rest")
    self._built_all = False

  def _aux(self, x: Stacked, training):
    stack, idx = x
    s = tf.shape(stack)
    flat = tf.reshape(tf.nn.relu(stack), tf.concat([[-1], s[2:]], 0))
    pooled = tf.nn.avg_pool2d(flat, 5, 3, "VALID")
    ps = tf.shape(pooled)
    pooled = tf.reshape(pooled, tf.concat([s[:2], ps[1:]], 0))
    return self.aux_rest(self.aux_proj((pooled, idx), training=training), training=training)

  def call(self, images: tf.Tensor, arc: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
    """Logits (and aux logits) of the architecture `arc` on `images`."""
    if not self._built_all:
      self._build_all(images)
    arc = tf.reshape(tf.cast(arc, tf.int32), [2, -1])
    x = self.stem_bn(self.stem(images), training=training)
    pp = p = stacked(x)
    aux = None
    for index, cell in enumerate(self.cells):
      out = cell(pp, p, arc[1 if cell.reduction else 0], training=training)
      pp, p = p, out
      if index == self.aux_after and training:
        aux = self._aux(p, training)
    stack, idx = p
    pooled = tf.reduce_mean(tf.nn.relu(tf.gather(stack, idx)), axis=[2, 3])  # [k, batch, C]
    if self.dropout is not None:
      pooled = self.dropout(pooled, training=training)
    logits = tf.einsum("kbc,kcn->bn", pooled, tf.gather(self.head_kernel, idx)) + self.head_bias
    out = {"logits": logits}
    if aux is not None:
      out["aux_logits"] = aux
    return out

  def _build_all(self, images):
    """One eager pass (a valid all-zeros architecture) creates the Keras sublayers' weights
    before any tf.function traces; the op banks made theirs at construction."""
    self._built_all = True
    x = tf.zeros((2,) + tuple(images.shape[1:]), images.dtype)
    self.call(x, tf.zeros([2 * self.space.num_blocks * 4], tf.int32), training=True)
    self.built = True


def weight_decay_loss(model: keras.layers.Layer, l2: float) -> tf.Tensor:
  """`l2 * sum(w^2)` over all trainable weights, as ENAS' child_l2_reg (src/utils.py
  get_train_ops sums var ** 2 over every trainable variable)."""
  return l2 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in model.trainable_variables])
