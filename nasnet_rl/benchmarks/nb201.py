"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020) as 6 categorical decisions.

A cell is a DAG of 4 nodes; each of the 6 edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2 carries one
of 5 ops. The benchmark writes a cell node by node as `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`;
decision i is the op index of edge i in that order, so 5^6 = 15,625 decision lists are exactly
the benchmark's 15,625 cells.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

OPS: Tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: Tuple[Tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4


def parse_arch(arch: str) -> List[int]:
  """`|op~0|+|op~0|op~1|+|...|` -> the 6 op indices in edge order; ValueError naming the fault."""
  if not isinstance(arch, str):
    raise ValueError(f"NAS-Bench-201 arch must be a string, got {type(arch).__name__}")
  nodes = arch.strip().split("+")
  if len(nodes) != NUM_NODES - 1:
    raise ValueError(f"arch {arch!r}: expected {NUM_NODES - 1} nodes separated by '+', got "
                     f"{len(nodes)}")
  out = []
  for target, node in enumerate(nodes, start=1):
    if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
      raise ValueError(f"arch {arch!r}: node {target} {node!r} is not of the form |op~j|...|")
    edges = node[1:-1].split("|")
    if len(edges) != target:
      raise ValueError(f"arch {arch!r}: node {target} needs {target} edges, got {len(edges)}")
    for source, edge in enumerate(edges):
      op, sep, src = edge.partition("~")
      if not sep or src != str(source):
        raise ValueError(f"arch {arch!r}: edge {edge!r} of node {target} should read "
                         f"'op~{source}'")
      if op not in OPS:
        raise ValueError(f"arch {arch!r}: unknown op {op!r}; expected one of {list(OPS)}")
      out.append(OPS.index(op))
  return out


def format_arch(decisions: Sequence[int]) -> str:
  """6 op indices in edge order -> the benchmark's arch string."""
  if len(decisions) != len(EDGES):
    raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} decisions, got {len(decisions)}")
  ops = []
  for i, d in enumerate(decisions):
    if isinstance(d, bool) or not 0 <= int(d) < len(OPS):
      raise ValueError(f"decision {i} = {d!r} is outside 0..{len(OPS) - 1}")
    ops.append(OPS[int(d)])
  parts, k = [], 0
  for target in range(1, NUM_NODES):
    parts.append("|" + "|".join(f"{ops[k + s]}~{s}" for s in range(target)) + "|")
    k += target
  return "+".join(parts)


@dataclasses.dataclass(frozen=True)
class Cell:
  """One NAS-Bench-201 cell: what the search loop decodes decisions into and records."""
  arch: str
  name: str = ""

  @property
  def ops(self) -> List[str]:
    return [OPS[i] for i in parse_arch(self.arch)]

  def to_dict(self) -> Dict[str, str]:
    return {"format": "nasnet_rl.nb201_cell/1", "arch": self.arch, "name": self.name}


@dataclasses.dataclass(frozen=True)
class NB201Space:
  """The search-space interface of the standalone loop: decisions <-> cells, and a cache key.

  `decisions()` is None: the space has no NASNet block structure, so a controller uses one
  logits head per decision."""

  def num_choices(self) -> List[int]:
    return [len(OPS)] * len(EDGES)

  def decisions(self) -> Optional[list]:
    return None

  def size(self) -> int:
    return len(OPS) ** len(EDGES)

  def decode(self, decisions: Sequence[int], name: str = "") -> Cell:
    return Cell(format_arch(decisions), name)

  def encode(self, cell: Cell) -> List[int]:
    return parse_arch(cell.arch)

  def key(self, cell: Cell) -> str:
    return cell.arch

  def from_dict(self, data: Dict[str, str]) -> Cell:
    if not isinstance(data, dict) or "arch" not in data:
      raise ValueError("a NAS-Bench-201 cell record needs an 'arch' field")
    parse_arch(data["arch"])
    return Cell(data["arch"], str(data.get("name", "")))

  def save_best(self, record: Dict[str, Any], workdir: str) -> None:
    """best_cell.json and best_cells.png of the best child's recorded cell."""
    from nasnet_rl import viz  # pylint: disable=g-import-not-at-top  (Pillow only when drawing)
    cell = self.from_dict(record)
    tmp = os.path.join(workdir, "best_cell.json.tmp")
    with open(tmp, "w") as f:
      json.dump(cell.to_dict(), f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(workdir, "best_cell.json"))
    edges = [(t, s, op) for (t, s), op in zip(EDGES, cell.ops)]
    viz.nb201_cell_png(edges, os.path.join(workdir, "best_cells.png"), title=cell.arch)
