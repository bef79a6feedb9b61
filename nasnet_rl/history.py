"""history.jsonl of a search run: one JSON line per evaluated child, appended and fsynced.

The file is append-only. Opening it for writing takes the run directory's lock (rundir.py), so
no other process can append or repair at the same time. It is changed in place only when a
torn last line (a kill mid-write) is actually found: the torn bytes are cut off (and kept in
`history.jsonl.torn`) with a warning. A complete line that is not valid JSON, or not a history
entry, anywhere else is a ValueError naming the file and the line.

`reconcile` matches a strategy checkpoint with the history by the keys of the children it was
fed: children in the history it has not seen are fed again, children it has seen that the
history lost are written back from the checkpoint's record. A reward is never dropped.
"""

import hashlib
import json
import os
import shutil
import sys
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from nasnet_rl import jsonio
from nasnet_rl import rewards
from nasnet_rl import rundir

# Fields every history line must have, with their JSON types.
REQUIRED_FIELDS = {"index": int, "key": str, "decisions": list, "reward": (int, float),
                   "status": str}


def warn(message: str) -> None:
  print(f"warning: {message}", file=sys.stderr, flush=True)


# ---- JSONL with a possibly torn tail ---------------------------------------------------------
def _parse_line(raw: bytes, path: str, lineno: int) -> Any:
  try:
    return json.loads(raw.decode("utf-8"))
  except RecursionError:
    raise ValueError(f"{path} line {lineno}: JSON nested too deeply") from None
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{path} line {lineno}: not valid JSON ({e})") from None


def read_jsonl(path: str) -> Tuple[List[Any], int, bytes]:
  """(records, bytes of the good prefix, torn tail bytes) of a JSONL file.

  Only the last, unterminated line may be broken (a write cut short): it is returned as the
  torn tail. An unterminated last line that parses is a complete record whose newline was
  lost; it counts as good (the caller adds the newline). A broken line elsewhere raises."""
  if not os.path.exists(path):
    return [], 0, b""
  if os.path.isdir(path):
    raise ValueError(f"{path} is a directory, expected a JSONL file")
  with open(path, "rb") as f:
    data = f.read()
  records, pos, lineno = [], 0, 0
  while pos < len(data):
    end = data.find(b"\n", pos)
    lineno += 1
    if end < 0:  # unterminated last line
      raw = data[pos:]
      if raw.strip():
        try:
          records.append(_parse_line(raw, path, lineno))
        except ValueError:
          return records, pos, raw
      return records, len(data), b""
    raw = data[pos:end]
    if raw.strip():
      records.append(_parse_line(raw, path, lineno))
    pos = end + 1
  return records, pos, b""


def repair_jsonl(path: str, what: str = "line") -> List[Any]:
  """Reads a JSONL file and makes it safe to append to: a torn tail is cut off (saved next to
  it as `<path>.torn`) with a warning; a last record without its newline gets one. The caller
  must own the file (hold the run directory's lock)."""
  records, good, torn = read_jsonl(path)
  if torn:
    with open(path + ".torn", "ab") as f:
      f.write(torn + b"\n")
    with open(path, "r+b") as f:
      f.truncate(good)
      f.flush()
      os.fsync(f.fileno())
    warn(f"{path}: dropped a torn last {what} ({len(torn)} bytes, kept in {path}.torn); "
         "the run was killed while writing it")
  elif os.path.exists(path) and good:
    with open(path, "rb") as f:
      f.seek(good - 1)
      last = f.read(1)
    if last != b"\n":
      with open(path, "ab") as f:
        f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
  return records


def append_jsonl(path: str, record: Any) -> None:
  """Appends one record as a strict-JSON line, fsynced; a failed write (a full disk) leaves the
  file as it was."""
  jsonio.append_line(path, jsonio.dumps(record, sort_keys=True) + "\n")


