"""README claims that a test can check: every `--gin.X=V` binding it shows parses, and a saved
model loads after a plain `import nasnet_rl`."""

import os
import re
import shlex
import subprocess
import sys

import gin
import pytest

from nasnet_rl import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDERS = {"DIR": "'/tmp/d'", "ROOT": "'/tmp/r'", "RUN_DIR_OR_.keras": "'/tmp/m.keras'"}


def readme_bindings():
  text = open(os.path.join(ROOT, "README.md")).read()
  out = []
  for flag in sorted(set(re.findall(r"--gin\.[A-Za-z_][\w.]*=[^\s)`]+", text))):
    selector, _, value = flag[len("--gin."):].partition("=")
    if selector == "X":  # the syntax's own description, --gin.X=V
      continue
    value = shlex.split(value)[0]  # the shell's quoting, as a user's shell would strip it
    out.append((selector, PLACEHOLDERS.get(value, value)))
  return out


def test_the_readme_shows_bindings():
  assert len(readme_bindings()) >= 10


@pytest.mark.parametrize("selector,value", readme_bindings())
def test_every_readme_gin_binding_parses(selector, value):
  gin.clear_config()
  try:
    config_lib.parse([], [f"{selector} = {value}"])  # unknown or ambiguous: ValueError
  finally:
    gin.clear_config()


def test_a_saved_model_loads_after_import_nasnet_rl(tmp_path):
  """The README: `keras.models.load_model` works after `import nasnet_rl` (fresh process)."""
  from nasnet_rl import genotype as genotype_lib
  from nasnet_rl.child import network
  path = str(tmp_path / "model.keras")
  model = network.build_cifar_network(genotype_lib.published("nasnet_a"), num_classes=3,
                                      input_shape=(16, 16, 3), num_cells=1, filters=4,
                                      aux_head=False)
  model.save(path)
  code = ("import keras, numpy as np, nasnet_rl\n"
          f"m = keras.models.load_model({path!r})\n"
          "print('OUT', m(np.zeros((1, 16, 16, 3), 'float32')).shape)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "OUT (1, 3)" in result.stdout


# ---- command lines ----------------------------------------------------------------------------
CLI_OF_SCRIPT = {"search": "search", "train": "train", "transfer": "transfer",
                 "compare_search": "compare", "compare_strategies": "compare_strategies",
                 "rank_correlation": "rank_correlation", "show": "show", "doctor": "doctor"}
VALUE_PLACEHOLDERS = {"'DIR'": "'/tmp/d'"}


def readme_commands():
  """Every `python3 scripts/X.py ...` command of the README's code blocks (continuation lines
  joined, `...` elisions and trailing comments dropped), as (script, argv)."""
  text = open(os.path.join(ROOT, "README.md")).read().replace("\\\n", " ")
  out = []
  for line in text.splitlines():
    line = line.strip()
    if not line.startswith("python3 scripts/"):
      continue
    words = shlex.split(line.split("  #")[0], posix=False)
    script = os.path.basename(words[1])[:-len(".py")]
    out.append((script, [w for w in words[2:] if w != "..."]))
  return out


def test_the_readme_shows_commands():
  scripts = {s for s, _ in readme_commands()}
  assert {"search", "train", "transfer", "compare_search", "bench_transfer"} <= scripts


@pytest.mark.parametrize("script,argv", readme_commands(),
                         ids=[f"{s}:{i}" for i, (s, _) in enumerate(readme_commands())])
def test_every_readme_command_line_parses(script, argv):
  """Each flag exists for that script, and its gin files plus `--gin.X=V` bindings parse (a
  command is parsed, not run). Scripts without a CLI module (benchmarks, check_keras_weights)
  have their flags looked up in their source's DEFINE_* calls."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  argv = [shlex.split(a)[0] if a.startswith("--") else a for a in argv]  # the shell's quotes
  if script not in CLI_OF_SCRIPT:
    source = open(os.path.join(ROOT, "scripts", f"{script}.py")).read()
    for imported in re.findall(r"^import (bench_\w+)", source, re.M):  # shared flag modules
      source += open(os.path.join(ROOT, "scripts", f"{imported}.py")).read()
    defined = set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", source))
    for arg in argv:
      assert arg.startswith("--") and arg[2:].partition("=")[0] in defined, (script, arg)
    return
  module = __import__(f"nasnet_rl.cli.{CLI_OF_SCRIPT[script]}", fromlist=["main"])
  del module
  flag_values = flags.FLAGS
  flag_values.unparse_flags()
  args = [a.split("=", 1)[0] + "=" + VALUE_PLACEHOLDERS.get(a.split("=", 1)[1], a.split("=", 1)[1])
          if "=" in a else a for a in config_lib.split_shortcuts(argv)]
  try:
    flag_values([f"{script}.py"] + args)  # an unknown flag is an error here
    gin_files = [os.path.join(ROOT, f) for f in flag_values["gin_file"].value or []] \
        if "gin_file" in flag_values else []
    params = list(flag_values["gin_param"].value or []) if "gin_param" in flag_values else []
    if gin_files or params:
      gin.clear_config()
      config_lib.parse(gin_files, params)
  finally:
    gin.clear_config()
    flag_values.unparse_flags()
