"""Genotypes: the JSON artifact that carries a normal and a reduction cell between stages.

Hidden-state indexing: 0 = h(i-2), 1 = h(i-1), 2 + k = output of block k (the DARTS/ENAS
convention; TF-slim numbers the two cell inputs the other way round).
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nasnet_rl import ops_vocabulary

FORMAT = "nasnet_rl.genotype/1"
_PUBLISHED_DIR = os.path.join(os.path.dirname(__file__), "genotypes")


@dataclasses.dataclass(frozen=True)
class Block:
  """One block: two (input, op) pairs joined by `combine`."""
  inputs: Tuple[int, int]
  ops: Tuple[str, str]
  combine: str = "add"


@dataclasses.dataclass(frozen=True)
class Cell:
  """B blocks plus the hidden states concatenated into the cell output."""
  blocks: Tuple[Block, ...]
  concat: Tuple[int, ...]

  @property
  def num_states(self) -> int:
    return len(self.blocks) + 2

  @staticmethod
  def unused_states(blocks: Sequence[Block]) -> Tuple[int, ...]:
    """States no block reads: what searched cells concatenate (NASNet/ENAS rule)."""
    used = {i for b in blocks for i in b.inputs}
    return tuple(i for i in range(len(blocks) + 2) if i not in used)


@dataclasses.dataclass(frozen=True)
class Genotype:
  """A normal and a reduction cell over one op vocabulary."""
  normal: Cell
  reduction: Cell
  ops: str = "nasnet"
  name: str = ""
  source: Optional[Dict[str, Any]] = None

  @property
  def num_blocks(self) -> int:
    return len(self.normal.blocks)

  # ---- serialization -------------------------------------------------------------------
  def to_dict(self) -> Dict[str, Any]:
    def cell(c: Cell):
      return {"blocks": [{"inputs": list(b.inputs), "ops": list(b.ops), "combine": b.combine}
                         for b in c.blocks],
              "concat": list(c.concat)}
    out = {"format": FORMAT, "name": self.name,
           "space": {"ops": self.ops, "num_blocks": self.num_blocks},
           "normal": cell(self.normal), "reduction": cell(self.reduction)}
    if self.source:
      out["source"] = dict(self.source)
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  @classmethod
  def from_dict(cls, data: Any) -> "Genotype":
    """Parses and validates; every problem is a ValueError naming the offending field."""
    return _parse(data)

  @classmethod
  def from_json(cls, text: str) -> "Genotype":
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"genotype is not valid JSON: {e}") from None
    except RecursionError:
      raise ValueError("genotype JSON is nested too deeply") from None
    return _parse(data)

  def __str__(self) -> str:
    lines = [f"Genotype {self.name or '(unnamed)'} [ops={self.ops}, B={self.num_blocks}]"]
    for label, cell in (("normal", self.normal), ("reduction", self.reduction)):
      lines.append(f"  {label}:")
      for k, b in enumerate(cell.blocks):
        (i0, i1), (o0, o1) = b.inputs, b.ops
        lines.append(f"    s{k + 2} = {b.combine}({o0}({state_name(i0)}), {o1}({state_name(i1)}))")
      lines.append("    out = concat(" + ", ".join(state_name(i) for i in cell.concat) + ")")
    return "\n".join(lines)


def state_name(index: int) -> str:
  """Readable name of a hidden state index."""
  return {0: "h[i-2]", 1: "h[i-1]"}.get(index, f"s{index}")


def save(genotype: Genotype, path: str) -> None:
  """Writes stable JSON (sorted keys, indented) atomically."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(genotype.to_json())
  os.replace(tmp, path)


# Files a run directory may hold, in the order they are tried: a search writes best_genotype.json
# and best_genotypes.json (top-k, rank 1 first); train/transfer runs write genotype.json.
RUN_DIR_FILES = ("best_genotype.json", "best_genotypes.json", "genotype.json")


