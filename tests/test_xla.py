"""The XLA knob of Keras trainings: on where a GPU is visible, off on CPU, or as bound."""

import gin
import pytest
import tensorflow as tf

from nasnet_rl import config as config_lib
from nasnet_rl import xla


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
