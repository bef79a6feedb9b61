"""Mixed precision: children build and train under bfloat16 (this CPU has bf16 kernels) and
float16, with float32 variables, BatchNorm statistics and logits."""

import gin
import keras
import numpy as np
import pytest

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as genotype_lib
from nasnet_rl import search_space
from nasnet_rl import precision
from nasnet_rl.child import network
from nasnet_rl.child import trainer


@pytest.mark.parametrize("name", [
    "mixed_bfloat16",
    # CPUs have no fused float16 BatchNorm: a slow fallback (25 s); GPUs are where it is used
    pytest.param("mixed_float16", marks=pytest.mark.slow)])
def test_child_trains_under_mixed_precision(name):
  with precision.policy(name):
    model = network.build_cifar_network(genotype_lib.published("nasnet_a"), num_classes=10,
                                        input_shape=(16, 16, 3), num_cells=1, filters=8,
                                        aux_head=False, drop_path_rate=0.2)
  assert keras.mixed_precision.global_policy().name == "float32"  # restored
  half = name.split("_")[1]
  assert model.get_layer("logits").compute_dtype == "float32"
  assert {w.dtype for w in model.weights} == {"float32"}
  assert sum(1 for l in model.layers if l.compute_dtype == half) >= 5  # the body is half
  optimizer = precision.wrap_optimizer(keras.optimizers.SGD(0.05), name)
  assert isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer) == (name == "mixed_float16")
  model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(32, 16, 16, 3)).astype("float32")
  y = np.arange(32) % 10
  before = [w.numpy().copy() for w in model.trainable_weights]
  history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history["loss"]
  assert np.all(np.isfinite(history))
  assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
  assert model.predict(x[:4], verbose=0).dtype == np.float32


def test_unknown_precision_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown precision 'float8'; known"):
    with precision.policy("float8"):
      pass


def test_train_child_under_bfloat16():
  gin.clear_config()
  try:
    config.parse([], ["build_child.num_cells = 1", "build_child.filters = 4",
                      "build_child.aux_head = False", "build_child.penultimate_filters = None"])
    splits = data_lib.load_dataset("synthetic", num_train=64, num_test=16, validation_size=32,
                                   image_shape=(8, 8, 3))
    geno = search_space.SearchSpace("enas", 1).decode([0] * 8)  # one block: fast to trace
    metrics = trainer.train_child(geno, splits, None, epochs=1,
                                  steps_per_epoch=2, batch_size=16, augment=False,
                                  save_model=False, count_mult_adds=False, verbose=0,
                                  evaluate_test=False, precision="mixed_bfloat16")
  finally:
    gin.clear_config()
  assert 0.0 <= metrics["val_accuracy"] <= 1.0
  assert keras.mixed_precision.global_policy().name == "float32"
  with pytest.raises(ValueError, match="unknown precision 'half'"):
    trainer.train_child(geno, splits, None, epochs=1, precision="half")
