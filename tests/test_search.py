"""Standalone search loop: history, duplicate cache, failures, checkpoints, kill -9 + resume."""
import json
import os
import signal
import subprocess
import sys
import time

import gin
import pytest

from nasnet_rl import config
from nasnet_rl import search
from nasnet_rl import search_space as ss
from nasnet_rl.child import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


class ScriptedStrategy:
  """Proposes a fixed list of decision lists in order; records feedback."""

  def __init__(self, script):
    self.script, self.i, self.fed = script, 0, []

  def propose(self, n):
    out = [self.script[(self.i + k) % len(self.script)] for k in range(n)]
    self.i += n
    return out

  def feedback(self, decisions, rewards):
    self.fed += list(zip(map(tuple, decisions), rewards))
    return {"fed": len(self.fed)}

  def save(self, directory):
    with open(os.path.join(directory, "scripted.json"), "w") as f:
      json.dump({"i": self.i, "fed": self.fed}, f)

  def restore(self, directory):
    with open(os.path.join(directory, "scripted.json")) as f:
      state = json.load(f)
    self.i, self.fed = state["i"], [tuple(x) for x in state["fed"]]


SPACE = ss.SearchSpace("enas", 2)


def _decisions(k):
  d = [0] * len(SPACE.num_choices())
  d[2] = k  # op of the first block
  return d


def test_duplicates_are_not_retrained_and_failures_get_the_penalty(tmp_path, monkeypatch):
  script = [_decisions(0), _decisions(1), _decisions(0), _decisions(2), _decisions(1)]
  strat = ScriptedStrategy(script)
  monkeypatch.setattr(search.controller_lib, "make_strategy", lambda *a, **k: strat)
  calls = []

  def fake_evaluate(genotype, seed):
    calls.append(genotype["normal"]["blocks"][0]["ops"][0])
    if genotype["normal"]["blocks"][0]["ops"][0] == "avg_pool_3x3":
      return {"status": "diverged", "error": "non-finite loss at epoch 1", "reward": None}
    return {"status": "ok", "reward": 0.5 + 0.1 * len(calls), "params": 10, "mult_adds": 20}

  monkeypatch.setattr(evaluate, "evaluate_child", fake_evaluate)
  summary = search.standalone_search(str(tmp_path), space=SPACE, max_children=3,
                                     penalty_reward=-1.0, preflight=False)
  assert calls == ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3"]  # each trained once
  lines = [json.loads(l) for l in open(tmp_path / "history.jsonl")]
  assert [l["cached"] for l in lines] == [False, False, True, False]
  assert lines[2]["reward"] == lines[0]["reward"]
  assert lines[3]["status"] == "diverged" and lines[3]["reward"] == -1.0
  assert "non-finite" in lines[3]["error"]
  assert [r for _, r in strat.fed] == [l["reward"] for l in lines]
  best = json.load(open(tmp_path / "best_genotypes.json"))
  assert [b["index"] for b in best] == [1, 0]  # failed child excluded, sorted by reward
  assert summary["trained"] == 3 and summary["failed"] == 1
  for name in ("best_cells.png", "reward_curve.png", "best_genotype.json", "summary.json"):
    assert (tmp_path / name).exists()


