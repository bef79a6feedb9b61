"""Our NASNet-A network with the weights of a `keras.applications.NASNetMobile` / `NASNetLarge`.

  keras_model = keras.applications.NASNetMobile(weights="imagenet")
  model = keras_weights.from_keras_application(keras_model)   # same logits, our layers

The mapping is structural, never by the flat variable order: the Keras application's cells are
read off its graph (cell ids, which cell feeds which, which state feeds each separable conv),
checked against our genotype-built network cell by cell and op by op, and each weight is
copied by name within a matched layer pair. Anything that does not match (a layer, a weight
count, a shape, a wiring, a BatchNorm setting) is a ValueError naming the layer; at the end
every Keras weight must have been used exactly once.

Where Keras differs from TF-slim: its strided pools in reduction cells read a zero-padded
input (ZeroPadding2D + 'valid'), so zeros count in the border averages and maxima; slim pools
with 'SAME' padding, which ignores the border. The converted network is built with
`pool_padding="zeros"` (ops.Pool) to compute exactly what Keras computes. Everything else
(hidden-state order, concat order, the factorized-reduction adjust path, stem, separable-conv
stacking, BatchNorm 0.9997 / 1e-3, 'same' padding of strided convs) is already the same.
"""

import dataclasses
import os
import re
import zipfile
from typing import Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import cell as cell_lib
from nasnet_rl.child import ops
from nasnet_rl.transfer import scaling

# Our NASNet-A branch (block k, slot j) -> the Keras `_separable_conv_block` id prefix that holds
# its weights (the other branches are pools and identities, without weights). Keras names the
# reduction cell's block-5 separable conv "reduction_left4", a quirk kept here.
SEP_CONV_BLOCKS = {
    "normal": {(0, 0): "normal_left1", (0, 1): "normal_right1", (1, 0): "normal_left2",
               (1, 1): "normal_right2", (4, 0): "normal_left5"},
    "reduction": {(0, 0): "reduction_left1", (0, 1): "reduction_right1",
                  (1, 1): "reduction_right2", (2, 1): "reduction_right3",
                  (4, 0): "reduction_left4"},
}
# Layers that only move values (no weights) between a cell output and the layer reading it.
_PASS_THROUGH = (keras.layers.Activation, keras.layers.ReLU, keras.layers.ZeroPadding2D,
                 keras.layers.Cropping2D)
STEM = "stem"


def _producers(layer) -> List:
  """The layers whose outputs `layer` reads (its first call)."""
  if not layer._inbound_nodes:  # pylint: disable=protected-access
    return []
  node = layer._inbound_nodes[0]  # pylint: disable=protected-access
  # pylint: disable-next=protected-access
  return [t._keras_history.operation for t in node.input_tensors]


def _source(layer) -> str:
  """Name of the layer that really produces `layer`'s input, skipping ReLUs, paddings, crops
  and 1x1 stride-2 average pools (Keras' factorized-reduction subsampling)."""
  (src,) = _producers(layer)
  while isinstance(src, _PASS_THROUGH) or (
      isinstance(src, keras.layers.AveragePooling2D) and tuple(src.pool_size) == (1, 1)):
    (src,) = _producers(src)
  return src.name


def _get(model, name: str, what: str):
  try:
    return model.get_layer(name)
  except ValueError:
    raise ValueError(f"{what}: the Keras model has no layer {name!r}; expected a "
                     "keras.applications NASNetMobile / NASNetLarge (NASNet-A)") from None


def _has(model, name: str) -> bool:
  try:
    model.get_layer(name)
    return True
  except ValueError:
    return False


@dataclasses.dataclass(frozen=True)
class KerasNASNet:
  """What a Keras NASNet application is, read off its graph."""
  num_cells: int                    # normal cells per stack (N)
  filters: int                      # per-op filters of the first stack
  stem_filters: int
  input_shape: Tuple[int, int, int]
  num_classes: Optional[int]        # None without the classifier (include_top=False)
  cells: Tuple[Tuple[str, str], ...]  # (kind, Keras block id) in network order
  wiring: Tuple[Tuple[int, int], ...]  # per cell: (index of its p, index of its ip); -1 = stem

  @property
  def penultimate_filters(self) -> int:
    return 24 * self.filters  # NASNet-A: 6 concatenated states, filters x4 in the last stack

  @property
  def skip_reduction_input(self) -> bool:
    """Large's wiring: the cell after a reduction reads the input of the cell before it."""
    r = 2 + self.num_cells  # the first stack reduction
    return self.wiring[r + 1][0] != self.wiring[r][1]


