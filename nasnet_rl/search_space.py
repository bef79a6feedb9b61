"""The NASNet cell search space as a flat list of categorical decisions.

Per block, in the order of Zoph et al. 2018 (Fig. 3): input 0, input 1, op 0, op 1 and, when
the space has it, the combine op. The normal cell's decisions come first, then the reduction
cell's. `decode(encode(g)) == g` for every genotype whose concat follows the unused-states rule.
"""

import dataclasses
import os
from typing import Any, Dict, List, Sequence, Tuple

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import ops_vocabulary

CELLS = ("normal", "reduction")


@dataclasses.dataclass(frozen=True)
class Decision:
  """One categorical decision: `kind` in {input, op, combine}, its number of choices, and
  where it sits (cell, block, slot) so a controller can attend over earlier blocks."""
  kind: str
  num_choices: int
  cell: str
  block: int
  slot: int = 0


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """B blocks per cell over a named op vocabulary, optionally searching the combine op."""
  ops: str = "nasnet"
  num_blocks: int = 5
  search_combine: bool = False

  def __post_init__(self):
    ops_vocabulary.vocabulary(self.ops)  # validates the name
    if self.num_blocks < 1:
      raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")

  @property
  def op_names(self) -> Tuple[str, ...]:
    return ops_vocabulary.vocabulary(self.ops)

  def decisions(self) -> List[Decision]:
    out = []
    for cell in CELLS:
      for b in range(self.num_blocks):
        out += [Decision("input", b + 2, cell, b, 0), Decision("input", b + 2, cell, b, 1),
                Decision("op", len(self.op_names), cell, b, 0),
                Decision("op", len(self.op_names), cell, b, 1)]
        if self.search_combine:
          out.append(Decision("combine", len(ops_vocabulary.COMBINES), cell, b))
    return out

  def num_choices(self) -> List[int]:
    """The size of each decision: all a generic strategy needs to know."""
    return [d.num_choices for d in self.decisions()]

  def size(self) -> int:
    """Number of distinct decision lists (cells as sequences; isomorphic cells counted apart)."""
    n = 1
    for c in self.num_choices():
      n *= c
    return n

  def decode(self, decisions: Sequence[int], name: str = "") -> genotype_lib.Genotype:
    """Decision list -> genotype (concat = unused states, as in NASNet and ENAS search)."""
    specs = self.decisions()
    if len(decisions) != len(specs):
      raise ValueError(f"expected {len(specs)} decisions for {self}, got {len(decisions)}")
    for i, (d, spec) in enumerate(zip(decisions, specs)):
      if not 0 <= int(d) < spec.num_choices:
        raise ValueError(f"decision {i} ({spec.cell} block {spec.block} {spec.kind}) = {d} "
                         f"is outside 0..{spec.num_choices - 1}")
    per_block = 5 if self.search_combine else 4
    cells = []
    for c in range(len(CELLS)):
      blocks = []
      for b in range(self.num_blocks):
        k = (c * self.num_blocks + b) * per_block
        i0, i1, o0, o1 = (int(x) for x in decisions[k:k + 4])
        combine = ops_vocabulary.COMBINES[int(decisions[k + 4])] if self.search_combine else "add"
        blocks.append(genotype_lib.Block((i0, i1), (self.op_names[o0], self.op_names[o1]),
                                         combine))
      cells.append(genotype_lib.Cell(tuple(blocks), genotype_lib.Cell.unused_states(blocks)))
    return genotype_lib.Genotype(normal=cells[0], reduction=cells[1], ops=self.ops, name=name)

  def key(self, geno: genotype_lib.Genotype) -> str:
    """Canonical identity of an architecture (cells only), for the duplicate cache."""
    from nasnet_rl import history  # pylint: disable=g-import-not-at-top  (one definition)
    return history.genotype_key(geno.to_dict())

  def save_best(self, record: Dict[str, Any], workdir: str) -> None:
    """best_genotype.json and best_cells.png of the best child's recorded genotype."""
    from nasnet_rl import viz  # pylint: disable=g-import-not-at-top  (Pillow only when drawing)
    best = genotype_lib.Genotype.from_dict(record)
    genotype_lib.save(best, os.path.join(workdir, "best_genotype.json"))
    viz.save_picture(best, os.path.join(workdir, "best_cells.png"))

  def encode(self, geno: genotype_lib.Genotype) -> List[int]:
    """Genotype -> decision list; rejects genotypes outside this space."""
    if geno.ops != self.ops or geno.num_blocks != self.num_blocks:
      raise ValueError(f"genotype space (ops={geno.ops}, B={geno.num_blocks}) does not match "
                       f"search space (ops={self.ops}, B={self.num_blocks})")
    out = []
    for cell in (geno.normal, geno.reduction):
      for b in cell.blocks:
        out += [b.inputs[0], b.inputs[1],
                self.op_names.index(b.ops[0]), self.op_names.index(b.ops[1])]
        if self.search_combine:
          out.append(ops_vocabulary.COMBINES.index(b.combine))
        elif b.combine != "add":
          raise ValueError("genotype uses combine='concat' but the space does not search it")
    return out
