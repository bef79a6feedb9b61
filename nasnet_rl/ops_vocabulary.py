"""Op vocabularies of the NASNet and ENAS search spaces, as plain data.

Every op is described by an `OpSpec` (kind + kernel/dilation), so the builders never parse
op names. The order of each vocabulary is the order of the controller's op decisions.
"""

import dataclasses
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class OpSpec:
  """What an op computes: `kind` in {identity, sep_conv, conv, factorized_conv, dil_conv,
  avg_pool, max_pool}; `kernel` its spatial size; `dilation` for dilated convs."""
  kind: str
  kernel: int = 1
  dilation: int = 1


OP_SPECS: Dict[str, OpSpec] = {
    "identity": OpSpec("identity"),
    "conv_1x1": OpSpec("conv", 1),
    "conv_3x3": OpSpec("conv", 3),
    "conv_1x3_3x1": OpSpec("factorized_conv", 3),
    "conv_1x7_7x1": OpSpec("factorized_conv", 7),
    "dil_conv_3x3": OpSpec("dil_conv", 3, dilation=2),
    "avg_pool_3x3": OpSpec("avg_pool", 3),
    "max_pool_3x3": OpSpec("max_pool", 3),
    "max_pool_5x5": OpSpec("max_pool", 5),
    "max_pool_7x7": OpSpec("max_pool", 7),
    "sep_conv_3x3": OpSpec("sep_conv", 3),
    "sep_conv_5x5": OpSpec("sep_conv", 5),
    "sep_conv_7x7": OpSpec("sep_conv", 7),
}

# The 13 ops of Zoph et al. 2018, section 3 ("Search space"), in the paper's listing order.
NASNET_OPS: Tuple[str, ...] = (
    "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
    "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)

# The 5 ops of the ENAS micro space, in the ids of melodyguan/enas micro_child.py
# (0 sep3, 1 sep5, 2 avg3, 3 max3, 4 identity): arcs from that repo index this tuple.
ENAS_OPS: Tuple[str, ...] = (
    "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity",
)

VOCABULARIES: Dict[str, Tuple[str, ...]] = {"nasnet": NASNET_OPS, "enas": ENAS_OPS}

COMBINES: Tuple[str, ...] = ("add", "concat")


def vocabulary(name: str) -> Tuple[str, ...]:
  """The op tuple of a named vocabulary; a clear error for an unknown name."""
  try:
    return VOCABULARIES[name]
  except KeyError:
    raise ValueError(
        f"unknown op vocabulary {name!r}; known: {sorted(VOCABULARIES)}") from None
