"""Keras layers for the NASNet/ENAS cell ops, factorized reduction and ScheduledDropPath.

Gin-free and serializable (`get_config`), so a saved child reloads without this package's
configuration. `BatchNorm` runs TF's fused kernel: on CPU it is several times cheaper than the
moments + normalize graph of keras.layers.BatchNormalization, with the same variables.
"""

from typing import Any, Dict, Optional

import keras
import tensorflow as tf

from nasnet_rl import kernels
from nasnet_rl import ops_vocabulary

# Defaults of the NASNet ImageNet models (TF-slim nasnet.py mobile/large configs and Keras
# applications): BN decay 0.9997, epsilon 1e-3. The CIFAR recipe overrides them (0.9, 1e-5).
DEFAULT_NORM = {"bn_momentum": 0.9997, "bn_epsilon": 1e-3, "l2": 0.0}


def _reg(l2: float):
  return keras.regularizers.L2(l2) if l2 else None


@keras.saving.register_keras_serializable("nasnet_rl")
class BatchNorm(keras.layers.BatchNormalization):
  """BatchNormalization over the last axis of NHWC tensors using the fused TF kernel (one
  device or per-replica statistics), or global-batch moments when `synchronized`."""

  def call(self, inputs, training=None, mask=None):
    if len(inputs.shape) != 4 or self.axis != -1 and self.axis != 3:
      return super().call(inputs, training=training)
    x = tf.cast(inputs, self.gamma.dtype) if inputs.dtype == tf.float64 else inputs
    if self.synchronized and training and self.trainable:
      return tf.cast(self._synchronized_call(x), inputs.dtype)
    if training and self.trainable:  # a frozen BN normalizes with its moving statistics (Keras)
      y, mean, var = tf.compat.v1.nn.fused_batch_norm(
          x, self.gamma.value, self.beta.value, mean=self.moving_mean.value,
          variance=self.moving_variance.value, epsilon=self.epsilon, is_training=True,
          exponential_avg_factor=1.0 - self.momentum)
      self.moving_mean.assign(mean)
      self.moving_variance.assign(var)
    else:
      y, _, _ = tf.compat.v1.nn.fused_batch_norm(
          x, self.gamma.value, self.beta.value, mean=self.moving_mean.value,
          variance=self.moving_variance.value, epsilon=self.epsilon, is_training=False)
    return tf.cast(y, inputs.dtype)

  def _synchronized_call(self, x):
    """Training with the moments of the whole global batch (`synchronized=True`, set when
    training across replicas): one all-reduce of the per-channel sums, squared sums and count.
    The moving variance takes the unbiased (n / (n - 1)) batch variance, as the fused kernel
    does on one device, so a step's statistics do not depend on how the batch is split."""
    x32 = tf.cast(x, tf.float32)
    channels = tf.shape(x32)[-1]
    count = tf.cast(tf.size(x32) // channels, tf.float32)
    stats = tf.concat([tf.reduce_sum(x32, [0, 1, 2]), tf.reduce_sum(tf.square(x32), [0, 1, 2]),
                       tf.reshape(count, [1])], axis=0)
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
      stats = replica.all_reduce(tf.distribute.ReduceOp.SUM, stats)
    sums, squares, n = stats[:channels], stats[channels:2 * channels], stats[-1]
    mean = sums / n
    variance = tf.maximum(squares / n - tf.square(mean), 0.0)
    y = tf.nn.batch_normalization(x32, mean, variance, self.beta.value, self.gamma.value,
                                  self.epsilon)
    unbiased = variance * n / tf.maximum(n - 1.0, 1.0)
    self.moving_mean.assign(self.moving_mean.value * self.momentum + mean * (1 - self.momentum))
    self.moving_variance.assign(self.moving_variance.value * self.momentum
                                + unbiased * (1 - self.momentum))
    return y


def batch_norm(norm: Dict[str, Any], name=None) -> BatchNorm:
  return BatchNorm(momentum=norm["bn_momentum"], epsilon=norm["bn_epsilon"], name=name)


def _effective_window(kernel, height, width):
  """Taps of an odd stride-1 'same' kernel that can touch a HxW map: min(k, 2*size-1).

  On the small maps of CIFAR-size inputs (NASNet Mobile at 32x32 runs cells at 4x4, 2x2 and
  1x1) the other taps only ever multiply zero padding, so cropping them is exact."""
  kh, kw = kernel
  if not height or not width or kh % 2 == 0 or kw % 2 == 0:
    return kh, kw
  return min(kh, 2 * height - 1), min(kw, 2 * width - 1)


def pointwise(x, kernel, training=False):
  """A 1x1 stride-1 convolution of NHWC `x` with `kernel` [1, 1, C, F]. While training it runs
  as one MatMul over the flattened pixels: oneDNN's 1x1 Conv2D forward + backward is as fast at
  best and up to 1.9x slower on this CPU (batch 32, forward + both gradients for a given output
  gradient: 111px 32->11 18.3 vs 12.8 ms, 56px 32->11 4.7 vs 2.6, 28px 264->44 8.3 vs 5.8,
  28px 44->44 1.24 vs 1.26, 14px 88->88 0.98 vs 0.81); where nasnet_rl/kernels.py says native
  (GPUs by default) it stays a Conv2D. Inference keeps Conv2D, so
  child/flops.py's per-op mult-add count (which reads Conv2D shapes) is unchanged."""
  kernel = tf.cast(kernel, x.dtype)
  height, width = x.shape[1], x.shape[2]
  if not training or height is None or width is None or not kernels.reformulated():
    return tf.nn.conv2d(x, kernel, 1, "VALID")
  channels, filters = kernel.shape[2], kernel.shape[3]
  y = tf.matmul(tf.reshape(x, [-1, channels]), tf.reshape(kernel, [channels, filters]))
  return tf.reshape(y, [-1, height, width, filters])


@keras.saving.register_keras_serializable("nasnet_rl")
class Conv2D(keras.layers.Conv2D):
  """keras Conv2D (same weights and names) whose 1x1, stride-1 case trains as a MatMul
  (`pointwise`)."""

  def call(self, inputs, training=None):
    if (training and self.kernel_size == (1, 1) and self.strides == (1, 1)
        and self.dilation_rate == (1, 1) and not self.use_bias and self.groups == 1
        and self.data_format == "channels_last"):
      return pointwise(inputs, self.kernel.value, training=True)
    return super().call(inputs)


_LARGE_DEPTHWISE = 5  # depthwise_same: kernels from this size on take the filter gradient below


def _depthwise_filter_gradient(x, dy, kernel_size, stride):
  """d loss / d depthwise kernel of a 'SAME' depthwise conv of `x` with output gradient `dy`,
  as one depthwise conv whose filter is `dy`: pixels move to the batch of one image and
  examples x channels to the channels, so the kernel-sized output holds every tap's sum of
  x * dy; then the examples are summed. Exact (the same sums in another order). At stride 1
  the conv pads by itself (explicit padding, no padded copy of `x`: 1.1-2x faster on
  NASNet-Mobile's maps); a dilated conv takes only 'SAME' or 'VALID', so stride 2 pads first."""
  h, w = x.shape[1], x.shape[2]
  ho, wo = dy.shape[1], dy.shape[2]
  kh, kw = kernel_size
  pad_h, pad_w = max((ho - 1) * stride + kh - h, 0), max((wo - 1) * stride + kw - w, 0)
  paddings = [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]]
  if stride == 1:
    images, padding = x, paddings
  else:
    images, padding = tf.pad(x, paddings), "VALID"
  n, c = tf.shape(x)[0], x.shape[3]
  images = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, images.shape[1], images.shape[2], -1])
  filters = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [ho, wo, -1, 1])
  taps = tf.nn.depthwise_conv2d(images, filters, [1, 1, 1, 1], padding,
                                dilations=[stride, stride])  # [1, kh, kw, n * c]
  return tf.reduce_sum(tf.reshape(taps, [kh, kw, n, c]), axis=2)[..., None]