def read_keras_nasnet(keras_model: keras.Model) -> KerasNASNet:
  """Cells, sizes and wiring of a keras.applications NASNet model (a ValueError if it is not
  one)."""
  names = [l.name for l in keras_model.layers]
  normal_ids = sorted(int(m.group(1)) for n in names
                      for m in [re.fullmatch(r"normal_conv_1_(\d+)", n)] if m)
  if not normal_ids or len(normal_ids) % 3:
    raise ValueError(f"the Keras model {keras_model.name!r} has {len(normal_ids)} NASNet normal "
                     "cells (normal_conv_1_*); expected a keras.applications NASNetMobile / "
                     "NASNetLarge")
  n = len(normal_ids) // 3
  cells = ([("reduction", "stem_1"), ("reduction", "stem_2")]
           + [("normal", str(i)) for i in range(n)] + [("reduction", f"reduce_{n}")]
           + [("normal", str(n + 1 + i)) for i in range(n)] + [("reduction", f"reduce_{2 * n}")]
           + [("normal", str(2 * n + 1 + i)) for i in range(n)])
  index = {"stem_bn1": -1}
  for i, (kind, bid) in enumerate(cells):
    _get(keras_model, f"{kind}_conv_1_{bid}", f"cell {i}")
    index[f"{kind}_concat_{bid}"] = i

  def cell_of(layer_name, what):
    if layer_name not in index:
      raise ValueError(f"{what} reads {layer_name!r}, which is not a NASNet cell output")
    return index[layer_name]

  wiring = []
  for i, (kind, bid) in enumerate(cells):
    ip = cell_of(_source(_get(keras_model, f"{kind}_conv_1_{bid}", bid)), f"{kind}_conv_1_{bid}")
    for p_reader in (f"adjust_conv_1_{bid}", f"adjust_conv_projection_{bid}",
                     f"separable_conv_1_{kind}_right1_{bid}"):
      if _has(keras_model, p_reader):
        break
    p = cell_of(_source(_get(keras_model, p_reader, bid)), p_reader)
    wiring.append((p, ip))
  stem = _get(keras_model, "stem_conv1", "stem")
  top = _has(keras_model, "predictions")
  shape = tuple(keras_model.input_shape[1:])
  if len(shape) != 3 or None in shape:
    raise ValueError(f"the Keras model's input shape {shape} is not a static (H, W, C)")
  return KerasNASNet(
      num_cells=n,
      filters=int(_get(keras_model, f"normal_conv_1_{normal_ids[0]}", "").kernel.shape[-1]),
      stem_filters=int(stem.kernel.shape[-1]), input_shape=shape,
      num_classes=int(keras_model.get_layer("predictions").units) if top else None,
      cells=tuple(cells), wiring=tuple(wiring))


def _our_cells(model: keras.Model) -> List[cell_lib.NasCell]:
  return [l for l in model.layers if isinstance(l, cell_lib.NasCell)]


def _our_wiring(model: keras.Model) -> List[Tuple[int, int]]:
  cells = _our_cells(model)
  index = {c.name: i for i, c in enumerate(cells)}
  index["stem_bn"] = -1
  return [tuple(index.get(p.name, p.name) for p in _producers(c)) for c in cells]


