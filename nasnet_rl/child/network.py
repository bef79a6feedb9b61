"""CIFAR and ImageNet network bodies built from a genotype (TF-slim `build_nasnet_cifar` /
`build_nasnet_mobile` wiring; Keras applications' layer order).

Width: `filters` per op in the first stack, or `penultimate_filters` (the F of "N@F"): the
channels of the last cell's output, i.e. filters * (cell output multiplier) * 2**reductions.
"""

from typing import Any, Dict, Optional, Tuple

import keras
import tensorflow as tf

from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import cell as cell_lib
from nasnet_rl.child import ops


def resolve_filters(geno: genotype_lib.Genotype, filters: Optional[int],
                    penultimate_filters: Optional[int], num_reductions: int = 2) -> int:
  """First-stack filters from exactly one of `filters` / `penultimate_filters`."""
  if (filters is None) == (penultimate_filters is None):
    raise ValueError("give exactly one of filters= or penultimate_filters=")
  if filters is not None:
    return int(filters)
  mult = cell_lib.output_channels(geno.normal, 1) * 2 ** num_reductions
  if penultimate_filters % mult:
    raise ValueError(f"penultimate_filters={penultimate_filters} must be a multiple of {mult} "
                     f"for genotype {geno.name or '(unnamed)'} (cell output x{mult // 2 ** num_reductions}, "
                     f"{num_reductions} reductions)")
  return penultimate_filters // mult


def _aux_head(x, num_classes, norm, name="aux"):
  """Auxiliary classifier of NASNet (slim `_build_aux_head`): 5x5/3 avg pool, 1x1x128, a
  conv over the remaining spatial extent to 768, then a linear layer."""
  side = min(d for d in x.shape[1:3] if d is not None) if None not in x.shape[1:3] else None
  if side is not None and side < 5:
    raise ValueError(f"the auxiliary head pools 5x5 over the second stack's {x.shape[1]}x"
                     f"{x.shape[2]} maps, which need to be at least 5x5: use larger images "
                     "(or a smaller stem stride), or build_child.aux_head = False")
  x = keras.layers.ReLU(name=f"{name}_relu0")(x)
  x = keras.layers.AveragePooling2D(5, strides=3, padding="valid", name=f"{name}_pool")(x)
  x = ops.ReluConvBN(128, relu=False, norm=norm, name=f"{name}_proj")(x)
  x = keras.layers.ReLU(name=f"{name}_relu1")(x)
  x = ops.ReluConvBN(768, kernel=int(x.shape[1]), relu=False, norm=norm, name=f"{name}_conv")(x)
  x = keras.layers.ReLU(name=f"{name}_relu2")(x)
  x = keras.layers.GlobalAveragePooling2D(name=f"{name}_flatten")(x)
  return keras.layers.Dense(num_classes, name="aux_logits", dtype="float32",  # loss in float32
                            kernel_regularizer=ops._reg(norm["l2"]))(x)


def _cells(x, p, geno, num_cells, filters, *, norm, drop_path_rate, progress,
           skip_reduction_input, aux_classes, first_cell_index, total_cells,
           pool_padding="same"):
  """3 stacks of `num_cells` normal cells with reduction cells between them."""
  aux = None
  index = first_cell_index

  def drop(i):
    return drop_path_rate * (i + 1) / total_cells

  for stack in range(3):
    f = filters * 2 ** stack
    if stack > 0:
      if aux_classes and stack == 2:
        aux = _aux_head(x, aux_classes, norm)
      new_x = cell_lib.NasCell(geno.reduction, f, reduction=True, raw_prev_prev=p is None,
                               drop_prob=drop(index), norm=norm, drop_path_progress=progress,
                               pool_padding=pool_padding,
                               name=f"reduction_{index}")([x if p is None else p, x])
      index += 1
      # NASNet-Large feeds the next cell the input of the cell *before* the reduction
      p = p if skip_reduction_input else x
      x = new_x
    for _ in range(num_cells):
      new_x = cell_lib.NasCell(geno.normal, f, raw_prev_prev=p is None, drop_prob=drop(index),
                               norm=norm, drop_path_progress=progress,
                               pool_padding=pool_padding,
                               name=f"normal_{index}")([x if p is None else p, x])
      index += 1
      p, x = x, new_x
  return x, aux


def _head(x, num_classes, dropout, norm, aux, inputs, name):
  x = keras.layers.ReLU(name="final_relu")(x)
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  if dropout:
    x = keras.layers.Dropout(dropout, name="dropout")(x)
  logits = keras.layers.Dense(num_classes, name="logits", dtype="float32",  # softmax in float32
                              kernel_regularizer=ops._reg(norm["l2"]))(x)
  outputs = logits if aux is None else {"logits": logits, "aux_logits": aux}
  return keras.Model(inputs, outputs, name=name)


