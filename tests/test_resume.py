"""Resumable trainings (nasnet_rl/resume.py): `kill -9` a tiny `scripts/train.py` /
`scripts/transfer.py` run after its first checkpoint, run the same command again, and it ends with
the weights and history of an uninterrupted run of the same seed; a leftover temp folder or a
damaged newest checkpoint falls back to the previous complete one; other settings are refused."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import gin
import h5py
import keras
import numpy as np
import pytest

from nasnet_rl import checkpointing
from nasnet_rl import genotype as g
from nasnet_rl import resume
from nasnet_rl.cli import common
from nasnet_rl.cli import train as train_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from small_genotypes import ONE_BLOCK  # pylint: disable=g-import-not-at-top,wrong-import-position

# 2 epochs x 4 steps; a checkpoint at steps 3 (mid-epoch), 4, 6 (mid-epoch) and 8.
TRAIN = ["scripts/train.py", "--gin_file=gin/tiny/train.gin", "--seed=3",
         "--gin.training_checkpoints.every_steps=3", "--gin.build_child.dropout=0.5",
         "--gin.train_child.count_mult_adds=False", "--gin.progress.every_seconds=1e-6"]
TRANSFER = ["scripts/transfer.py", "--gin_file=gin/tiny/transfer.gin",
            "--gin.training_checkpoints.every_steps=3", "--gin.scale.dropout=0.5",
            "--gin.scale.aux_head=False", "--gin.train_transfer.saved_model=False",
            "--gin.progress.every_seconds=1e-6"]
# (progress.every_seconds=1e-6: a progress line in log.txt after every call of the training
# loop, so the steps a process trained can be read back)


def _progress_steps(lines):
  """The step numbers of progress lines (`... step 6/8 (75%) ...`)."""
  return [int(m.group(1)) for l in lines for m in [re.search(r" step (\d+)/\d+ ", l)] if m]


def _command(args, workdir, genotype):
  flag = "--source" if args[0].endswith("transfer.py") else "--genotype"
  return [sys.executable] + args + [f"{flag}={genotype}", f"--workdir={workdir}"]


def _env(single_thread=True):
  """Two or three of these runs share 2 cores: one TF thread each keeps them from spinning
  against each other (measured: a run takes 20 s of CPU instead of 23)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  if single_thread:
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
  return env


def _weights(workdir):
  """Every array of workdir/model.keras, by its path in the weights file."""
  with zipfile.ZipFile(os.path.join(workdir, "model.keras")) as z:
    data = z.read("model.weights.h5")
  out = {}
  with h5py.File(io.BytesIO(data), "r") as f:
    f.visititems(lambda name, o: out.__setitem__(name, o[()])
                 if isinstance(o, h5py.Dataset) else None)
  return out


