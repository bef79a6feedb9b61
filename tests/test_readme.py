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
