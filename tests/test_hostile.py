"""Hostile inputs, round 3 (issue 37): a lock nobody can steal, Ctrl-C that says how to resume,
rewards that are what they claim, images checked where they are read, settings checked before
work, errors that name the real cause."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# gin cleared around every test (test_errors' autouse fixture), CLIs run in-process
from test_errors import _clear_gin, _cli, _one_error_line  # pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
SEARCH = [sys.executable, os.path.join(ROOT, "scripts", "search.py"),
          "--gin_file=gin/tiny/search.gin"]


def _lines(path):
  return [json.loads(l) for l in open(path).read().split("\n") if l.strip()] \
      if os.path.exists(path) else []


def _start(cmd, until, timeout=300):
  """Starts `cmd`; waits until `until()` holds while it runs. The process."""
  proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + timeout
  while not until() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.2)
  assert proc.poll() is None, proc.communicate()[1][-3000:]
  return proc


def _last_line(text):
  return [l for l in text.splitlines() if l.strip()][-1]


# ---- 1. a lock nobody can steal ------------------------------------------------------------
def test_deleting_the_lock_file_does_not_let_a_second_search_in(tmp_path):
  workdir = str(tmp_path / "run")
  cmd = SEARCH + [f"--workdir={workdir}", "--gin.standalone_search.max_children=2"]
  history = os.path.join(workdir, "history.jsonl")
  first = _start(cmd, lambda: len(_lines(history)) >= 1)
  os.remove(os.path.join(workdir, ".lock"))  # "clean up the stale lock"
  second = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  out, err = first.communicate(timeout=300)
  assert first.returncode == 0, err[-3000:]
  assert second.returncode == 1
  line = _last_line(second.stderr)
  assert line.startswith("error: run directory") and "is in use by" in line, second.stderr
  assert "Traceback" not in second.stderr
  entries = _lines(history)
  assert [e["index"] for e in entries] == list(range(len(entries)))
  trained = [e["key"] for e in entries if not e["cached"]]
  assert len(trained) == len(set(trained)) == 2  # every child trained once


# ---- 5. interrupts -------------------------------------------------------------------------
def test_sigint_on_a_search_is_one_line_and_the_rerun_resumes(tmp_path):
  workdir = str(tmp_path / "run")
  cmd = SEARCH + [f"--workdir={workdir}", "--gin.standalone_search.max_children=2"]
  history = os.path.join(workdir, "history.jsonl")
  proc = _start(cmd, lambda: len(_lines(history)) >= 1)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-3000:]
  before = _lines(history)
  assert err.strip().splitlines()[-1] == (
      f"interrupted after child {len(before) - 1}; rerun the same command to resume"), err
  assert "Traceback" not in err and "KeyboardInterrupt" not in err
  again = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  assert again.returncode == 0, again.stderr[-3000:]
  after = _lines(history)
  assert after[:len(before)] == before  # nothing lost
  trained = [e["key"] for e in after if not e["cached"]]
  assert len(trained) == len(set(trained)) == 2  # nothing trained twice


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_train_py_is_one_line_naming_the_saved_step(tmp_path, signum):
  workdir = str(tmp_path / "train")
  cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"),
         "--gin_file=gin/tiny/train.gin", f"--workdir={workdir}", "--genotype=enas_micro",
         "--gin.train_child.epochs=50", "--gin.train_child.steps_per_epoch=2"]
  root = os.path.join(workdir, "checkpoints")
  proc = _start(cmd, lambda: os.path.isdir(root) and any(
      not n.endswith(".tmp") for n in os.listdir(root)))
  proc.send_signal(signum)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signum, err[-3000:]
  line = err.strip().splitlines()[-1]
  assert line.startswith("interrupted after step ") and line.endswith(
      "; rerun the same command to resume"), err
  assert "Traceback" not in err


def test_the_interrupt_line_names_what_a_rerun_resumes_from(tmp_path):
  from nasnet_rl.cli import interrupt
  assert interrupt.message(str(tmp_path)) == (
      f"interrupted before anything was saved in {tmp_path}; rerun the same command to start")
  (tmp_path / "epochs.jsonl").write_text("".join(
      json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
  os.makedirs(tmp_path / "checkpoints" / "step-0000001234")
  (tmp_path / "checkpoints" / "step-0000001234" / "progress.json").write_text("{}")
  assert interrupt.message(str(tmp_path)) == (
      "interrupted after epoch 3 / step 1,234; rerun the same command to resume")


# ---- helpers for in-process runs -----------------------------------------------------------
def _table(path, rows):
  import csv
  with open(path, "w", newline="") as f:
    csv.writer(f).writerows([("arch", "valid", "test")] + rows)
  return str(path)


def _all_cells(valid=50.0, test=40.0):
  import itertools
  from nasnet_rl.benchmarks import nb201
  return [[nb201.format_arch(d), valid, test] for d in itertools.product(range(5), repeat=6)]


def _nb201_search(workdir, *bindings):
  from nasnet_rl import config
  from nasnet_rl import search
  config.parse(["gin/search/nb201_cifar100.gin"], list(bindings))
  return search.search_main(str(workdir))


# ---- 2. rewards are what they claim to be --------------------------------------------------
@pytest.mark.parametrize("reward, problem", [
    ("NaN", "reward nan is not a finite number"),
    ("Infinity", "reward inf is not a finite number"),
    ("7.5", "reward 7.5 is outside [0, 1]")])
def test_impossible_rewards_in_a_history_are_one_error_naming_the_line(tmp_path, reward,
                                                                         problem):
  from nasnet_rl import history
  good = {"index": 0, "key": "a", "decisions": [0], "reward": 0.5, "status": "ok"}
  bad = dict(good, index=1, key="b")
  text = json.dumps(good) + "\n" + json.dumps(bad).replace('"reward": 0.5',
                                                           f'"reward": {reward}') + "\n"
  (tmp_path / "history.jsonl").write_text(text)
  with pytest.raises(ValueError) as e:
    history.History(str(tmp_path / "history.jsonl"))
  assert str(e.value).startswith(f"{tmp_path / 'history.jsonl'} line 2: {problem}"), e.value
  assert (tmp_path / "history.jsonl").read_text() == text  # nothing changed


def test_written_json_is_strict():
  from nasnet_rl import jsonio
  text = jsonio.dumps({"reward": float("nan"), "best": [float("inf"), 0.5]}, sort_keys=True)
  assert text == '{"best": [null, 0.5], "reward": null}'
  json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in written JSON"))


def test_tables_refuse_duplicate_cells_and_impossible_accuracies(tmp_path):
  from nasnet_rl.benchmarks import table
  rows = _all_cells()
  path = _table(tmp_path / "dup.csv", rows + [[rows[3][0], 99.0, 99.0]])
  with pytest.raises(ValueError, match=r"dup.csv, lines 5 and 15627: the same arch"):
    table.TabularBenchmark(path, reward_column="valid", report_column="test")
  rows[7][1] = 750.0
  path = _table(tmp_path / "range.csv", rows)
  with pytest.raises(ValueError, match=r"range.csv, line 9: column 'valid' holds 750.0 is "
                                       r"outside \[0, 100\]"):
    table.TabularBenchmark(path, reward_column="valid", report_column="test")


def test_an_executor_reward_outside_0_1_fails_the_child_not_the_ranking(tmp_path, monkeypatch):
  from nasnet_rl import search
  from nasnet_rl import search_space
  from nasnet_rl.child import evaluate
  monkeypatch.setattr(evaluate, "evaluate_child",
                      lambda g, s: {"status": "ok", "reward": 7.5, "params": 1})
  with pytest.raises(evaluate.SearchAbortedError, match=r"reward 7.5 is outside \[0, 1\]"):
    search.standalone_search(str(tmp_path), space=search_space.SearchSpace("enas", 1),
                             strategy="random", max_children=2, preflight=False)
  entries = _lines(tmp_path / "history.jsonl")
  assert entries and all(e["status"] == "failed" and e["infrastructure"] for e in entries)


def test_budgets_beyond_the_space_are_refused_before_any_work(tmp_path, monkeypatch):
  from nasnet_rl.cli import compare_strategies
  code = _cli(compare_strategies, ["--budgets=100,100000", "--seeds=1", "--workers=1",
                                   f"--out={tmp_path / 'cmp'}"], monkeypatch)
  _one_error_line(code, "--budgets=100,000 exceeds the search space's 15,625 architectures")
  with pytest.raises(ValueError, match="max_children=20,000 exceeds the search space's 15,625"):
    _nb201_search(tmp_path / "run", "standalone_search.max_children = 20000")
  assert not os.path.exists(tmp_path / "run" / "history.jsonl")


# ---- 3. images checked where they are read -------------------------------------------------
def _image_folder(root):
  import numpy as np
  from PIL import Image
  for cls in ("a", "b"):
    (root / cls).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
  return root


def test_images_are_verified_by_content_with_the_pipelines_decoder(tmp_path):
  import numpy as np
  from PIL import Image
  from nasnet_rl.data import image_folder
  root = _image_folder(tmp_path / "images")
  Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(root / "a" / "9.png", format="JPEG")
  loaded = image_folder.load_image_folder(str(root), test_fraction=0.5)  # a JPEG named .png
  decoded = list(loaded.train.to_dataset()) + list(loaded.test.to_dataset())
  assert len(decoded) == 7
  bmp = root / "b" / "5.bmp"
  Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(bmp)
  bmp.write_bytes(bmp.read_bytes()[:-30])  # truncated
  with pytest.raises(ValueError, match=r"5.bmp: truncated or damaged image, tf.io.decode_image"):
    image_folder.load_image_folder(str(root), test_fraction=0.5, image_size=4)
  bmp.unlink()
  (root / "b" / "6.png").write_bytes(b"not an image at all" + b"IEND\xaeB`\x82")
  with pytest.raises(ValueError, match=r"6.png: truncated or damaged image"):
    image_folder.load_image_folder(str(root), test_fraction=0.5, image_size=4)


# ---- 4. settings checked before work starts; divergence --------------------------------------
@pytest.mark.parametrize("rate", ["-0.5", "0.0"])
def test_a_learning_rate_that_is_not_positive_is_refused_before_work(tmp_path, monkeypatch,
                                                                     rate):
  from nasnet_rl.cli import train as train_cli
  code = _cli(train_cli, [f"--workdir={tmp_path}", "--gin_file=gin/tiny/train.gin",
                          f"--gin.train_child.learning_rate={rate}"], monkeypatch)
  _one_error_line(code, f"train_child.learning_rate = {rate}: a learning rate must be > 0")
  assert sorted(os.listdir(tmp_path)) == [".lock"]


@pytest.mark.parametrize("flag", ["--k=0", "--repeats=0"])
def test_compare_search_counts_are_checked_first(tmp_path, monkeypatch, flag):
  from nasnet_rl import genotype
  from nasnet_rl.cli import compare as compare_cli
  (tmp_path / "search").mkdir()
  genotype.save(genotype.published("enas_micro"), str(tmp_path / "search" / "best_genotype.json"))
  code = _cli(compare_cli, [f"--workdir={tmp_path / 'cmp'}", "--gin_file=gin/tiny/train.gin",
                            f"--enas_workdir={tmp_path / 'search'}", flag], monkeypatch)
  _one_error_line(code, f"{flag.split('=')[0]} must be >= 1, got 0")
  assert not os.path.exists(tmp_path / "cmp")


def test_an_existing_file_as_out_is_refused_before_the_comparison(tmp_path, monkeypatch):
  from nasnet_rl.cli import compare_strategies
  out = tmp_path / "results"
  out.write_text("keep me")
  code = _cli(compare_strategies, ["--budgets=5", "--seeds=1", "--workers=1",
                                   f"--out={out}"], monkeypatch)
  _one_error_line(code, f"--out '{out}' is a file, not a directory")
  assert out.read_text() == "keep me"


def test_a_loss_that_ends_orders_of_magnitude_above_its_start_is_diverged(monkeypatch):
  import types
  from nasnet_rl import search_space
  from nasnet_rl.child import evaluate
  from nasnet_rl.child import trainer
  monkeypatch.setattr(evaluate, "_splits", lambda seed: types.SimpleNamespace(num_classes=10))
  monkeypatch.setattr(trainer, "train_child", lambda *a, **k: {
      "val_accuracy": 0.04, "params": 1, "train_seconds": 1.0, "history": {"loss": [3.1, 1e11]}})
  geno = search_space.SearchSpace("enas", 1).decode([0] * 8).to_dict()
  result = evaluate.evaluate_child(geno, 0, count_flops=False)
  assert result["status"] == "diverged" and "1e+11" in result["error"], result
  monkeypatch.setattr(trainer, "train_child", lambda *a, **k: {
      "val_accuracy": 0.5, "params": 1, "train_seconds": 1.0, "history": {"loss": [9.0, 1.2]}})
  assert evaluate.evaluate_child(geno, 0, count_flops=False)["status"] == "ok"


# ---- 6. errors name the real cause and the file --------------------------------------------
def test_init_from_a_file_that_is_not_a_keras_archive_says_so(tmp_path):
  from nasnet_rl.transfer import keras_weights
  path = tmp_path / "model.keras"
  path.write_text("not a zip")
  with pytest.raises(ValueError, match="the file exists but is not a .keras archive"):
    keras_weights.load_keras_application(str(path))


def test_a_nb201_search_with_the_local_executor_names_the_table_executor(tmp_path):
  with pytest.raises(ValueError, match="set make_executor.kind = 'table'"):
    _nb201_search(tmp_path / "run", "make_executor.kind = 'local'",
                  "standalone_search.max_children = 3")


def test_a_dangling_symlink_workdir_is_named(tmp_path, monkeypatch):
  from nasnet_rl.cli import search as search_cli
  link = tmp_path / "runs"
  link.symlink_to(tmp_path / "gone")
  code = _cli(search_cli, [f"--workdir={link}", "--gin_file=gin/tiny/search.gin"], monkeypatch)
  _one_error_line(code, f"--workdir '{link}' is a symlink to '{tmp_path / 'gone'}', which does "
                    "not exist")


class _DiskFullAfter:
  """os for nasnet_rl.jsonio, whose writes fail with ENOSPC (half written) after `n` writes."""

  def __init__(self, n):
    self.n = n

  def __getattr__(self, name):
    return getattr(os, name)

  def write(self, fd, data):
    import errno
    self.n -= 1
    if self.n >= 0:
      return os.write(fd, data)
    os.write(fd, bytes(data[:len(data) // 2]))
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_names_the_file_and_loses_nothing(tmp_path, monkeypatch):
  from nasnet_rl import jsonio
  from nasnet_rl import search
  from nasnet_rl import search_space
  from nasnet_rl.child import evaluate
  from nasnet_rl.cli import common
  monkeypatch.setattr(evaluate, "evaluate_child",
                      lambda g, s: {"status": "ok", "reward": 0.25, "params": 1})
  space = search_space.SearchSpace("enas", 1)
  monkeypatch.setattr(jsonio, "os", _DiskFullAfter(2))
  with pytest.raises(OSError) as e:
    search.standalone_search(str(tmp_path), space=space, strategy="random", max_children=4,
                             preflight=False)
  path = str(tmp_path / "history.jsonl")
  assert common.one_line(e.value) == (
      f"{path}: no space left on device while writing it; nothing was lost (every file keeps "
      "its last complete version): free some space and rerun the same command to resume")
  assert len(_lines(path)) == 2  # the half-written third line was cut off again
  monkeypatch.setattr(jsonio, "os", os)
  search.standalone_search(str(tmp_path), space=space, strategy="random", max_children=4,
                           preflight=False)
  entries = _lines(path)
  assert [e["index"] for e in entries] == list(range(len(entries)))
  trained = [e["key"] for e in entries if not e["cached"]]
  assert len(trained) == len(set(trained)) == 4
