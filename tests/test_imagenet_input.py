"""ImageNet-style input: images of varying size stream through, each cropped on its own.

`tfds.testing.mock_data` stands in for `imagenet2012` (its mock images vary in size, like the
real ones), and `gin/transfer/mobile.gin` runs shrunk end to end on it (under
bfloat16, which also covers transfer's mixed precision)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl.cli import transfer as transfer_cli
from nasnet_rl.child import trainer as child_trainer
from nasnet_rl.transfer import preprocess

tfds = pytest.importorskip("tensorflow_datasets")
from conftest import assert_trained_under  # pylint: disable=g-bad-import-order


def test_varying_sizes_load_as_is_and_crop_per_example():
  with tfds.testing.mock_data(num_examples=12):
    splits = data_lib.load_dataset("tfds:imagenet2012", validation_size=2,
                                   train_split="train", test_split="validation")
    assert splits.image_shape == (None, None, 3) and splits.num_classes == 1000
    sizes = {tuple(x.shape[:2]) for x, _ in splits.train.take(10)}
    assert len(sizes) > 1, f"mock images all {sizes}: the test would prove nothing"
    for training in (True, False):
      x, y = next(iter(preprocess.imagenet_batches(splits.train, 4, training, (40, 40))))
      assert x.shape == (4, 40, 40, 3) and y.shape == (4,)
      assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    with pytest.raises(ValueError, match="vary in size; pass load_dataset.image_size"):
      child_trainer.train_child(None, splits, None)
    resized = data_lib.load_dataset("tfds:imagenet2012", validation_size=2, image_size=16,
                                    train_split="train", test_split="validation")
    assert resized.fixed_image_shape() == (16, 16, 3)


def test_mobile_gin_shrunk_runs_on_mock_imagenet(tmp_path, trained_models):
  """gin/transfer/mobile.gin shrunk, on mock ImageNet, in mixed bfloat16: the trained model's
  body computes in bfloat16. Deliberate bug it catches: deleting the `precision_lib.policy(...)`
  line in transfer/train.py (`metrics["precision"]` only echoes the argument)."""
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings(["gin/transfer/mobile.gin"], [
        "scale.image_size = 32", "scale.size = '1@24'", "train_transfer.epochs = 1",
        "train_transfer.steps_per_epoch = 2", "train_transfer.batch_size_per_replica = 4",
        "train_transfer.export_model = False", "train_transfer.verbose = 0",
        "train_transfer.precision = 'mixed_bfloat16'"])
    with tfds.testing.mock_data(num_examples=8):
      metrics = transfer_cli.transfer_main(str(tmp_path / "run"), source="nasnet_a")
  finally:
    gin.clear_config()
  assert metrics["dataset"] == "tfds:imagenet2012" and metrics["num_classes"] == 1000
  assert np.isfinite(metrics["history"]["loss"][0]) and 0.0 <= metrics["test_accuracy"] <= 1.0
  assert metrics["global_batch_size"] == 4 and metrics["scale"]["image_size"] == 32
  assert metrics["precision"] == "mixed_bfloat16"
  [(model, before)] = trained_models
  assert_trained_under(model, before, "bfloat16")
