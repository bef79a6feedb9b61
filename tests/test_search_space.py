"""Genotype <-> decision-list bijection and the decision structure controllers rely on."""
import random

import pytest

from nasnet_rl import genotype as g
from nasnet_rl import search_space as ss


@pytest.mark.parametrize("ops, combine", [("nasnet", False), ("enas", False), ("nasnet", True)])
def test_random_decisions_round_trip(ops, combine):
  space = ss.SearchSpace(ops, 5, combine)
  sizes = space.num_choices()
  assert len(sizes) == 2 * 5 * (5 if combine else 4)
  rng = random.Random(0)
  for _ in range(200):
    d = [rng.randrange(n) for n in sizes]
    geno = space.decode(d)
    assert space.encode(geno) == d
    assert g.Genotype.from_dict(geno.to_dict()) == geno  # decoded cells are always valid


def test_decision_sizes_follow_block_index():
  space = ss.SearchSpace("enas", 3)
  decisions = space.decisions()
  assert [d.num_choices for d in decisions[:4]] == [2, 2, 5, 5]
  assert [d.num_choices for d in decisions[4:8]] == [3, 3, 5, 5]
  assert decisions[12].cell == "reduction" and decisions[12].block == 0


def test_published_cells_encode():
  space = ss.SearchSpace("enas")
  enas = g.published("enas_micro")
  d = space.encode(enas)
  # The ENAS repo's arc (index, op, index, op per node), reordered to (in, in, op, op).
  arc = [int(x) for x in ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
                          "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1").split()]
  expected = []
  for k in range(0, 40, 4):
    expected += [arc[k], arc[k + 2], arc[k + 1], arc[k + 3]]
  assert d == expected
  assert space.decode(d).normal == enas.normal


def test_bad_decisions():
  space = ss.SearchSpace("enas", 2)
  with pytest.raises(ValueError, match="expected 16 decisions"):
    space.decode([0] * 3)
  with pytest.raises(ValueError, match="outside 0..1"):
    space.decode([2] + [0] * 15)
  with pytest.raises(ValueError, match="does not match"):
    space.encode(g.published("nasnet_a"))
  with pytest.raises(ValueError, match="unknown op vocabulary"):
    ss.SearchSpace("darts")
