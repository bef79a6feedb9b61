"""Transfer: presets and N@F sizing, published parameter and mult-add counts through the presets,
the per-stage report, source resolution, a tiny transfer run with export and reload, fine-tuning
with a new head, MirroredStrategy on two logical CPUs, and CLI errors."""
import json
import os
import subprocess
import sys

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as g
from nasnet_rl.child import flops
from nasnet_rl.cli import transfer as transfer_cli
from nasnet_rl.transfer import export
from nasnet_rl.transfer import report
from nasnet_rl.transfer import scaling
from nasnet_rl.transfer import source as source_lib
from nasnet_rl.transfer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from transfer_mirrored_check import GENOTYPE as SMALL  # pylint: disable=g-import-not-at-top,wrong-import-position

NASNET_A = g.published("nasnet_a")
TINY = ["gin/tiny/transfer.gin"]
FAST = ["train_transfer.epochs = 1", "train_transfer.steps_per_epoch = 2",
        "load_dataset.num_train = 96", "load_dataset.num_test = 32",
        "load_dataset.validation_size = 32"]


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# ---- scaling ------------------------------------------------------------------------------
def test_presets_sizes_and_stem_choice():
  assert scaling.parse_size("6@768") == (6, 768) and scaling.parse_size(" 4 @ 1056") == (4, 1056)
  for bad in ("6x768", "0@768", "@", "6@"):
    with pytest.raises(ValueError, match="N@F"):
      scaling.parse_size(bad)
  with pytest.raises(ValueError, match="unknown scaling preset 'huge'.*cifar.*large.*mobile"):
    scaling.scale("huge")
  with pytest.raises(ValueError, match="unknown field"):
    scaling.scale("cifar", num_cell=3)
  assert scaling.choose_stem(32) == {"body": "cifar", "stem_stride": 1}
  assert scaling.choose_stem(64) == {"body": "cifar", "stem_stride": 2}
  assert scaling.choose_stem(224)["body"] == "imagenet"
  mobile = scaling.scale("mobile")
  assert (mobile.body, mobile.num_cells, mobile.penultimate_filters, mobile.stem_filters,
          mobile.image_size) == ("imagenet", 4, 1056, 32, 224)
  large = scaling.scale("large")
  assert large.skip_reduction_input and large.stem_filters == 96 and large.image_size == 331
  small = scaling.scale("mobile", size="2@264", image_size=64)  # auto stem follows the input
  assert (small.body, small.stem_stride, small.num_cells, small.penultimate_filters) == (
      "cifar", 2, 2, 264)
  assert scaling.scale("cifar", filters=8).penultimate_filters is None
  assert scaling.scale("mobile", image_size=64, stem="preset").body == "imagenet"


def test_mobile_preset_gives_published_params_and_mult_adds():
  model = scaling.build(NASNET_A, scaling.scale("mobile", aux_head=False), 1000)
  assert model.count_params() == 5_326_716  # keras.applications.NASNetMobile
  rep = report.network_report(model)
  assert rep["params"] == 5_326_716 and rep["trainable_params"] == 5_289_978
  assert abs(rep["mult_adds"] / 564e6 - 1) < 0.01  # Zoph et al. 2018 Table 3: 564M
  assert rep["mult_adds"] == 563_638_816  # op-level count of keras' NASNetMobile too
  assert [r["stage"] for r in rep["stages"]] == [
      "stem", "stem_reduction_0", "stem_reduction_1", "stack_1", "reduction_6", "stack_2",
      "reduction_11", "stack_3", "head"]
  assert rep["stages"][3]["output_shape"] == [28, 28, 264]
  assert sum(r["params"] for r in rep["stages"]) == rep["params"]


def test_any_genotype_takes_any_valid_n_at_f():
  with pytest.raises(ValueError, match="multiple of"):
    scaling.build(g.published("enas_micro"), scaling.scale("cifar", size="6@101"), 10)
  sc = scaling.scale("cifar", size="1@80", aux_head=False)
  model = scaling.build(g.published("pnasnet_5"), sc, 10)
  assert model.get_layer("normal_4").output.shape[-1] == 80  # F = the last cell's channels