# ---- the search history ----------------------------------------------------------------------
def check_entry(entry: Any, path: str, lineno: int) -> Dict[str, Any]:
  """A history line must be an object with the REQUIRED_FIELDS; a ValueError otherwise."""
  where = f"{path} line {lineno}"
  if not isinstance(entry, dict):
    raise ValueError(f"{where}: expected a JSON object, got {type(entry).__name__}")
  for name, kind in REQUIRED_FIELDS.items():
    if name not in entry:
      raise ValueError(f"{where}: not a history entry (no {name!r} field)")
    value = entry[name]
    if not isinstance(value, kind) or isinstance(value, bool):
      raise ValueError(f"{where}: field {name!r} has the wrong type ({value!r})")
  problem = rewards.entry_problem(entry)
  if problem:
    raise ValueError(f"{where}: {problem} (child {entry['index']}, status {entry['status']!r})")
  return entry


def needs_feedback(entry: Dict[str, Any]) -> bool:
  """Whether the strategy learns from this entry: not from infrastructure failures (a missing
  dataset says nothing about the architecture)."""
  return not entry.get("infrastructure", False)


def counts_as_trained(entry: Dict[str, Any]) -> bool:
  """Whether this entry uses up `max_children` and is reused as the cached result of its
  architecture: a real evaluation, not a duplicate and not an infrastructure failure."""
  return not entry.get("cached") and not entry.get("infrastructure", False)


