"""Keras NASNet applications -> our NASNet-A: every weight copied by structure, and the two
networks give the same predictions (BatchNorm statistics randomised so they matter)."""
import keras
from keras.src.applications import nasnet as keras_nasnet
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import genotype as g
from nasnet_rl.child import cell as cell_lib
from nasnet_rl.transfer import keras_weights
from nasnet_rl.transfer import scaling


def _randomise(model, seed=0):
  """Random BN statistics and affine parameters (far from 0/1), so a misplaced one shows."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      n = layer.gamma.shape[0]
      layer.gamma.assign(rng.uniform(0.5, 1.5, n))
      layer.beta.assign(rng.normal(0.0, 0.2, n))
      layer.moving_mean.assign(rng.normal(0.0, 0.5, n))
      layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
  return rng


def _images(rng, n, size):
  return rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")  # preprocess_input's range


def _center_head(model, x):
  """A random body predicts one class for every image; a head bias of minus the batch's mean
  logits leaves the image-dependent part, so top-1 differs between images."""
  head = model.get_layer("predictions")
  logits = model(x, training=False).numpy()
  head.bias.assign(head.bias.numpy() - logits.mean(0))


def _compare(keras_model, ours, x):
  theirs = tf.nn.log_softmax(keras_model(x, training=False)).numpy()
  mine = tf.nn.log_softmax(ours(x, training=False)).numpy()
  return np.abs(theirs - mine).max(), theirs.argmax(1), mine.argmax(1), theirs


def _check_equivalent(keras_model, size, seed=0, n=4):
  rng = _randomise(keras_model, seed)
  x = _images(rng, n, size)
  _center_head(keras_model, x)
  ours = keras_weights.from_keras_application(keras_model)
  assert ours.count_params() == keras_model.count_params()
  cells = [l for l in ours.layers if isinstance(l, cell_lib.NasCell)]
  nasnet_a = g.published("nasnet_a")
  assert all(c.cell == (nasnet_a.reduction if c.reduction else nasnet_a.normal) for c in cells)
  diff, top_theirs, top_mine, theirs = _compare(keras_model, ours, x)
  assert diff < 1e-3, diff
  np.testing.assert_array_equal(top_theirs, top_mine)
  assert len(set(top_theirs)) > 1  # the images are told apart ...
  assert theirs.std(0).mean() > 100 * diff  # ... by far more than the two networks differ
  return ours, diff


def test_mobile_gives_keras_predictions():
  keras_model = keras.applications.NASNetMobile(weights=None, input_shape=(96, 96, 3),
                                                classes=1000, classifier_activation=None)
  ours, diff = _check_equivalent(keras_model, 96)
  sc = keras_weights.keras_scale(keras_weights.read_keras_nasnet(keras_model))
  assert (sc.num_cells, sc.penultimate_filters, sc.stem_filters, sc.skip_reduction_input,
          sc.image_size, sc.pool_padding) == (4, 1056, 32, False, 96, "zeros")
  assert ours.get_layer("logits").units == 1000 and ours.input_shape == (None, 96, 96, 3)


@pytest.mark.slow
def test_large_gives_keras_predictions():
  keras_model = keras.applications.NASNetLarge(weights=None, classes=1000,
                                               classifier_activation=None)
  ours, _ = _check_equivalent(keras_model, 331, n=3)
  assert ours.count_params() == 88_949_818


@pytest.fixture(scope="module")
def tiny_keras():
  """keras.applications' NASNet builder at 1@96, stem 8, 32px, with NASNet-Large's wiring
  (skip_reduction): Large's second wiring checked in seconds."""
  return keras_nasnet.NASNet(input_shape=(32, 32, 3), penultimate_filters=96, num_blocks=1,
                             stem_block_filters=8, skip_reduction=True, weights=None,
                             classes=10, default_size=32, classifier_activation=None)


def test_large_wiring_gives_keras_predictions(tiny_keras, tmp_path):
  arch = keras_weights.read_keras_nasnet(tiny_keras)
  assert arch.skip_reduction_input and arch.num_cells == 1 and arch.num_classes == 10
  assert arch.stem_filters == 8 and arch.penultimate_filters == 96
  assert arch.wiring[4] == (1, 3)  # after reduction 3: its own h[i-2] (cell 1), not cell 2
  ours, diff = _check_equivalent(tiny_keras, 32, n=8)
  x = _images(np.random.default_rng(1), 4, 32)
  same = keras_weights.agreement(tiny_keras, ours, x)
  assert same["top1_agreement"] == 1.0 and same["max_abs_log_prob_diff"] < 1e-3
  ours.save(str(tmp_path / "converted.keras"))  # an ordinary model: saves, reloads, same logits
  again = keras.models.load_model(str(tmp_path / "converted.keras"))
  np.testing.assert_array_equal(again(x, training=False), ours(x, training=False))


def test_mismatches_are_errors_naming_the_layer(tiny_keras):
  arch = keras_weights.read_keras_nasnet(tiny_keras)
  build = lambda **kw: scaling.build(g.published("nasnet_a"), keras_weights.keras_scale(arch, **kw),
                                     10)
  with pytest.raises(ValueError, match=r"cell 'normal_4' reads cells \(2, 3\).*Keras.*"
                                       r"reads \(1, 3\).*skip_reduction_input=True"):
    keras_weights.copy_keras_weights(tiny_keras, build(skip_reduction_input=False))
  with pytest.raises(ValueError, match="strided pool .*'same'.*pool_padding='zeros'"):
    keras_weights.copy_keras_weights(tiny_keras, build(pool_padding="same"))
  with pytest.raises(ValueError, match=r"cell 'stem_reduction_0'.*shape \(1, 1, 8, 2\) here "
                                       r"but \(1, 1, 8, 1\) in Keras 'reduction_conv_1_stem_1'"):
    keras_weights.copy_keras_weights(tiny_keras, build(penultimate_filters=192))
  other = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3)])
  with pytest.raises(ValueError, match="0 NASNet normal cells.*NASNetMobile"):
    keras_weights.from_keras_application(other)
