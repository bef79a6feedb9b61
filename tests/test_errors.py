"""Bad input, broken set-ups and divergence: one-line errors at the entry points, nothing lost
on disk, searches that fail loudly (issue 9)."""

import io
import json
import os
import subprocess
import sys
import tarfile

import gin
import numpy as np
import pytest

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import genotype as g
from nasnet_rl import search_space as ss
from nasnet_rl.child import evaluate
from nasnet_rl.child import trainer
from nasnet_rl.cli import common
from nasnet_rl.cli import compare as compare_cli
from nasnet_rl.cli import search as search_cli
from nasnet_rl.cli import show as show_cli
from nasnet_rl.cli import train as train_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPACE = ss.SearchSpace("enas", 1)
TINY_CHILD = ["build_child.num_cells = 1", "build_child.filters = 4",
              "build_child.aux_head = False", "build_child.penultimate_filters = None"]
SYNTH = ["load_dataset.name = 'synthetic'", "load_dataset.num_train = 64",
         "load_dataset.num_test = 16", "load_dataset.validation_size = 32",
         "load_synthetic.image_shape = (8, 8, 3)"]


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _cli(module, argv, monkeypatch):
  """Runs a CLI's main through common.run_main in this process; the exit code/message."""
  common.FLAGS.unparse_flags()
  gin.clear_config()
  monkeypatch.setattr(sys, "argv", ["prog"] + argv)
  with pytest.raises(SystemExit) as exit_info:
    common.run_main(module.main)
  return exit_info.value.code


def _one_error_line(code, *fragments):
  assert isinstance(code, str) and code.startswith("error: "), code
  assert "\n" not in code and "Traceback" not in code and " at 0x" not in code, code
  for fragment in fragments:
    assert fragment in code, code


def _snapshot(workdir):
  out = {}
  for d, _, files in os.walk(workdir):
    for f in files:
      p = os.path.join(d, f)
      if f != ".lock":
        out[os.path.relpath(p, workdir)] = open(p, "rb").read()
  return out


# ---- divergence --------------------------------------------------------------------------
def test_divergence_on_the_last_step_is_caught():
  """lr 1e6 for 3 steps: the last loss can be finite while weights and logits are not; the
  weights detector (check_finite_weights) names them. Deliberate bug it catches: a trainer that
  no longer checks the weights after training (the old match, "non-finite", also took another
  detector's message)."""
  config.parse([], TINY_CHILD)
  splits = data_lib.load_dataset("synthetic", num_train=64, num_test=16, validation_size=32,
                                 image_shape=(8, 8, 3))
  geno = SPACE.decode([0] * len(SPACE.num_choices()))
  with pytest.raises(trainer.ChildDivergedError, match="non-finite weights after training"):
    trainer.train_child(geno, splits, None, epochs=1, steps_per_epoch=3, batch_size=16,
                        learning_rate=1e6, grad_clip_norm=None, augment=False,
                        save_model=False, evaluate_test=False, count_mult_adds=False, verbose=0)


def test_non_finite_weights_are_divergence():
  import keras
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
  trainer.check_finite_weights(model)
  w = model.layers[0].kernel
  w.assign(np.full(w.shape, np.inf, np.float32))
  with pytest.raises(trainer.ChildDivergedError, match="non-finite weights.*kernel"):
    trainer.check_finite_weights(model)


@pytest.mark.parametrize("kwargs, message", [({"steps_per_epoch": 0}, "steps_per_epoch"),
                                             ({"epochs": 0}, "epochs"),
                                             ({"batch_size": True}, "batch_size")])
def test_silent_no_op_training_settings_are_errors(kwargs, message):
  with pytest.raises(ValueError, match=f"train_child.{message} must be"):
    trainer.train_child(None, None, **kwargs)


# ---- searches that fail loudly --------------------------------------------------------------
def test_a_missing_dataset_is_an_infrastructure_failure_and_stops_preflight(tmp_path):
  config.parse([], TINY_CHILD + ["load_dataset.name = 'cifar10_local'",
                                 f"load_cifar10_local.path = '{tmp_path}/nowhere'"])
  geno = SPACE.decode([0] * len(SPACE.num_choices())).to_dict()
  result = evaluate.evaluate_child(geno, 0)
  assert result["status"] == "failed" and result["infrastructure"] is True
  assert evaluate.is_infrastructure_failure(result)
  assert "nowhere" in result["error"] and "\n" not in result["error"]
  assert "In call to configurable" not in result["error"] and " at 0x" not in result["error"]
  with pytest.raises(ValueError, match="the search cannot start: .*nowhere"):
    evaluate.preflight(geno)


def test_preflight_passes_a_working_set_up():
  config.parse([], TINY_CHILD + SYNTH + ["train_child.batch_size = 16"])
  evaluate.preflight(SPACE.decode([0] * len(SPACE.num_choices())).to_dict())


