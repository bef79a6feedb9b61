"""JSON we write is strict (no NaN/Infinity: a non-finite float becomes null), and an OSError
while writing a file (a full disk) names that file."""

import contextlib
import errno
import json
import math
import os
from typing import Any, Iterator


def finite(obj: Any) -> Any:
  """`obj` with every non-finite float (NaN, inf, numpy's too) replaced by None."""
  if isinstance(obj, float):
    return obj if math.isfinite(obj) else None
  if isinstance(obj, dict):
    return {k: finite(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite(v) for v in obj]
  return obj


def dumps(obj: Any, **kwargs) -> str:
  """json.dumps that can only produce strict JSON."""
  return json.dumps(finite(obj), allow_nan=False, **kwargs)


def dump(obj: Any, f, **kwargs) -> None:
  """json.dump that can only produce strict JSON."""
  f.write(dumps(obj, **kwargs))


class DiskFullError(OSError):
  """No space left while writing `filename`; the writers here leave every file complete."""

  def __str__(self):
    return (f"{self.filename}: no space left on device while writing it; nothing was lost "
            "(every file keeps its last complete version): free some space and rerun the same "
            "command to resume")


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
  """Inside the block, an OSError that names no file (write and fsync errors never do) names
  `path`; a full disk becomes a DiskFullError."""
  try:
    yield
  except OSError as e:
    if e.errno == errno.ENOSPC and not isinstance(e, DiskFullError):
      raise DiskFullError(e.errno, e.strerror, e.filename or path) from None
    if e.filename or e.errno is None:
      raise
    raise OSError(e.errno, e.strerror or os.strerror(e.errno), path) from None


def append_line(path: str, text: str) -> None:
  """Appends `text` (one line, newline included) and fsyncs; a write that fails (a full disk)
  is cut off again, so the file keeps its last complete line."""
  data = text.encode("utf-8")
  with writing(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      start = os.fstat(fd).st_size
      try:
        view = memoryview(data)
        while view:
          view = view[os.write(fd, view):]
        os.fsync(fd)
      except OSError:
        os.ftruncate(fd, start)
        raise
    finally:
      os.close(fd)