@pytest.mark.slow
def test_cifar_and_large_presets_give_published_counts():
  model = scaling.build(NASNET_A, scaling.scale("cifar", aux_head=False), 10)
  assert _trainable(model) == 3_346_538  # TF-slim build_nasnet_cifar, 6@768
  model = scaling.build(NASNET_A, scaling.scale("large", aux_head=False), 1000)
  rep = report.network_report(model)
  assert rep["params"] == 88_949_818  # keras.applications.NASNetLarge
  assert abs(rep["mult_adds"] / 23.8e9 - 1) < 0.01  # Zoph et al. 2018 Table 2: 23.8B


def test_report_stages_sum_to_whole_graph_count():
  geno = g.Genotype.from_dict(SMALL)
  model = scaling.build(geno, scaling.scale("cifar", filters=8, num_cells=2), 10)
  rep = report.network_report(model)
  whole = flops.count_mult_adds(export.inference_model(model), (32, 32, 3))
  assert rep["mult_adds"] == whole  # the aux head is not part of the inference graph ...
  assert rep["inference_params"] == export.inference_model(model).count_params()
  names = [r["stage"] for r in rep["stages"]]
  assert [n for n in names if n != "aux_head"] == [
      "stem", "stack_1", "reduction_2", "stack_2", "reduction_5", "stack_3", "head"]
  aux = rep["stages"][names.index("aux_head")]
  assert aux["params"] > 0 and aux["mult_adds"] > 0  # ... but it is reported on its own row
  assert rep["stages"][names.index("stack_2")]["layers"] == ["normal_3", "normal_4"]
  text = report.format_report(rep)
  assert "reduction_5" in text and f"{rep['params']:,}" in text


# ---- sources ------------------------------------------------------------------------------
def test_source_from_name_file_and_run_directories(tmp_path):
  assert source_lib.load_source("enas_micro") == g.published("enas_micro")
  path = tmp_path / "cell.json"
  g.save(NASNET_A, str(path))
  assert source_lib.load_source(str(path)) == NASNET_A
  search = tmp_path / "search"
  search.mkdir()
  ranked = [{"rank": 2, "genotype": NASNET_A.to_dict()},
            {"rank": 1, "genotype": g.published("enas_micro").to_dict()}]
  (search / "best_genotypes.json").write_text(json.dumps(ranked))
  assert source_lib.load_source(str(search)).name == "enas_micro"  # rank 1 of the list
  g.save(g.published("pnasnet_5"), str(search / "best_genotype.json"))
  assert source_lib.load_source(str(search)).name == "pnasnet_5"  # best_genotype.json first
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(ValueError, match="holds none of.*best_genotype.json"):
    source_lib.load_source(str(empty))
  with pytest.raises(ValueError, match="no genotype file or published genotype"):
    source_lib.load_source("no_such_cell")


# ---- training, export, fine-tuning --------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """One tiny transfer run (the CLI's steps in-process) shared by the export tests."""
  gin.clear_config()
  workdir = str(tmp_path_factory.mktemp("transfer"))
  source = os.path.join(workdir, "cell.json")
  g.save(g.Genotype.from_dict(SMALL), source)
  config.parse(TINY, FAST + [f"transfer_main.source = {source!r}"])
  config.write_config(workdir, "config.gin", gin.config_str())
  metrics = transfer_cli.transfer_main(workdir)
  config.write_config(workdir, "operative_config.gin")
  gin.clear_config()
  return workdir, metrics


