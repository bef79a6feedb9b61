"""Where the cell to transfer comes from: a genotype JSON file, a published name, or a run
directory (a search run's best genotype, or a training/transfer run's genotype.json).

Transfer reads only genotype JSON (DESIGN.md: dependencies point one way), never search code.
"""

from nasnet_rl import genotype as genotype_lib

RUN_DIR_FILES = genotype_lib.RUN_DIR_FILES


def load_source(source: str) -> genotype_lib.Genotype:
  """The genotype named by `source`: a run directory, a JSON file (a genotype, or a ranked
  best_genotypes.json list) or a published name; anything else is one ValueError."""
  if not source:
    raise ValueError("no source genotype given (a JSON file, a published name such as "
                     f"{genotype_lib.published_names()}, or a search run directory)")
  return genotype_lib.load(source)
