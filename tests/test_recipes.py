"""Recipes the README promises that no other test runs: a search on your own image folder."""

import json
import os

import gin
import numpy as np
from PIL import Image
import pytest

from nasnet_rl import config
from nasnet_rl import search
from nasnet_rl.cli import banner

# The recipe at a test's size: ENAS's 2-block space, tiny children, two of them.
SHRINK = ["search_space.SearchSpace.ops = 'enas'", "search_space.SearchSpace.num_blocks = 2",
          "build_child.filters = 4", "train_child.steps_per_epoch = 2",
          "train_child.batch_size = 8", "standalone_search.max_children = 2",
          "standalone_search.preflight = False", "LSTMController.jit_compile = False",
          "evaluate_child.count_flops = False", "load_dataset.validation_size = 12"]


@pytest.fixture(name="clean_gin")
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _image_folder(root, classes=3, per_class=20):
  """root/<class>/*.png with sizes that differ (the recipe resizes them) and learnable colours."""
  rng = np.random.default_rng(0)
  for c in range(classes):
    os.makedirs(root / f"class_{c}")
    for i in range(per_class):
      h, w = 20 + i % 3, 24 - i % 2
      pixels = rng.integers(0, 60, (h, w, 3)) + 60 * c
      Image.fromarray(pixels.astype(np.uint8)).save(root / f"class_{c}" / f"{i}.png")
  return root


def test_image_folder_recipe_needs_the_folder(clean_gin):
  with pytest.raises(ValueError, match="load_dataset.data_dir set to `%gin.REQUIRED`"):
    config.parse(["gin/search/image_folder_cpu.gin"], SHRINK)


def test_search_on_an_image_folder(clean_gin, tmp_path):
  folder = _image_folder(tmp_path / "images")
  config.parse(["gin/search/image_folder_cpu.gin"],
               SHRINK + [f"load_dataset.data_dir = '{folder}'"])
  line = banner.search(str(tmp_path / "run"))
  assert "budget 2 children or 12 min" in line and f"image_folder from {folder} at 32px" in line
  search.search_main(str(tmp_path / "run"))
  with open(tmp_path / "run" / "history.jsonl") as f:
    children = [json.loads(l) for l in f]
  assert len(children) == 2 and all(c["status"] == "ok" for c in children)
  assert (tmp_path / "run" / "best_genotype.json").exists()


def test_banners_say_what_a_training_and_a_transfer_will_run(clean_gin):
  config.parse(["gin/train/cifar10_nasnet.gin"], [])
  line = banner.train("runs/t", banner.value("train_main", "genotype", "nasnet_a"))
  assert line.startswith("training nasnet_a -> runs/t: 6 cell(s) per stack, 768 penultimate")
  assert "600 epoch(s)" in line and "data cifar10" in line
  gin.clear_config()
  config.parse(["gin/transfer/mobile.gin"], [])
  line = banner.transfer("runs/m", "nasnet_a")
  assert "size mobile" in line and "32 per replica" in line and "tfds:imagenet2012" in line
