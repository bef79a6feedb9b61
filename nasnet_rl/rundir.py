"""A run directory is owned by one process: an exclusive `fcntl.flock` on the directory itself.

Every run (standalone search, ENAS, train, transfer) takes the lock before it writes anything;
a second process on the same directory gets one `RunDirLockedError` line naming the holder's
pid (written to `<workdir>/.lock`, for information only: deleting that file, the usual clean-up
of a "stale lock", cannot free the directory, whose inode stays the same while the run lives).
The kernel drops the lock when the holder dies (kill -9 included), so nothing stale ever blocks
a resume. Within one process the lock is re-entrant (counted), so the CLI, the search function
and its History can each take it.

Also here: `check_workdir` (a workdir that is a file or read-only is one clear error) and
`slug`/`join_under` (output names derived from data never leave the workdir).
"""

import contextlib
import errno
import fcntl
import functools
import inspect
import os
import re
import threading
from typing import Callable, Dict, Iterator, List, Tuple

LOCK_NAME = ".lock"


class RunDirLockedError(ValueError):
  """Another process holds the run directory."""


_lock = threading.Lock()
_held: Dict[str, Tuple[int, int]] = {}  # realpath of workdir -> (fd, count)


def _key(workdir: str) -> str:
  return os.path.realpath(workdir)


def check_workdir(workdir: str, flag: str = "--workdir") -> str:
  """Creates `workdir` if needed; a path that is a file or a dangling symlink, or a directory
  this process cannot write, is one ValueError naming it (as the command-line `flag`)."""
  if not workdir:
    raise ValueError(f"{flag} is required")
  if os.path.islink(workdir) and not os.path.exists(workdir):
    raise ValueError(f"{flag} {workdir!r} is a symlink to {os.readlink(workdir)!r}, which "
                     "does not exist; create the target or point the link elsewhere")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"{flag} {workdir!r} is a file, not a directory")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ValueError(f"cannot create {flag} {workdir!r}: {e.strerror or e}") from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise ValueError(f"{flag} {workdir!r} is not writable")
  return workdir


def holder_pid(workdir: str):
  """The pid written into the lock file by its holder (None if unknown)."""
  try:
    with open(os.path.join(workdir, LOCK_NAME)) as f:
      return int(f.read().strip() or "0") or None
  except (OSError, ValueError):
    return None


def _write_pid(path: str) -> None:
  """Records the holder's pid in `path` (informational; the lock is on the directory)."""
  try:
    with open(path, "w") as f:
      f.write(f"{os.getpid()}\n")
  except OSError:
    pass  # a full disk or a read-only file must not stop the owner; only the message suffers


def acquire(workdir: str) -> None:
  """Takes the exclusive lock of `workdir` (created if needed) without waiting; re-entrant
  within a process. Raises RunDirLockedError if another process holds it."""
  check_workdir(workdir)
  key = _key(workdir)
  with _lock:
    if key in _held:
      fd, count = _held[key]
      _held[key] = (fd, count + 1)
      return
    path = os.path.join(workdir, LOCK_NAME)
    try:
      fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
      raise ValueError(f"cannot open the run directory {workdir}: {e.strerror or e}") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise ValueError(f"cannot lock the run directory {workdir}: {e.strerror or e} (does its "
                         "file system support locks?)") from None
      pid = holder_pid(workdir)
      who = f"process {pid}" if pid else "another process"
      raise RunDirLockedError(
          f"run directory {workdir} is in use by {who} (a lock on the directory itself); wait "
          "for it to finish or stop it, or use another --workdir") from None
    _write_pid(path)
    _held[key] = (fd, 1)


def release(workdir: str) -> None:
  """Undoes one `acquire`; the last one unlocks."""
  key = _key(workdir)
  with _lock:
    if key not in _held:
      return
    fd, count = _held[key]
    if count > 1:
      _held[key] = (fd, count - 1)
      return
    del _held[key]
    os.close(fd)  # closing the only descriptor of the directory drops the flock


def held(workdir: str) -> bool:
  """Whether this process holds the lock of `workdir`."""
  return _key(workdir) in _held


@contextlib.contextmanager
def locked(workdir: str) -> Iterator[str]:
  """`with locked(workdir):` holds the run directory for the block."""
  acquire(workdir)
  try:
    yield workdir
  finally:
    release(workdir)


def holds_workdir(fn: Callable) -> Callable:
  """Decorator: the call holds the lock of its `workdir` argument for its whole duration."""
  signature = inspect.signature(fn)

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    workdir = signature.bind_partial(*args, **kwargs).arguments.get("workdir")
    if not workdir:
      return fn(*args, **kwargs)
    with locked(workdir):
      return fn(*args, **kwargs)
  wrapper.__signature__ = signature  # gin validates bindings against it (getfullargspec)
  return wrapper


# ---- validate before writing -----------------------------------------------------------------
_on_validated: Dict[str, List[Callable[[], None]]] = {}


def on_validated(workdir: str, callback: Callable[[], None]) -> None:
  """Sets `callback` (e.g. writing config.gin) to run when the run in `workdir` has checked its
  inputs and its resume state; nothing is written before that. Replaces an earlier one."""
  _on_validated[_key(workdir)] = [callback]


def validated(workdir: str) -> None:
  """Called by a run once its inputs and resume state are known good; runs the callbacks once."""
  for callback in _on_validated.pop(_key(workdir), []):
    callback()


# ---- output names from data ------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(name: str, default: str = "unnamed", max_len: int = 64) -> str:
  """A file-name-safe version of `name`: letters, digits, `_`, `-`, `.`; no leading dots (so
  never `.` or `..`), at most `max_len` characters."""
  out = re.sub(r"_+", "_", re.sub(r"\.\.+", "_", _UNSAFE.sub("_", str(name))))
  out = out.lstrip(".")[:max_len].strip("_")
  return out or default


def join_under(root: str, *names: str) -> str:
  """os.path.join(root, *slugs) that provably stays under `root`."""
  path = os.path.join(root, *[slug(n) for n in names])
  real_root = os.path.realpath(root)
  if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
    raise ValueError(f"output path {path!r} would leave {root!r}")
  return path


def list_held() -> List[str]:
  """Run directories this process holds (for tests and diagnostics)."""
  return sorted(_held)
