"""Run directories: the exclusive lock (two processes), append-only history, torn tails,
checkpoint/history reconciliation, safe output names."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nasnet_rl import history as history_lib
from nasnet_rl import rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT)


def _holder(workdir, body="time.sleep(60)"):
  """A child process that takes the lock of `workdir`, prints 'ready', then runs `body`."""
  code = textwrap.dedent(f"""
      import sys, time
      from nasnet_rl import rundir, history
      rundir.acquire({str(workdir)!r})
      print("ready", flush=True)
      {body}
  """)
  proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
  return proc


def test_second_process_gets_one_line_naming_the_holder(tmp_path):
  proc = _holder(tmp_path)
  try:
    with pytest.raises(rundir.RunDirLockedError, match=f"in use by process {proc.pid}"):
      rundir.acquire(str(tmp_path))
    assert not rundir.held(str(tmp_path))
  finally:
    proc.kill()
    proc.wait()
  # kill -9 released the lock; the stale .lock file does not block the next owner
  assert (tmp_path / rundir.LOCK_NAME).exists()
  with rundir.locked(str(tmp_path)):
    assert rundir.held(str(tmp_path))
    assert rundir.holder_pid(str(tmp_path)) == os.getpid()
  assert not rundir.held(str(tmp_path))


def test_lock_is_reentrant_within_a_process(tmp_path):
  w = str(tmp_path)
  rundir.acquire(w)
  rundir.acquire(w)
  rundir.release(w)
  assert rundir.held(w)
  rundir.release(w)
  assert not rundir.held(w)


def test_concurrent_open_loses_no_history_line(tmp_path):
  """Two processes: one appends 1,500 children while this one tries to open the same run
  300 times (which used to rewrite the file under the writer and lose ~800 lines)."""
  path = tmp_path / "history.jsonl"
  body = textwrap.dedent("""
      h = history.History(sys.argv[1])
      for i in range(1500):
        h.append({"index": i, "key": "k%d" % i, "decisions": [i % 3], "reward": 0.5,
                  "status": "ok", "cached": False, "time": i * 0.01})
      print("done", flush=True)
  """).replace("\n", "\n      ")
  code = textwrap.dedent(f"""
      import sys, time
      from nasnet_rl import history
      {body}
  """)
  proc = subprocess.Popen([sys.executable, "-c", code, str(path)], env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 60
  while not path.exists() and time.time() < deadline:  # the writer holds the run now
    time.sleep(0.001)
  refused, seen = 0, []
  for _ in range(300):
    try:
      history_lib.History(str(path)).close()
    except rundir.RunDirLockedError:
      refused += 1
    read = history_lib.History(str(path), readonly=True)  # read-only opens never write
    seen.append([e["index"] for e in read.entries])
  out, err = proc.communicate(timeout=60)
  assert proc.returncode == 0 and "done" in out, err
  assert refused > 0  # the writer's lock was seen
  lines = [json.loads(l) for l in path.read_text().splitlines()]
  assert [l["index"] for l in lines] == list(range(1500))
  # each read-only open saw a whole prefix of the history (a torn tail ignored), growing, and
  # some of them while the writer was writing (the old `reads > 0` was always 300 > 0).
  # Deliberate bug it catches: a read-only open that reads nothing (`records = []` in
  # History's readonly branch)
  assert all(s == list(range(len(s))) for s in seen)
  assert [len(s) for s in seen] == sorted(len(s) for s in seen)
  assert any(0 < len(s) < 1500 for s in seen)


def _entry(i, reward=0.5, key=None, **kw):
  e = {"index": i, "key": key or f"k{i}", "decisions": [i], "reward": reward, "status": "ok",
       "cached": False, "time": float(i)}
  e.update(kw)
  return e


def test_history_is_append_only_and_cuts_only_a_torn_tail(tmp_path, capsys):
  path = tmp_path / "history.jsonl"
  h = history_lib.History(str(path))
  h.append(_entry(0))
  h.append(_entry(1))
  h.close()
  inode = os.stat(path).st_ino
  history_lib.History(str(path)).close()  # a clean open changes nothing
  assert os.stat(path).st_ino == inode and len(path.read_text().splitlines()) == 2
  assert "warning" not in capsys.readouterr().err
  with open(path, "a") as f:
    f.write('{"index": 2, "ke')
  h = history_lib.History(str(path))
  assert [e["index"] for e in h.entries] == [0, 1]
  assert "torn last history line" in capsys.readouterr().err
  assert os.stat(path).st_ino == inode  # cut in place, not rewritten
  assert (tmp_path / "history.jsonl.torn").read_text().startswith('{"index": 2')
  h.append(_entry(2))
  h.close()
  assert [json.loads(l)["index"] for l in path.read_text().splitlines()] == [0, 1, 2]


def test_last_line_without_newline_is_kept(tmp_path):
  path = tmp_path / "history.jsonl"
  path.write_text(json.dumps(_entry(0)) + "\n" + json.dumps(_entry(1)))
  h = history_lib.History(str(path))
  h.append(_entry(2))
  h.close()
  assert [json.loads(l)["index"] for l in path.read_text().splitlines()] == [0, 1, 2]


@pytest.mark.parametrize("line, message", [
    ("{}", "no 'index' field"),
    ("[1, 2]", "expected a JSON object"),
    ('{"index": 0, "key": "k", "decisions": [], "reward": "high", "status": "ok"}',
     "'reward' has the wrong type"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("{not json", "not valid JSON"),
])
def test_bad_history_line_is_one_error_naming_file_and_line(tmp_path, line, message):
  path = tmp_path / "history.jsonl"
  path.write_text(json.dumps(_entry(0)) + "\n" + line + "\n" + json.dumps(_entry(1)) + "\n")
  before = path.read_bytes()
  with pytest.raises(ValueError, match=f"history.jsonl line 2: .*{message}") as err:
    history_lib.History(str(path))
  assert "\n" not in str(err.value)
  assert path.read_bytes() == before  # nothing written


# ---- reconciliation ------------------------------------------------------------------------
def _decode(decisions):
  return {"format": "x", "name": "", "space": {"ops": "enas", "num_blocks": 1},
          "normal": {"d": list(decisions)}, "reduction": {"d": list(decisions)}}


def _real_entry(i, reward, **kw):
  geno = _decode([i])
  return _entry(i, reward, key=history_lib.genotype_key(geno), genotype=geno, **kw)


def test_checkpoint_fed_a_line_the_history_lost_writes_it_back(tmp_path, capsys):
  path = tmp_path / "history.jsonl"
  entries = [_real_entry(i, 0.1 * i) for i in range(3)]
  log = [history_lib.fed_record(e) for e in entries]  # the checkpoint saw all three
  path.write_text("".join(json.dumps(e) + "\n" for e in entries[:2]) + '{"index": 2, "tor')
  h = history_lib.History(str(path))
  pending = history_lib.reconcile(h, log, len(log), _decode)
  assert pending == []  # nothing is fed twice
  assert "missing from the history" in capsys.readouterr().err
  h.close()
  lines = [json.loads(l) for l in path.read_text().splitlines()]
  assert [l["index"] for l in lines] == [0, 1, 2]
  assert lines[2]["reward"] == pytest.approx(0.2) and lines[2]["key"] == entries[2]["key"]
  assert lines[2]["restored"] is True
  # the next child appended after the repair is fed back on the following resume
  h = history_lib.History(str(path))
  h.append(_real_entry(3, 0.9))
  assert [e["index"] for e in history_lib.reconcile(h, log, len(log), _decode)] == [3]
  h.close()


def test_emptied_history_is_restored_from_the_checkpoint(tmp_path):
  path = tmp_path / "history.jsonl"
  entries = [_real_entry(i, 0.1 * i) for i in range(4)]
  log = [history_lib.fed_record(e) for e in entries]
  path.write_text("")
  h = history_lib.History(str(path))
  assert history_lib.reconcile(h, log, 4, _decode) == []
  assert [e["reward"] for e in h.entries] == [pytest.approx(0.1 * i) for i in range(4)]
  h.close()
  assert len(path.read_text().splitlines()) == 4


def test_unfed_lines_are_fed_and_middle_loss_is_merged(tmp_path):
  path = tmp_path / "history.jsonl"
  entries = [_real_entry(i, 0.1 * i) for i in range(4)]
  log = [history_lib.fed_record(e) for e in entries[:3]]  # crash before feeding child 3
  path.write_text("".join(json.dumps(e) + "\n" for e in [entries[0], entries[2], entries[3]]))
  h = history_lib.History(str(path))
  pending = history_lib.reconcile(h, log, 3, _decode)
  assert [e["key"] for e in pending] == [entries[3]["key"]]
  assert [e["key"] for e in h.entries] == [e["key"] for e in entries]  # 1 written back
  assert [e["index"] for e in h.entries] == [0, 1, 2, 3]
  assert (tmp_path / "history.jsonl.before-repair").exists()
  h.close()


def test_old_counting_checkpoint_and_infrastructure_failures(tmp_path):
  path = tmp_path / "history.jsonl"
  entries = [_real_entry(0, 0.5), _real_entry(1, 0.0, status="failed", infrastructure=True),
             _real_entry(2, 0.7, time=42.0)]
  path.write_text("".join(json.dumps(e) + "\n" for e in entries))
  h = history_lib.History(str(path))
  log = []
  assert [e["index"] for e in history_lib.reconcile(h, log, 1, _decode)] == [2]
  assert len(log) == 1
  assert set(h.trained()) == {entries[0]["key"], entries[2]["key"]}  # failure not cached
  assert h.elapsed_seconds() == 42.0  # the time budget survives a lost checkpoint
  h.close()


def test_search_and_history_agree_on_the_key():
  from nasnet_rl import search
  from nasnet_rl import search_space as ss
  geno = ss.SearchSpace("enas", 2).decode([0] * len(ss.SearchSpace("enas", 2).num_choices()))
  assert search.genotype_key(geno) == history_lib.genotype_key(geno.to_dict())


# ---- names from data ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../../escaped", "/etc/passwd", "..", ".", "", "a/../../b",
                                  "x" * 500, "ok_name-1.0"])
def test_slugs_stay_under_the_root(tmp_path, name):
  path = rundir.join_under(str(tmp_path), name)
  assert os.path.dirname(path) == str(tmp_path)
  assert os.path.basename(path) not in ("", ".", "..") and "/" not in rundir.slug(name)
  assert len(os.path.basename(path)) <= 64


def test_workdir_that_is_a_file_is_one_error(tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(ValueError, match="is a file"):
    rundir.acquire(str(f))
