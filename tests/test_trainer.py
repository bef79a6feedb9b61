"""Standalone training end to end: shipped gin files, run directory, errors, divergence."""
import json
import os
import subprocess
import sys

import gin
import pytest

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as g
from nasnet_rl.child import trainer
from nasnet_rl.cli import train as train_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from small_genotypes import ONE_BLOCK  # pylint: disable=g-import-not-at-top,wrong-import-position
GIN_DIR = os.path.join(ROOT, "gin")


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _all_gin_files():
  return sorted(os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(GIN_DIR)
                for f in fs if f.endswith(".gin"))


@pytest.mark.parametrize("path", _all_gin_files())
def test_shipped_gin_files_parse(path):
  if "%gin.REQUIRED" in open(os.path.join(ROOT, path)).read():
    with pytest.raises(ValueError, match="REQUIRED"):  # names what the user must set
      config.parse([path])
  else:
    config.parse([path])


def test_tiny_run_writes_run_directory(tmp_path):
  genotype = str(tmp_path / "one_block.json")
  g.save(g.Genotype.from_dict(ONE_BLOCK), genotype)
  workdir = tmp_path / "run"
  config.parse(["gin/tiny/train.gin"], [f"train_main.genotype = {genotype!r}"])
  metrics = train_cli.train_main(str(workdir))
  tmp_path = workdir
  files = set(os.listdir(tmp_path))
  assert {"metrics.json", "genotype.json", "model.keras", "tensorboard"} <= files
  saved = json.load(open(tmp_path / "metrics.json"))
  assert saved["params"] == metrics["params"] > 0
  assert 0.0 <= saved["test_accuracy"] <= 1.0 and 0.0 <= saved["val_accuracy"] <= 1.0
  assert len(saved["history"]["loss"]) == 2
  assert g.load(str(tmp_path / "genotype.json")) == g.Genotype.from_dict(ONE_BLOCK)
  assert os.listdir(tmp_path / "tensorboard")


@pytest.mark.slow  # 80 s; learning is also checked by the real-data main-job test (slow)
def test_training_learns_synthetic_data():
  config.parse(["gin/tiny/train.gin"], ["build_child.aux_head = False",
                                        "train_child.steps_per_epoch = 20",
                                        "train_child.learning_rate = 0.05",
                                        "load_dataset.num_train = 640"])
  splits = data_lib.load_dataset(seed=1)
  metrics = trainer.train_child(g.published("enas_micro"), splits, None, seed=1)
  assert metrics["val_accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_divergence_is_reported():
  config.parse(["gin/tiny/train.gin"], ["train_child.learning_rate = 1e30",
                                        "train_child.grad_clip_norm = None",
                                        "build_child.aux_head = False"])
  splits = data_lib.load_dataset(seed=0)
  with pytest.raises(trainer.ChildDivergedError, match="non-finite loss"):
    trainer.train_child(g.Genotype.from_dict(ONE_BLOCK), splits, None)


def _cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args],
                        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("args, message", [
    (["--gin.train_child.epoch=3"], "doesn't have a parameter named 'epoch'"),
    (["--gin.no_such_function.x=1"], "No configurable matching 'no_such_function'"),
    (["--genotype=no_such_cell"], "no genotype file or published genotype named 'no_such_cell'"),
    (["--gin.load_fashion_mnist.path='/nonexistent/fm'", "--gin.load_dataset.name='fashion_mnist'"],
     "/nonexistent/fm"),
])
def test_cli_bad_input_is_one_clear_error(tmp_path, args, message):
  result = _cli("--gin_file=gin/tiny/train.gin", f"--workdir={tmp_path}", *args)
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_cli_malformed_genotype_file(tmp_path):
  bad = tmp_path / "bad.json"
  d = g.published("nasnet_a").to_dict()
  d["normal"]["blocks"][2]["inputs"] = [5, 0]
  bad.write_text(json.dumps(d))
  result = _cli("--gin_file=gin/tiny/train.gin", f"--workdir={tmp_path}", f"--genotype={bad}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "'normal.blocks[2].inputs[0]': index 5 points forward" in result.stderr


@pytest.mark.slow
def test_main_job_fashion_mnist_reaches_88_percent(tmp_path):
  """The README's main job: NASNet-A child, real Fashion-MNIST, 3 epochs, 2 CPU cores."""
  result = _cli("--gin_file=gin/train/fashion_mnist_cpu.gin", f"--workdir={tmp_path}",
                "--gin.train_child.verbose=2", timeout=1500)
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.load(open(tmp_path / "metrics.json"))
  assert metrics["test_accuracy"] >= 0.88
