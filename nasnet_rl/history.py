"""history.jsonl of a search run: one JSON line per evaluated child, appended and fsynced."""

import json
import os
from typing import Any, Dict, List


class History:
  """history.jsonl: one JSON line per evaluated child; tolerant of a torn last line."""

  def __init__(self, path: str):
    self.path = path
    self.entries: List[Dict[str, Any]] = []
    if os.path.exists(path):
      with open(path) as f:
        lines = f.read().split("\n")
      for i, line in enumerate(lines):
        if not line.strip():
          continue
        try:
          self.entries.append(json.loads(line))
        except json.JSONDecodeError:
          if i < len(lines) - 2:
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
      # rewrite without a torn tail so later appends stay valid JSONL
      self._rewrite()

  def _rewrite(self):
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      for e in self.entries:
        f.write(json.dumps(e, sort_keys=True) + "\n")
    os.replace(tmp, self.path)

  def append(self, entry: Dict[str, Any]) -> None:
    self.entries.append(entry)
    with open(self.path, "a") as f:
      f.write(json.dumps(entry, sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())

  def trained(self) -> Dict[str, Dict[str, Any]]:
    """key -> first entry of every architecture actually trained."""
    out = {}
    for e in self.entries:
      if not e.get("cached"):
        out.setdefault(e["key"], e)
    return out