def depthwise_same(x, kernel, stride: int = 1):
  """tf.nn.depthwise_conv2d(x, kernel, stride, 'SAME'). For kernels of 5x5 and more on maps of
  known size its kernel gradient is `_depthwise_filter_gradient`: oneDNN's
  DepthwiseConv2dNativeBackpropFilter was the largest op of a NASNet training step, and the
  reformulation is 1.3-1.5x faster for 5x5 and 7x7 on this CPU (slower for 3x3, which keeps
  the native kernel); at stride 1 its input gradient is the forward kernel on the rotated
  filter. Half precision keeps the native kernels too (its sums are long), and so does every
  form where nasnet_rl/kernels.py says native (GPUs by default)."""
  kernel = tf.cast(kernel, x.dtype)
  kh, kw = kernel.shape[0], kernel.shape[1]
  strides = [1, stride, stride, 1]
  if (min(kh, kw) < _LARGE_DEPTHWISE or None in x.shape[1:] or x.dtype != tf.float32
      or not kernels.reformulated()):
    return tf.nn.depthwise_conv2d(x, kernel, strides, "SAME")

  @tf.custom_gradient
  def conv(inputs, weights):
    out = tf.nn.depthwise_conv2d(inputs, weights, strides, "SAME")

    def grad(dy):
      if stride == 1 and kh % 2 and kw % 2:  # the forward kernel on the rotated filter
        # (the same gradient up to float rounding; 1.2-2x faster for 5x5/7x7 on 28-56 px maps)
        d_inputs = tf.nn.depthwise_conv2d(dy, tf.reverse(weights, [0, 1]), strides, "SAME")
      else:
        d_inputs = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=tf.shape(inputs), filter=weights, out_backprop=dy, strides=strides,
            padding="SAME")
      return d_inputs, _depthwise_filter_gradient(inputs, dy, (kh, kw), stride)
    return out, grad
  return conv(x, kernel)


