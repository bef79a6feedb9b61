"""The console scripts as pip installs them: `--help` lists the tool's own flags without
importing TensorFlow, a tool that needs a recipe refuses without one, gin includes resolve
outside the checkout without a false error, and setup.py installs every tool."""

import os
import re
import subprocess
import sys
import time

import pytest

from nasnet_rl.cli import flagdefs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What pip writes for an entry point `nasnet-x=nasnet_rl.cli.launch:x`, plus a report at exit
# of whether TensorFlow was imported.
SCRIPT = """import atexit, sys
atexit.register(lambda: print("TENSORFLOW", "tensorflow" in sys.modules, file=sys.stderr))
from nasnet_rl.cli.launch import {tool}
sys.exit({tool}())
"""


def _console_script(tmp_path, tool):
  path = tmp_path / flagdefs.command(tool)
  path.write_text(SCRIPT.format(tool=tool))
  return str(path)


def _run(tmp_path, tool, *args):
  env = dict(os.environ, PYTHONPATH=ROOT)
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, _console_script(tmp_path, tool), *args],
                        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
  return proc, time.perf_counter() - t0


def test_setup_installs_every_tool_through_the_launcher():
  setup = open(os.path.join(ROOT, "setup.py")).read()
  for tool in flagdefs.TOOLS:
    assert f'"{flagdefs.command(tool)}=nasnet_rl.cli.launch:{tool}"' in setup, tool


@pytest.mark.parametrize("tool", sorted(flagdefs.TOOLS))
def test_help_lists_the_tools_own_flags_without_tensorflow(tmp_path, tool):
  proc, seconds = _run(tmp_path, tool, "--help")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.startswith(f"{flagdefs.command(tool)}: {flagdefs.TOOLS[tool].description}")
  for flag in flagdefs.TOOLS[tool].flags:
    assert re.search(rf"^  --{flag.name}\b.*\S", proc.stdout, re.M), flag.name
  assert "TENSORFLOW False" in proc.stderr
  assert seconds < 10  # ~0.3 s on 2 cores; the bound leaves room for a loaded machine


def test_a_tool_without_a_recipe_refuses_in_one_line(tmp_path):
  proc, _ = _run(tmp_path, "search", f"--workdir={tmp_path / 'run'}")
  assert proc.returncode != 0
  lines = [l for l in proc.stderr.splitlines() if not l.startswith("TENSORFLOW")]
  assert len(lines) == 1 and lines[0].startswith("error: nasnet-search needs a recipe")
  assert "gin/search/standalone_fashion_mnist_cpu.gin" in lines[0]
  assert "gin/tiny/" not in lines[0]
  assert "TENSORFLOW False" in proc.stderr
  assert not (tmp_path / "run").exists()


def test_an_unknown_flag_is_one_line(tmp_path):
  proc, _ = _run(tmp_path, "train", "--gin_file=gin/tiny/train.gin", "--epochs=3")
  assert proc.returncode != 0
  assert "error: Unknown command line flag 'epochs'" in proc.stderr
  assert "nasnet-train --help" in proc.stderr


def test_recipes_are_the_gin_files_that_say_they_run_the_tool():
  assert "gin/search/image_folder_cpu.gin" in flagdefs.recipes("search")
  assert "gin/search/enas_fashion_mnist_cpu.gin" in flagdefs.recipes("search")
  assert "gin/transfer/mobile.gin" in flagdefs.recipes("transfer")
  assert "gin/train/fashion_mnist_cpu.gin" in flagdefs.recipes("train")
  assert not any("tiny" in r for t in ("search", "train", "transfer") for r in flagdefs.recipes(t))


def test_gin_includes_resolve_outside_the_checkout_without_a_false_error(tmp_path):
  """The packaged recipes include each other by gin-relative paths; from another directory,
  gin used to log `Path not found: train/cifar10_nasnet.gin` before finding them."""
  code = ("from nasnet_rl import config\n"
          "config.parse(['search/standalone_fashion_mnist_cpu.gin'], [])\n"
          "print('PARSED')\n")
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300, cwd=tmp_path, env=env)
  assert "PARSED" in proc.stdout, proc.stderr[-2000:]
  assert "Path not found" not in proc.stderr


def test_show_draws_a_cell_without_tensorflow(tmp_path):
  proc, _ = _run(tmp_path, "show", "--genotype=nasnet_a", f"--out={tmp_path / 'a.png'}")
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
  assert "TENSORFLOW False" in proc.stderr


def test_helpfull_adds_every_flag_and_exits_0(tmp_path):
  proc, _ = _run(tmp_path, "train", "--helpfull")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.startswith("nasnet-train: ") and "all flags, by module:" in proc.stdout
  assert "--[no]alsologtostderr" in proc.stdout  # absl's own flags are there too
