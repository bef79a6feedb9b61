"""A tabular NAS benchmark: every cell of a space with its measured accuracies, queried instead
of trained. One query = one "trained child": the strategy sees the reward column only, and a
search is scored by the report column of the cell it returns (NAS-Bench-201 protocol).

The table is a CSV (optionally .gz) with an `arch` column in the benchmark's string format and
one column per metric, in percent; optional `params` and `mult_adds` columns are a cell's
costs (for cost-aware objectives). The shipped one is `data/nb201_12epoch.csv.gz` (see
`data/README.md` for its provenance and license).
"""

import csv
import gzip
import io
import os
from typing import Dict, List, Optional

import gin
import numpy as np

from nasnet_rl import rewards
from nasnet_rl.benchmarks import nb201

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SHIPPED_TABLE = os.path.join(DATA_DIR, "nb201_12epoch.csv.gz")
# Shipped dataset name -> (reward column, report column).
SHIPPED_DATASETS = {"cifar100": ("cifar100_valid", "cifar100_test"),
                    "imagenet16_120": ("imagenet16_120_valid", "imagenet16_120_test")}


@gin.configurable
class TabularBenchmark:
  """Loads a table and answers queries by decision list (6 op indices) or arch string.

  `dataset` picks the shipped columns; `reward_column`/`report_column` name any others.
  Rewards are returned as fractions (the table's percent / 100), like a child's accuracy."""

  def __init__(self, path: Optional[str] = None, dataset: Optional[str] = "cifar100",
               reward_column: Optional[str] = None, report_column: Optional[str] = None):
    self.path = path or SHIPPED_TABLE
    if reward_column is None or report_column is None:
      if dataset not in SHIPPED_DATASETS:
        raise ValueError(f"unknown benchmark dataset {dataset!r}; expected one of "
                         f"{sorted(SHIPPED_DATASETS)} or reward_column/report_column")
      reward_column = reward_column or SHIPPED_DATASETS[dataset][0]
      report_column = report_column or SHIPPED_DATASETS[dataset][1]
    self.reward_column, self.report_column = reward_column, report_column
    self.space = nb201.NB201Space()
    rows = _read_rows(self.path)
    self.reward, self.report = self._index(rows)
    self.costs = {c: self._cost_column(rows, c) for c in COST_COLUMNS if c in rows[0]}

  def _index(self, rows: List[Dict[str, str]]):
    """Arrays over the space indexed by the base-5 number of the decision list."""
    size = self.space.size()
    reward = np.full(size, np.nan)
    report = np.full(size, np.nan)
    first_line: Dict[int, int] = {}
    for line, row in enumerate(rows, start=2):
      try:
        idx = _flat_index(nb201.parse_arch(row["arch"]))
        reward[idx] = _percent(row, self.reward_column)
        report[idx] = _percent(row, self.report_column)
      except ValueError as e:
        raise ValueError(f"{self.path}, line {line}: {e}") from None
      if idx in first_line:
        raise ValueError(f"{self.path}, lines {first_line[idx]} and {line}: the same arch "
                         f"{row['arch']!r} twice; keep one row per cell")
      first_line[idx] = line
    missing = np.flatnonzero(np.isnan(reward))
    if missing.size:
      example = nb201.format_arch(_decisions_of(int(missing[0])))
      raise ValueError(f"{self.path}: the table covers {size - missing.size} of the space's "
                       f"{size} cells; missing e.g. {example}")
    return reward / 100.0, report / 100.0

  def _cost_column(self, rows, column) -> np.ndarray:
    out = np.zeros(self.space.size())
    for line, row in enumerate(rows, start=2):
      try:
        out[_flat_index(nb201.parse_arch(row["arch"]))] = _number(row, column)
      except ValueError as e:
        raise ValueError(f"{self.path}, line {line}: {e}") from None
    return out

  def query(self, decisions) -> Dict[str, float]:
    """{'reward': validation accuracy, 'report': test accuracy} of one cell (fractions), plus
    its costs when the table has them."""
    if isinstance(decisions, str):
      decisions = nb201.parse_arch(decisions)
    idx = _flat_index(decisions)
    out = {"reward": float(self.reward[idx]), "report": float(self.report[idx])}
    out.update({c: float(v[idx]) for c, v in self.costs.items()})
    return out

  def rewards(self, decisions: np.ndarray) -> np.ndarray:
    """Vectorised reward lookup for an int array [n, 6]."""
    return self.reward[_flat_indices(decisions)]

  def reports(self, decisions: np.ndarray) -> np.ndarray:
    return self.report[_flat_indices(decisions)]

  @property
  def optimum_report(self) -> float:
    """Report of the cell with the best reward: what a perfect search returns."""
    return float(self.report[int(np.argmax(self.reward))])

  def describe(self) -> str:
    return (f"{os.path.basename(self.path)}: reward={self.reward_column}, "
            f"report={self.report_column}")


def _read_rows(path: str) -> List[Dict[str, str]]:
  if not os.path.isfile(path):
    raise ValueError(f"benchmark table {path!r} does not exist or is not a file")
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rt", newline="") as f:
      text = f.read()
  except (OSError, EOFError, UnicodeDecodeError) as e:
    raise ValueError(f"benchmark table {path!r} cannot be read: {e}") from None
  reader = csv.DictReader(io.StringIO(text))
  if not reader.fieldnames or "arch" not in reader.fieldnames:
    raise ValueError(f"benchmark table {path!r} has no 'arch' column (columns: "
                     f"{reader.fieldnames})")
  rows = list(reader)
  if not rows:
    raise ValueError(f"benchmark table {path!r} has no rows")
  return rows


def _number(row: Dict[str, str], column: str) -> float:
  if column not in row:
    raise ValueError(f"no column {column!r} (columns: {sorted(row)})")
  try:
    value = float(row[column])
  except (TypeError, ValueError):
    raise ValueError(f"column {column!r} holds {row[column]!r}, not a number") from None
  if not np.isfinite(value):
    raise ValueError(f"column {column!r} holds {value}")
  return value


def _percent(row: Dict[str, str], column: str) -> float:
  """An accuracy column's value: a number within [0, 100] (percent)."""
  value = _number(row, column)
  problem = rewards.accuracy_problem(value, 0.0, 100.0)
  if problem:
    raise ValueError(f"column {column!r} holds {problem} (accuracies are in percent)")
  return value


COST_COLUMNS = ("params", "mult_adds")
_WEIGHTS = len(nb201.OPS) ** np.arange(len(nb201.EDGES) - 1, -1, -1)


def _flat_index(decisions) -> int:
  d = np.asarray(decisions, dtype=np.int64)
  if d.shape != (len(nb201.EDGES),) or (d < 0).any() or (d >= len(nb201.OPS)).any():
    raise ValueError(f"not a NAS-Bench-201 decision list: {list(np.ravel(decisions))}")
  return int(d @ _WEIGHTS)


def _flat_indices(decisions: np.ndarray) -> np.ndarray:
  return np.asarray(decisions, dtype=np.int64) @ _WEIGHTS


def _decisions_of(index: int) -> List[int]:
  return [(index // int(w)) % len(nb201.OPS) for w in _WEIGHTS]