def _kill_resume_and_compare(tmp_path, args):
  """Runs `args` uninterrupted and, at the same time, a copy killed (SIGKILL) as soon as its
  first checkpoint is complete; reruns the killed one (while the uninterrupted run goes on) and
  compares the final files."""
  genotype = str(tmp_path / "one_block.json")
  g.save(g.Genotype.from_dict(ONE_BLOCK), genotype)
  ref, victim = str(tmp_path / "ref"), str(tmp_path / "victim")
  start = time.time()
  ref_log = open(tmp_path / "reference.log", "w+")  # a file: no pipe to fill while we wait
  reference = subprocess.Popen(_command(args, ref, genotype), cwd=ROOT, env=_env(),
                               stdout=ref_log, stderr=subprocess.STDOUT)
  killed = subprocess.Popen(_command(args, victim, genotype), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  root = os.path.join(victim, "checkpoints")
  try:
    while not checkpointing.numbered_complete(root):
      assert killed.poll() is None, "the run ended before its first checkpoint"
      assert time.time() - start < 600, "no checkpoint after 600 s"
      time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
  finally:
    if killed.poll() is None:
      killed.kill()
  with open(os.path.join(victim, "log.txt")) as f:
    before_resume = len(f.readlines())  # the killed process's lines
  assert not os.path.exists(os.path.join(victim, "metrics.json"))
  newest = os.path.basename(checkpointing.numbered_complete(root)[0])
  # a save cut short, newer than every complete checkpoint: must be ignored, then cleaned up
  leftover = os.path.join(root, "step-9999999999.tmp")
  os.makedirs(leftover)
  with open(os.path.join(leftover, "state.npz"), "wb") as f:
    f.write(b"PK\x03\x04 torn")
  # the same command again, while the uninterrupted run goes on
  again = subprocess.Popen(_command(args, victim, genotype), cwd=ROOT, env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  out, err = again.communicate(timeout=600)
  assert again.returncode == 0, err[-2000:]
  reference.wait(timeout=600)
  ref_log.seek(0)
  assert reference.returncode == 0, ref_log.read()[-2000:]
  ref_log.close()
  lines = [l for l in out.splitlines() if l.startswith("resuming from")]
  assert len(lines) == 1 and newest in lines[0], out[-2000:]
  step = int(lines[0].split("(")[-1].split(" of ")[0])
  assert 0 < step < 8, lines[0]
  assert not os.path.exists(leftover)
  # the resumed process trained only the remaining steps: its progress lines are the
  # uninterrupted run's after `step` (a retrain from step 0 would print steps <= step again)
  with open(os.path.join(victim, "log.txt")) as f:
    resumed_steps = _progress_steps(f.readlines()[before_resume:])
  with open(os.path.join(ref, "log.txt")) as f:
    ref_steps = _progress_steps(f.readlines())
  assert ref_steps[-1] == 8 and ref_steps[0] <= step, ref_steps
  assert resumed_steps == [s for s in ref_steps if s > step], (step, resumed_steps, ref_steps)

  ours, theirs = _weights(victim), _weights(ref)
  assert ours.keys() == theirs.keys() and len(ours) > 20
  worst = max(float(np.max(np.abs(ours[k].astype(np.float64) - theirs[k]), initial=0.0))
              for k in ours)
  for k in ours:  # identical, as docs/run_directories.md says (measured: max difference 0)
    np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)
  resumed = json.load(open(os.path.join(victim, "metrics.json")))
  uninterrupted = json.load(open(os.path.join(ref, "metrics.json")))
  assert resumed["history"] == uninterrupted["history"]
  assert len(resumed["history"]["loss"]) == 2
  for key in ("val_accuracy", "test_accuracy", "params"):
    assert resumed[key] == uninterrupted[key], key
  print(f"{args[0]}: resumed at step {step} of 8, max |weight difference| {worst:g}, "
        f"{time.time() - start:.1f} s")
  return step, worst


def test_train_killed_after_first_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
  """Deliberate bugs it catches: a resume that trains from step 0 again (`state =
  resume.State()` after the restore in child/trainer.py::run_training: its progress lines start
  at step 3 again), and final weights that differ at all (was rtol 1e-5; measured 0)."""
  _kill_resume_and_compare(tmp_path, TRAIN)


def test_transfer_killed_after_first_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
  """As the train test above, through transfer/train.py (the same run_training)."""
  _kill_resume_and_compare(tmp_path, TRANSFER)


@pytest.mark.slow
def test_resume_at_an_epoch_end_then_rerun_of_the_finished_run(tmp_path):
  """Epoch checkpoints only (the first at step 4: one whole-epoch fit on resume); the finished
  run's command again trains nothing and writes the same files."""
  args = [a for a in TRAIN if "every_steps" not in a]
  step, _ = _kill_resume_and_compare(tmp_path, args)
  assert step == 4
  victim = str(tmp_path / "victim")
  before = _weights(victim), json.load(open(os.path.join(victim, "metrics.json")))
  again = subprocess.run(_command(args, victim, str(tmp_path / "one_block.json")), cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-2000:]
  assert "training already complete (8 of 8 steps done)" in again.stdout
  after = _weights(victim), json.load(open(os.path.join(victim, "metrics.json")))
  assert after[0].keys() == before[0].keys()
  for k in after[0]:
    np.testing.assert_array_equal(after[0][k], before[0][k])
  for key in ("history", "val_accuracy", "test_accuracy"):
    assert after[1][key] == before[1][key]


@pytest.mark.slow
def test_mirrored_two_cpus_resume_mid_epoch_is_exact(tmp_path):
  """MirroredStrategy on two logical CPUs, drop path and dropout on: resumed from step 2 of 6
  (checkpoints of steps 3-6 deleted), the same weights and history as the whole run."""
  def run(workdir):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "resume_mirrored_check.py"),
                           workdir], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(_env(single_thread=False), PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(proc.stdout.strip().splitlines()[-1])
  workdir = str(tmp_path / "run")
  _, whole = run(workdir)
  assert whole["replicas"] == 2
  final = dict(np.load(whole["weights"]))
  for folder in checkpointing.numbered_complete(os.path.join(workdir, "checkpoints"))[:-2]:
    shutil.rmtree(folder)  # keep steps 1 and 2
  out, resumed = run(workdir)
  assert "step 2 of 3 (2 of 6 steps done)" in out
  assert resumed["history"] == whole["history"]
  again = np.load(resumed["weights"])
  for k in final:
    np.testing.assert_allclose(again[k], final[k], rtol=1e-5, atol=1e-6)


# ---- the checkpoint folder itself (no training) -------------------------------------------
def _model(seed=0):
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
  model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
  model.optimizer.build(model.trainable_variables)
  return model


def _save(checkpoints, model, step, value):
  for v in model.trainable_variables:
    v.assign(np.full(v.shape, value, "float32"))
  model.optimizer.iterations.assign(step)
  state = resume.State(global_step=step, history={"loss": [float(value)] * (step // 4)})
  return checkpoints.save(model, {}, state, mid_epoch=False)


def test_leftover_temp_folder_and_damaged_newest_fall_back_to_previous(tmp_path, capsys):
  workdir = str(tmp_path)
  checkpoints = resume.Checkpoints(workdir, {"epochs": 2})
  model = _model()
  first = _save(checkpoints, model, 4, 1.0)
  newest = _save(checkpoints, model, 8, 2.0)
  # a save killed before its marker, newer than the rest
  partial = os.path.join(workdir, "checkpoints", "step-0000000012.tmp")
  os.makedirs(partial)
  shutil.copy(os.path.join(newest, resume.ARRAYS), partial)

  fresh = _model(seed=1)
  state = checkpoints.restore(fresh, {}, epochs=2, steps_per_epoch=4)
  assert state.global_step == 8 and state.history == {"loss": [2.0, 2.0]}
  assert int(fresh.optimizer.iterations.numpy()) == 8
  assert all(np.all(np.asarray(v) == 2.0) for v in fresh.trainable_variables)
  assert f"resuming from {newest}: training already complete" in capsys.readouterr().out

  with open(os.path.join(newest, resume.ARRAYS), "r+b") as f:  # damage the newest
    f.truncate(100)
  fresh = _model(seed=2)
  state = checkpoints.restore(fresh, {}, epochs=2, steps_per_epoch=4)
  out, err = capsys.readouterr()
  assert state.global_step == 4 and int(fresh.optimizer.iterations.numpy()) == 4
  assert all(np.all(np.asarray(v) == 1.0) for v in fresh.trainable_variables)
  assert f"checkpoint {newest} is damaged" in err
  assert f"resuming from {first}: epoch 2 of 2, step 0 of 4" in out

  # the next save replaces the damaged step and clears the leftover
  again = _save(checkpoints, fresh, 8, 3.0)
  assert again == newest and not os.path.exists(partial)
  assert checkpointing.numbered_complete(os.path.join(workdir, "checkpoints")) == [newest, first]


def test_a_checkpoint_of_other_settings_is_refused_and_left_alone(tmp_path):
  workdir = str(tmp_path)
  model = _model()
  folder = _save(resume.Checkpoints(workdir, {"epochs": 2, "seed": 0}), model, 4, 1.0)
  before = sorted(os.listdir(folder)), open(os.path.join(folder, "progress.json")).read()
  with pytest.raises(ValueError, match=r"other settings \(epochs: 2 there, 3 now\)"):
    resume.Checkpoints(workdir, {"epochs": 3, "seed": 0}).restore(
        _model(), {}, epochs=3, steps_per_epoch=4)
  other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])  # another network
  other.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
  with pytest.raises(ValueError, match="model variables .* do not match"):
    resume.Checkpoints(workdir, {"epochs": 2, "seed": 0}).restore(
        other, {}, epochs=2, steps_per_epoch=4)
  assert (sorted(os.listdir(folder)),
          open(os.path.join(folder, "progress.json")).read()) == before


def test_cli_resume_with_other_settings_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
  """The checkpoint is checked before config.gin is written: a refused resume keeps the run's
  files as they were (the network is built, nothing is trained)."""
  genotype = str(tmp_path / "one_block.json")
  g.save(g.Genotype.from_dict(ONE_BLOCK), genotype)
  run = tmp_path / "run"
  folder = run / "checkpoints" / "step-0000000004"
  folder.mkdir(parents=True)
  (run / "config.gin").write_text("# the command that started the run\n")
  (folder / "state.npz").write_bytes(b"not read")
  checkpointing.save_json(str(folder / "progress.json"),
                          {"format": resume.FORMAT, "fingerprint": {"epochs": 99}})
  snapshot = lambda: {p: open(os.path.join(d, p), "rb").read() for d, _, files in os.walk(run)
                      for p in files if p != ".lock"}  # the lock names the holder's pid
  before = snapshot()
  common.FLAGS.unparse_flags()
  gin.clear_config()
  monkeypatch.chdir(ROOT)
  monkeypatch.setattr(sys, "argv", ["prog", "--gin_file=gin/tiny/train.gin",
                                    f"--genotype={genotype}", f"--workdir={run}"])
  with pytest.raises(SystemExit) as exit_info:
    common.run_main(train_cli.main)
  gin.clear_config()
  message = exit_info.value.code
  assert isinstance(message, str) and "\n" not in message, message
  assert message.startswith(f"error: cannot resume from the checkpoint in {folder}: it was "
                            "written with other settings (")
  assert "epochs: 99 there, 2 now" in message
  assert sorted(os.listdir(run)) == [".lock", "checkpoints", "config.gin"]
  assert snapshot() == before


def test_keep_and_every_steps_are_checked():
  assert resume.training_checkpoints(every_steps=5, keep=1) == resume.Options(5, 1, True)
  for bad in ({"every_steps": 0}, {"every_steps": True}, {"keep": 0}):
    with pytest.raises(ValueError, match="training_checkpoints"):
      resume.training_checkpoints(**bad)
