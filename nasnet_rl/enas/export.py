"""The standalone child of a supernet path, with the path's shared weights.

`child_from_supernet(supernet, genotype)` builds `child.network.build_cifar_network` of the
genotype at the supernet's sizes and copies into it every weight the supernet's path of that
architecture reads (stem, the cells' input convs, the sampled ops, the concat fixes, the heads,
BN moving statistics included). The child then computes what the supernet computes for that
architecture (tests/test_enas_equivalence.py: same logits, same loss after a training step),
so a derived cell can start its final training from the shared weights instead of from
scratch. `copy_path_weights` does the copy into a child built elsewhere (e.g. by
`child.trainer.build_child` with the same sizes).

Every copy checks shapes, and every op's weights are used exactly once: a wiring difference
between the two sides is an error here, not a silent mismatch.
"""

from typing import Any, Dict, Sequence, Union

import keras
import numpy as np

from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import network
from nasnet_rl.child import ops
from nasnet_rl.enas import supernet as supernet_lib

# child options that do not change any weight shape, so they may differ from the supernet's
_FREE_OPTIONS = ("dropout", "drop_path_rate", "drop_path_progress", "l2", "aux_head", "name")


def _assign(variable, value, what: str) -> None:
  value = np.asarray(value, np.float32)
  if tuple(variable.shape) != value.shape:
    raise ValueError(f"{what}: the child's weight has shape {tuple(variable.shape)}, the "
                     f"supernet's path gives {value.shape}")
  variable.assign(value)


def _bn_values(bn: ops.BatchNorm) -> Dict[str, np.ndarray]:
  return {"gamma": bn.gamma.numpy(), "beta": bn.beta.numpy(),
          "moving_mean": bn.moving_mean.numpy(), "moving_variance": bn.moving_variance.numpy()}


def _set_bn(bn: ops.BatchNorm, values: Dict[str, np.ndarray], what: str) -> None:
  for name in ("gamma", "beta", "moving_mean", "moving_variance"):
    _assign(getattr(bn, name), values[name], f"{what} BN {name}")


def _relu_conv_bn(layer: ops.ReluConvBN):
  convs = [s for s in layer.steps if isinstance(s, keras.layers.Conv2D)]
  return convs, layer.steps[-1]


def _copy_gathered(src: supernet_lib.MaskedConv1x1, idx: Sequence[int], dst, what: str) -> None:
  """A supernet 1x1 over the concatenation of the states `idx` -> the child's ReluConvBN
  (1x1) or FactorizedReduce over that concatenation."""
  idx = np.asarray(idx, np.int64)
  kernels = [k.numpy()[idx].reshape(-1, k.shape[-1]) for k in src.kernels]
  if isinstance(dst, ops.FactorizedReduce):
    convs, bn, relu, reduce = [dst.conv_even, dst.conv_odd], dst.bn, dst.args["relu"], True
  elif isinstance(dst, ops.ReluConvBN) and dst.args["kernel"] == 1 and dst.args["stride"] == 1:
    (convs, bn), relu, reduce = _relu_conv_bn(dst), dst.args["relu"], False
  else:
    raise ValueError(f"{what}: the child has {type(dst).__name__} where the supernet has a "
                     f"{'factorized reduction' if src.reduce else '1x1 conv'}")
  if (relu, reduce) != (src.relu, src.reduce):
    raise ValueError(f"{what}: ReLU/reduction differ (child relu={relu} reduce={reduce}, "
                     f"supernet relu={src.relu} reduce={src.reduce})")
  for conv, kernel in zip(convs, kernels):
    _assign(conv.kernel, kernel[None, None], f"{what} kernel")
  _set_bn(bn, _bn_values(src.bn), what)