class _Copier:
  """Copies weights layer pair by layer pair (by weight name), counting every use."""

  def __init__(self, keras_model: keras.Model):
    self.keras_model = keras_model
    self.used: Dict[str, int] = {}
    self.assigned: Dict[int, str] = {}

  def copy(self, ours, theirs_name: str, what: str, check_stride: bool = True):
    theirs = _get(self.keras_model, theirs_name, what)
    if isinstance(theirs, keras.layers.BatchNormalization):
      if not isinstance(ours, keras.layers.BatchNormalization):
        raise ValueError(f"{what}: our {ours.name!r} is a {type(ours).__name__}, Keras "
                         f"{theirs_name!r} a BatchNormalization")
      if (ours.epsilon, ours.momentum) != (theirs.epsilon, theirs.momentum):
        raise ValueError(f"{what}: BatchNorm epsilon/momentum {ours.epsilon}/{ours.momentum} "
                         f"here, {theirs.epsilon}/{theirs.momentum} in Keras {theirs_name!r}")
    if check_stride and hasattr(theirs, "strides") and tuple(ours.strides) != tuple(theirs.strides):
      raise ValueError(f"{what}: stride {ours.strides} here, {theirs.strides} in Keras "
                       f"{theirs_name!r}")
    mine = {w.name: w for w in ours.weights}
    other = {w.name: w for w in theirs.weights}
    if len(mine) != len(ours.weights) or sorted(mine) != sorted(other):
      raise ValueError(f"{what}: our {ours.name!r} has weights {sorted(mine)}, Keras "
                       f"{theirs_name!r} has {sorted(other)}")
    for key, w in mine.items():
      src = other[key]
      if tuple(w.shape) != tuple(src.shape):
        raise ValueError(f"{what}: weight {key!r} has shape {tuple(w.shape)} here but "
                         f"{tuple(src.shape)} in Keras {theirs_name!r}")
      if id(w) in self.assigned:
        raise ValueError(f"{what}: our weight {w.path} was already set from "
                         f"{self.assigned[id(w)]}")
      w.assign(np.asarray(src.numpy(), dtype=w.dtype))
      self.assigned[id(w)] = src.path
      self.used[src.path] = self.used.get(src.path, 0) + 1


def _conv_bn(layer: ops.ReluConvBN):
  """The (conv, BN) of a ReLU-conv-BN op."""
  conv, bn = layer.steps[-2], layer.steps[-1]
  if not isinstance(conv, keras.layers.Conv2D) or not isinstance(bn, ops.BatchNorm):
    raise ValueError(f"{layer.name!r} is not a ReLU-conv-BN")
  return conv, bn


