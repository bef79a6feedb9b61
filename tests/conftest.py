"""Shared pytest setup: quiet TF logs, package importable from a source checkout."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture
def trained_models(monkeypatch):
  """Every model `child.trainer.run_training` (the one training loop both the child and the
  transfer trainers call) trains, as (model, its trainable weights before training): a test can
  then check the model that actually trained (its dtypes, that it moved)."""
  from nasnet_rl.child import trainer  # pylint: disable=g-import-not-at-top
  seen = []
  original = trainer.run_training

  def keep(model, *args, **kwargs):
    seen.append((model, [w.numpy().copy() for w in model.trainable_weights]))
    return original(model, *args, **kwargs)
  monkeypatch.setattr(trainer, "run_training", keep)
  return seen


def assert_trained_under(model, before, half: str) -> None:
  """`model` trained in the mixed precision `half` ('bfloat16'/'float16'): its body computes in
  `half`, its logits and every variable are float32, and training moved its weights."""
  computes = [l.compute_dtype for l in model.layers if l.weights]
  assert computes.count(half) >= 3, computes
  assert model.get_layer("logits").compute_dtype == "float32"
  assert {w.dtype for w in model.weights} == {"float32"}
  assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
