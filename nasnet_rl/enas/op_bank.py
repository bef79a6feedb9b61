"""The candidate ops of one supernet slot, written with raw TF ops over the slot's own weights.

Same computations as the Keras op layers of `child/ops.py` (`ops.make_op`: ReLU-SepConv-BN
twice, ReLU-Conv-BN, same-padded pools with a 1x1 conv-BN projection when the input has other
channels, factorized reduction for a stride-2 identity, ReLU-1x1 conv-BN for a stride-1 identity
that changes channels), but without Keras' per-call machinery: a supernet has hundreds of
candidate ops inside `tf.switch_case` branches, and the Keras layers made its graph ~65 ops per
candidate, i.e. minutes of tracing. `op_weights` names each op's weights so that
`enas/export.py` can copy them into the child's layers (tests/test_enas_equivalence.py).

Each op configuration (op, stride, channels, BN settings, dtype) runs as one traced function
shared by every bank of a supernet (`SharedOps`: inference, training that returns the new BN
statistics, and TF's forward/backward pair of the training function: a forward that also
returns the intermediates of the backward, packed in one variant, and the backward that takes
them, so that a slot's gradient does not run its op again), called with the op's slices of the
bank's flat vectors: a slot's branch is then a slice and a call, and the supernet's graph no
longer grows with a copy of every op per slot (enas/slot_case.py).

Mixed precision (nasnet_rl/precision.py): a bank built under a 'mixed_*' dtype policy keeps
both flat vectors float32 and reads them without Keras' autocast; the kernels are cast to the
compute dtype where an op uses them, while BatchNorm gets float32 gamma, beta and moving
statistics (the fused kernel takes a half-precision input with float32 statistics) and its EMA
update is assigned to the float32 statistics variable itself.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from nasnet_rl import ops_vocabulary
from nasnet_rl.child import ops
from nasnet_rl.enas import slot_case


class OpBank(keras.layers.Layer):
  """Every op of `op_names` at every stride of `strides`, mapping `in_channels` (default
  `filters`) to `filters` channels; `apply(index, x, training)` runs candidate `index`
  (stride-major: every op at the first stride, then at the next). A bank with
  `in_channels != filters` holds the ops that read the stem output raw in the first cell (the
  child's `raw_prev_prev`).

  All weights of the bank live in one flat trainable vector (and the BN moving statistics in one
  flat non-trainable vector) that each op slices: a `tf.switch_case` gives every branch dummy
  inputs for the captures of all other branches, so per-op variables made tracing quadratic."""

  def __init__(self, op_names: Sequence[str], filters: int, strides: Sequence[int],
               norm: Dict[str, Any], in_channels: Optional[int] = None,
               shared: Optional["SharedOps"] = None, template: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.norm = dict(norm)
    self._template = template  # a weightless one-op bank whose body the shared functions run
    self.op_names, self.filters, self.strides = tuple(op_names), int(filters), tuple(strides)
    self.in_channels = int(filters if in_channels is None else in_channels)
    self.momentum, self.epsilon = norm["bn_momentum"], norm["bn_epsilon"]
    self._init = {True: [], False: []}
    self._size = {True: 0, False: 0}
    self._ops: List[Callable] = []
    self._pieces: List[List[tuple]] = []  # per op: its weight slices, contiguous per vector
    self._piece_names: List[List[str]] = []  # per op: the role of each slice (op_weights)
    for s in self.strides:
      for name in self.op_names:
        self._new_pieces, self._new_names = [], []
        self._ops.append(self._make(name, s))
        self._pieces.append(self._new_pieces)
        self._piece_names.append(self._new_names)
    flat = lambda trainable: (np.concatenate(self._init[trainable]) if self._init[trainable]
                              else np.zeros([0], np.float32))
    self._size_params = self._size[True]
    if not template:
      # autocast=False: under a mixed policy `.value` stays the float32 variable (see module doc)
      self.params = self.add_weight(name="params", shape=(self._size[True],), autocast=False,
                                    initializer=keras.initializers.Constant(flat(True)))
      self.stats = self.add_weight(name="bn_stats", shape=(self._size[False],), trainable=False,
                                   autocast=False,
                                   initializer=keras.initializers.Constant(flat(False)))
    del self._init
    self._reads = {}
    self._collected = None
    self._shared = shared if shared is not None else SharedOps()
    self._spans = [self._span(pieces) for pieces in self._pieces]
    if not template:  # the shared functions exist before any tracing (they hold no weights)
      for index in range(len(self._ops)):
        self._kernel_of(index)
    del self._new_pieces, self._new_names
    self.built = True

  # --- weights: (offset, shape) slices of the flat vectors ----------------------------------

  def _slice(self, name, shape, initializer, trainable=True):
    values = (np.zeros([int(np.prod(shape))], np.float32) if self._template else
              np.asarray(keras.initializers.get(initializer)(shape), np.float32).ravel())
    offset = self._size[trainable]
    self._size[trainable] += values.size
    self._init[trainable].append(values)
    piece = (trainable, offset, tuple(shape))
    self._new_pieces.append(piece)
    self._new_names.append(name)
    return piece

  def _read_all(self, pieces, params=None, stats=None):
    """All weights of one op from one slice + split per flat vector (few graph ops: a
    supernet has hundreds of branches, and graph building costs ~1 ms per op). `params` /
    `stats`: the flat vectors as tensors (default: read from the variables)."""
    out = {}
    for trainable in (True, False):
      mine = [p for p in pieces if p[0] == trainable]
      if not mine:
        continue
      start = mine[0][1]
      sizes = [int(np.prod(p[2])) for p in mine]
      flat = params if trainable else stats
      if flat is None:
        flat = tf.convert_to_tensor((self.params if trainable else self.stats).value)
      parts = tf.split(tf.slice(flat, [start], [sum(sizes)]), sizes) if len(mine) > 1 else [
          tf.slice(flat, [start], [sizes[0]])]
      for p, t in zip(mine, parts):
        out[p] = tf.reshape(t, p[2]) if len(p[2]) > 1 else t
    return out

  def _read(self, piece):
    """A kernel, in the compute dtype (a no-op under float32)."""
    return tf.cast(self._reads[piece], self.compute_dtype)

  def _kernel(self, name, shape, initializer="he_normal"):
    return self._slice(name, shape, initializer)

  def _bn(self, prefix):
    f = (self.filters,)
    return {"gamma": self._slice(f"{prefix}/gamma", f, "ones"),
            "beta": self._slice(f"{prefix}/beta", f, "zeros"),
            "mean": self._slice(f"{prefix}/moving_mean", f, "zeros", trainable=False),
            "var": self._slice(f"{prefix}/moving_variance", f, "ones", trainable=False)}

  def op_weights(self, index: int) -> Dict[str, np.ndarray]:
    """The current weights of candidate `index` (stride-major, as `apply`) by role:
    'sep{0,1}/depthwise', 'sep{0,1}/pointwise', 'conv{0,1}' (a factorized conv has two),
    'project' (a pool's 1x1 projection), 'kernel' (an identity's 1x1), 'even'/'odd' (a
    factorized reduction), and '<bn>/gamma|beta|moving_mean|moving_variance' for its BNs."""
    params, stats = self.params.numpy(), self.stats.numpy()
    out = {}
    for (trainable, offset, shape), name in zip(self._pieces[index], self._piece_names[index]):
      flat = params if trainable else stats
      out[name] = flat[offset:offset + int(np.prod(shape))].reshape(shape)
    return out

  def _batch_norm(self, x, bn, training):
    # float32 gamma, beta and statistics whatever the dtype of x (as child/ops.BatchNorm)
    gamma, beta = self._reads[bn["gamma"]], self._reads[bn["beta"]]
    mean, var = self._reads[bn["mean"]], self._reads[bn["var"]]
    if training:
      y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
          x, gamma, beta, mean=mean, variance=var, epsilon=self.epsilon, is_training=True,
          exponential_avg_factor=1.0 - self.momentum)
      if self._collected is not None:  # a shared op function returns the new statistics
        self._collected += [(bn["mean"][1], batch_mean), (bn["var"][1], batch_var)]
        return y
      stats = self.stats.value  # the float32 tf.Variable itself (never autocast)
      for piece, value in ((bn["mean"], batch_mean), (bn["var"], batch_var)):
        offset = piece[1]
        stats[offset:offset + self.filters].assign(value)
      return y
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, mean=mean, variance=var,
                                               epsilon=self.epsilon, is_training=False)
    return y

  # --- ops -------------------------------------------------------------------------------

  def _make(self, name: str, stride: int) -> Callable:
    spec = ops_vocabulary.OP_SPECS[name]
    f, k, c = self.filters, spec.kernel, self.in_channels
    if spec.kind == "sep_conv":
      layers = [(self._kernel(f"sep{i}/depthwise", (k, k, ci, 1), "glorot_uniform"),
                 self._kernel(f"sep{i}/pointwise", (1, 1, ci, f)), self._bn(f"sep{i}/bn"))
                for i, ci in enumerate((c, f))]

      def sep(x, training):
        for i, (dw, pw, bn) in enumerate(layers):
          x = ops.separable_same(tf.nn.relu(x), self._read(dw), self._read(pw),
                                 stride if i == 0 else 1, training=training)
          x = self._batch_norm(x, bn, training)
        return x
      return sep
    if spec.kind in ("conv", "dil_conv", "factorized_conv"):
      shapes = ([(1, k, c, f), (k, 1, f, f)] if spec.kind == "factorized_conv" else [(k, k, c, f)])
      kernels = [self._kernel(f"conv{i}", s) for i, s in enumerate(shapes)]
      bn = self._bn("bn")

      def conv(x, training):
        x = tf.nn.relu(x)
        if spec.kind == "factorized_conv":
          x = tf.nn.conv2d(x, self._read(kernels[0]), [1, 1, stride, 1], "SAME")
          x = tf.nn.conv2d(x, self._read(kernels[1]), [1, stride, 1, 1], "SAME")
        elif spec.kind == "dil_conv":
          x = tf.nn.conv2d(x, self._read(kernels[0]), 1, "SAME", dilations=spec.dilation)
          x = x[:, ::stride, ::stride, :]
        elif k == 1 and stride == 1:
          x = ops.pointwise(x, self._read(kernels[0]), training=training)
        else:
          x = tf.nn.conv2d(x, self._read(kernels[0]), stride, "SAME")
        return self._batch_norm(x, bn, training)
      return conv
    if spec.kind in ("avg_pool", "max_pool"):
      pool = tf.nn.avg_pool2d if spec.kind == "avg_pool" else tf.nn.max_pool2d
      if c == f:
        return lambda x, training: pool(x, k, stride, "SAME")
      project, bn = self._kernel("project", (1, 1, c, f)), self._bn("bn")

      def pool_project(x, training):  # as child/ops.Pool(project=True): no ReLU before the 1x1
        x = ops.pointwise(pool(x, k, stride, "SAME"), self._read(project), training=training)
        return self._batch_norm(x, bn, training)
      return pool_project
    if spec.kind == "identity":
      if stride == 1 and c == f:
        return lambda x, training: x
      if stride == 1:  # as child/ops.ReluConvBN(f): the raw stem into a cell of other width
        kernel, bn = self._kernel("kernel", (1, 1, c, f)), self._bn("bn")
        return lambda x, training: self._batch_norm(
            ops.pointwise(tf.nn.relu(x), self._read(kernel), training=training), bn, training)
      halves = [self._kernel(part, (1, 1, c, n)) for part, n in (("even", f // 2),
                                                                 ("odd", f - f // 2))]
      bn = self._bn("bn")

      def reduce(x, training):  # factorized reduction, as child/ops.FactorizedReduce(relu=False)
        y = ops.factorized_reduction(x, self._read(halves[0]), self._read(halves[1]), training)
        return self._batch_norm(y, bn, training)
      return reduce
    raise ValueError(f"op {name!r} has unsupported kind {spec.kind!r}")

  @staticmethod
  def _span(pieces):
    """(start, size) of an op's slice of each flat vector (its pieces are contiguous)."""
    out = []
    for trainable in (True, False):
      mine = [p for p in pieces if p[0] == trainable]
      out.append((mine[0][1] if mine else 0, sum(int(np.prod(p[2])) for p in mine)))
    return tuple(out)

  def _op_slices(self, index, params=None, stats=None):
    """Candidate `index`'s slices of `params` and `stats` (default: the variables)."""
    (ps, pn), (ss, sn) = self._spans[index]
    params = tf.convert_to_tensor(self.params.value) if params is None else params
    stats = tf.convert_to_tensor(self.stats.value) if stats is None else stats
    return tf.slice(params, [ps], [pn]), tf.slice(stats, [ss], [sn])

  @property
  def shared_ops(self) -> "SharedOps":
    """The supernet-wide cache of op functions this bank calls."""
    return self._shared

  @property
  def layout_key(self) -> tuple:
    """What the slices and the op functions of this bank depend on: two banks with the same key
    lay out their flat vectors alike and run the same functions (`slot_case`)."""
    return (self.op_names, self.filters, self.strides, self.in_channels, self.momentum,
            self.epsilon, self.dtype_policy.name)

  def _kernel_of(self, index):
    stride = self.strides[index // len(self.op_names)]
    name = self.op_names[index % len(self.op_names)]
    return self._shared.get(self, name, stride)

  def infer(self, index: int, x: tf.Tensor) -> tf.Tensor:
    """Candidate `index` on `x` in inference, its weights sliced from the variables. The op runs
    as a function shared by every bank's copy of it (`SharedOps`), so a supernet traces each
    (op, stride, shape) once instead of once per slot."""
    p, st = self._op_slices(index)
    return self._kernel_of(index).infer(x, p, st)

  def train_saving(self, index: int, x: tf.Tensor, params: tf.Tensor,
                   stats: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Candidate `index` on `x` in training, its weights sliced from the flat vectors `params`
    and `stats`: (output, `stats` with the op's BN statistics updated, the intermediates its
    backward needs as one variant for `grad_saved`; `_SharedOp.train_saving`)."""
    p, st = self._op_slices(index, params, stats)
    y, new_st, saved = self._kernel_of(index).train_saving(x, p, st)
    (ss, sn) = self._spans[index][1]
    if sn:
      stats = tf.concat([stats[:ss], new_st, stats[ss + sn:]], 0)
    return y, stats, saved

  def grad_saved(self, index: int, x: tf.Tensor, params: tf.Tensor, stats: tf.Tensor,
                 saved: tf.Tensor, dy: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(d x, d params) of `train_saving` for the output gradient `dy`, from its `saved`
    intermediates; d params is the size of the whole flat vector."""
    p, st = self._op_slices(index, params, stats)
    dx, dp = self._kernel_of(index).grad_saved(x, p, st, saved, dy)
    (ps, pn) = self._spans[index][0]
    return dx, tf.pad(dp, [[ps, self._size_params - ps - pn]])

  def run_op(self, index: int, x: tf.Tensor, p: tf.Tensor, st: tf.Tensor, training: bool):
    """The op on its own weight slices `p` / statistics `st` (a one-op template bank's body):
    (y, new statistics) in training, y in inference."""
    self._reads = self._read_all(self._pieces[index], p, st)
    self._collected = [] if training else None
    try:
      y = self._ops[index](x, bool(training))
      if not training:
        return y
      values = [v for _, v in sorted(self._collected, key=lambda item: item[0])]
      return y, (tf.concat(values, 0) if values else st)
    finally:
      self._reads, self._collected = {}, None

  def __len__(self) -> int:
    return len(self._ops)


class _SharedOp:
  """The traced functions of one (op, stride, channels, norm, dtype): inference, training
  (output and new BN statistics), its forward/backward pair and a recomputing gradient (max
  pools; a TF without the pair), each traced once for every slot and every replica
  (`_call`)."""

  # traced and optimized once, called from every slot (dev/bench_enas_dispatch.py measures
  # the step with these calls inlined)
  CALL_ATTRIBUTES = {"_noinline": True}

  def __init__(self, template: OpBank):
    attrs = dict(self.CALL_ATTRIBUTES)
    self._infer = tf.function(lambda x, p, s: template.run_op(0, x, p, s, False),
                              reduce_retracing=True, autograph=False,
                              experimental_attributes=attrs)
    self._train = tf.function(lambda x, p, s: template.run_op(0, x, p, s, True),
                              reduce_retracing=True, autograph=False,
                              experimental_attributes=attrs)

    def grad(x, p, s, dy):
      with tf.GradientTape() as tape:
        tape.watch([x, p])
        y, _ = template.run_op(0, x, p, s, True)
      dx, dp = tape.gradient(y, [x, p], output_gradients=dy)
      return (tf.zeros_like(x) if dx is None else dx,
              tf.zeros_like(p) if dp is None else dp)
    self._grad = tf.function(grad, reduce_retracing=True, autograph=False,
                             experimental_attributes=attrs)

    self._pairs = {}  # training trace -> its forward/backward pair (_forward_backward)

  @property
  def functions(self) -> List[tf.types.experimental.PolymorphicFunction]:
    return [self._infer, self._train, self._grad]

  def _forward_backward(self, x, p, s):
    """TF's own forward/backward pair of the training function's trace for these arguments
    (what differentiating a call to it would use): a forward that also outputs the
    intermediates the backward needs, and the backward, which takes them as captures. Built
    once per trace, outside any device scope (as `_call`); None on a TF without this API."""
    with tf.device(None):
      concrete = self._train.get_concrete_function(x, p, s)
    key = id(concrete)
    if key not in self._pairs:
      pair = None
      rewrite = getattr(concrete, "_delayed_rewrite_functions", None)
      # a max pool's gradient apart from its forward cannot use oneDNN's (which needs the
      # forward's workspace): TF's own MaxPoolGrad took 16 ms of a 130 ms step; recomputing
      # the pool costs less
      max_pool = any(op.type.startswith("MaxPool") for op in concrete.graph.get_operations())
      if rewrite is not None and hasattr(rewrite, "forward_backward") and not max_pool:
        with tf.device(None):
          forward, backward = rewrite.forward_backward()
        # each capture of the backward: a forward output (its position), or a tensor as it is
        graph_outputs = list(rewrite._func_graph.outputs)  # pylint: disable=protected-access
        where = [next((i for i, t in enumerate(graph_outputs) if t is c), None)
                 for c in backward.captured_inputs]
        side = graph_outputs[2:]
        pair = (concrete, forward, backward, where, [t.dtype for t in side],
                [t.shape for t in side])
      self._pairs[key] = pair
    return self._pairs[key]

  def train_saving(self, x, p, s):
    """(y, new statistics, saved): the training function through TF's forward function, whose
    extra outputs (the intermediates of the backward) are packed into one variant (an
    Optional). Every branch of a slot's Case can return it alike (enas/slot_case.py), and
    `grad_saved` then differentiates the sampled op without running it again (the
    recomputation was ~18% of a supernet step's CPU time). On a TF without the pair, or for a
    max pool: saved is an empty Optional and `grad_saved` recomputes."""
    pair = self._forward_backward(x, p, s)
    if pair is None:
      y, new_stats = self.train(x, p, s)
      return y, new_stats, tf.raw_ops.OptionalNone()
    outs = pair[1].call_flat(x, p, s)
    side = list(outs[2:])
    saved = (tf.raw_ops.OptionalFromValue(components=side) if side else
             tf.raw_ops.OptionalNone())
    return outs[0], outs[1], saved

  def grad_saved(self, x, p, s, saved, dy):
    """(d x, d p) of the training function at `x` for the output gradient `dy`, from the
    intermediates `train_saving` packed into `saved` (recomputed on a TF without the pair)."""
    pair = self._forward_backward(x, p, s)
    if pair is None:
      return self.grad(x, p, s, dy)
    concrete, _, backward, where, types, shapes = pair
    side = (tf.raw_ops.OptionalGetValue(optional=saved, output_types=types,
                                        output_shapes=shapes) if types else [])
    outputs = [None, None] + list(side)
    captures = [c if i is None else outputs[i] for c, i in zip(backward.captured_inputs, where)]
    y, new_stats = concrete.structured_outputs
    doutputs = [tf.cast(dy, y.dtype), tf.zeros(new_stats.shape, new_stats.dtype)]
    dx, dp = backward._call_flat(doutputs, captures)[:2]  # pylint: disable=protected-access
    return (tf.zeros_like(x) if dx is None else dx, tf.zeros_like(p) if dp is None else dp)

  @staticmethod
  def _call(function, *args):
    """`function(*args)`, traced outside any device scope: tf.function keys its traces by the
    caller's device stack, so under MirroredStrategy every replica (its own device scope)
    would retrace every op. The call itself stays in the replica's scope, so the op runs
    on the replica's device (a function's unplaced ops run on its call's device)."""
    with tf.device(None):
      concrete = function.get_concrete_function(*args)
    return concrete(*args)

  def infer(self, x, p, s):
    return self._call(self._infer, x, p, s)

  def train(self, x, p, s):
    return self._call(self._train, x, p, s)

  def grad(self, x, p, s, dy):
    return self._call(self._grad, x, p, s, dy)


class SharedOps:
  """One `_SharedOp` per distinct op configuration, shared by the banks of one supernet."""

  def __init__(self):
    self._ops: Dict[tuple, _SharedOp] = {}
    self.slots = slot_case.SlotFunctions()  # the training op slots' Case branches

  def get(self, bank: OpBank, name: str, stride: int) -> _SharedOp:
    key = (name, stride, bank.filters, bank.in_channels, bank.momentum, bank.epsilon,
           bank.dtype_policy.name)
    if key not in self._ops:
      template = OpBank((name,), bank.filters, (stride,), bank.norm,
                        in_channels=bank.in_channels, template=True,
                        dtype=bank.dtype_policy, name=f"template_{len(self._ops)}")
      self._ops[key] = _SharedOp(template)
    return self._ops[key]