def copy_keras_weights(keras_model: keras.Model, model: keras.Model,
                       include_head: bool = True) -> int:
  """Copies every weight of the Keras NASNet application into `model` (our NASNet-A at the same
  N@F, built with pool_padding="zeros"); include_head=False leaves our classifier (and any
  auxiliary head) alone for a new task. Returns how many weight tensors were copied."""
  arch = read_keras_nasnet(keras_model)
  cells = _our_cells(model)
  if len(cells) != len(arch.cells):
    raise ValueError(f"our network has {len(cells)} cells, the Keras model {len(arch.cells)} "
                     f"({arch.num_cells} per stack)")
  ours_wiring = _our_wiring(model)
  for i, (ours, theirs) in enumerate(zip(ours_wiring, arch.wiring)):
    if tuple(ours) != tuple(theirs):
      raise ValueError(f"cell {cells[i].name!r} reads cells {ours} (h[i-2], h[i-1]) but Keras "
                       f"cell {arch.cells[i][1]!r} reads {theirs}; build with "
                       f"skip_reduction_input={arch.skip_reduction_input}")
  nasnet_a = genotype_lib.published("nasnet_a")
  copier = _Copier(keras_model)
  copier.copy(model.get_layer("stem_conv"), "stem_conv1", "stem")
  copier.copy(model.get_layer("stem_bn"), "stem_bn1", "stem")
  for c, (ours, (kind, bid)) in enumerate(zip(cells, arch.cells)):
    what = f"cell {ours.name!r} (Keras {kind} cell {bid!r})"
    if ours.reduction != (kind == "reduction"):
      raise ValueError(f"{what}: reduction={ours.reduction} here")
    if ours.cell != (nasnet_a.reduction if ours.reduction else nasnet_a.normal):
      raise ValueError(f"{what}: our cell is not NASNet-A's {kind} cell")
    # pylint: disable-next=protected-access
    for layer in ours._flatten_layers(include_self=False, recursive=True):
      if isinstance(layer, ops.Pool) and layer.args["stride"] > 1 and not layer.zero_pad:
        raise ValueError(f"{what}: strided pool {layer.name!r} has padding "
                         f"{layer.args['padding']!r}; Keras pads with zeros: build with "
                         "pool_padding='zeros'")
    # h[i-2]: factorized reduction, 1x1 projection, or taken as it is
    if isinstance(ours.adjust, ops.FactorizedReduce):
      # Keras subsamples with a 1x1 stride-2 average pool before a stride-1 conv: the same
      copier.copy(ours.adjust.conv_even, f"adjust_conv_1_{bid}", what, check_stride=False)
      copier.copy(ours.adjust.conv_odd, f"adjust_conv_2_{bid}", what, check_stride=False)
      copier.copy(ours.adjust.bn, f"adjust_bn_{bid}", what)
      p_name = f"adjust_bn_{bid}"
    elif isinstance(ours.adjust, ops.ReluConvBN):
      conv, bn = _conv_bn(ours.adjust)
      copier.copy(conv, f"adjust_conv_projection_{bid}", what)
      copier.copy(bn, f"adjust_bn_{bid}", what)
      p_name = f"adjust_bn_{bid}"
    else:
      if _has(keras_model, f"adjust_bn_{bid}"):
        raise ValueError(f"{what}: Keras adjusts h[i-2] (adjust_bn_{bid}), ours does not")
      p_cell = arch.wiring[c][0]  # a cell output (or the stem) taken as it is
      p_name = "stem_bn1" if p_cell < 0 else "{}_concat_{}".format(*arch.cells[p_cell])
    conv, bn = _conv_bn(ours.squeeze)
    copier.copy(conv, f"{kind}_conv_1_{bid}", what)
    copier.copy(bn, f"{kind}_bn_1_{bid}", what)
    # the state each branch reads, as Keras names the layer producing it
    states = {0: p_name, 1: f"{kind}_bn_1_{bid}", 2: f"{kind}_add_1_{bid}"}
    for k, block in enumerate(ours.cell.blocks):
      for j, (state, op) in enumerate(zip(block.inputs, block.ops)):
        layer = ours.branch_ops[2 * k + j]
        prefix = SEP_CONV_BLOCKS[kind].get((k, j))
        if prefix is None:
          if layer.weights:
            raise ValueError(f"{what}: our op {layer.name!r} has weights, Keras has none there")
          continue
        if not isinstance(layer, ops.SepConvStack):
          raise ValueError(f"{what}: our op {layer.name!r} is a {type(layer).__name__}, Keras "
                           f"{prefix} a separable-conv stack")
        first = f"separable_conv_1_{prefix}_{bid}"
        source = _source(_get(keras_model, first, what))
        if source != states.get(state):
          raise ValueError(f"{what}: our op {layer.name!r} reads state {state}, Keras {first!r} "
                           f"reads {source!r}")
        steps = [s for s in layer.steps if s.weights]
        for step, name in zip(steps, (first, f"separable_conv_1_bn_{prefix}_{bid}",
                                      f"separable_conv_2_{prefix}_{bid}",
                                      f"separable_conv_2_bn_{prefix}_{bid}")):
          copier.copy(step, name, f"{what} op {layer.name!r}")
    if ours.concat_fix:
      raise ValueError(f"{what}: our cell matches concatenated states {sorted(ours.concat_fix)}, "
                       "Keras' NASNet-A does not")
  head = ["predictions"] if arch.num_classes is not None else []
  if include_head:
    if not head:
      raise ValueError("the Keras model has no classifier (include_top=False); copy with "
                       "include_head=False")
    copier.copy(model.get_layer("logits"), "predictions", "classifier")
  # every Keras weight used exactly once (the head's only when asked for)
  skipped = set() if include_head else {w.path for n in head
                                        for w in keras_model.get_layer(n).weights}
  unused = [w.path for w in keras_model.weights
            if w.path not in copier.used and w.path not in skipped]
  twice = [p for p, c in copier.used.items() if c != 1]
  if unused or twice:
    raise ValueError(f"Keras weights not used exactly once: unused {unused[:5]} "
                     f"({len(unused)}), used more than once {twice[:5]} ({len(twice)})")
  # and every weight of ours set, but a new classifier and the auxiliary head (Keras has none)
  heads = [w for l in model.layers if l.name == "logits" or l.name.startswith("aux")
           for w in l.weights]
  unset = [w.path for w in model.weights
           if id(w) not in copier.assigned and not any(w is h for h in heads)]
  if unset:
    raise ValueError(f"{len(unset)} weights of ours have no Keras counterpart: {unset[:5]}")
  return len(copier.used)