def _copy_op(values: Dict[str, np.ndarray], layer, what: str) -> None:
  """One candidate op's weights (`OpBank.op_weights`) -> the child's op layer."""
  used = set()

  def take(name):
    used.add(name)
    try:
      return values[name]
    except KeyError:
      raise ValueError(f"{what}: the supernet's op has no weight {name!r} "
                       f"(it has {sorted(values)})") from None

  def bn(layer_bn, prefix):
    _set_bn(layer_bn, {n: take(f"{prefix}/{n}") for n in
                       ("gamma", "beta", "moving_mean", "moving_variance")}, what)

  if isinstance(layer, ops.SepConvStack):
    seps = [s for s in layer.steps if isinstance(s, keras.layers.SeparableConv2D)]
    bns = [s for s in layer.steps if isinstance(s, ops.BatchNorm)]
    for i, (sep, sep_bn) in enumerate(zip(seps, bns)):
      _assign(sep.depthwise_kernel, take(f"sep{i}/depthwise"), f"{what} sep{i} depthwise")
      _assign(sep.pointwise_kernel, take(f"sep{i}/pointwise"), f"{what} sep{i} pointwise")
      bn(sep_bn, f"sep{i}/bn")
  elif isinstance(layer, ops.ReluConvBN):  # convs, or an identity that changes channels
    convs, layer_bn = _relu_conv_bn(layer)
    names = ["kernel"] if "kernel" in values else [f"conv{i}" for i in range(len(convs))]
    for conv, name in zip(convs, names):
      _assign(conv.kernel, take(name), f"{what} {name}")
    bn(layer_bn, "bn")
  elif isinstance(layer, ops.Pool):
    if layer.args["project"]:
      (conv,), layer_bn = _relu_conv_bn(layer.steps[-1])
      _assign(conv.kernel, take("project"), f"{what} projection")
      bn(layer_bn, "bn")
  elif isinstance(layer, ops.FactorizedReduce):
    _assign(layer.conv_even.kernel, take("even"), f"{what} even")
    _assign(layer.conv_odd.kernel, take("odd"), f"{what} odd")
    bn(layer.bn, "bn")
  elif not isinstance(layer, keras.layers.Identity):
    raise ValueError(f"{what}: no mapping for the child layer {type(layer).__name__}")
  if used != set(values):
    raise ValueError(f"{what}: the child's {type(layer).__name__} does not take the "
                     f"supernet's weights {sorted(set(values) - used)}")


def _copy_cell(scell: supernet_lib.SuperCell, ccell, cell: genotype_lib.Cell,
               pp_idx: Sequence[int], p_idx: Sequence[int]) -> None:
  name = scell.name
  if scell.adjust is None:
    if ccell.adjust is not None:
      raise ValueError(f"{name}: the child adjusts h(i-2), the supernet takes it raw")
  elif ccell.adjust is None:  # the child takes a concatenation that already has the width
    if scell.adjust.matching_states != len(pp_idx):
      raise ValueError(f"{name}: the child takes h(i-2) as it is, the supernet convolves it")
  else:
    if scell.adjust.matching_states == len(pp_idx):
      raise ValueError(f"{name}: the supernet takes h(i-2) as it is, the child convolves it")
    _copy_gathered(scell.adjust, pp_idx, ccell.adjust, f"{name} h(i-2)")
  _copy_gathered(scell.squeeze, p_idx, ccell.squeeze, f"{name} h(i-1)")
  op_names = list(scell.op_names)
  for b, block in enumerate(cell.blocks):
    for j, (i, op) in enumerate(zip(block.inputs, block.ops)):
      bank, index = scell.branch_bank(b, j, i, op_names.index(op))
      _copy_op(bank.op_weights(index), ccell.branch_ops[2 * b + j],
               f"{name} block {b} slot {j} ({op} of state {i})")
  for i in cell.concat:
    fix = ccell.concat_fix.get(str(i))
    if (fix is None) != (i not in scell.concat_fix):
      raise ValueError(f"{name}: concatenated state {i} is matched to the output shape on one "
                       "side only")
    if fix is not None:
      _copy_gathered(scell.concat_fix[i], [0], fix, f"{name} concat of state {i}")


