"""Keras optimizers whose clipping and non-finite skip see the all-reduced (global-batch) gradient.

Stock Keras 3 on TensorFlow clips in `BaseOptimizer._backend_apply_gradients`, on each replica's
own gradient, and all-reduces afterwards in `TFOptimizer._backend_update_step`: with N replicas
`global_clipnorm` bounds N partial gradients instead of their sum, so a clipped step depends on
N, and a non-finite gradient on one replica turns every weight into NaN. Here (`ReplicaSafe`)
`_clip_gradients` does nothing and `_backend_update_step` all-reduces once, takes the global
norm of the sum, clips with Keras' own formula (clipnorm / clipvalue are deferred the same way)
and applies the update only when that norm is finite. Every replica holds the same sum, so every
replica takes the same decision. The decision is a `tf.cond` per variable inside the
cross-replica update, not one `tf.cond` around the update: MirroredStrategy's merge_call may not
run inside a cond branch. A skipped step leaves weights and slots (momentum...) untouched but
still counts in `iterations`, so schedules and drop-path seeds go on; decoupled `weight_decay`
(unused here) would still apply, as Keras applies it before the update.

With one replica (or no strategy) the update is Keras' bit for bit (tests/test_optim.py; inside
`fit` Grappler's arithmetic optimizer rewrites the two graphs differently, ~1e-8); the classes
add no variables and keep Keras' names and config, so checkpoints are unchanged; a saved
`model.keras` names `nasnet_rl>SGD`, registered on `import nasnet_rl` (as the custom layers).
Why a mixin over private Keras methods: the two overridden methods are the seam Keras itself
uses for tf.distribute (and Nadam overrides `_backend_update_step` the same way); the tests pin
the behaviour, so a Keras change that moves the seam fails loudly, not silently.
It lives at the top of the package because child, ENAS and transfer training all use it (child
code must not import transfer/, where the tf.distribute factory lives today).
"""

from typing import List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

_merge_call = tf.__internal__.distribute.interim.maybe_merge_call


def global_norm(grads) -> tf.Tensor:
  """Keras' global norm (sum of squares per tensor, stacked, summed), IndexedSlices by values."""
  values = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads if g is not None]
  return keras.ops.sqrt(keras.ops.sum(keras.ops.stack(
      [keras.ops.sum(keras.ops.square(v)) for v in values])))


def _scaled(g, scale):
  if isinstance(g, tf.IndexedSlices):
    return tf.IndexedSlices(g.values * scale, g.indices, g.dense_shape)
  return g * scale


class ReplicaSafe:
  """Mixin for a Keras optimizer: clip and skip on the all-reduced gradient (module docstring)."""

  def _clip_gradients(self, grads):
    return grads  # deferred to _backend_update_step, after the all-reduce

  def _clip_reduced(self, grads, norm):
    if self.global_clipnorm and self.global_clipnorm > 0:
      # keras.optimizers.base_optimizer.clip_by_global_norm, with the norm computed once
      scale = self.global_clipnorm * keras.ops.minimum(1.0 / norm, 1.0 / self.global_clipnorm)
      return [None if g is None else _scaled(g, scale) for g in grads]
    return super()._clip_gradients(grads)

  def _backend_update_step(self, grads, trainable_variables, learning_rate):
    trainable_variables = [v.value if isinstance(v, keras.Variable) else v
                           for v in trainable_variables]
    grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, trainable_variables)))
    grads = [g for g, _ in grads_and_vars]
    norm = global_norm(grads)
    finite = tf.math.is_finite(norm)
    grads = self._clip_reduced(grads, norm)
    _merge_call(self._finite_update_step, self._distribution_strategy,
                list(zip(grads, trainable_variables)), learning_rate, finite)

  def _finite_update_step(self, distribution, grads_and_vars, learning_rate, finite):
    def update(var, grad, lr, ok):
      def apply():
        self.update_step(grad, var, lr)
        return tf.constant(True)
      return tf.cond(ok, apply, lambda: tf.constant(False))
    for grad, var in grads_and_vars:
      if grad is not None:
        distribution.extended.update(var, update, args=(grad, learning_rate, finite),
                                     group=False)


@keras.saving.register_keras_serializable(package="nasnet_rl")
class SGD(ReplicaSafe, keras.optimizers.SGD):
  """keras.optimizers.SGD, clipped and skipped on the all-reduced gradient."""


@keras.saving.register_keras_serializable(package="nasnet_rl")
class RMSprop(ReplicaSafe, keras.optimizers.RMSprop):
  """keras.optimizers.RMSprop, clipped and skipped on the all-reduced gradient."""


