"""Start banners: what a search or training is about to run, read from the parsed gin config.

Nothing here touches TensorFlow's devices: a multi-worker strategy must be created before
anything lists them, so the banner names the distribution that will be asked for instead.
"""

import inspect
import os
from typing import Any

import gin


def value(configurable: str, param: str, default: Any = None) -> Any:
  """configurable.param as bound in gin, else its signature's default, else `default`."""
  try:
    bound = gin.get_bindings(configurable)
    if param in bound:
      return bound[param]
    found = inspect.signature(gin.get_configurable(configurable)).parameters.get(param)
  except Exception:  # pylint: disable=broad-except  # an unknown name: say what we know
    return default
  if found is None or found.default is inspect.Parameter.empty:
    return default
  return found.default


def _data() -> str:
  name = value("load_dataset", "name", "fashion_mnist")
  where = value("load_dataset", "data_dir")
  size = value("load_dataset", "image_size")
  return name + (f" from {where}" if where else "") + (f" at {size}px" if size else "")


def _devices() -> str:
  kind = value("make_distribution", "kind", "auto")
  if os.environ.get("TF_CONFIG"):
    return f"distribution {kind} (TF_CONFIG set: several machines)"
  if kind == "auto":
    return "devices: all visible GPUs (MirroredStrategy), else one device"
  return f"distribution {kind}"


def _child(prefix: str = "build_child") -> str:
  cells = value(prefix, "num_cells")
  width = value(prefix, "penultimate_filters") or value(prefix, "filters")
  wide = "penultimate filters" if value(prefix, "penultimate_filters") else "filters"
  return f"{cells} cell(s) per stack, {width} {wide}"


def _schedule(trainer: str) -> str:
  epochs, steps = value(trainer, "epochs"), value(trainer, "steps_per_epoch")
  batch = value(trainer, "batch_size_per_replica")
  batch = f"{batch} per replica" if batch else value(trainer, "batch_size")
  return f"{epochs} epoch(s) of {steps or 'a full pass of'} steps (batch {batch})"


def search(workdir: str) -> str:
  """The search about to run: mode, budget, space, children or supernet, data, devices."""
  if value("search_main", "mode", "standalone") == "enas":
    return (f"ENAS search -> {workdir}: {_schedule('enas_search')} of shared-weight training, "
            f"{value('enas_search', 'controller_steps')} controller updates of "
            f"{value('enas_search', 'controller_batch')} cells per epoch, derive over "
            f"{value('enas_search', 'derive_samples')} cells; supernet "
            f"{value('enas_search', 'num_cells')} cell(s) per stack, "
            f"{value('enas_search', 'filters')} filters; data {_data()}; {_devices()}")
  budget = f"{value('standalone_search', 'max_children')} children"
  seconds = value("standalone_search", "max_seconds")
  if seconds:
    budget += f" or {seconds / 60:.0f} min, whichever comes first"
  kind = value("make_executor", "kind", "local")
  if kind == "table":
    children = f"answered from the table of {value('TabularBenchmark', 'dataset', '?')}"
  else:
    children = f"children {_child()}, {_schedule('train_child')}, data {_data()}"
  return (f"standalone search -> {workdir}: strategy "
          f"{value('standalone_search', 'strategy')}, budget {budget}; {children}; "
          f"executor {kind}" + ("" if kind == "table" else f"; {_devices()}"))


def train(workdir: str, genotype: str) -> str:
  """The training about to run: cell, network size, schedule, data, devices."""
  return (f"training {genotype} -> {workdir}: {_child()}, {_schedule('train_child')}, "
          f"data {_data()}; {_devices()}")


def transfer(workdir: str, source: str) -> str:
  """The transfer about to run: cell, scale, schedule, data, devices."""
  size = value("scale", "size") or value("scale", "preset", "cifar")
  image = value("scale", "image_size")
  return (f"transfer {source} -> {workdir}: size {size}" + (f" at {image}px" if image else "")
          + f", {_schedule('train_transfer')}, data {_data()}; {_devices()}")
