"""The cost of one sampled path through the ENAS supernet, for cost-aware (MnasNet) rewards.

Counted from the supernet's own weights, without running anything: `params` is the number of
trainable weights the path reads (stem, the cells' input convs for the states they
concatenate, none for the first cell's raw h(i-2) or an h(i-2) that already has the cell's
width, the chosen ops at their stride and input width, the concat fixes of unused cell inputs,
the classifier; the auxiliary head is left out, as it is dropped after training);
`mult_adds` is the multiply-adds of those convolutions and of the classifier for one image,
each at the resolution of its output (a dilated conv at its input's). The path is the
standalone child (enas/export.py), so `params` is the child's trainable parameter count
without its aux head (tests/test_enas_equivalence.py); counting it here takes microseconds,
where building the child would cost seconds per architecture.
"""

import math
from typing import Dict, Sequence

import numpy as np

from nasnet_rl import ops_vocabulary


def _bn(f: int) -> int:
  return 2 * f  # gamma and beta


def _conv(kernel_shape: Sequence[int], hw: int):
  """(params, mult_adds) of a conv kernel producing an output of `hw` pixels."""
  n = int(np.prod(kernel_shape))
  return n, n * hw


def path_cost(supernet, arc: Sequence[int]) -> Dict[str, int]:
  """{'params', 'mult_adds'} of the sampled path `arc` (the search space's decision list)."""
  arc = np.asarray(arc, dtype=np.int64).reshape(2, -1)
  num_blocks = supernet.space.num_blocks
  num_states = num_blocks + 2
  h, w, c_in = supernet.image_shape
  stride = supernet.stem.strides[0]
  h, w = math.ceil(h / stride), math.ceil(w / stride)
  stem_c = supernet.stem.filters
  params, mult_adds = _conv((3, 3, c_in, stem_c), h * w)
  params += _bn(stem_c)
  # per previous output: (number of states it concatenates, channels per state)
  prev = [(1, stem_c), (1, stem_c)]
  for cell in supernet.cells:
    cell_arc = arc[1 if cell.reduction else 0].reshape(num_blocks, 4)
    f = cell.filters
    in_hw = h * w
    if cell.reduction:
      h, w = math.ceil(h / 2), math.ceil(w / 2)
    out_hw = h * w
    # h(i-2): raw in the first cell, as it is when it already has f channels, else a 1x1 conv
    # (or a factorized reduction, at the cell's resolution); h(i-1): a 1x1 conv
    adjust = cell.adjust
    skip = adjust is None or adjust.matching_states == prev[0][0]
    for (states, channels), needed in zip(prev, (not skip, True)):
      if needed:
        p, m = _conv((states, channels, f), in_hw)
        params, mult_adds = params + p + _bn(f), mult_adds + m
    used = set(int(i) for i in cell_arc[:, :2].ravel())
    ops = cell.op_names
    for b in range(num_blocks):
      for j in range(2):
        i, o = int(cell_arc[b, j]), int(cell_arc[b, 2 + j])
        strided = cell.reduction and i < 2
        bank, index = cell.branch_bank(b, j, i, o)
        spec = ops_vocabulary.OP_SPECS[ops[o]]
        hw = in_hw if (spec.kind == "dil_conv" and strided) else out_hw
        for trainable, _, shape in bank._pieces[index]:  # pylint: disable=protected-access
          if not trainable:
            continue
          if len(shape) == 1:  # a BatchNorm gamma or beta
            params += int(shape[0])
          else:
            p, m = _conv(shape, hw)
            params, mult_adds = params + p, mult_adds + m
    for s, fix in cell.concat_fix.items():  # an unused input matched to the output's shape
      if s not in used:
        p, m = _conv((fix.channels, f), out_hw)
        params, mult_adds = params + p + _bn(f), mult_adds + m
    unused = num_states - len(used)
    prev = [prev[1], (unused, f)]
  states, f = prev[1]
  p, m = _conv((states, f, supernet.num_classes), 1)
  return {"params": int(params + p + supernet.num_classes), "mult_adds": int(mult_adds + m)}