class History:
  """history.jsonl: one JSON line per evaluated child (see module doc).

  `readonly=True` reads without the lock and never writes (a torn tail is ignored)."""

  def __init__(self, path: str, readonly: bool = False):
    self.path = path
    self.readonly = readonly
    self.entries: List[Dict[str, Any]] = []
    if not readonly:
      directory = os.path.dirname(os.path.abspath(path))
      rundir.acquire(directory)
      self._release = weakref.finalize(self, rundir.release, directory)
      records = repair_jsonl(path, "history line")
    else:
      records = read_jsonl(path)[0]
    self.entries = [check_entry(e, path, i + 1) for i, e in enumerate(records)]

  def close(self) -> None:
    """Gives up this History's hold on the run directory lock."""
    if not self.readonly:
      self._release()

  def append(self, entry: Dict[str, Any]) -> None:
    if self.readonly:
      raise RuntimeError(f"{self.path} was opened read-only")
    append_jsonl(self.path, entry)
    self.entries.append(entry)

  def trained(self) -> Dict[str, Dict[str, Any]]:
    """key -> first entry of every architecture actually trained (the duplicate cache)."""
    out = {}
    for e in self.entries:
      if counts_as_trained(e):
        out.setdefault(e["key"], e)
    return out

  def elapsed_seconds(self) -> float:
    """Search time already spent according to the history (each line's `time`), so the
    time budget survives a lost checkpoint."""
    return max([float(e.get("time") or 0.0) for e in self.entries] + [0.0])

  def _rewrite(self, entries: List[Dict[str, Any]]) -> None:
    """Replaces the file (only for `reconcile`'s repair); the old one is kept as a backup."""
    if os.path.exists(self.path):
      backup, n = self.path + ".before-repair", 1
      while os.path.exists(backup):
        n += 1
        backup = f"{self.path}.before-repair.{n}"
      shutil.copyfile(self.path, backup)
    tmp = self.path + ".tmp"
    with jsonio.writing(tmp), open(tmp, "w") as f:
      for e in entries:
        f.write(jsonio.dumps(e, sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self.path)
    self.entries = entries


# ---- checkpoint <-> history reconciliation ---------------------------------------------------
def genotype_key(genotype: Dict[str, Any]) -> str:
  """Canonical identity of an architecture (cells only); the same as the space's `key`
  (a NAS-Bench-201 cell is its arch string)."""
  if "arch" in genotype:
    return genotype["arch"]
  return json.dumps({k: genotype[k] for k in ("space", "normal", "reduction")}, sort_keys=True)


def key_hash(key: str) -> str:
  return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def fed_record(entry: Dict[str, Any]) -> Dict[str, Any]:
  """What a strategy checkpoint keeps of each child it was fed: enough to recognise the history
  line (index and key) and to write it back if the history lost it (~150 bytes)."""
  return {"i": entry["index"], "k": key_hash(entry["key"]), "r": entry["reward"],
          "d": [int(d) for d in entry["decisions"]], "s": entry["status"],
          "c": bool(entry.get("cached")), "t": entry.get("time"), "p": entry.get("params"),
          "m": entry.get("mult_adds"), "e": (entry.get("error") or None) and entry["error"][:200]}


def _ident(entry) -> Tuple[int, str]:
  return entry["index"], key_hash(entry["key"])


def reconcile(history: History, fed_log: Optional[List[Dict[str, Any]]], fed_count: int,
              decode: Callable[[Sequence[int]], Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Matches a strategy checkpoint with the history; returns the entries to feed back.

  fed_log: the checkpoint's `fed_record`s, in feeding order (None or empty for a checkpoint
  that only counted, `fed_count`). decode: decisions -> genotype dict (keyed by
  `genotype_key`), or -> (genotype dict, key) for spaces with their own key; it must raise
  for decisions of another space. Used to check every line and to write back a child the
  history lost. Warns about every repair; mutates `fed_log` to match the history.
  """
  if fed_log is None:
    fed_log = []
  for n, e in enumerate(history.entries):  # a resume with another search space fails here
    try:
      decode(e["decisions"])
    except (ValueError, IndexError, TypeError) as err:
      raise ValueError(f"{history.path} line {n + 1}: child {e['index']} does not fit this "
                       f"search space ({err}); was the run started with another one?") from None
  if fed_count and not fed_log:  # a checkpoint from before the fed log: trust the count
    if fed_count > len(history.entries):
      warn(f"{history.path}: the checkpoint was fed {fed_count} children but the history "
           f"holds {len(history.entries)}; the lost lines cannot be restored (old checkpoint)")
    fed_log.extend(fed_record(e) for e in history.entries[:fed_count])
  in_history = {_ident(e): e for e in history.entries}
  fed_ids = {(r["i"], r["k"]) for r in fed_log}
  missing = [r for r in fed_log if (r["i"], r["k"]) not in in_history]
  if missing:
    restored = {}
    for r in missing:
      decoded = decode(r["d"])
      geno, key = decoded if isinstance(decoded, tuple) else (dict(decoded), None)
      if "name" in geno:
        geno["name"] = f"child_{r['i']}"
      key = key if key is not None else genotype_key(geno)
      if key_hash(key) != r["k"]:
        raise ValueError(f"{history.path}: the checkpoint's child {r['i']} does not decode to "
                         "the architecture it was fed (a different search space?)")
      restored[(r["i"], r["k"])] = {
          "index": r["i"], "decisions": r["d"], "genotype": geno, "key": key,
          "reward": r["r"], "status": r["s"], "cached": r["c"], "time": r["t"],
          "error": r.get("e"), "params": r.get("p"), "mult_adds": r.get("m"),
          "train_seconds": None, "restored": True}
    fed_entries = [in_history.get((r["i"], r["k"])) or restored[(r["i"], r["k"])]
                   for r in fed_log]
    unfed = [e for e in history.entries if _ident(e) not in fed_ids]
    warn(f"{history.path}: {len(missing)} children the strategy checkpoint was fed are missing "
         f"from the history (indices {[r['i'] for r in missing][:10]}); writing them back from "
         "the checkpoint")
    n = len(history.entries)
    appendable = (not unfed and all(e is not None for e in fed_entries[:n])
                  and [_ident(e) for e in fed_entries[:n]] == [_ident(e) for e in history.entries]
                  and [e["index"] for e in fed_entries[n:]] == list(range(n, len(fed_entries))))
    if appendable:
      for e in fed_entries[n:]:
        history.append(e)
    else:  # lost lines in the middle: one ordered rewrite, the old file kept as a backup
      merged = fed_entries + unfed
      for i, e in enumerate(merged):
        e["index"] = i
      history._rewrite(merged)  # pylint: disable=protected-access
      fed_log[:] = [fed_record(e) for e in fed_entries]
      fed_ids = {(r["i"], r["k"]) for r in fed_log}
  return [e for e in history.entries if _ident(e) not in fed_ids and needs_feedback(e)]
