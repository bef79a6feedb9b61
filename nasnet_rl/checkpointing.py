"""Crash-safe checkpoint files and folders: a kill at any moment leaves either the old or the
new checkpoint complete, never a mix (used by the strategies and the standalone and ENAS
searches, the resumable trainings). Files are written under a temporary name, fsynced and
renamed (`os.replace` is atomic on POSIX); folders are written fresh and swapped in (`save`), or
written as `<name>.tmp` and renamed to a new numbered name, keeping the newest few
(`save_numbered`).
"""

import contextlib
import glob
import io
import json
import os
import shutil
import tempfile
import zipfile
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np

from nasnet_rl import jsonio

MARKER = "progress.json"


def save(directory: str, write: Callable[[str], None]) -> None:
  """Calls `write(folder)` on a fresh folder (which must write MARKER last), then swaps it in."""
  tmp, old = directory + ".tmp", directory + ".old"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  with jsonio.writing(tmp):
    write(tmp)
  if not os.path.exists(os.path.join(tmp, MARKER)):
    raise RuntimeError(f"checkpoint writer did not write {MARKER}")
  shutil.rmtree(old, ignore_errors=True)
  if os.path.exists(directory):
    os.rename(directory, old)
  os.rename(tmp, directory)
  shutil.rmtree(old, ignore_errors=True)


def newest_complete(directory: str) -> Optional[str]:
  """The folder holding the newest complete checkpoint (one with MARKER), or None."""
  for candidate in (directory, directory + ".tmp", directory + ".old"):
    if os.path.exists(os.path.join(candidate, MARKER)):
      return candidate
  return None


def _fsync_dir(directory: str) -> None:
  try:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
  except OSError:
    pass


def save_numbered(root: str, step: int, write: Callable[[str], None], keep: int = 2) -> str:
  """Calls `write(folder)` on a fresh `root/step-<step>.tmp` (which must write MARKER last),
  renames it to `root/step-<step>`, then deletes all but the newest `keep` complete folders and
  any leftover `.tmp` folder. A kill at any moment leaves every older complete folder intact; a
  `.tmp` without MARKER (a save cut short) is never read (see `numbered_complete`). Returns the
  new folder."""
  if keep < 1:
    raise ValueError(f"keep must be >= 1, got {keep!r}")
  os.makedirs(root, exist_ok=True)
  final = os.path.join(root, f"step-{int(step):010d}")
  tmp = final + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  with jsonio.writing(tmp):
    write(tmp)
  if not os.path.exists(os.path.join(tmp, MARKER)):
    raise RuntimeError(f"checkpoint writer did not write {MARKER}")
  _fsync_dir(tmp)
  # The same step saved again (after falling back from a damaged copy of it): the complete .tmp
  # counts as that step until the rename, so removing the old copy first loses nothing.
  shutil.rmtree(final, ignore_errors=True)
  os.rename(tmp, final)
  _fsync_dir(root)
  for stale in numbered_complete(root)[keep:]:
    shutil.rmtree(stale, ignore_errors=True)
  for leftover in glob.glob(os.path.join(root, "step-*.tmp")):
    shutil.rmtree(leftover, ignore_errors=True)
  return final


def numbered_complete(root: str) -> list:
  """The complete `save_numbered` folders under `root` (those holding MARKER), newest first. A
  `.tmp` folder without MARKER (an interrupted save) is not among them; one with MARKER (killed
  just before its rename) is, unless its final name exists."""
  found = {}
  for path in glob.glob(os.path.join(root, "step-*")):
    name = os.path.basename(path)
    digits = name[len("step-"):-len(".tmp")] if name.endswith(".tmp") else name[len("step-"):]
    if not digits.isdigit() or not os.path.exists(os.path.join(path, MARKER)):
      continue
    if name.endswith(".tmp") and int(digits) in found:
      continue
    found[int(digits)] = path
  return [found[k] for k in sorted(found, reverse=True)]


def atomic_write(path: str, write: Callable[[io.BufferedWriter], None]) -> None:
  """Calls `write(f)` on a temp file next to `path`, fsyncs, then renames it over `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                             dir=directory)
  try:
    with jsonio.writing(path), os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  _fsync_dir(directory)  # make the rename itself durable


def save_json(path: str, obj: Any, strict: bool = False) -> None:
  """Atomically writes `obj` as sorted, indented JSON; `strict` (a user-facing file): no NaN or
  Infinity (they become null). A checkpoint keeps them, so a resume sees what was saved."""
  data = (jsonio.dumps if strict else json.dumps)(obj, sort_keys=True, indent=1).encode("utf-8")
  atomic_write(path, lambda f: f.write(data))


def load_json(path: str) -> Any:
  """Reads a JSON checkpoint; a missing file is a FileNotFoundError naming it."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"no checkpoint at {path}")
  with open(path, "r", encoding="utf-8") as f:
    return json.load(f)


def save_arrays(path: str, arrays: Dict[str, np.ndarray], state: Any) -> None:
  """Atomically writes named arrays plus a JSON-able `state` into one .npz file."""
  payload = dict(arrays)
  payload["__state__"] = np.frombuffer(json.dumps(state, sort_keys=True).encode("utf-8"),
                                       dtype=np.uint8)
  atomic_write(path, lambda f: np.savez(f, **payload))


def load_arrays(path: str):
  """Reads what `save_arrays` wrote: (dict of arrays, state)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"no checkpoint at {path}")
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files if k != "__state__"}
      state = json.loads(bytes(z["__state__"]).decode("utf-8"))
  except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
    # np.load's own message for a damaged file suggests allow_pickle, which is never the fix
    raise ValueError(f"{path}: damaged checkpoint, not a readable .npz archive "
                     f"({type(e).__name__})") from None
  return arrays, state


@contextlib.contextmanager
def restoring(folder: str) -> Iterator[None]:
  """Turns any failure while restoring from `folder` into one ValueError naming it: a deleted or
  truncated file, or a checkpoint written by another strategy or search space."""
  try:
    yield
  except (ValueError, OSError, EOFError, KeyError, TypeError, IndexError,
          zipfile.BadZipFile) as e:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ValueError(
        f"cannot resume from the checkpoint in {folder}: {type(e).__name__}: {detail} (was the "
        "run started with another strategy or search space, or is the checkpoint damaged? "
        "Use a new --workdir, or the run's own config.gin)") from None