def _read_text(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: cannot read the genotype file ({e})") from None


def _from_ranked_list(path: str, text: str) -> Genotype:
  """Rank 1 of a best_genotypes.json list ([{"rank", "reward", "genotype"}, ...])."""
  try:
    entries = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from None
  except RecursionError:
    raise ValueError(f"{path}: JSON nested too deeply") from None
  if not isinstance(entries, list) or not entries:
    raise ValueError(f"{path}: expected a non-empty list of ranked genotypes (the search has "
                     "not finished a child yet?)")
  rank = lambda e: e.get("rank") if isinstance(e, dict) and _is_int(e.get("rank")) else 1 << 30
  best = min(entries, key=rank)
  if not isinstance(best, dict) or "genotype" not in best:
    raise ValueError(f"{path}: entries must be objects with a 'genotype' field")
  try:
    return Genotype.from_dict(best["genotype"])
  except ValueError as e:
    raise ValueError(f"{path} (rank {best.get('rank')}): {e}") from None


def load(path_or_name: str) -> Genotype:
  """Loads a genotype from a JSON file (a genotype, or a ranked best_genotypes.json list), a run
  directory (its best genotype, see RUN_DIR_FILES) or a published name (`published_names`)."""
  if not isinstance(path_or_name, str) or not path_or_name:
    raise ValueError(f"expected a genotype file, run directory or published name, got "
                     f"{path_or_name!r}")
  if os.path.isdir(path_or_name):
    for name in RUN_DIR_FILES:
      path = os.path.join(path_or_name, name)
      if os.path.isfile(path):
        return load(path)
    raise ValueError(f"run directory {path_or_name!r} holds none of {list(RUN_DIR_FILES)}; a "
                     "search writes best_genotype.json once it has trained a child")
  if not os.path.exists(path_or_name):
    if path_or_name in published_names():
      return published(path_or_name)
    raise ValueError(f"no genotype file or published genotype named {path_or_name!r} (nor a "
                     f"run directory); published: {published_names()}")
  text = _read_text(path_or_name)
  if text.lstrip().startswith("["):
    return _from_ranked_list(path_or_name, text)
  try:
    return Genotype.from_json(text)
  except ValueError as e:
    raise ValueError(f"{path_or_name}: {e}") from None


def published_names() -> List[str]:
  return sorted(f[:-5] for f in os.listdir(_PUBLISHED_DIR) if f.endswith(".json"))


def published(name: str) -> Genotype:
  """A published cell shipped with the package (nasnet_a, enas_micro, pnasnet_5, ...)."""
  path = os.path.join(_PUBLISHED_DIR, name + ".json")
  if not os.path.exists(path):
    raise ValueError(f"unknown published genotype {name!r}; known: {published_names()}")
  with open(path) as f:
    return Genotype.from_json(f.read())


# ---- validation ------------------------------------------------------------------------
def _expect(cond: bool, field: str, msg: str) -> None:
  if not cond:
    raise ValueError(f"genotype field {field!r}: {msg}")


_ROOT_KEYS = ("format", "name", "space", "normal", "reduction", "source")
_SPACE_KEYS = ("ops", "num_blocks")
_CELL_KEYS = ("blocks", "concat")
_BLOCK_KEYS = ("inputs", "ops", "combine")


def _known_keys(data: Dict[str, Any], field: str, known: Sequence[str]) -> None:
  """A typo such as "combin" or "concats" is an error, never silently ignored."""
  unknown = sorted(str(k) for k in data if k not in known)
  _expect(not unknown, field if field else "<root>",
          f"unknown key(s) {unknown}; expected only {list(known)}")


def _is_int(x: Any) -> bool:
  """A JSON integer (booleans are not: `true` must never mean index 1)."""
  return isinstance(x, int) and not isinstance(x, bool)


def _parse(data: Any) -> Genotype:
  _expect(isinstance(data, dict), "<root>", f"expected a JSON object, got {type(data).__name__}")
  _known_keys(data, "", _ROOT_KEYS)
  _expect(data.get("format") == FORMAT, "format",
          f"expected {FORMAT!r}, got {data.get('format')!r}")
  space = data.get("space")
  _expect(isinstance(space, dict), "space", "missing or not an object")
  _known_keys(space, "space", _SPACE_KEYS)
  ops_name = space.get("ops")
  _expect(isinstance(ops_name, str) and ops_name in ops_vocabulary.VOCABULARIES, "space.ops",
          f"unknown vocabulary {ops_name!r}; known: {sorted(ops_vocabulary.VOCABULARIES)}")
  num_blocks = space.get("num_blocks")
  _expect(_is_int(num_blocks) and num_blocks >= 1, "space.num_blocks",
          f"expected a positive int, got {num_blocks!r}")
  vocab = ops_vocabulary.vocabulary(ops_name)
  cells = [_parse_cell(data.get(k), k, num_blocks, vocab) for k in ("normal", "reduction")]
  name = data.get("name", "")
  _expect(isinstance(name, str), "name", "expected a string")
  source = data.get("source")
  _expect(source is None or isinstance(source, dict), "source", "expected an object")
  return Genotype(normal=cells[0], reduction=cells[1], ops=ops_name, name=name, source=source)


def _parse_cell(data: Any, field: str, num_blocks: int, vocab: Sequence[str]) -> Cell:
  _expect(isinstance(data, dict), field, "missing or not an object")
  _known_keys(data, field, _CELL_KEYS)
  blocks = data.get("blocks")
  _expect(isinstance(blocks, list), f"{field}.blocks", "missing or not a list")
  _expect(len(blocks) == num_blocks, f"{field}.blocks",
          f"expected {num_blocks} blocks (space.num_blocks), got {len(blocks)}")
  parsed = []
  for k, b in enumerate(blocks):
    bf = f"{field}.blocks[{k}]"
    _expect(isinstance(b, dict), bf, "not an object")
    _known_keys(b, bf, _BLOCK_KEYS)
    inputs, ops, combine = b.get("inputs"), b.get("ops"), b.get("combine", "add")
    _expect(isinstance(inputs, list) and len(inputs) == 2, f"{bf}.inputs",
            f"expected two input indices, got {inputs!r}")
    for j, i in enumerate(inputs):
      _expect(_is_int(i) and i >= 0, f"{bf}.inputs[{j}]",
              f"expected a non-negative int, got {i!r}")
      _expect(i < k + 2, f"{bf}.inputs[{j}]",
              f"index {i} points forward: block {k} may read states 0..{k + 1} "
              "(0 = h[i-2], 1 = h[i-1], 2+k = block k)")
    _expect(isinstance(ops, list) and len(ops) == 2, f"{bf}.ops",
            f"expected two op names, got {ops!r}")
    for j, op in enumerate(ops):
      _expect(isinstance(op, str) and op in vocab, f"{bf}.ops[{j}]", f"unknown op {op!r}; this space has {list(vocab)}")
    _expect(isinstance(combine, str) and combine in ops_vocabulary.COMBINES, f"{bf}.combine",
            f"unknown combine {combine!r}; known: {list(ops_vocabulary.COMBINES)}")
    parsed.append(Block(tuple(inputs), tuple(ops), combine))
  concat = data.get("concat")
  if concat is None:
    concat = list(Cell.unused_states(parsed))
  _expect(isinstance(concat, list) and concat, f"{field}.concat", "expected a non-empty list")
  for j, i in enumerate(concat):
    _expect(_is_int(i) and 0 <= i < num_blocks + 2, f"{field}.concat[{j}]",
            f"expected a state index in 0..{num_blocks + 1}, got {i!r}")
  _expect(len(set(concat)) == len(concat), f"{field}.concat", f"duplicate indices in {concat}")
  return Cell(tuple(parsed), tuple(concat))
