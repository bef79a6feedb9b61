"""Hostile inputs, round 3 (issue 37): a lock nobody can steal, Ctrl-C that says how to resume,
rewards that are what they claim, images checked where they are read, settings checked before
work, errors that name the real cause."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
SEARCH = [sys.executable, os.path.join(ROOT, "scripts", "search.py"),
          "--gin_file=gin/search/tiny.gin"]


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


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
         "--gin_file=gin/train/tiny.gin", f"--workdir={workdir}", "--genotype=enas_micro",
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