def keras_scale(arch: KerasNASNet, **overrides) -> scaling.Scale:
  """Our `Scale` for a Keras NASNet (the Mobile or Large preset's recipe numbers, its N@F,
  stem, input size and wiring, Keras' zero-padded strided pools)."""
  h, w, _ = arch.input_shape
  if h != w:
    raise ValueError(f"our networks take square inputs; the Keras model takes {h}x{w}")
  base = scaling.get_preset("large" if arch.skip_reduction_input else "mobile")
  changes = dict(body="imagenet", num_cells=arch.num_cells,
                 penultimate_filters=arch.penultimate_filters, filters=None, image_size=int(h),
                 stem_multiplier=arch.stem_filters / 32,
                 skip_reduction_input=arch.skip_reduction_input, aux_head=False,
                 pool_padding="zeros")
  changes.update(overrides)
  return dataclasses.replace(base, **changes)


def from_keras_application(keras_model: keras.Model, num_classes: Optional[int] = None,
                           drop_path_progress: Optional[tf.Variable] = None) -> keras.Model:
  """Our NASNet-A network (genotype nasnet_a, the Keras model's N@F, input size and classes)
  holding every weight of `keras_model`; its logits are the Keras model's pre-softmax outputs.
  A Keras model without classifier needs `num_classes`, and our new head stays as initialised."""
  arch = read_keras_nasnet(keras_model)
  if arch.num_classes is not None and num_classes not in (None, arch.num_classes):
    raise ValueError(f"the Keras model classifies {arch.num_classes} classes, not {num_classes}")
  classes = arch.num_classes or num_classes
  if classes is None:
    raise ValueError("the Keras model has no classifier (include_top=False): give num_classes")
  sc = keras_scale(arch)
  model = scaling.build(genotype_lib.published("nasnet_a"), sc, classes,
                        channels=arch.input_shape[-1], drop_path_progress=drop_path_progress)
  copy_keras_weights(keras_model, model, include_head=arch.num_classes is not None)
  return model


def agreement(keras_model: keras.Model, model: keras.Model, images) -> Dict[str, float]:
  """How closely our converted `model` reproduces `keras_model` on `images` (inference mode):
  the largest |log-probability difference| and the share of images with the same top-1."""
  theirs, mine = keras_model(images, training=False), model(images, training=False)
  if keras_model.layers[-1].get_config().get("activation") == "softmax":
    theirs = tf.math.log(tf.maximum(theirs, 1e-30))  # probabilities -> log-probabilities
  else:
    theirs = tf.nn.log_softmax(theirs)
  mine = tf.nn.log_softmax(mine)
  return {"max_abs_log_prob_diff": float(tf.reduce_max(tf.abs(theirs - mine))),
          "top1_agreement": float(np.mean(np.argmax(theirs, 1) == np.argmax(mine, 1))),
          "images": int(len(images))}


# keras.applications builders by name, and their (stem filters, penultimate filters)
APPLICATIONS = {"mobile": ("NASNetMobile", 32, 1056), "large": ("NASNetLarge", 96, 4032)}
INIT_FROM_HELP = ("'keras:mobile' / 'keras:large' (Keras' ImageNet weights), a .keras or "
                  "whole-model .h5 file of a Keras NASNetMobile/NASNetLarge, or its weights "
                  "file (model.save_weights('x.weights.h5'), or Keras' own nasnet_mobile.h5 / "
                  "nasnet_large.h5 from ~/.keras/models)")


def _application(name: str, **kwargs) -> keras.Model:
  return getattr(keras.applications, APPLICATIONS[name][0])(**kwargs)


def _h5_shapes(path: str) -> List[Tuple[int, ...]]:
  import h5py  # pylint: disable=g-import-not-at-top  (comes with keras)
  shapes = []
  with h5py.File(path, "r") as f:
    f.visititems(lambda _, o: shapes.append(tuple(o.shape))
                 if isinstance(o, h5py.Dataset) else None)
  return shapes


def _is_whole_model_h5(path: str) -> bool:
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, "r") as f:
    return "model_config" in f.attrs


