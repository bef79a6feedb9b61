"""Entry points: importable together (absl's flag registry is global) and clear errors."""

import subprocess
import sys

import pytest

from nasnet_rl.cli import common
from nasnet_rl.cli import search as search_cli  # noqa: F401
from nasnet_rl.cli import show as show_cli  # noqa: F401
from nasnet_rl.cli import train as train_cli  # noqa: F401
from nasnet_rl.cli import compare as compare_cli  # noqa: F401


def test_all_clis_share_one_flag_registry():
  common.define_run_flags()  # idempotent: a second call must not raise DuplicateFlagError
  common.define_genotype_flag()
  for name in ("workdir", "gin_file", "gin_param", "seed", "genotype", "out"):
    assert name in common.FLAGS


@pytest.mark.parametrize("module", ["nasnet_rl.cli.train", "nasnet_rl.cli.search"])
def test_missing_workdir_is_one_clear_error(module):
  proc = subprocess.run([sys.executable, "-c", f"import {module} as m; m.run()"],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "--workdir is required" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_unknown_gin_binding_is_one_clear_error(tmp_path):
  proc = subprocess.run([sys.executable, "-c", "import nasnet_rl.cli.train as m; m.run()",
                         f"--workdir={tmp_path}", "--gin.no_such_thing.x=1"],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "no_such_thing" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_doctor_reports_packages_devices_and_datasets(monkeypatch, tmp_path):
  from nasnet_rl.cli import doctor
  from nasnet_rl.data import fashion_mnist
  lines = doctor.report()
  text = "\n".join(lines)
  assert "tensorflow 2." in text and "keras 3." in text
  assert "distribution (kind='auto'): " in text and "replica(s)" in text
  assert "NAS-Bench-201 12-epoch table: present" in text
  assert not any("tensorflow-cpu is installed" in l for l in lines)  # setup.py: tensorflow
  # a dataset that is not where the loader looks is reported missing, with where to get it
  monkeypatch.setattr(fashion_mnist, "DEFAULT_PATH", str(tmp_path))
  assert any(l.startswith("fashion_mnist: missing") and "apt-get install" in l
             for l in doctor.datasets())
  monkeypatch.setattr(doctor, "_version", lambda d: "2.21.0")
  assert any("tensorflow-cpu is installed" in l for l in doctor.packages())


def test_compare_trains_every_cell_with_every_seed(tmp_path, monkeypatch):
  """--repeats: the derived cell and each random cell are trained with the same seeds, and the
  table counts cells x seeds."""
  from nasnet_rl import genotype as genotype_lib
  trained = []

  def fake_train(geno, splits, workdir, seed):
    trained.append((geno.name, seed))
    return {"test_accuracy": 0.5 + 0.1 * seed, "val_accuracy": 0.5, "params": 1,
            "train_seconds": 0.0}

  monkeypatch.setattr(compare_cli.trainer, "train_child", fake_train)
  monkeypatch.setattr(compare_cli.data_lib, "load_dataset", lambda seed: None)
  derived = genotype_lib.published("enas_micro")
  rows = compare_cli.compare(derived, 2, 2, str(tmp_path), 3)
  assert sorted(trained) == sorted([(derived.name, 3), (derived.name, 4), ("random_0", 3),
                                    ("random_0", 4), ("random_1", 3), ("random_1", 4)])
  table = compare_cli.table(rows)
  assert "| derived | 1 x 2 | 0.8500 ± 0.0500 |" in table
  assert "| random | 2 x 2 | 0.8500 ± 0.0500 |" in table
