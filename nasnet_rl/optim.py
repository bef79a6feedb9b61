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

import keras
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
