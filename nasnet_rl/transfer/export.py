"""The exported run directory of a transfer run, and fine-tuning from one.

  model.keras         the trained Keras model (auxiliary head included), reload with
                      keras.models.load_model (custom layers register on `import nasnet_rl`)
  saved_model/        a TF SavedModel of the inference model (main logits only) for serving:
                      tf.saved_model.load(path).serve(images) -> logits
  genotype.json       the cell that was scaled
  preprocessing.json  what the exported model expects as input (size, style, mean, std)
  metrics.json, report.json, report.txt (parameters and mult-adds per stage)
The CLI adds config.gin (at start) and operative_config.gin (at the end).
"""

import os
from typing import Any, Dict

import keras

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import jsonio
from nasnet_rl.transfer import report as report_lib

HEAD_LAYERS = ("logits", "aux_logits")


def inference_model(model: keras.Model) -> keras.Model:
  """The model with only its main logits (drops the auxiliary head's output)."""
  if isinstance(model.output, dict):
    return keras.Model(model.input, model.output["logits"], name=model.name + "_inference")
  return model


def _write_json(path: str, obj: Any) -> None:
  with open(path, "w") as f:
    jsonio.dump(obj, f, indent=2, sort_keys=True)


def export_run(model: keras.Model, workdir: str, geno: genotype_lib.Genotype,
               metrics: Dict[str, Any], report: Dict[str, Any],
               preprocessing: Dict[str, Any], saved_model: bool = True) -> Dict[str, str]:
  """Writes everything listed in the module docstring; returns {what: path}."""
  os.makedirs(workdir, exist_ok=True)
  paths = {"keras": os.path.join(workdir, "model.keras"),
           "genotype": os.path.join(workdir, "genotype.json"),
           "metrics": os.path.join(workdir, "metrics.json"),
           "report": os.path.join(workdir, "report.json"),
           "preprocessing": os.path.join(workdir, "preprocessing.json")}
  model.save(paths["keras"])
  if saved_model:
    paths["saved_model"] = os.path.join(workdir, "saved_model")
    inference_model(model).export(paths["saved_model"], format="tf_saved_model", verbose=False)
  genotype_lib.save(geno, paths["genotype"])
  _write_json(paths["metrics"], metrics)
  _write_json(paths["report"], report)
  _write_json(paths["preprocessing"], preprocessing)
  with open(os.path.join(workdir, "report.txt"), "w") as f:
    f.write(report_lib.format_report(report) + "\n")
  return paths


def _saved_model_path(path: str) -> str:
  if os.path.isdir(path):
    candidate = os.path.join(path, "model.keras")
    if not os.path.isfile(candidate):
      raise ValueError(f"fine-tuning source {path!r} holds no model.keras (a transfer or train "
                       "run directory writes one)")
    return candidate
  if not os.path.isfile(path):
    raise ValueError(f"fine-tuning source {path!r} does not exist")
  return path


def load_body_weights(model: keras.Model, path: str, train_head_only: bool = False) -> int:
  """Copies every layer's weights but the classifier heads from the saved model at `path` (a
  .keras file or a run directory) into `model`, matching layers by name; returns how many
  layers were copied. The saved model must come from the same genotype and size: a missing
  layer or a shape mismatch is a ValueError naming it. train_head_only freezes the copied body."""
  source = keras.models.load_model(_saved_model_path(path), compile=False)
  copied = 0
  for layer in model.layers:
    if not layer.weights or layer.name in HEAD_LAYERS:
      continue
    try:
      other = source.get_layer(layer.name)
    except ValueError:
      raise ValueError(f"fine-tuning: the saved model has no layer {layer.name!r}; it was built "
                       "from another genotype or size") from None
    ours, theirs = layer.get_weights(), other.get_weights()
    shapes = [w.shape for w in ours], [w.shape for w in theirs]
    if shapes[0] != shapes[1]:
      raise ValueError(f"fine-tuning: layer {layer.name!r} has weight shapes {shapes[0]} here "
                       f"but {shapes[1]} in the saved model; it was built from another genotype "
                       "or size")
    layer.set_weights(theirs)
    if train_head_only:
      layer.trainable = False
    copied += 1
  return copied
