"""Keras NASNet applications -> our NASNet-A: every weight copied by structure, and the two
networks give the same predictions (BatchNorm statistics randomised so they matter)."""
import gin
import keras
from keras.src.applications import nasnet as keras_nasnet
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as g
from nasnet_rl.child import cell as cell_lib
from nasnet_rl.transfer import keras_weights
from nasnet_rl.transfer import scaling
from nasnet_rl.transfer import train


def _randomise(model, seed=0):
  """Random BN statistics and affine parameters (far from 0/1), so a misplaced one shows."""
  rng = np.random.default_rng(seed)
  keras_weights.randomise_batchnorm(model, rng)
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


# Largest |log-probability| difference measured between the Keras application and ours: 4.8e-6
# (Mobile at 96px, seed 0; up to 1.5e-5 on seeds 0-2 in another process), 9.5e-7 (the tiny
# Large-wired network): float32 round-off of the same sums in another order.
TOLERANCE = 5e-5


def _check_equivalent(keras_model, size, num_cells, seed=0, n=4):
  """Ours from `keras_model` has the same parameters, one NasCell per Keras cell (3 stacks of
  `num_cells` normal cells, 2 reduction cells, 2 stem cells), each NASNet-A's, and the same
  log-probabilities within TOLERANCE (was 1e-3, 200 times the measured difference). Deliberate
  bug it catches: a model whose cells are not NasCell layers (the genotype check over the cells
  was an `all()` of a possibly empty list; now their number is asserted). A BatchNorm epsilon
  off by half is refused by the converter itself ('BatchNorm epsilon/momentum ... here')."""
  rng = _randomise(keras_model, seed)
  x = _images(rng, n, size)
  _center_head(keras_model, x)
  ours = keras_weights.from_keras_application(keras_model)
  assert ours.count_params() == keras_model.count_params()
  cells = [l for l in ours.layers if isinstance(l, cell_lib.NasCell)]
  nasnet_a = g.published("nasnet_a")
  assert (len(cells), sum(c.reduction for c in cells)) == (3 * num_cells + 4, 4)
  assert all(c.cell == (nasnet_a.reduction if c.reduction else nasnet_a.normal) for c in cells)
  diff, top_theirs, top_mine, theirs = _compare(keras_model, ours, x)
  assert diff < TOLERANCE, diff
  np.testing.assert_array_equal(top_theirs, top_mine)
  assert len(set(top_theirs)) > 1  # the images are told apart ...
  assert theirs.std(0).mean() > 100 * diff  # ... by far more than the two networks differ
  return ours, diff


def test_mobile_gives_keras_predictions():
  keras_model = keras.applications.NASNetMobile(weights=None, input_shape=(96, 96, 3),
                                                classes=1000, classifier_activation=None)
  ours, diff = _check_equivalent(keras_model, 96, 4)
  print(f"largest log-probability difference: {diff:.2e}")
  sc = keras_weights.keras_scale(keras_weights.read_keras_nasnet(keras_model))
  assert (sc.num_cells, sc.penultimate_filters, sc.stem_filters, sc.skip_reduction_input,
          sc.image_size, sc.pool_padding) == (4, 1056, 32, False, 96, "zeros")
  assert ours.get_layer("logits").units == 1000 and ours.input_shape == (None, 96, 96, 3)


@pytest.mark.slow
def test_large_gives_keras_predictions():
  keras_model = keras.applications.NASNetLarge(weights=None, classes=1000,
                                               classifier_activation=None)
  ours, _ = _check_equivalent(keras_model, 331, 6, n=3)
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
  ours, diff = _check_equivalent(tiny_keras, 32, 1, n=8)
  print(f"largest log-probability difference: {diff:.2e}")
  x = _images(np.random.default_rng(1), 4, 32)
  same = keras_weights.agreement(tiny_keras, ours, x)
  assert same["top1_agreement"] == 1.0 and same["max_abs_log_prob_diff"] < TOLERANCE
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


# ---- fine-tuning from Keras weights through the transfer trainer ---------------------------
TINY_RUN = ["gin/tiny/transfer.gin"]
FAST = ["train_transfer.epochs = 1", "train_transfer.steps_per_epoch = 2",
        "train_transfer.batch_size = 8", "train_transfer.preprocessing = 'imagenet'",
        "load_dataset.num_train = 32", "load_dataset.num_test = 16",
        "load_dataset.validation_size = 0", "load_synthetic.num_classes = 5",
        "scale.image_size = 32", "scale.aux_head = False"]