def _application_from_weights_file(path: str) -> keras.Model:
  """The Keras application a weights file belongs to, with those weights: Mobile or Large by the
  stem conv and classifier shapes in the file (the only 3x3x3xS and the only 2-D tensors)."""
  shapes = _h5_shapes(path)
  stems = {s[-1] for s in shapes if len(s) == 4 and s[:3] == (3, 3, 3)}
  heads = [s for s in shapes if len(s) == 2]
  for name, (_, stem, penultimate) in APPLICATIONS.items():
    if stems == {stem} and all(h[0] == penultimate for h in heads) and len(heads) <= 1:
      kwargs = dict(weights=None, include_top=bool(heads))
      if heads:
        kwargs.update(classes=heads[0][1], classifier_activation=None)
      else:
        kwargs.update(input_shape=(224, 224, 3) if name == "mobile" else (331, 331, 3))
      model = _application(name, **kwargs)
      try:
        model.load_weights(path)
      except Exception as e:  # pylint: disable=broad-except
        raise ValueError(f"init_from {path!r}: looks like a {APPLICATIONS[name][0]} weights "
                         f"file but does not load into one: {e}") from None
      return model
  raise ValueError(f"init_from {path!r}: not a Keras NASNetMobile/NASNetLarge weights file "
                   f"(stem conv channels {sorted(stems)}, classifier shapes {heads}; expected "
                   "32 and 1056 x classes (Mobile) or 96 and 4032 x classes (Large))")


def load_keras_application(init_from: str) -> keras.Model:
  """The Keras NASNet application named by `init_from` (see INIT_FROM_HELP), weights loaded."""
  if init_from.startswith("keras:"):
    name = init_from[len("keras:"):]
    if name not in APPLICATIONS:
      raise ValueError(f"init_from {init_from!r}: expected keras:mobile or keras:large")
    try:
      return _application(name, weights="imagenet", classifier_activation=None)
    except Exception as e:  # pylint: disable=broad-except
      cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")
      raise ValueError(
          f"init_from {init_from!r}: could not get Keras' ImageNet weights for "
          f"{APPLICATIONS[name][0]} ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
          "Keras downloads them on first use; offline, copy "
          f"nasnet_{name}.h5 from a machine that has it into {cache}, or give its path as "
          "--init_from=PATH") from None
  if not os.path.isfile(init_from):
    raise ValueError(f"init_from {init_from!r}: no such file; expected {INIT_FROM_HELP}")
  _check_container(init_from)
  try:
    if init_from.endswith(".keras") or (init_from.endswith(".h5")
                                        and not init_from.endswith(".weights.h5")
                                        and _is_whole_model_h5(init_from)):
      return keras.models.load_model(init_from, compile=False)
    if init_from.endswith(".h5"):
      return _application_from_weights_file(init_from)
  except (OSError, KeyError, ValueError) as e:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ValueError(f"init_from {init_from!r}: cannot read it ({detail})") from None
  raise ValueError(f"init_from {init_from!r}: expected {INIT_FROM_HELP}")


def _check_container(path: str) -> None:
  """A `.keras` file must be a zip archive and a `.h5` file HDF5, by content: anything else is
  one ValueError saying so (Keras' own message for it is "File not found")."""
  import h5py  # pylint: disable=g-import-not-at-top
  if path.endswith(".keras") and not zipfile.is_zipfile(path):
    raise ValueError(f"init_from {path!r}: the file exists but is not a .keras archive (a "
                     ".keras model is a zip file; this one is not: damaged, cut short or "
                     "another format)")
  if path.endswith(".h5") and not h5py.is_hdf5(path):
    raise ValueError(f"init_from {path!r}: the file exists but is not an HDF5 file (damaged, "
                     "cut short or another format)")


def randomise_batchnorm(keras_model, rng: np.random.Generator) -> None:
  """Random BatchNorm statistics and affine parameters, far from their 0/1 initial values, so
  a misplaced one shows in an equivalence check (used by its test and check script)."""
  for layer in keras_model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      n = layer.gamma.shape[0]
      layer.gamma.assign(rng.uniform(0.5, 1.5, n))
      layer.beta.assign(rng.normal(0.0, 0.2, n))
      layer.moving_mean.assign(rng.normal(0.0, 0.5, n))
      layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