def test_failure_streak_stops_on_the_same_error_only():
  streak = evaluate.FailureStreak(limit=3)
  bad = {"status": "failed", "error": "DatasetNotFoundError: x"}
  streak.observe(bad)
  streak.observe(bad)
  streak.observe({"status": "diverged", "error": "non-finite loss"})  # a different error
  streak.observe(bad)
  streak.observe({"status": "ok", "reward": 0.5})
  streak.observe(bad)
  streak.observe(bad)
  with pytest.raises(evaluate.SearchAbortedError, match="3 children in a row.*DatasetNotFound"):
    streak.observe(bad)
  assert not evaluate.is_infrastructure_failure({"status": "diverged"})
  assert evaluate.is_infrastructure_failure({"status": "failed", "error": "worker died"})


# ---- entry points: one line, nothing lost ------------------------------------------------------
def test_workdir_that_is_a_file_and_a_held_workdir(tmp_path, monkeypatch):
  f = tmp_path / "file"
  f.write_text("x")
  _one_error_line(_cli(train_cli, [f"--workdir={f}"], monkeypatch), "is a file")
  code = ("import sys, time\nfrom nasnet_rl import rundir\nrundir.acquire(sys.argv[1])\n"
          "print('ready', flush=True)\ntime.sleep(60)\n")
  held = tmp_path / "held"
  proc = subprocess.Popen([sys.executable, "-c", code, str(held)], stdout=subprocess.PIPE,
                          env=dict(os.environ, PYTHONPATH=ROOT), text=True)
  try:
    assert proc.stdout.readline().strip() == "ready"
    _one_error_line(_cli(train_cli, [f"--workdir={held}"], monkeypatch),
                    f"in use by process {proc.pid}")
  finally:
    proc.kill()
    proc.wait()


def test_gin_errors_are_one_line_before_any_data_loads(tmp_path, monkeypatch):
  bad = tmp_path / "bad.gin"
  bad.write_text("train_child.epochs = (\n")
  _one_error_line(_cli(train_cli, [f"--workdir={tmp_path}/a", f"--gin_file={bad}"],
                       monkeypatch), "bad gin configuration", "TokenError")
  # the dataset does not exist either: the type error must come first
  _one_error_line(_cli(train_cli, [f"--workdir={tmp_path}/b",
                                   "--gin.load_dataset.name='cifar10_local'",
                                   "--gin.load_cifar10_local.path='/no/such/cifar'",
                                   "--gin.train_child.epochs='twotwo'"], monkeypatch),
                  "train_child.epochs = 'twotwo': expected int")
  assert not os.path.exists(tmp_path / "b" / "config.gin")


def test_a_failed_start_keeps_a_finished_runs_config(tmp_path, monkeypatch):
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.gin").write_text("# the real config\n")
  (run / "metrics.json").write_text("{}")
  for _ in range(2):
    _one_error_line(_cli(train_cli, [f"--workdir={run}", "--gin.load_dataset.name='cifar10_local'",
                                     "--gin.load_cifar10_local.path='/no/such/cifar'"],
                         monkeypatch), "/no/such/cifar")
  assert sorted(os.listdir(run)) == [".lock", "config.gin", "metrics.json"]
  assert (run / "config.gin").read_text() == "# the real config\n"


def test_diverged_child_in_train_is_one_line(tmp_path, monkeypatch):
  def diverge(*a, **k):
    raise trainer.ChildDivergedError("non-finite weights after training (dense/kernel)")
  monkeypatch.setattr(train_cli.trainer, "train_child", diverge)
  argv = [f"--workdir={tmp_path}"] + [f"--gin_param={p}" for p in SYNTH]
  _one_error_line(_cli(train_cli, argv, monkeypatch), "ChildDivergedError", "dense/kernel")
  assert (tmp_path / "config.gin").exists()  # inputs were valid: the config is recorded


def test_show_takes_a_run_directory(tmp_path, monkeypatch):
  run = tmp_path / "run"
  run.mkdir()
  _one_error_line(_cli(show_cli, [f"--genotype={run}", f"--out={tmp_path}/x.png"], monkeypatch),
                  "holds none of")
  g.save(g.published("enas_micro"), str(run / "best_genotype.json"))
  assert _cli(show_cli, [f"--genotype={run}", f"--out={tmp_path}/x.svg"], monkeypatch) is None
  assert "<svg" in (tmp_path / "x.svg").read_text()


def _fake_evaluate(genotype, seed):
  return {"status": "ok", "reward": 0.5, "params": 1, "mult_adds": 1}


