"""Parameters and mult-adds of a built network, in total and per stage (stem, stacks, reductions,
heads), counted from the inference graph by `child.flops` (the NASNet paper's mult-adds:
convolutions, depthwise convolutions and dense layers, per image).

Each top-level layer is traced on its own input shapes, so the stage table needs no name-scope
parsing; the stage sums equal the whole-model count (tests check it).
"""

from typing import Any, Dict, List

import keras
import numpy as np
import tensorflow as tf

from nasnet_rl.child import flops


def _spec(keras_tensor) -> tf.TensorSpec:
  return tf.TensorSpec([1, *keras_tensor.shape[1:]], keras_tensor.dtype or tf.float32)


def layer_mult_adds(layer: keras.layers.Layer) -> int:
  """Mult-adds per image of one layer of a functional model, on the inputs it was built with."""
  if not layer.weights:
    return 0
  inputs = layer.input
  specs = [_spec(t) for t in inputs] if isinstance(inputs, (list, tuple)) else _spec(inputs)
  fn = tf.function(lambda x: layer(x, training=False))
  return sum(flops.mult_adds_of_graph(fn.get_concrete_function(specs).graph).values())


def _stage_of(name: str, stack: int) -> str:
  if name.startswith("stem_reduction"):
    return name
  if name.startswith("stem"):
    return "stem"
  if name.startswith("normal_"):
    return f"stack_{stack}"
  if name.startswith("reduction_"):
    return name
  if name.startswith("aux"):
    return "aux_head"
  return "head"


def _count(weights) -> int:
  return int(sum(int(np.prod(w.shape)) for w in weights))


def network_report(model: keras.Model) -> Dict[str, Any]:
  """{"params", "trainable_params", "inference_params", "mult_adds", "input_shape", "stages"};
  a stage row has its name, the cells/layers in it, the output shape of its last layer, params
  and mult-adds. Totals: params of every weight (auxiliary head included, as Keras counts),
  mult-adds of the inference path (without the auxiliary head, as the NASNet paper counts)."""
  stages: List[Dict[str, Any]] = []
  stack = 1
  for layer in model.layers:
    if isinstance(layer, keras.layers.InputLayer):
      continue
    if layer.name.startswith("reduction_"):
      stack += 1
    stage = _stage_of(layer.name, stack)
    row = next((r for r in stages if r["stage"] == stage), None)
    if row is None:  # rows in order of first appearance (aux-head layers interleave with cells)
      row = {"stage": stage, "layers": [], "params": 0, "trainable_params": 0, "mult_adds": 0,
             "output_shape": None}
      stages.append(row)
    row["layers"].append(layer.name)
    row["params"] += _count(layer.weights)
    row["trainable_params"] += _count(layer.trainable_weights)
    row["mult_adds"] += layer_mult_adds(layer)
    row["output_shape"] = list(layer.output.shape[1:]) if not isinstance(layer.output, dict) else None
  aux = [r for r in stages if r["stage"] == "aux_head"]
  return {"name": model.name, "input_shape": list(model.input.shape[1:]),
          "params": int(model.count_params()), "trainable_params": _count(model.trainable_weights),
          "inference_params": int(model.count_params()) - sum(r["params"] for r in aux),
          # the auxiliary head runs only in training: its row is shown, not counted
          "mult_adds": int(sum(r["mult_adds"] for r in stages if r["stage"] != "aux_head")),
          "stages": stages}


def format_report(report: Dict[str, Any]) -> str:
  """A fixed-width table, one row per stage, with the totals last."""
  lines = [f"{report['name']}: input {'x'.join(map(str, report['input_shape']))}",
           f"{'stage':<20} {'cells/layers':>12} {'output':>16} {'params':>14} {'mult-adds':>16}"]
  for row in report["stages"]:
    shape = "x".join(map(str, row["output_shape"])) if row["output_shape"] else "-"
    lines.append(f"{row['stage']:<20} {len(row['layers']):>12} {shape:>16} "
                 f"{row['params']:>14,} {row['mult_adds']:>16,}")
  lines.append(f"{'total':<20} {'':>12} {'':>16} {report['params']:>14,} "
               f"{report['mult_adds']:>16,}")
  lines.append(f"trainable parameters {report['trainable_params']:,}; without the auxiliary head "
               f"{report['inference_params']:,}; mult-adds per image (inference, no auxiliary "
               f"head) {report['mult_adds'] / 1e6:,.1f}M")
  return "\n".join(lines)