def test_resume_feeds_back_entries_the_checkpoint_missed(tmp_path, monkeypatch):
  strat = ScriptedStrategy([_decisions(k) for k in range(5)])
  monkeypatch.setattr(search.controller_lib, "make_strategy", lambda *a, **k: strat)
  monkeypatch.setattr(evaluate, "evaluate_child",
                      lambda g, s: {"status": "ok", "reward": 0.7})
  search.standalone_search(str(tmp_path), space=SPACE, max_children=2, preflight=False)
  # simulate a kill after a history line was written but before the checkpoint
  entry = json.loads(open(tmp_path / "history.jsonl").readline())
  entry.update(index=2, key="x", decisions=_decisions(3))
  with open(tmp_path / "history.jsonl", "a") as f:
    f.write(json.dumps(entry) + "\n" + '{"torn": ')
  strat2 = ScriptedStrategy([_decisions(k) for k in range(5)])
  monkeypatch.setattr(search.controller_lib, "make_strategy", lambda *a, **k: strat2)
  search.standalone_search(str(tmp_path), space=SPACE, max_children=3, preflight=False)
  assert len(strat2.fed) == 3  # two restored + the one replayed from history
  lines = [json.loads(l) for l in open(tmp_path / "history.jsonl")]  # torn tail repaired
  assert len(lines) >= 3 and lines[2]["decisions"] == _decisions(3)
  assert tuple(_decisions(3)) in [d for d, _ in strat2.fed]


def _history(workdir):
  path = os.path.join(workdir, "history.jsonl")
  if not os.path.exists(path):
    return []
  return [l for l in open(path).read().split("\n") if l.strip()]


def test_kill_9_and_resume_loses_and_retrains_nothing(tmp_path):
  workdir = str(tmp_path / "run")
  cmd = [sys.executable, os.path.join(ROOT, "scripts", "search.py"),
         "--gin_file=gin/tiny/search.gin", f"--workdir={workdir}",
         "--gin.standalone_search.max_children=4"]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  deadline = time.time() + 400
  while len(_history(workdir)) < 2 and time.time() < deadline and proc.poll() is None:
    time.sleep(0.5)
  assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  before = [json.loads(l) for l in _history(workdir)]
  assert len(before) >= 2
  result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "resuming" in result.stdout
  after = [json.loads(l) for l in _history(workdir)]  # every line valid JSON
  assert after[:len(before)] == before  # nothing completed was lost
  trained = [e["key"] for e in after if not e["cached"]]
  assert len(trained) == len(set(trained)) == 4  # nothing retrained, budget respected
  assert [e["index"] for e in after] == list(range(len(after)))
  assert json.load(open(os.path.join(workdir, "best_genotypes.json")))


@pytest.mark.slow  # 40-95 s; test_executors.py checks the actors by default
def test_ray_executor_two_local_workers(tmp_path):
  config.parse(["gin/tiny/search.gin"], ["make_executor.kind = 'ray'",
                                         "RayExecutor.num_workers = 2",
                                         "standalone_search.max_children = 3"])
  summary = search.standalone_search(str(tmp_path), space=ss.SearchSpace("enas", 1))  # cheap
  lines = [json.loads(l) for l in open(tmp_path / "history.jsonl")]
  assert summary["trained"] == 3
  trained = [l for l in lines if not l["cached"]]
  assert all(l["status"] == "ok" and 0.0 <= l["reward"] <= 1.0 for l in trained)
  # Ray worker processes trained them, not this one (make_executor's binding was honoured):
  # two long-lived actors, so one of them trained two children.
  assert all(not l["worker"].endswith(f":{os.getpid()}") for l in trained)
  assert len({l["worker"] for l in trained}) == 2
  # tiny.gin's evaluate_child.count_flops = False reached every child, a fresh actor's first
  # one included (tests/test_executors.py checks the actors' dataset cache and retries).
  assert all(l["mult_adds"] is None for l in trained)


# ---- run directory integrity (issue 9) -------------------------------------------------------
def _scripted_run(tmp_path, monkeypatch, max_children=3, **kw):
  strat = ScriptedStrategy([_decisions(k) for k in range(5)])
  monkeypatch.setattr(search.controller_lib, "make_strategy", lambda *a, **k: strat)
  calls = []

  def fake_evaluate(genotype, seed):
    calls.append(genotype)
    return {"status": "ok", "reward": 0.1 * len(calls), "params": 1, "mult_adds": 1}

  monkeypatch.setattr(evaluate, "evaluate_child", fake_evaluate)
  # Evaluation is faked, so the driver's real one-step check would only cost time.
  search.standalone_search(str(tmp_path), space=SPACE, max_children=max_children,
                           preflight=False, **kw)
  return strat, calls


