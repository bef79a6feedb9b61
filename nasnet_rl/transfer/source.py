"""Where the cell to transfer comes from: a genotype JSON file, a published name, or a run
directory (a search run's best genotype, or a training/transfer run's genotype.json).

Transfer reads only genotype JSON (DESIGN.md: dependencies point one way), never search code.
"""

import json
import os

from nasnet_rl import genotype as genotype_lib

# Files a run directory may hold, in the order they are tried: the standalone search writes
# best_genotype.json and best_genotypes.json (top-k, rank 1 first); train/transfer runs write
# genotype.json.
RUN_DIR_FILES = ("best_genotype.json", "best_genotypes.json", "genotype.json")


def _from_ranked_list(path: str) -> genotype_lib.Genotype:
  """Rank 1 of a best_genotypes.json list ([{"rank", "reward", "genotype"}, ...])."""
  with open(path) as f:
    try:
      entries = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
  if not isinstance(entries, list) or not entries:
    raise ValueError(f"{path}: expected a non-empty list of ranked genotypes (the search has "
                     "not finished a child yet?)")
  best = min(entries, key=lambda e: e.get("rank", 1 << 30) if isinstance(e, dict) else 1 << 30)
  if not isinstance(best, dict) or "genotype" not in best:
    raise ValueError(f"{path}: entries must be objects with a 'genotype' field")
  try:
    return genotype_lib.Genotype.from_dict(best["genotype"])
  except ValueError as e:
    raise ValueError(f"{path} (rank {best.get('rank')}): {e}") from None


def load_source(source: str) -> genotype_lib.Genotype:
  """The genotype named by `source`: a run directory, a JSON file (a genotype, or a ranked
  best_genotypes.json list) or a published name; anything else is one ValueError."""
  if not source:
    raise ValueError("no source genotype given (a JSON file, a published name such as "
                     f"{genotype_lib.published_names()}, or a search run directory)")
  if os.path.isdir(source):
    for name in RUN_DIR_FILES:
      path = os.path.join(source, name)
      if os.path.isfile(path):
        return load_source(path)
    raise ValueError(f"run directory {source!r} holds none of {list(RUN_DIR_FILES)}; a search "
                     "writes best_genotype.json once it has trained a child")
  if os.path.isfile(source):
    with open(source) as f:
      head = f.read(64).lstrip()
    if head.startswith("["):
      return _from_ranked_list(source)
  return genotype_lib.load(source)