def test_transfer_run_writes_and_reloads_identically(tiny_run):
  workdir, metrics = tiny_run
  files = set(os.listdir(workdir))
  assert {"model.keras", "saved_model", "genotype.json", "metrics.json", "report.json",
          "report.txt", "preprocessing.json", "config.gin", "operative_config.gin",
          "tensorboard"} <= files
  assert "train_transfer.batch_size = 16" in open(os.path.join(workdir, "operative_config.gin")).read()
  saved = json.load(open(os.path.join(workdir, "metrics.json")))
  assert saved["params"] == metrics["params"] > 0 and 0 <= saved["test_accuracy"] <= 1
  assert saved["replicas"] == 1 and saved["global_batch_size"] == 16
  assert g.load(os.path.join(workdir, "genotype.json")) == g.Genotype.from_dict(SMALL)
  x = tf.random.stateless_uniform([4, 32, 32, 3], [3, 4], -1, 1)
  model = keras.models.load_model(os.path.join(workdir, "model.keras"))
  again = keras.models.load_model(os.path.join(workdir, "model.keras"))
  logits = model(x, training=False)["logits"].numpy()
  np.testing.assert_array_equal(logits, again(x, training=False)["logits"].numpy())
  loaded = tf.saved_model.load(os.path.join(workdir, "saved_model"))
  served = loaded.serve(x).numpy()
  np.testing.assert_allclose(served, logits, rtol=1e-5, atol=1e-5)
  assert np.abs(logits).max() > 0


def test_finetune_new_head_keeps_body(tiny_run):
  workdir, _ = tiny_run
  config.parse(TINY, FAST + ["load_dataset.num_classes = 5", "scale.aux_head = False"])
  splits = data_lib.load_dataset(seed=1)
  metrics, model = train.train_transfer(
      g.Genotype.from_dict(SMALL), splits, None, finetune_from=workdir, train_head_only=True,
      seed=1)
  source = keras.models.load_model(os.path.join(workdir, "model.keras"))
  assert model.get_layer("logits").get_weights()[0].shape[-1] == 5
  assert metrics["finetuned_layers"] > 5
  for name in ("stem_conv", "normal_2", "reduction_3"):  # frozen body: unchanged by training
    for ours, theirs in zip(model.get_layer(name).get_weights(),
                            source.get_layer(name).get_weights()):
      np.testing.assert_array_equal(ours, theirs)
  with pytest.raises(ValueError, match="another genotype or size"):
    train.train_transfer(NASNET_A, splits, None, finetune_from=workdir, seed=1)


def test_bad_recipe_values_are_clear_errors():
  config.parse(TINY, FAST)
  splits = data_lib.load_dataset(seed=0)
  geno = g.Genotype.from_dict(SMALL)
  with pytest.raises(ValueError, match="exactly one of"):
    train.train_transfer(geno, splits, None, batch_size=16, batch_size_per_replica=16)
  with pytest.raises(ValueError, match="unknown optimizer"):
    train.train_transfer(geno, splits, None, optimizer="adagrad")


# ---- distribution -------------------------------------------------------------------------
@pytest.mark.slow  # 70-90 s; tests/test_optim.py checks Mirrored vs one device by default
def test_mirrored_two_cpus_step_matches_single_device():
  """One transfer step under MirroredStrategy equals one on one device (loss and weights), and
  the step moved the weights by 100 times more than the two differ. Deliberate bug it catches:
  a step that does not move the weights (equal weights would then be trivially equal)."""
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "transfer_mirrored_check.py")],
                        capture_output=True, text=True, timeout=300, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["replicas"] == [1, 2]
  assert abs(out["single_loss"] - out["mirrored_loss"]) < 1e-4 * abs(out["single_loss"])
  assert out["max_weight_diff"] < 1e-4
  assert out["moved"] > 100 * out["max_weight_diff"] and out["moved"] > 1e-3, out


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path):
  empty = tmp_path / "run"
  empty.mkdir()
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "transfer.py"),
                         "--gin_file=gin/tiny/transfer.gin", f"--source={empty}",
                         f"--workdir={tmp_path / 'out'}"],
                        capture_output=True, text=True, timeout=120, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert "error: " in proc.stderr and "holds none of" in proc.stderr