@pytest.fixture
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _body(model):
  """{layer: weights} of every layer with weights but the classifier."""
  return {l.name: l.get_weights() for l in model.layers
          if l.weights and l.name != "logits" and not l.name.startswith("aux")}


def test_init_from_a_weights_file_head_only_keeps_the_converted_body(tmp_path, clean_gin):
  keras_model = keras.applications.NASNetMobile(weights=None, classes=1000,  # 32 px: cheap; the
                                                input_shape=(32, 32, 3))  # weights don't care
  _randomise(keras_model, seed=3)
  path = str(tmp_path / "mobile.weights.h5")
  keras_model.save_weights(path)
  config.parse(TINY_RUN, FAST + [f"train_transfer.init_from = {path!r}",
                                 "train_transfer.train_head_only = True",
                                 "train_transfer.evaluate_test = False"])
  splits = data_lib.load_dataset(seed=0)
  metrics, model = train.train_transfer(g.published("nasnet_a"), splits, None)
  assert metrics["initialised_weights"] == len(keras_model.weights) - 2  # all but the head
  assert model.get_layer("logits").units == 5 and model.input_shape == (None, 32, 32, 3)
  assert metrics["trainable_params"] == 1056 * 5 + 5  # only the new head trains
  assert metrics["history"]["loss"] and np.isfinite(metrics["history"]["loss"]).all()
  converted = _body(keras_weights.from_keras_application(keras_model))
  trained = _body(model)
  assert sorted(trained) == sorted(converted)
  for name, weights in converted.items():  # the converted Keras body, unchanged by training
    for ours, theirs in zip(trained[name], weights):
      np.testing.assert_array_equal(ours, theirs, err_msg=name)


@pytest.mark.slow  # ~35-50 s; the head-only weights-file test covers init_from by default
def test_init_from_a_keras_model_file_fine_tunes_grey_images(tiny_keras, tmp_path, clean_gin):
  path = str(tmp_path / "tiny.keras")
  tiny_keras.save(path)
  config.parse(TINY_RUN, FAST + [f"train_transfer.init_from = {path!r}",
                                 "load_synthetic.image_shape = (32, 32, 1)",
                                 "train_transfer.steps_per_epoch = 1",
                                 "train_transfer.evaluate_test = False"])
  splits = data_lib.load_dataset(seed=0)
  metrics, model = train.train_transfer(g.published("nasnet_a"), splits, None)
  assert metrics["initialised_weights"] == len(tiny_keras.weights) - 2
  assert model.input_shape == (None, 32, 32, 3)  # grey repeated into RGB
  assert all("moving" in w.name for w in model.non_trainable_weights)  # all else trains
  last_sep = model.get_layer("normal_6").branch_ops[-2].steps[1]  # first, last cells moved
  pairs = [(model.get_layer("stem_conv").kernel, tiny_keras.get_layer("stem_conv1").kernel),
           (last_sep.depthwise_kernel,
            tiny_keras.get_layer("separable_conv_1_normal_left5_3").depthwise_kernel)]
  for ours, theirs in pairs:
    assert ours.shape == theirs.shape and not np.array_equal(ours.numpy(), theirs.numpy())


def test_init_from_errors_are_clear(monkeypatch, clean_gin):
  from keras.src.utils import file_utils  # pylint: disable=g-import-not-at-top

  def offline(*args, **kwargs):
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                    "[Errno -3] Temporary failure in name resolution")
  monkeypatch.setattr(file_utils, "get_file", offline)
  with pytest.raises(ValueError, match=r"could not get Keras' ImageNet weights for NASNetMobile"
                                       r".*name resolution.*offline, copy nasnet_mobile.h5.*"
                                       r"--init_from=PATH"):
    keras_weights.load_keras_application("keras:mobile")
  nasnet_a = g.published("nasnet_a")
  with pytest.raises(ValueError, match="keras:mobile or keras:large"):
    train.check_init_from("keras:medium", nasnet_a)
  with pytest.raises(ValueError, match="no such file"):
    train.check_init_from("/no/such.weights.h5", nasnet_a)
  with pytest.raises(ValueError, match="preprocessing='imagenet'.*got 'cifar'"):
    train.check_init_from("keras:mobile", nasnet_a, preprocessing="cifar")
  with pytest.raises(ValueError, match=r"\(--source=nasnet_a\), not enas_micro"):
    train.check_init_from("keras:mobile", g.published("enas_micro"))
  with pytest.raises(ValueError, match="finetune_from or train_transfer.init_from, not both"):
    train.check_init_from("keras:mobile", nasnet_a, finetune_from="/tmp/run")