class FlatSGD:
  """SGD with (Nesterov) momentum, L2 and global-norm clipping over all variables at once, for
  a model with hundreds of small variables (the ENAS supernet): the gradients are concatenated
  into one vector, all-reduced once, decayed, clipped, skipped when non-finite (one `tf.cond`)
  and the momentum kept in one vector; only the final assignment is per variable. Keras' SGD
  runs ~15 ops per variable (its update in a `tf.cond` each, the clip, the norm, the L2 term in
  the loss), which at the supernet's sizes cost more than the sampled path itself.

  The update is Keras' SGD's: m <- momentum * m - lr * g; w <- w + momentum * m - lr * g
  (Nesterov) or w <- w + m; g = the all-reduced gradient + 2 * l2 * w (the gradient of
  `l2 * sum(w ** 2)`, ENAS' child_l2_reg), clipped to `global_clipnorm` as Keras clips."""

  def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9, nesterov: bool = True,
               l2: float = 0.0, global_clipnorm: Optional[float] = None):
    self.momentum, self.nesterov, self.l2 = float(momentum), bool(nesterov), float(l2)
    self.global_clipnorm = global_clipnorm
    self.learning_rate = tf.Variable(float(learning_rate), trainable=False, dtype=tf.float32,
                                     name="learning_rate")
    self.iterations = tf.Variable(0, trainable=False, dtype=tf.int64, name="iterations")
    self._velocity = None
    self._variables: List[tf.Variable] = []

  def build(self, variables: Sequence[tf.Variable]) -> None:
    """One momentum vector for all `variables` (call in the strategy's scope)."""
    self._variables = list(variables)
    size = sum(int(np.prod(v.shape)) for v in self._variables)
    self._velocity = tf.Variable(tf.zeros([size], tf.float32), trainable=False, name="velocity")

  @property
  def variables(self) -> List[tf.Variable]:
    """The optimizer's state, for checkpoints."""
    return [self.iterations, self.learning_rate, self._velocity]

  def reset_velocity(self) -> None:
    """Zero momentum, as a freshly built optimizer has (a fine-tuning that starts anew)."""
    self._velocity.assign(tf.zeros_like(self._velocity))

  @staticmethod
  def flat(tensors) -> tf.Tensor:
    """Tensors or variables as one float32 vector, in order."""
    values = [t.value if isinstance(t, keras.Variable) else t for t in tensors]
    return tf.concat([tf.reshape(tf.cast(t, tf.float32), [-1]) for t in values], 0)

  def apply(self, flat_grad: tf.Tensor, weights: Optional[tf.Tensor] = None) -> None:
    """In replica context: the local gradient of all variables as one vector (`flat`; NaN
    anywhere skips the step on every replica). `weights`: the variables' `flat` values when the
    caller already has them (default: read here)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      flat_grad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, flat_grad)
    weights = self.flat(self._variables) if weights is None else weights
    if self.l2:
      flat_grad = flat_grad + (2.0 * self.l2) * weights
    norm = tf.norm(flat_grad)
    finite = tf.math.is_finite(norm)
    if self.global_clipnorm and self.global_clipnorm > 0:
      flat_grad = flat_grad * (self.global_clipnorm *
                               tf.minimum(1.0 / norm, 1.0 / self.global_clipnorm))
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      ctx.merge_call(lambda strategy, g, w, ok: self._update(strategy, g, w, ok),
                     args=(flat_grad, weights, finite))
    else:
      self._update(tf.distribute.get_strategy(), flat_grad, weights, finite)

  def _update(self, strategy, grad, weights, finite):
    def on_device(velocity, g, w, ok, variables):
      def step():
        lr = tf.cast(self.learning_rate, tf.float32)
        m = self.momentum * velocity - lr * g
        new = w + (self.momentum * m - lr * g if self.nesterov else m)
        ops_ = [velocity.assign(m)]
        sizes = [int(np.prod(v.shape)) for v in variables]
        for v, part in zip(variables, tf.split(new, sizes)):
          ops_.append(v.assign(tf.cast(tf.reshape(part, v.shape), v.dtype)))
        with tf.control_dependencies(ops_):
          return tf.constant(True)
      return tf.cond(ok, step, lambda: tf.constant(False))

    strategy.extended.update(self._velocity, on_device, args=(grad, weights, finite),
                             kwargs={"variables": self._variables}, group=False)
    strategy.extended.update(self.iterations, lambda it: it.assign_add(1), group=False)
