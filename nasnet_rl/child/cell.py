"""One NASNet cell layer, driven by a genotype cell (the TF-slim `NasNetABaseCell` idea).

Inputs are [h(i-2), h(i-1)]. h(i-1) always gets ReLU-1x1 conv-BN to `filters`; h(i-2) is
matched to it by factorized reduction (spatial mismatch) or ReLU-1x1 conv-BN (channel
mismatch), or taken raw when `raw_prev_prev` (the first cell has no h(i-2), as in slim/Keras).
"""

from typing import Any, Dict, List, Optional

import keras
import tensorflow as tf

from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import ops


def cell_from_config(cell: Dict[str, Any]) -> genotype_lib.Cell:
  return genotype_lib.Cell(
      tuple(genotype_lib.Block(tuple(b["inputs"]), tuple(b["ops"]), b.get("combine", "add"))
            for b in cell["blocks"]), tuple(cell["concat"]))


def cell_to_config(cell: genotype_lib.Cell) -> Dict[str, Any]:
  return {"blocks": [{"inputs": list(b.inputs), "ops": list(b.ops), "combine": b.combine}
                     for b in cell.blocks], "concat": list(cell.concat)}


def output_channels(cell: genotype_lib.Cell, filters: int) -> int:
  """Channels of the cell output: every concatenated state is matched to the last block's."""
  return len(cell.concat) * filters * (2 if cell.blocks[-1].combine == "concat" else 1)


@keras.saving.register_keras_serializable("nasnet_rl")
class NasCell(keras.layers.Layer):
  """A normal (stride 1) or reduction (stride 2) cell with `filters` channels per op;
  `pool_padding` "same" (TF-slim) or "zeros" (Keras applications NASNet, see ops.Pool)."""

  def __init__(self, cell: Dict[str, Any], filters: int, reduction: bool = False,
               raw_prev_prev: bool = False, drop_prob: float = 0.0,
               norm: Optional[Dict[str, Any]] = None,
               drop_path_progress: Optional[tf.Variable] = None, pool_padding: str = "same",
               **kwargs):
    super().__init__(**kwargs)
    if isinstance(cell, genotype_lib.Cell):
      cell = cell_to_config(cell)
    self.cell_config = cell
    self.cell = cell_from_config(cell)
    self.filters = int(filters)
    self.reduction = bool(reduction)
    self.raw_prev_prev = bool(raw_prev_prev)
    self.drop_prob = float(drop_prob)
    self.norm = dict(norm or ops.DEFAULT_NORM)
    self._progress = drop_path_progress
    if pool_padding not in ops.POOL_PADDINGS:
      raise ValueError(f"pool_padding must be one of {ops.POOL_PADDINGS}, got {pool_padding!r}")
    self.pool_padding = pool_padding

  def build(self, input_shape):
    (pp_shape, p_shape) = input_shape
    f, n = self.filters, self.norm
    if self.raw_prev_prev:
      self.adjust = None
      pp_channels = pp_shape[-1]
    elif pp_shape[1] != p_shape[1]:
      self.adjust = ops.FactorizedReduce(f, norm=n, name="adjust_reduce")
      pp_channels = f
    elif pp_shape[-1] != f:
      self.adjust = ops.ReluConvBN(f, norm=n, name="adjust_1x1")
      pp_channels = f
    else:
      self.adjust, pp_channels = None, f
    self.squeeze = ops.ReluConvBN(f, norm=n, name="prev_1x1")
    channels = [pp_channels, f]
    self.branch_ops: List[keras.layers.Layer] = []
    self.branch_drops: List[Optional[ops.DropPath]] = []
    for k, block in enumerate(self.cell.blocks):
      for j, (i, op) in enumerate(zip(block.inputs, block.ops)):
        stride = 2 if self.reduction and i < 2 else 1
        self.branch_ops.append(ops.make_op(op, f, stride, channels[i], n,
                                           layer_name=f"b{k}_{j}_{op}",
                                           pool_padding=self.pool_padding))
        drop = op != "identity" and self.drop_prob > 0
        self.branch_drops.append(
            ops.DropPath(self.drop_prob, self._progress, name=f"b{k}_{j}_drop") if drop else None)
      channels.append(f * (2 if block.combine == "concat" else 1))
    # slim `_combine_unused_states`: a concatenated state whose channels or resolution differ
    # from the last block's is matched to it (1x1 conv, or factorized reduction across scales).
    self.concat_fix: Dict[str, keras.layers.Layer] = {}
    for i in self.cell.concat:
      at_input_scale = i < 2 and self.reduction
      if channels[i] != channels[-1] or at_input_scale:
        self.concat_fix[str(i)] = (
            ops.FactorizedReduce(channels[-1], relu=False, norm=n, name=f"concat_reduce_{i}")
            if at_input_scale else
            ops.ReluConvBN(channels[-1], relu=False, norm=n, name=f"concat_1x1_{i}"))

  def call(self, inputs, training=None):
    prev_prev, prev = inputs
    if self.adjust is not None:
      prev_prev = self.adjust(prev_prev, training=training)
    states = [prev_prev, self.squeeze(prev, training=training)]
    for k, block in enumerate(self.cell.blocks):
      outs = []
      for j, i in enumerate(block.inputs):
        op, drop = self.branch_ops[2 * k + j], self.branch_drops[2 * k + j]
        h = op(states[i], training=training) if not isinstance(op, keras.layers.Identity) else states[i]
        if drop is not None:
          h = drop(h, training=training)
        outs.append(h)
      states.append(outs[0] + outs[1] if block.combine == "add" else tf.concat(outs, axis=-1))
    picked = [self.concat_fix[str(i)](states[i], training=training)
              if str(i) in self.concat_fix else states[i] for i in self.cell.concat]
    return picked[0] if len(picked) == 1 else tf.concat(picked, axis=-1)

  def get_config(self):
    return {**super().get_config(), "cell": self.cell_config, "filters": self.filters,
            "reduction": self.reduction, "raw_prev_prev": self.raw_prev_prev,
            "drop_prob": self.drop_prob, "norm": self.norm, "pool_padding": self.pool_padding}
