"""Dataset loaders by name. `@register("name")` adds one; a name ending in ":" registers a family
(`@register("tfds:")` serves "tfds:mnist" by calling the loader with "mnist" first).

A loader returns a `source.Source` holding its full train and test sets.
"""

import functools
from typing import Callable, Dict, List

_LOADERS: Dict[str, Callable] = {}


def register(name: str):
  """Decorator registering a loader under `name`; registering a name twice is an error."""
  if not isinstance(name, str) or not name or name.count(":") > (1 if name.endswith(":") else 0):
    raise ValueError(f"bad loader name {name!r}: a plain name, or a family prefix ending in ':'")

  def wrap(fn: Callable) -> Callable:
    if name in _LOADERS and _LOADERS[name] is not fn:
      raise ValueError(f"a dataset loader named {name!r} is already registered")
    _LOADERS[name] = fn
    return fn
  return wrap


def names() -> List[str]:
  """Registered names; families show as "prefix:<name>"."""
  return sorted(n + "<name>" if n.endswith(":") else n for n in _LOADERS)


def get(name: str) -> Callable:
  """The loader for `name`; an unknown name is a ValueError listing the known ones."""
  if isinstance(name, str) and name in _LOADERS and not name.endswith(":"):
    return _LOADERS[name]
  if isinstance(name, str) and ":" in name:
    prefix, member = name.split(":", 1)
    family = _LOADERS.get(prefix + ":")
    if family is not None and member:
      return functools.partial(family, member)
  raise ValueError(f"unknown dataset {name!r}; known: {', '.join(names())}")
