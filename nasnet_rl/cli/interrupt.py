"""Ctrl-C (SIGINT) and SIGTERM at the entry points: one line saying where the run stopped and how
to go on, exit 130 / 143, no traceback. Every run writes crash-safely, so nothing is lost."""

import contextlib
import os
import signal
import sys
from typing import Callable, Iterator, List, Optional

from nasnet_rl import checkpointing
from nasnet_rl import history as history_lib


class Interrupted(BaseException):
  """SIGTERM as an exception; a BaseException like KeyboardInterrupt, so `except Exception`
  blocks (a failing child) never swallow it."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def _raise(signum, frame):
  del frame
  raise Interrupted(signum)


def _last(path: str, field: str) -> Optional[int]:
  """`field` of the last record of a JSONL file (None: no file, no records, no such field)."""
  records = history_lib.read_jsonl(path)[0] if os.path.isfile(path) else []
  value = records[-1].get(field) if records and isinstance(records[-1], dict) else None
  return value if isinstance(value, int) else None


def saved_progress(workdir: Optional[str]) -> List[str]:
  """What a rerun of `workdir` resumes from: the last child in history.jsonl, the last ENAS
  epoch in epochs.jsonl, the newest training checkpoint's step (e.g. ['child 7'])."""
  if not workdir or not os.path.isdir(workdir):
    return []
  out = []
  child = _last(os.path.join(workdir, "history.jsonl"), "index")
  if child is not None:
    out.append(f"child {child}")
  epoch = _last(os.path.join(workdir, "epochs.jsonl"), "epoch")
  if epoch is not None:
    out.append(f"epoch {epoch}")
  steps = checkpointing.numbered_complete(os.path.join(workdir, "checkpoints"))
  if steps:
    step = int(os.path.basename(steps[0]).split("-")[1].split(".")[0])
    out.append(f"step {step:,}")
  return out


def message(workdir: Optional[str]) -> str:
  """The one line printed when a run is interrupted."""
  if not workdir:
    return "interrupted; nothing was written; rerun the same command to start again"
  try:
    where = saved_progress(workdir)
  except (OSError, ValueError):
    where = []
  if not where:
    return (f"interrupted before anything was saved in {workdir}; rerun the same command to "
            "start")
  return f"interrupted after {' / '.join(where)}; rerun the same command to resume"


@contextlib.contextmanager
def handled(workdir: Callable[[], Optional[str]]) -> Iterator[None]:
  """SIGINT / SIGTERM inside the block end the process with `message(workdir())` on stderr and
  exit 128 + the signal number (130 / 143)."""
  previous = signal.signal(signal.SIGTERM, _raise)
  try:
    yield
  except (KeyboardInterrupt, Interrupted) as e:
    signum = getattr(e, "signum", signal.SIGINT)
    print(message(workdir()), file=sys.stderr, flush=True)
    sys.exit(128 + signum)
  finally:
    signal.signal(signal.SIGTERM, previous)
