"""Flags every entry point shares, defined once so that several CLIs can live in one process.

absl keeps one global flag registry; two modules that each `DEFINE_string("workdir", ...)` cannot
both be imported (tests import several CLIs). `define_run_flags()` is idempotent instead.
"""

import contextlib
import errno
import os
import re
import sys
from typing import Callable, Iterator, Optional, Sequence

from absl import app
from absl import flags
import gin

from nasnet_rl import jsonio
from nasnet_rl import rundir
from nasnet_rl.cli import flagdefs

FLAGS = flags.FLAGS


def _define_once(define, name, default, help_text, **kwargs):
  if name not in FLAGS:
    define(name, default, help_text, **kwargs)


def define_run_flags() -> None:
  """--workdir, --gin_file, --gin_param and --seed (the t5x-style run flags)."""
  flagdefs.define("search")


def define_genotype_flag(default=None) -> None:
  """--genotype: a genotype JSON file, a run directory or a published name."""
  _define_once(flags.DEFINE_string, "genotype", default, flagdefs.GENOTYPE.help)


def renamed(new: str, old: str):
  """The value of flag --new, else of its old name --old (with a warning naming the new one)."""
  if FLAGS[new].value is None and FLAGS[old].value is not None:
    print(f"warning: --{old} is now --{new}", file=sys.stderr, flush=True)
    return FLAGS[old].value
  return FLAGS[new].value


def require_workdir() -> str:
  """The --workdir value, or a clear error (flags are shared, so `required=` cannot be used)."""
  if not FLAGS.workdir:
    raise ValueError("--workdir is required")
  return FLAGS.workdir


def _chief() -> bool:
  from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
  return distribute.is_chief()


def start_run(params: Sequence[str]) -> str:
  """Checks and locks --workdir, parses --gin_file plus `params` (types checked), and arranges
  for config.gin to be written by `commit_config` once the run has validated its inputs (the
  genotype, the data, a resumed checkpoint): a start that fails changes nothing on disk.
  A multi-worker run's other workers (TF_CONFIG, not the chief) only parse: they read the
  chief's run directory (to resume) and never lock or write it."""
  from nasnet_rl import config  # pylint: disable=g-import-not-at-top  # Keras: not for show
  workdir = require_workdir()
  if not _chief():
    config.parse(FLAGS.gin_file, params)
    return workdir
  rundir.acquire(workdir)  # one line naming the holder if another process runs here
  config.parse(FLAGS.gin_file, params)
  _PENDING[os.path.realpath(workdir)] = gin.config_str()
  rundir.on_validated(workdir, lambda: commit_config(workdir))
  return workdir


_PENDING = {}  # realpath of workdir -> config text waiting for commit_config


def finish_run(workdir: str) -> None:
  """After a training: config.gin (if not yet written) and operative_config.gin, chief only."""
  from nasnet_rl import config  # pylint: disable=g-import-not-at-top
  if _chief():
    commit_config(workdir)
    config.write_config(workdir, "operative_config.gin")


def commit_config(workdir: str) -> Optional[str]:
  """Writes the config `start_run` parsed as workdir/config.gin, once. A config.gin that holds a
  different configuration is never overwritten: it moves to config.gin.previous-N (N = 1, 2...)
  so every configuration the run was started or resumed with is kept. Returns the path."""
  text = _PENDING.pop(os.path.realpath(workdir), None)
  if text is None:
    return None
  path = os.path.join(workdir, "config.gin")
  if os.path.isfile(path):
    with open(path) as f:
      if f.read() == text:
        return path
    n = 1
    while os.path.exists(f"{path}.previous-{n}"):
      n += 1
    os.replace(path, f"{path}.previous-{n}")
    print(f"warning: {path} differs from this command's configuration; continuing with the new "
          f"one (the old file is kept as config.gin.previous-{n})", file=sys.stderr)
  from nasnet_rl import checkpointing  # pylint: disable=g-import-not-at-top
  checkpointing.atomic_write(path, lambda f: f.write(text.encode("utf-8")))
  return path


@contextlib.contextmanager
def validated_unless_resume_fails(workdir: str) -> Iterator[None]:
  """Around a resumable training that calls `rundir.validated` once its checkpoint is restored:
  a failure before that still records config.gin (the inputs were checked), except a checkpoint
  that cannot be resumed (`resume.CannotResume`), which leaves every file as it was."""
  from nasnet_rl import resume  # pylint: disable=g-import-not-at-top
  try:
    yield
  except resume.CannotResume:
    raise
  except Exception:
    rundir.validated(workdir)
    raise


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def one_line(e: BaseException) -> str:
  """The error as one line: ValueErrors as they are (they name the file and the problem),
  OSErrors with their file name, anything else as `Type: first line`, memory addresses and gin's
  "In call to configurable" context dropped."""
  if isinstance(e, jsonio.DiskFullError):  # our writers: the file, and nothing lost
    text = str(e).splitlines()[0]
  elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
    text = (f"{e.filename or 'a file'}: no space left on device; free some space and rerun the "
            "same command to resume")
  elif isinstance(e, OSError) and getattr(e, "filename", None):
    text = f"{e.filename}: {e.strerror or type(e).__name__}"
  else:
    lines = [l.strip() for l in str(getattr(e, "message", None) or e).splitlines() if l.strip()]
    lines = [l for l in lines if not l.startswith("In call to configurable")]
    text = lines[0] if lines else ""
    if not isinstance(e, ValueError) or not text:
      text = f"{type(e).__name__}: {text}" if text else type(e).__name__
  return _ADDRESS.sub("", text)


def _workdir_flag() -> Optional[str]:
  return FLAGS["workdir"].value if "workdir" in FLAGS else None


def run_main(main: Callable) -> None:
  """Runs an absl main with the `--gin.X=V` shortcut; any error (bad genotype, gin binding,
  dataset, source, checkpoint, locked or unwritable workdir, diverged child...) becomes one
  `error: ...` line and a non-zero exit. NASNET_RL_TRACEBACK=1 shows the traceback instead.
  SIGINT / SIGTERM: one line saying where the run stopped, exit 130 / 143 (cli/interrupt.py)."""
  from nasnet_rl.cli import interrupt  # pylint: disable=g-import-not-at-top
  try:
    with interrupt.handled(_workdir_flag):
      app.run(main, argv=flagdefs.split_shortcuts(sys.argv))
  except Exception as e:  # pylint: disable=broad-except
    if os.environ.get("NASNET_RL_TRACEBACK"):
      raise
    sys.exit(f"error: {one_line(e)}")
