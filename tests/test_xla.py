"""The XLA knob of the trainings: on where a GPU is visible, off on CPU, or as bound; the child
and transfer trainings hand it to the one training loop (nasnet_rl/loop.py)."""

import os

import gin
import pytest
import tensorflow as tf

from nasnet_rl import config as config_lib
from nasnet_rl import data as data_lib
from nasnet_rl import loop as loop_lib
from nasnet_rl import search_space
from nasnet_rl import xla
from nasnet_rl.child import trainer
from nasnet_rl.transfer import train as transfer_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_follows_the_devices():
  gin.clear_config()
  assert xla.enabled() == bool(tf.config.list_logical_devices("GPU"))


@pytest.mark.parametrize("value", [True, False])
def test_a_binding_forces_it(value):
  gin.clear_config()
  try:
    config_lib.parse([], [f"xla_compile.enabled = {value}"])
    assert xla.enabled() is value
  finally:
    gin.clear_config()


def test_a_bad_value_is_a_clear_error():
  with pytest.raises(ValueError, match="xla_compile.enabled"):
    xla.enabled("yes")


class _Built(Exception):
  """Raised by the spy once the training built its loop: nothing is traced or trained."""


@pytest.mark.parametrize("value", [True, False])
def test_the_trainings_pass_it_to_the_training_loop(value, monkeypatch):
  """`xla_compile.enabled = V` reaches `Loop(jit_compile=V)` in train_child and train_transfer
  (the loop then wraps its step in `tf.function(jit_compile=True)`). Deliberate bug it catches:
  a trainer that drops `jit_compile=xla.enabled()` from its Loop (True then arrives as False;
  the tests above only restated xla.enabled, False == False on CPU)."""
  seen = []

  def spy(self, strategy, replica_step, names, jit_compile=False, **kwargs):
    del self, strategy, replica_step, names, kwargs
    seen.append(jit_compile)
    raise _Built()
  monkeypatch.setattr(loop_lib.Loop, "__init__", spy)
  geno = search_space.SearchSpace("enas", 1).decode([0] * 8)
  xla_binding = f"xla_compile.enabled = {value}"
  gin.clear_config()
  try:
    config_lib.parse([], ["build_child.num_cells = 1", "build_child.filters = 4",
                          "build_child.aux_head = False",
                          "build_child.penultimate_filters = None", xla_binding])
    splits = data_lib.load_dataset("synthetic", num_train=32, num_test=16, validation_size=0,
                                   image_shape=(8, 8, 3))
    with pytest.raises(_Built):
      trainer.train_child(geno, splits, None, epochs=1, steps_per_epoch=1, batch_size=16,
                          augment=False, save_model=False, count_mult_adds=False, verbose=0,
                          evaluate_test=False)
    gin.clear_config()
    config_lib.parse([os.path.join(ROOT, "gin/tiny/transfer.gin")], [xla_binding])
    with pytest.raises(_Built):
      transfer_train.train_transfer(geno, data_lib.load_dataset(), None)
  finally:
    gin.clear_config()
  assert seen == [value, value]


def test_the_loop_compiles_its_step_when_asked(monkeypatch):
  """Loop(jit_compile=True) wraps the replica step in an XLA-compiled tf.function."""
  compiled = []
  original = tf.function

  def spy(fn=None, **kwargs):
    compiled.append(kwargs.get("jit_compile"))
    return original(fn, **kwargs)
  monkeypatch.setattr(loop_lib.tf, "function", spy)
  step = lambda x: {"n": tf.reduce_sum(x)}
  loop_lib.Loop(tf.distribute.get_strategy(), step, ("n",), jit_compile=True)
  loop_lib.Loop(tf.distribute.get_strategy(), step, ("n",), jit_compile=False)
  assert compiled.count(True) == 1