def test_a_second_search_on_a_held_workdir_fails_and_writes_nothing(tmp_path, monkeypatch):
  from nasnet_rl import rundir
  code = ("import sys, time\nfrom nasnet_rl import rundir\nrundir.acquire(sys.argv[1])\n"
          "print('ready', flush=True)\ntime.sleep(60)\n")
  proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                          env=dict(os.environ, PYTHONPATH=ROOT), text=True)
  try:
    assert proc.stdout.readline().strip() == "ready"
    with pytest.raises(rundir.RunDirLockedError, match=f"process {proc.pid}"):
      _scripted_run(tmp_path, monkeypatch)
  finally:
    proc.kill()
    proc.wait()
  assert sorted(os.listdir(tmp_path)) == [".lock"]


def test_emptied_or_torn_history_is_written_back_not_restarted(tmp_path, monkeypatch):
  _scripted_run(tmp_path, monkeypatch)
  path = tmp_path / "history.jsonl"
  before = [json.loads(l) for l in open(path)]
  best = json.load(open(tmp_path / "best_genotypes.json"))
  text = path.read_text()
  path.write_text(text[:len(text) - 40])  # tear the last line (the checkpoint was fed it)
  strat, calls = _scripted_run(tmp_path, monkeypatch)
  assert calls == [] and len(strat.fed) == 3  # nothing retrained, nothing fed twice
  after = [json.loads(l) for l in open(path)]
  assert [(e["key"], e["reward"]) for e in after] == [(e["key"], e["reward"]) for e in before]
  path.write_text("")  # emptied
  strat, calls = _scripted_run(tmp_path, monkeypatch)
  assert calls == [] and len(strat.fed) == 3
  assert [e["reward"] for e in map(json.loads, open(path))] == [e["reward"] for e in before]
  assert json.load(open(tmp_path / "best_genotypes.json")) == best


def test_lost_checkpoints_keep_the_time_budget(tmp_path, monkeypatch):
  import shutil
  _scripted_run(tmp_path, monkeypatch, max_children=2)
  path = tmp_path / "history.jsonl"
  lines = [dict(json.loads(l), time=1000.0) for l in open(path)]
  path.write_text("".join(json.dumps(l) + "\n" for l in lines))
  shutil.rmtree(tmp_path / "checkpoints")
  strat, calls = _scripted_run(tmp_path, monkeypatch, max_children=10, max_seconds=500)
  assert calls == []  # 1000 s already spent of a 500 s budget
  assert len(strat.fed) == 2  # the fresh strategy relearns the history


def test_switching_strategy_on_resume_is_one_error(tmp_path, monkeypatch):
  _scripted_run(tmp_path, monkeypatch, max_children=1)
  monkeypatch.undo()
  monkeypatch.setattr(evaluate, "evaluate_child", lambda g, s: {"status": "ok", "reward": 0.5})
  with pytest.raises(ValueError, match="cannot resume from the checkpoint in .*checkpoints"):
    search.standalone_search(str(tmp_path), space=SPACE, max_children=2, strategy="random",
                             preflight=False)


def test_a_broken_set_up_fails_before_any_child(tmp_path):
  """The driver's one-step check: a missing dataset stops the search at once, with nothing
  trained, cached or fed back (history stays empty), so the fixed rerun starts clean."""
  config.parse(["gin/tiny/search.gin"], [
      "standalone_search.preflight = True", "load_dataset.name = 'cifar10_local'",
      f"load_cifar10_local.path = '{tmp_path / 'no_such_dir'}'"])
  with pytest.raises(ValueError, match="the search cannot start"):
    search.standalone_search(str(tmp_path / "run"))
  history = tmp_path / "run" / "history.jsonl"
  assert not history.exists() or history.read_text() == ""