def _check_input(input_shape):
  if len(input_shape) != 3:
    raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")


def build_cifar_network(geno: genotype_lib.Genotype, num_classes: int = 10,
                        input_shape: Tuple[int, int, int] = (32, 32, 3), num_cells: int = 6,
                        filters: Optional[int] = None, penultimate_filters: Optional[int] = None,
                        stem_multiplier: int = 3, stem_stride: int = 1, aux_head: bool = False, dropout: float = 0.0,
                        drop_path_rate: float = 0.0, drop_path_progress: Optional[tf.Variable] = None,
                        bn_momentum: float = 0.9, bn_epsilon: float = 1e-5, l2: float = 0.0,
                        skip_reduction_input: bool = False, pool_padding: str = "same",
                        name: str = "nasnet_cifar") -> keras.Model:
  """CIFAR body (slim `build_nasnet_cifar`): 3x3 stem conv at full resolution, 3 stacks of
  `num_cells` cells, 2 reduction cells. BN defaults are slim's CIFAR arg scope (0.9, 1e-5).
  `stem_stride=2` halves the resolution in the stem (4x cheaper; for quick CPU runs)."""
  _check_input(input_shape)
  norm = {"bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon, "l2": l2}
  f = resolve_filters(geno, filters, penultimate_filters)
  inputs = keras.Input(input_shape, name="image")
  x = keras.layers.Conv2D(stem_multiplier * f, 3, strides=stem_stride, padding="same",
                          use_bias=False,
                          kernel_initializer="he_normal", kernel_regularizer=ops._reg(l2),
                          name="stem_conv")(inputs)
  x = ops.batch_norm(norm, name="stem_bn")(x)
  x, aux = _cells(x, None, geno, num_cells, f, norm=norm, drop_path_rate=drop_path_rate,
                  progress=drop_path_progress, skip_reduction_input=skip_reduction_input,
                  aux_classes=num_classes if aux_head else 0, first_cell_index=0,
                  total_cells=3 * num_cells + 2, pool_padding=pool_padding)
  return _head(x, num_classes, dropout, norm, aux, inputs, name)


def build_imagenet_network(geno: genotype_lib.Genotype, num_classes: int = 1000,
                           input_shape: Tuple[int, int, int] = (224, 224, 3), num_cells: int = 4,
                           filters: Optional[int] = None, penultimate_filters: Optional[int] = None,
                           stem_filters: int = 32, aux_head: bool = False, dropout: float = 0.0,
                           drop_path_rate: float = 0.0,
                           drop_path_progress: Optional[tf.Variable] = None,
                           bn_momentum: float = 0.9997, bn_epsilon: float = 1e-3, l2: float = 0.0,
                           skip_reduction_input: bool = False, pool_padding: str = "same",
                           name: str = "nasnet_imagenet") -> keras.Model:
  """ImageNet body (slim `_imagenet_stem`): 3x3 stride-2 conv, two stem reduction cells at
  filters/4 and filters/2, then the 3 stacks. Mobile: 4@1056, stem 32; Large: 6@4032, stem 96,
  skip_reduction_input=True (Keras `NASNetMobile` / `NASNetLarge`). pool_padding="zeros"
  computes exactly what the Keras applications compute (see ops.Pool)."""
  _check_input(input_shape)
  norm = {"bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon, "l2": l2}
  f = resolve_filters(geno, filters, penultimate_filters)
  inputs = keras.Input(input_shape, name="image")
  x = keras.layers.Conv2D(stem_filters, 3, strides=2, padding="valid", use_bias=False,
                          kernel_initializer="he_normal", kernel_regularizer=ops._reg(l2),
                          name="stem_conv")(inputs)
  x = ops.batch_norm(norm, name="stem_bn")(x)
  total = 3 * num_cells + 4
  p = None
  for i, sf in enumerate((f // 4, f // 2)):
    new_x = cell_lib.NasCell(geno.reduction, sf, reduction=True, raw_prev_prev=p is None,
                             drop_prob=drop_path_rate * (i + 1) / total, norm=norm,
                             drop_path_progress=drop_path_progress, pool_padding=pool_padding,
                             name=f"stem_reduction_{i}")([x if p is None else p, x])
    p, x = x, new_x
  x, aux = _cells(x, p, geno, num_cells, f, norm=norm, drop_path_rate=drop_path_rate,
                  progress=drop_path_progress, skip_reduction_input=skip_reduction_input,
                  aux_classes=num_classes if aux_head else 0, first_cell_index=2,
                  total_cells=total, pool_padding=pool_padding)
  return _head(x, num_classes, dropout, norm, aux, inputs, name)
