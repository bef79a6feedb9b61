"""Scale any genotype to a CIFAR- or ImageNet-size network: named presets, N@F sizing, stem choice.

A `Scale` holds every architecture number of a network built from a cell (body, cells per stack,
width, stem, head, regularizers). Presets reproduce the published sizes:

  cifar   NASNet-A 6@768 at 32px   TF-slim nasnet.py `cifar_config` + `nasnet_cifar_arg_scope`
  mobile  NASNet-A 4@1056 at 224px TF-slim `mobile_imagenet_config` + `nasnet_mobile_arg_scope`
  large   NASNet-A 6@4032 at 331px TF-slim `large_imagenet_config` + `nasnet_large_arg_scope`
  enas_cifar  ENAS final network (5 cells per stack, 36 filters), melodyguan/enas
              scripts/cifar10_micro_final.sh

"N@F" (Zoph et al. 2018 sec. 4.1): N normal cells per stack, F filters in the penultimate layer
(the last cell's output channels). Any genotype can take any N@F whose F is a multiple of its
cell output factor; `size="6@768"` or `filters=` set the width.
"""

import dataclasses
import re
from typing import Any, Dict, Optional, Tuple

import gin
import keras
import tensorflow as tf

from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import network


@dataclasses.dataclass(frozen=True)
class Scale:
  """Architecture numbers of a scaled network (see the module docstring for the presets)."""
  body: str                          # "cifar" (3x3 stem) or "imagenet" (stride-2 stem + 2 cells)
  num_cells: int                     # N: normal cells per stack
  penultimate_filters: Optional[int]  # F of N@F (exclusive with `filters`)
  filters: Optional[int] = None      # per-op filters in the first stack
  image_size: int = 32               # the input resolution the preset was designed for
  stem_multiplier: float = 3.0       # slim: cifar stem = filters * m, imagenet stem = 32 * m
  stem_stride: int = 1               # cifar body only: 2 halves the resolution in the stem
  skip_reduction_input: bool = False  # NASNet-Large: cells after a reduction skip its input
  aux_head: bool = True
  dropout: float = 0.0               # before the classifier (1 - dense_dropout_keep_prob)
  drop_path_rate: float = 0.0        # ScheduledDropPath at the last cell (1 - drop_path_keep_prob)
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  weight_decay: float = 0.0          # slim l2_regularizer convention: wd * sum(w^2) / 2
  pool_padding: str = "same"         # strided pools: "same" (slim) or "zeros" (Keras NASNet)

  @property
  def stem_filters(self) -> int:
    """ImageNet stem conv channels (slim `_imagenet_stem`: int(32 * stem_multiplier))."""
    return int(32 * self.stem_multiplier)

  @property
  def size_name(self) -> str:
    return (f"{self.num_cells}@{self.penultimate_filters}" if self.penultimate_filters
            else f"{self.num_cells}x{self.filters}f")


PRESETS: Dict[str, Scale] = {
    # cifar_config(): num_cells=18 (6 per stack), num_conv_filters=32 (-> 6@768 for NASNet-A),
    # stem_multiplier=3, use_aux_head=1, drop_path_keep_prob=0.6, dense_dropout_keep_prob=1.0,
    # skip_reduction_layer_input=0; nasnet_cifar_arg_scope(5e-4, 0.9, 1e-5).
    "cifar": Scale(body="cifar", num_cells=6, penultimate_filters=768, image_size=32,
                   stem_multiplier=3.0, aux_head=True, dropout=0.0, drop_path_rate=0.4,
                   bn_momentum=0.9, bn_epsilon=1e-5, weight_decay=5e-4),
    # mobile_imagenet_config(): num_cells=12 (4 per stack), num_conv_filters=44 (-> 4@1056),
    # stem_multiplier=1.0, dense_dropout_keep_prob=0.5, drop_path_keep_prob=1.0, use_aux_head=1,
    # skip_reduction_layer_input=0; nasnet_mobile_arg_scope(4e-5, 0.9997, 1e-3); 224px
    # (build_nasnet_mobile.default_image_size).
    "mobile": Scale(body="imagenet", num_cells=4, penultimate_filters=1056, image_size=224,
                    stem_multiplier=1.0, aux_head=True, dropout=0.5, drop_path_rate=0.0,
                    bn_momentum=0.9997, bn_epsilon=1e-3, weight_decay=4e-5),
    # large_imagenet_config(): num_cells=18 (6 per stack), num_conv_filters=168 (-> 6@4032),
    # stem_multiplier=3.0, dense_dropout_keep_prob=0.5, drop_path_keep_prob=0.7, use_aux_head=1,
    # skip_reduction_layer_input=1; nasnet_large_arg_scope(5e-5, 0.9997, 1e-3); 331px
    # (build_nasnet_large.default_image_size).
    "large": Scale(body="imagenet", num_cells=6, penultimate_filters=4032, image_size=331,
                   stem_multiplier=3.0, skip_reduction_input=True, aux_head=True, dropout=0.5,
                   drop_path_rate=0.3, bn_momentum=0.9997, bn_epsilon=1e-3, weight_decay=5e-5),
    # cifar10_micro_final.sh: --child_num_layers=15 (5 per stack), --child_out_filters=36,
    # --child_use_aux_heads, --child_keep_prob=0.80, --child_drop_path_keep_prob=0.60,
    # --child_l2_reg=2e-4 (ENAS adds l2_reg * sum(w^2): slim-convention weight_decay 4e-4);
    # ENAS's stem is a 3x3 conv to 3 * out_filters channels (micro_child.py).
    "enas_cifar": Scale(body="cifar", num_cells=5, penultimate_filters=None, filters=36,
                        image_size=32, stem_multiplier=3.0, aux_head=True, dropout=0.2,
                        drop_path_rate=0.4, bn_momentum=0.9, bn_epsilon=1e-5, weight_decay=4e-4),
}