@keras.saving.register_keras_serializable("nasnet_rl")
class SeparableConv(keras.layers.SeparableConv2D):
  """SeparableConv2D (same weights and names) that skips the taps which only see padding and
  trains its pointwise half as a MatMul (`pointwise`)."""

  def call(self, inputs, training=None):
    if self.strides != (1, 1) or self.padding != "same" or self.dilation_rate != (1, 1):
      if (not training or self.use_bias or self.data_format != "channels_last"
          or self.padding != "same" or self.dilation_rate != (1, 1)
          or self.strides[0] != self.strides[1]):
        return super().call(inputs)
    return separable_same(inputs, self.depthwise_kernel.value, self.pointwise_kernel.value,
                          self.strides[0], training=bool(training))


def separable_same(x, depthwise, pointwise_kernel, stride: int = 1, training=False):
  """'SAME' depthwise-separable conv of NHWC `x` in its fastest exact form (SeparableConv's,
  and the ENAS supernet's op bank: enas/op_bank.py): at stride 1 the taps that only see
  padding are cropped (a 1x1 effective window folds into the pointwise kernel); in training
  the depthwise half is `depthwise_same` and the pointwise half `pointwise`."""
  if stride != 1:
    if not training:
      return tf.nn.separable_conv2d(x, tf.cast(depthwise, x.dtype),
                                    tf.cast(pointwise_kernel, x.dtype),
                                    strides=[1, stride, stride, 1], padding="SAME")
    return pointwise(depthwise_same(x, depthwise, stride), pointwise_kernel, training=True)
  kh, kw = depthwise.shape[0], depthwise.shape[1]
  eh, ew = _effective_window((kh, kw), x.shape[1], x.shape[2])
  if (eh, ew) == (1, 1):  # a per-channel scale: fold it into the pointwise matmul
    kernel = pointwise_kernel * tf.reshape(depthwise[kh // 2, kw // 2], [1, 1, -1, 1])
    return pointwise(x, kernel, training=bool(training))
  if (eh, ew) != (kh, kw):
    depthwise = depthwise[(kh - eh) // 2:(kh + eh) // 2, (kw - ew) // 2:(kw + ew) // 2]
  if training:
    return pointwise(depthwise_same(x, depthwise), pointwise_kernel, training=True)
  return tf.nn.separable_conv2d(x, tf.cast(depthwise, x.dtype), tf.cast(pointwise_kernel, x.dtype),
                                strides=[1, 1, 1, 1], padding="SAME")


class _Sequence(keras.layers.Layer):
  """Base for small ops: runs `self.steps` in order, passing `training` to those that take it."""

  def call(self, x, training=None):
    for step in self.steps:
      x = (step(x, training=training) if isinstance(step, (BatchNorm, Conv2D, SeparableConv))
           else step(x))
    return x


@keras.saving.register_keras_serializable("nasnet_rl")
class ReluConvBN(_Sequence):
  """ReLU -> Conv (kernel, stride, dilation) -> BN; `kernel=(1,k)+(k,1)` pairs via `factorized`."""

  def __init__(self, filters, kernel=1, stride=1, dilation=1, factorized=False, relu=True,
               norm=None, **kwargs):
    super().__init__(**kwargs)
    self.args = dict(filters=filters, kernel=kernel, stride=stride, dilation=dilation,
                     factorized=factorized, relu=relu, norm=dict(norm or DEFAULT_NORM))
    n = self.args["norm"]
    conv = lambda k, s, d: Conv2D(
        filters, k, strides=s, dilation_rate=d, padding="same", use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=_reg(n["l2"]))
    self.steps = [keras.layers.ReLU()] if relu else []
    if factorized:
      self.steps += [conv((1, kernel), (1, stride), 1), conv((kernel, 1), (stride, 1), 1)]
    elif dilation > 1 and stride > 1:  # TF convs take dilation or stride, not both
      self.steps += [conv(kernel, 1, dilation), keras.layers.Lambda(lambda t: t[:, ::2, ::2, :])]
    else:
      self.steps.append(conv(kernel, stride, dilation))
    self.steps.append(batch_norm(n))

  def get_config(self):
    return {**super().get_config(), **self.args}


@keras.saving.register_keras_serializable("nasnet_rl")
class SepConvStack(_Sequence):
  """(ReLU -> depthwise-separable conv -> BN) x 2, stride on the first: the NASNet/ENAS sep conv."""

  def __init__(self, filters, kernel, stride=1, norm=None, **kwargs):
    super().__init__(**kwargs)
    self.args = dict(filters=filters, kernel=kernel, stride=stride, norm=dict(norm or DEFAULT_NORM))
    n = self.args["norm"]
    self.steps = []
    for s in (stride, 1):
      self.steps += [keras.layers.ReLU(),
                     SeparableConv(
                         filters, kernel, strides=s, padding="same", use_bias=False,
                         depthwise_regularizer=_reg(n["l2"]),
                         pointwise_regularizer=_reg(n["l2"])),
                     batch_norm(n)]

  def get_config(self):
    return {**super().get_config(), **self.args}


POOL_PADDINGS = ("same", "zeros")


def pad_like_same(x, kernel: int, stride: int):
  """Zero-pads H and W where TF 'SAME' would pad (the extra pixel bottom/right), so a 'valid'
  window then sees the zeros: Keras NASNet's ZeroPadding2D(correct_pad) before strided pools."""
  pads = [[0, 0]]
  for axis in (1, 2):
    n = x.shape[axis]
    if n is None:  # unknown size: the same arithmetic on the dynamic shape
      n = tf.shape(x)[axis]
      total = tf.maximum(((n + stride - 1) // stride - 1) * stride + kernel - n, 0)
    else:
      total = max(((n + stride - 1) // stride - 1) * stride + kernel - n, 0)
    pads.append([total // 2, total - total // 2])
  return tf.pad(x, pads + [[0, 0]])


@keras.saving.register_keras_serializable("nasnet_rl")
class Pool(_Sequence):
  """Avg/max pooling followed, when channels change, by 1x1 conv + BN (slim).

  padding "same" (TF-slim): windows at the border ignore the padding. "zeros" (Keras
  applications NASNet): a strided pool sees zero padding, which counts in the average and
  takes part in the max; stride-1 pools are "same" either way, as in Keras."""

  def __init__(self, kind, kernel, stride=1, filters=None, project=False, norm=None,
               padding="same", **kwargs):
    super().__init__(**kwargs)
    if padding not in POOL_PADDINGS:
      raise ValueError(f"pool padding must be one of {POOL_PADDINGS}, got {padding!r}")
    self.args = dict(kind=kind, kernel=kernel, stride=stride, filters=filters, project=project,
                     norm=dict(norm or DEFAULT_NORM), padding=padding)
    self.zero_pad = padding == "zeros" and stride > 1
    pool = keras.layers.AveragePooling2D if kind == "avg_pool" else keras.layers.MaxPooling2D
    self.steps = [pool(kernel, strides=stride, padding="valid" if self.zero_pad else "same")]
    if project:
      self.steps.append(ReluConvBN(filters, relu=False, norm=self.args["norm"]))

  def call(self, x, training=None):
    if self.zero_pad:
      x = pad_like_same(x, self.args["kernel"], self.args["stride"])
    return super().call(x, training=training)

  def get_config(self):
    return {**super().get_config(), **self.args}


_ONE_CONV_MIN_SIZE = 28  # FactorizedReduce: single block conv from this input height on


@keras.saving.register_keras_serializable("nasnet_rl")
class FactorizedReduce(keras.layers.Layer):
  """Halves H and W without losing pixels: two 1x1 convs on the even and the one-pixel-shifted
  odd grid, concatenated, then BN (NASNet `factorized_reduction`, ENAS, Keras `_adjust_block`)."""

  def __init__(self, filters, relu=True, norm=None, **kwargs):
    super().__init__(**kwargs)
    self.args = dict(filters=filters, relu=relu, norm=dict(norm or DEFAULT_NORM))
    n = self.args["norm"]
    half = filters // 2
    conv = lambda f: keras.layers.Conv2D(f, 1, strides=2, padding="valid", use_bias=False,
                                         kernel_initializer="he_normal",
                                         kernel_regularizer=_reg(n["l2"]))
    self.conv_even, self.conv_odd = conv(half), conv(filters - half)
    self.bn = batch_norm(n)

  def build(self, input_shape):
    for conv in (self.conv_even, self.conv_odd):
      conv.build((None, None, None, input_shape[-1]))
    super().build(input_shape)

  def call(self, x, training=None):
    if self.args["relu"]:
      x = tf.nn.relu(x)
    out = factorized_reduction(x, self.conv_even.kernel.value, self.conv_odd.kernel.value,
                               training=bool(training))
    return self.bn(out, training=training)

  def get_config(self):
    return {**super().get_config(), **self.args}


def factorized_reduction(x, even_kernel, odd_kernel, training=False):
  """The two 1x1 stride-2 convs of a factorized reduction (before its BN), concatenated: on
  the even grid with `even_kernel` and on the one-pixel-shifted odd grid with `odd_kernel`
  (both [1, 1, C, F/2]). Shared by FactorizedReduce and the ENAS supernet (enas/)."""
  # space_to_depth puts pixel (2i+dy, 2j+dx) at channel block 2*dy+dx of (i, j): the even
  # grid is block 0, the one-pixel-shifted odd grid block 3. This is the strided/shifted
  # slicing done with one cheap permutation (its gradient too): 3x faster on CPU than
  # slicing, whose StridedSliceGrad was a sixth of a NASNet-Mobile training step. Odd sizes
  # are padded bottom/right, so both grids round up as before.
  height, width = x.shape[1], x.shape[2]
  if height is None or width is None or height % 2 or width % 2:
    hp, wp = tf.shape(x)[1] % 2, tf.shape(x)[2] % 2
    x = tf.pad(x, [[0, 0], [0, hp], [0, wp], [0, 0]])
  blocks = tf.nn.space_to_depth(x, 2)
  channels = x.shape[-1]
  if training and height is not None and height >= _ONE_CONV_MIN_SIZE:
    # training on large maps: one 1x1 conv over all four blocks with zero rows for the two
    # unused ones beats two convs on channel slices (their gradients are memory-bound there;
    # measured at 28..112 px). Inference keeps the two convs: the paper's mult-adds, which
    # child/flops.py counts from the inference graph.
    half, rest = even_kernel.shape[-1], odd_kernel.shape[-1]
    kernel = tf.concat([tf.pad(even_kernel, [[0, 0], [0, 0], [0, 0], [0, rest]]),
                        tf.zeros([1, 1, 2 * channels, half + rest], even_kernel.dtype),
                        tf.pad(odd_kernel, [[0, 0], [0, 0], [0, 0], [half, 0]])], axis=2)
    return pointwise(blocks, kernel, training=True)
  even = pointwise(blocks[..., :channels], even_kernel, training=training)
  odd = pointwise(blocks[..., 3 * channels:], odd_kernel, training=training)
  return tf.concat([even, odd], axis=-1)


class _DropPathSeed:
  """Where a DropPath's masks (and, with `total_steps`, its schedule) come from after
  `seed_drop_paths`: a plain object (not tracked by Keras, so no weight is added and a built
  layer accepts it)."""

  def __init__(self, key, step, total_steps=None):
    self.key, self.step, self.total_steps = key, step, total_steps


@keras.saving.register_keras_serializable("nasnet_rl")
class DropPath(keras.layers.Layer):
  """ScheduledDropPath (Zoph et al. 2018, sec. 4.1): drops a whole op output per example with
  probability `drop_prob * progress`, rescaling survivors; identity at inference.

  `progress` is a shared scalar tf.Variable in [0, 1] set by the trainer (the ENAS search sets
  it per epoch); it is not a model weight, so parameter counts are unchanged. After
  `seed_drop_paths(..., total_steps=T)` the progress is step / T, computed in the graph from the
  optimizer's step (no host round trip per batch). Masks come from TF's stateful
  `tf.random.uniform`, or, after `seed_drop_paths`, statelessly from (seed, layer, step)."""

  def __init__(self, drop_prob, progress: Optional[tf.Variable] = None, **kwargs):
    super().__init__(**kwargs)
    self.drop_prob = float(drop_prob)
    self._progress = progress
    self._mask_seed = None

  def call(self, x, training=None):
    if not training or self.drop_prob <= 0:
      return x
    seeded = self._mask_seed
    if seeded is not None and seeded.total_steps:
      progress = tf.minimum(1.0, tf.cast(seeded.step, tf.float32) / float(seeded.total_steps))
      p = self.drop_prob * tf.cast(progress, x.dtype)
    elif self._progress is not None:
      p = self.drop_prob * tf.cast(self._progress, x.dtype)
    else:
      p = self.drop_prob
    keep = 1.0 - p
    shape = tf.stack([tf.shape(x)[0], 1, 1, 1])
    if self._mask_seed is None:
      noise = tf.random.uniform(shape, dtype=x.dtype)
    else:
      seed = tf.random.experimental.stateless_fold_in(
          tf.constant(self._mask_seed.key, tf.int64), tf.cast(self._mask_seed.step, tf.int64))
      replica = tf.distribute.get_replica_context()
      if replica is not None and replica.num_replicas_in_sync > 1:
        seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
      noise = tf.random.stateless_uniform(shape, seed=seed, dtype=x.dtype)
    mask = tf.floor(keep + noise)
    return x / keep * mask

  def get_config(self):
    return {**super().get_config(), "drop_prob": self.drop_prob}


def seed_drop_paths(model: keras.Model, step, seed: int,
                    total_steps: Optional[int] = None) -> int:
  """Makes every DropPath of `model` draw its masks statelessly from (seed, its position in the
  model, `step`), where `step` is a scalar variable the training advances once per step (the
  optimizer's `iterations`), plus the replica under tf.distribute. TF's stateful random ops
  keep their position inside the kernels, where no checkpoint can reach it; these masks depend
  only on the restored step, so a resumed training draws the masks the uninterrupted one drew.
  With `total_steps`, the drop probability also follows ScheduledDropPath's linear schedule
  step / total_steps in the graph. Call before the first training step is traced; returns how
  many layers were seeded."""
  layers = [l for l in model._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
            if isinstance(l, DropPath)]
  for index, layer in enumerate(layers):
    layer._mask_seed = _DropPathSeed([int(seed), index], step, total_steps)  # pylint: disable=protected-access
  return len(layers)


def make_op(name: str, filters: int, stride: int, in_channels: int,
            norm: Optional[Dict[str, Any]] = None, layer_name=None,
            pool_padding: str = "same") -> keras.layers.Layer:
  """The layer for op `name` mapping `in_channels` to `filters` channels at `stride`
  (`pool_padding`: see `Pool`)."""
  try:
    spec = ops_vocabulary.OP_SPECS[name]
  except KeyError:
    raise ValueError(f"unknown op {name!r}; known: {sorted(ops_vocabulary.OP_SPECS)}") from None
  norm = dict(norm or DEFAULT_NORM)
  kw = dict(norm=norm, name=layer_name)
  if spec.kind == "sep_conv":
    return SepConvStack(filters, spec.kernel, stride, **kw)
  if spec.kind == "conv":
    return ReluConvBN(filters, spec.kernel, stride, **kw)
  if spec.kind == "factorized_conv":
    return ReluConvBN(filters, spec.kernel, stride, factorized=True, **kw)
  if spec.kind == "dil_conv":
    return ReluConvBN(filters, spec.kernel, stride, dilation=spec.dilation, **kw)
  if spec.kind in ("avg_pool", "max_pool"):
    return Pool(spec.kind, spec.kernel, stride, filters, project=in_channels != filters,
                padding=pool_padding, **kw)
  if spec.kind == "identity":
    if stride > 1:
      return FactorizedReduce(filters, relu=False, **kw)
    if in_channels != filters:
      return ReluConvBN(filters, **kw)
    return keras.layers.Identity(name=layer_name)
  raise ValueError(f"op {name!r} has unsupported kind {spec.kind!r}")
