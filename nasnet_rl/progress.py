"""Progress a person can follow: trainings print one line at a fixed interval (steps done / total, examples per
second, the caller's metrics, ETA), printed and appended to `<workdir>/log.txt`.

Lines, not a progress bar: they read the same in a terminal, a log file and a cluster job's
output. The interval is gin's `progress.every_seconds` (default 30 s); the host reads the
training's metrics only when a line is due, so the interval is also how often it syncs.
A search prints one line per child: what is left of the budget that will end it, and when.
"""

import os
import time
from typing import Callable, Dict, Optional

import gin


@gin.configurable
def progress(every_seconds: float = 30.0) -> float:
  """Seconds between progress lines of every long training and search (> 0)."""
  if not isinstance(every_seconds, (int, float)) or isinstance(every_seconds, bool) \
      or not every_seconds > 0:
    raise ValueError(f"progress.every_seconds must be a positive number, got {every_seconds!r}")
  return float(every_seconds)


def duration(seconds: float) -> str:
  """A short human duration: 45s, 3m20s, 2h05m."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Log:
  """Prints lines and appends them to `<workdir>/log.txt` (when a workdir is given)."""

  def __init__(self, workdir: Optional[str] = None, quiet: bool = False):
    self.path = os.path.join(workdir, "log.txt") if workdir else None
    self.quiet = quiet

  def __call__(self, line: str) -> None:
    stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
    if not self.quiet:
      print(line, flush=True)
    if self.path:
      with open(self.path, "a") as f:
        f.write(stamped + "\n")


class Progress:
  """Decides when a line is due and formats it (`step a/b, N ex/s, metrics, ETA`)."""

  def __init__(self, log: Log, label: str, total_steps: int, examples_per_step: int,
               start_step: int = 0, every_seconds: Optional[float] = None,
               clock: Callable[[], float] = time.monotonic):
    self.log, self.label, self.total = log, label, int(total_steps)
    self.examples = int(examples_per_step)
    self.every = progress() if every_seconds is None else float(every_seconds)
    self.clock = clock
    self._last_time = clock()
    self._last_step = int(start_step)

  def due(self) -> bool:
    return self.clock() - self._last_time >= self.every

  def report(self, step: int, metrics: Dict[str, float], suffix: str = "") -> None:
    """Writes the line for `step` (examples per second since the previous line)."""
    now = self.clock()
    seconds_per_step = (now - self._last_time) / max(step - self._last_step, 1)
    rate = self.examples / max(seconds_per_step, 1e-9)
    eta = duration(seconds_per_step * (self.total - step))  # at the rate since the last line
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    self.log(f"{self.label} step {step:,}/{self.total:,} ({100.0 * step / self.total:.0f}%), "
             f"{rate:.1f} ex/s, {shown}, ETA {eta}{suffix}")
    self._last_time, self._last_step = now, step



def minutes(seconds: float) -> str:
  """90 -> `1.5 min`, 40 -> `40 s`."""
  return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def remaining(trained: int, max_children: int, elapsed: float,
              max_seconds: Optional[float]) -> str:
  """The budget left, in the unit that stops the search first (children or time), with an ETA
  from the time per trained child so far."""
  left = max(0, max_children - trained)
  per_child = elapsed / trained if trained else None
  by_children = left * per_child if per_child is not None else None
  if max_seconds is not None:
    time_left = max(0.0, max_seconds - elapsed)
    if by_children is None:
      return (f"{trained}/{max_children} trained, {minutes(time_left)} of "
              f"{minutes(max_seconds)} left")
    if time_left < by_children:
      more = f", ~{int(time_left / per_child)} more children" if per_child else ""
      return (f"{trained}/{max_children} trained; time ends the search: "
              f"{minutes(time_left)} of {minutes(max_seconds)} left{more}")
  eta = f", ETA {minutes(by_children)}" if by_children is not None else ""
  return f"{trained}/{max_children} trained, {left} to go{eta}"


def child_line(index: int, reward: float, note: str, best: Optional[float],
               best_index: Optional[int], budget_left: str) -> str:
  """`child 13: reward 0.7312 | best 0.7490 (child 9) | 14/40 trained, 26 to go, ETA 17.2 min`."""
  best_part = f"best {best:.4f} (child {best_index})" if best is not None else "no best yet"
  return f"child {index}: reward {reward:.4f}{note} | {best_part} | {budget_left}"