def _genotype(supernet: supernet_lib.Supernet,
              genotype: Union[genotype_lib.Genotype, Sequence[int]]) -> genotype_lib.Genotype:
  """The genotype of a decision list, or a genotype checked to be a supernet path."""
  space = supernet.space
  if not isinstance(genotype, genotype_lib.Genotype):
    return space.decode([int(d) for d in np.asarray(genotype).ravel()])
  path = space.decode(space.encode(genotype))  # checks ops, block count and combine
  for kind in ("normal", "reduction"):
    if getattr(path, kind) != getattr(genotype, kind):
      raise ValueError(f"the {kind} cell concatenates {getattr(genotype, kind).concat}; a "
                       f"supernet path concatenates the unused states {getattr(path, kind).concat}")
  return genotype


def copy_path_weights(supernet: supernet_lib.Supernet,
                      genotype: Union[genotype_lib.Genotype, Sequence[int]],
                      child: keras.Model) -> keras.Model:
  """Copies the weights of `genotype`'s path (a Genotype or the search space's decision list)
  into `child`, a `build_cifar_network` of that genotype at the supernet's sizes. An aux head
  on one side only is left alone. Returns `child`."""
  geno = _genotype(supernet, genotype)
  layer = child.get_layer
  _assign(layer("stem_conv").kernel, supernet.stem.kernel.numpy(), "stem conv")
  _set_bn(layer("stem_bn"), _bn_values(supernet.stem_bn), "stem")
  stem_idx = [0]
  pp_idx, p_idx = stem_idx, stem_idx
  aux_idx = None
  for index, scell in enumerate(supernet.cells):
    cell = geno.reduction if scell.reduction else geno.normal
    try:
      ccell = layer(scell.name)
    except ValueError:
      raise ValueError(f"the child has no cell {scell.name!r}: build it with the supernet's "
                       f"sizes ({supernet.child_kwargs})") from None
    _copy_cell(scell, ccell, cell, pp_idx, p_idx)
    pp_idx, p_idx = p_idx, list(cell.concat)
    if index == supernet.aux_after:
      aux_idx = p_idx
  dense = layer("logits")
  _assign(dense.kernel, supernet.head_kernel.numpy()[np.asarray(p_idx)].reshape(
      -1, supernet.num_classes), "classifier kernel")
  _assign(dense.bias, supernet.head_bias.numpy(), "classifier bias")
  names = {l.name for l in child.layers}
  if aux_idx is not None and "aux_logits" in names:
    _copy_gathered(supernet.aux_proj, aux_idx, layer("aux_proj"), "aux head projection")
    (conv,), bn = _relu_conv_bn(layer("aux_conv"))
    _assign(conv.kernel, supernet.aux_conv.kernel.numpy(), "aux head conv")
    _set_bn(bn, _bn_values(supernet.aux_bn), "aux head conv")
    _assign(layer("aux_logits").kernel, supernet.aux_logits.kernel.numpy(), "aux head kernel")
    _assign(layer("aux_logits").bias, supernet.aux_logits.bias.numpy(), "aux head bias")
  return child


def child_from_supernet(supernet: supernet_lib.Supernet,
                        genotype: Union[genotype_lib.Genotype, Sequence[int]],
                        **options: Any) -> keras.Model:
  """The standalone child (`child.network.build_cifar_network`) of `genotype` (a Genotype or
  the search space's decision list) at the supernet's sizes, holding the weights of its path
  through `supernet`. `options` may change what has no weights of its own or is copied only
  when present on both sides: dropout, drop_path_rate, drop_path_progress, l2, aux_head, name."""
  bad = sorted(set(options) - set(_FREE_OPTIONS))
  if bad:
    raise ValueError(f"child_from_supernet cannot change {bad}: the path's weights fix the "
                     f"child's sizes; allowed options: {list(_FREE_OPTIONS)}")
  geno = _genotype(supernet, genotype)
  kwargs = {**supernet.child_kwargs, **options}
  child = network.build_cifar_network(geno, **kwargs)
  return copy_path_weights(supernet, geno, child)