def preset_names():
  return sorted(PRESETS)


def get_preset(name: str) -> Scale:
  """The named preset; an unknown name is a ValueError listing the known ones."""
  if name not in PRESETS:
    raise ValueError(f"unknown scaling preset {name!r}; known: {', '.join(preset_names())}")
  return PRESETS[name]


def parse_size(size: str) -> Tuple[int, int]:
  """"N@F" -> (N, F): N normal cells per stack, F penultimate filters."""
  match = re.fullmatch(r"\s*(\d+)\s*@\s*(\d+)\s*", str(size))
  if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
    raise ValueError(f"size must be 'N@F' with positive ints (e.g. '6@768'), got {size!r}")
  return int(match.group(1)), int(match.group(2))


def choose_stem(image_size: int) -> Dict[str, Any]:
  """Stem for an input resolution: keeps the first stack's feature map at roughly 12-48 px, the
  range of the published networks (CIFAR 32 px, Mobile 28 px, Large 42 px).

  >= 96 px: ImageNet stem (stride-2 conv + two reduction cells, /8); 48-95 px: CIFAR stem with
  stride 2 (/2); below 48 px: CIFAR stem at full resolution."""
  if image_size >= 96:
    return {"body": "imagenet", "stem_stride": 1}
  return {"body": "cifar", "stem_stride": 2 if image_size >= 48 else 1}


@gin.configurable
def scale(preset: str = "cifar", size: Optional[str] = None, filters: Optional[int] = None,
          image_size: Optional[int] = None, stem: str = "auto",
          **overrides) -> Scale:
  """A preset with overrides. size: "N@F"; filters: first-stack filters instead of F;
  image_size: the input resolution (default the preset's); stem: "auto" (choose_stem at that
  resolution), "preset" (keep the preset's body), "cifar" or "imagenet"; overrides: any other
  `Scale` field (aux_head=False, dropout=0.2, ...)."""
  base = get_preset(preset)
  fields = {f.name for f in dataclasses.fields(Scale)}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"scale() got unknown field(s) {unknown}; Scale fields: {sorted(fields)}")
  changes = dict(overrides)
  if size is not None and filters is not None:
    raise ValueError("give size='N@F' or filters=, not both")
  if size is not None:
    changes["num_cells"], changes["penultimate_filters"] = parse_size(size)
    changes["filters"] = None
  if filters is not None:
    changes["filters"], changes["penultimate_filters"] = int(filters), None
  if image_size is not None:
    changes["image_size"] = int(image_size)
  resolution = changes.get("image_size", base.image_size)
  if stem == "auto":
    changes.update({k: v for k, v in choose_stem(resolution).items() if k not in overrides})
  elif stem in ("cifar", "imagenet"):
    changes["body"] = stem
  elif stem != "preset":
    raise ValueError(f"stem must be 'auto', 'preset', 'cifar' or 'imagenet', got {stem!r}")
  return dataclasses.replace(base, **changes)


def build(geno: genotype_lib.Genotype, sc: Scale, num_classes: int, channels: int = 3,
          drop_path_progress: Optional[tf.Variable] = None,
          name: Optional[str] = None) -> keras.Model:
  """The Keras model of `geno` at scale `sc` for `num_classes`, input sc.image_size^2 x channels."""
  kw = dict(num_classes=num_classes, input_shape=(sc.image_size, sc.image_size, channels),
            num_cells=sc.num_cells, filters=sc.filters,
            penultimate_filters=sc.penultimate_filters, aux_head=sc.aux_head,
            dropout=sc.dropout, drop_path_rate=sc.drop_path_rate,
            drop_path_progress=drop_path_progress, bn_momentum=sc.bn_momentum,
            bn_epsilon=sc.bn_epsilon, l2=sc.weight_decay / 2,
            skip_reduction_input=sc.skip_reduction_input, pool_padding=sc.pool_padding)
  if name:
    kw["name"] = name
  if sc.body == "cifar":
    multiplier = sc.stem_multiplier
    if multiplier != int(multiplier):
      raise ValueError(f"the CIFAR stem needs an integer stem_multiplier, got {multiplier}")
    return network.build_cifar_network(geno, stem_multiplier=int(multiplier),
                                       stem_stride=sc.stem_stride, **kw)
  if sc.body == "imagenet":
    return network.build_imagenet_network(geno, stem_filters=sc.stem_filters, **kw)
  raise ValueError(f"unknown body {sc.body!r}; expected 'cifar' or 'imagenet'")