def test_search_resume_that_does_not_match_changes_nothing(tmp_path, monkeypatch):
  monkeypatch.setattr(evaluate, "evaluate_child", _fake_evaluate)
  run = tmp_path / "run"
  base = [f"--workdir={run}", "--gin_file=gin/tiny/search.gin"]
  monkeypatch.chdir(ROOT)
  assert _cli(search_cli, base + ["--gin.standalone_search.max_children=1"], monkeypatch) is None
  original = (run / "config.gin").read_text()
  before = _snapshot(run)
  for _ in range(2):  # two wrong attempts: another strategy
    _one_error_line(_cli(search_cli, base + ["--gin.standalone_search.max_children=2",
                                             "--gin.standalone_search.strategy='random'"],
                         monkeypatch), "cannot resume from the checkpoint in", "checkpoints")
  assert _snapshot(run) == before
  # a damaged checkpoint: one line naming it, nothing written
  ckpt = run / "checkpoints" / "strategy"
  victim = next(p for p in sorted(ckpt.iterdir()) if p.name != "progress.json")
  victim.write_bytes(victim.read_bytes()[:20])
  before = _snapshot(run)
  _one_error_line(_cli(search_cli, base + ["--gin.standalone_search.max_children=2"],
                       monkeypatch), "cannot resume from the checkpoint in", str(ckpt))
  assert _snapshot(run) == before
  # a matching resume with a new budget: the old config is kept, not replaced
  victim.unlink()
  (ckpt / "progress.json").unlink()
  assert _cli(search_cli, base + ["--gin.standalone_search.max_children=2"], monkeypatch) is None
  assert (run / "config.gin.previous-1").read_text() == original
  assert "max_children = 2" in (run / "config.gin").read_text()


# ---- data -----------------------------------------------------------------------------------
def test_truncated_and_garbage_cifar_archives(tmp_path):
  from nasnet_rl.data import cifar10
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
    (folder / name).write_bytes(os.urandom(4096))
  archive = tmp_path / "cifar.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(folder, arcname="cifar-10-batches-py")
  archive.write_bytes(archive.read_bytes()[:15000])
  with pytest.raises(ValueError, match="cifar.tar.gz: truncated or damaged archive"):
    cifar10.load_cifar10_local(str(archive))
  garbage = tmp_path / "garbage.tar.gz"
  garbage.write_bytes(b"not an archive at all")
  with pytest.raises(ValueError, match="garbage.tar.gz: not a tar archive"):
    cifar10.load_cifar10_local(str(garbage))


def test_truncated_png_and_one_class_folder(tmp_path):
  from PIL import Image
  from nasnet_rl.data import image_folder
  for cls in ("a", "b"):
    (tmp_path / cls).mkdir()
    for i in range(3):
      Image.fromarray(np.full((4, 4, 3), i * 40, np.uint8)).save(tmp_path / cls / f"{i}.png")
  image_folder.load_image_folder(str(tmp_path), test_fraction=0.5)
  png = tmp_path / "b" / "2.png"
  png.write_bytes(png.read_bytes()[:-20])
  with pytest.raises(ValueError, match="2.png: truncated or damaged image"):
    image_folder.load_image_folder(str(tmp_path), test_fraction=0.5)
  png.unlink()
  for f in (tmp_path / "b").iterdir():
    f.unlink()
  (tmp_path / "b").rmdir()
  with pytest.raises(ValueError, match="1 class folder"):
    image_folder.load_image_folder(str(tmp_path), test_fraction=0.5)


# ---- names from data ---------------------------------------------------------------------------
def test_compare_output_paths_stay_under_the_workdir(tmp_path, monkeypatch):
  seen = []

  def fake_train(geno, splits, workdir, seed):
    seen.append(workdir)
    return {"test_accuracy": 0.5, "val_accuracy": 0.5, "params": 1, "train_seconds": 0.0}

  monkeypatch.setattr(compare_cli.trainer, "train_child", fake_train)
  monkeypatch.setattr(compare_cli.data_lib, "load_dataset", lambda seed: None)
  geno = g.Genotype.from_dict(dict(g.published("enas_micro").to_dict(), name="../../../escaped"))
  work = tmp_path / "deep" / "work"
  compare_cli.compare(geno, 1, 1, str(work), 0)
  assert seen and all(os.path.dirname(p) == str(work) for p in seen)
  assert ".." not in os.path.basename(seen[0])


def test_one_line_messages():
  e = FileNotFoundError(2, "No such file or directory", "/x/y.npz")
  assert common.one_line(e) == "/x/y.npz: No such file or directory"
  e = TypeError("Cannot convert 'twotwo' to EagerTensor\n  In call to configurable 'f' "
                "(<function f at 0x7f00deadbeef>)")
  assert common.one_line(e) == "TypeError: Cannot convert 'twotwo' to EagerTensor"
  assert common.one_line(KeyError("key")) == "KeyError: 'key'"
  assert common.one_line(RecursionError()) == "RecursionError"
