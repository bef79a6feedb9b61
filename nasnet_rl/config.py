"""gin plumbing shared by every entry point: flags, search paths, config files in the workdir.

We do not `import gin.tf` (it drags in TF1 and distutils); Keras optimizers and schedules are
registered here with `gin.external_configurable` instead.
"""

import importlib
import os
from typing import Iterable, List, Optional

from absl import logging
import gin
import keras

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

for _cls in (keras.optimizers.SGD, keras.optimizers.Adam, keras.optimizers.RMSprop,
             keras.optimizers.AdamW):
  gin.external_configurable(_cls, module="keras.optimizers")
for _cls in (keras.optimizers.schedules.CosineDecay,
             keras.optimizers.schedules.CosineDecayRestarts,
             keras.optimizers.schedules.ExponentialDecay):
  gin.external_configurable(_cls, module="keras.optimizers.schedules")


def resolve_gin_file(path: str) -> str:
  """A .gin path as given, else relative to the installed package (`gin/...` ships inside it)."""
  if os.path.exists(path):
    return path
  packaged = os.path.join(PACKAGE_DIR, path)
  if os.path.exists(packaged):
    return packaged
  packaged = os.path.join(PACKAGE_DIR, "gin", path)
  if os.path.exists(packaged):
    return packaged
  raise ValueError(f"gin file {path!r} not found (looked in the working directory and in "
                   f"{os.path.join(PACKAGE_DIR, 'gin')})")


def split_shortcuts(argv: List[str]) -> List[str]:
  """Turns `--gin.X=V` flags into `--gin_param=X=V` (t5x's shortcut) before absl parses them."""
  out = []
  for arg in argv:
    if arg.startswith("--gin.") and "=" in arg:
      out.append("--gin_param=" + arg[len("--gin."):])
    else:
      out.append(arg)
  return out


# Modules that register configurables: parse() imports them all, so whether a binding is known
# never depends on what the caller happened to import first.
CONFIGURABLE_MODULES = ("nasnet_rl.search", "nasnet_rl.child.trainer", "nasnet_rl.cli.train",
                        "nasnet_rl.transfer", "nasnet_rl.cli.transfer")


def import_configurables() -> None:
  for name in CONFIGURABLE_MODULES:
    importlib.import_module(name)


def parse(gin_files: Iterable[str] = (), gin_params: Iterable[str] = (),
          skip_unknown: bool = False) -> None:
  """Parses files then bindings; an unknown configurable or parameter is one clear ValueError."""
  import_configurables()
  logging.set_verbosity(logging.WARNING)  # gin logs every include lookup at INFO
  gin.add_config_file_search_path(os.path.join(PACKAGE_DIR, "gin"))
  files = [resolve_gin_file(f) for f in gin_files]
  try:
    gin.parse_config_files_and_bindings(files, list(gin_params), skip_unknown=skip_unknown)
  except (ValueError, KeyError, TypeError) as e:
    msg = str(e).strip().splitlines()
    raise ValueError("bad gin configuration: " + " | ".join(m for m in msg if m)) from None


def write_config(workdir: str, name: str, text: Optional[str] = None) -> str:
  """Writes the config string (default: the operative config) to workdir/name."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, name)
  with open(path, "w") as f:
    f.write(gin.operative_config_str() if text is None else text)
  return path
