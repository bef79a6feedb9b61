"""gin plumbing shared by every entry point: flags, search paths, config files in the workdir.

We do not `import gin.tf` (it drags in TF1 and distutils); Keras optimizers and schedules are
registered here with `gin.external_configurable` instead.
"""

import importlib
import inspect
import os
import re
import typing
from typing import Any, Iterable, List, Optional

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


def _search_gin_dir() -> None:
  """Makes gin look for `include`d files in the package's gin/ first. gin tries its search
  paths in order, and a miss on the first one ('', the working directory) makes its
  package-resource reader log a false `Path not found` error before the next path succeeds."""
  gin_dir = os.path.join(PACKAGE_DIR, "gin")
  prefixes = getattr(gin.config, "_LOCATION_PREFIXES", None)  # gin has no public insert
  if isinstance(prefixes, list):
    if gin_dir in prefixes:
      prefixes.remove(gin_dir)
    prefixes.insert(0, gin_dir)
  else:
    gin.add_config_file_search_path(gin_dir)


def resolve_gin_file(path: str) -> str:
  """A .gin path as given, else relative to the installed package (`gin/...` ships inside it)."""
  if os.path.exists(path):
    return os.path.abspath(path)  # absolute: gin then tries no search path (see _search_gin_dir)
  packaged = os.path.join(PACKAGE_DIR, path)
  if os.path.exists(packaged):
    return packaged
  packaged = os.path.join(PACKAGE_DIR, "gin", path)
  if os.path.exists(packaged):
    return packaged
  raise ValueError(f"gin file {path!r} not found (looked in the working directory and in "
                   f"{os.path.join(PACKAGE_DIR, 'gin')})")


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
  _search_gin_dir()
  files = [resolve_gin_file(f) for f in gin_files]
  try:
    gin.parse_config_files_and_bindings(files, list(gin_params), skip_unknown=skip_unknown)
  except (ValueError, KeyError, TypeError, SyntaxError, IOError) as e:
    msg = str(e).strip().splitlines()
    raise ValueError("bad gin configuration: " + " | ".join(m for m in msg if m)) from None
  except Exception as e:  # tokenize.TokenError and friends for a syntax error in a .gin file
    raise ValueError(f"bad gin configuration: {type(e).__name__}: {e}") from None
  check_binding_types()
  check_learning_rates()


_PRIMITIVES = (bool, int, float, str)


def _accepts(kind: Any, value: Any) -> Optional[bool]:
  """Whether a primitive gin `value` fits the annotation `kind`; None when we cannot tell."""
  origin = typing.get_origin(kind)
  if origin is typing.Union:
    verdicts = [_accepts(k, value) for k in typing.get_args(kind)]
    return True if any(v for v in verdicts) else (None if None in verdicts else False)
  if kind is type(None):
    return value is None
  if kind is bool:
    return isinstance(value, bool)
  if kind is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if kind is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if kind is str:
    return isinstance(value, str)
  return None


def check_binding_types() -> None:
  """Every primitive gin binding must fit its parameter's annotation (or the type of its
  default), so `train_child.epochs = 'two'` is one error at parse time, before any data loads
  or model is built. References, macros and containers are not checked."""
  from gin import config as gin_config  # pylint: disable=g-import-not-at-top
  for (_, selector), params in list(gin_config._CONFIG.items()):  # pylint: disable=protected-access
    configurable = gin_config._REGISTRY.get_match(selector)  # pylint: disable=protected-access
    fn = getattr(configurable, "wrapped", None)
    if fn is None:
      continue
    if inspect.isclass(fn):
      fn = fn.__init__
    try:
      signature = inspect.signature(fn)
      hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
      continue
    for name, value in params.items():
      if not isinstance(value, _PRIMITIVES) or name not in signature.parameters:
        continue
      kind = hints.get(name)
      default = signature.parameters[name].default
      if kind is None and isinstance(default, _PRIMITIVES):
        kind = float if type(default) in (int, float) else type(default)  # 1 may mean 1.0
      if kind is None or _accepts(kind, value) is not False:
        continue
      want = " or ".join("None" if k is type(None) else getattr(k, "__name__", str(k))
                         for k in (typing.get_args(kind) or (kind,)))
      raise ValueError(f"bad gin configuration: {configurable.name}.{name} = {value!r}: "
                       f"expected {want}")


_RATE = re.compile(r"(^|_)(learning_rate|lr_max)$")


def check_learning_rates() -> None:
  """Every bound learning rate (`*learning_rate`, `lr_max`) must be a number > 0: a negative one
  trains by gradient ascent and records its children as ok, zero trains nothing."""
  from gin import config as gin_config  # pylint: disable=g-import-not-at-top
  for (_, selector), params in list(gin_config._CONFIG.items()):  # pylint: disable=protected-access
    for name, value in params.items():
      if (_RATE.search(name) and isinstance(value, (int, float))
          and not isinstance(value, bool) and not value > 0):
        raise ValueError(f"bad gin configuration: {selector}.{name} = {value!r}: a learning "
                         "rate must be > 0")


def write_config(workdir: str, name: str, text: Optional[str] = None) -> str:
  """Writes the config string (default: the operative config) to workdir/name."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, name)
  with open(path, "w") as f:
    f.write(gin.operative_config_str() if text is None else text)
  return path
