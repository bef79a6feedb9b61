"""nasnet_rl: reinforcement-learning neural architecture search (NASNet, ENAS) in TensorFlow 2."""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def register_keras_objects() -> None:
  """Registers the custom Keras layers and optimizers, so `keras.models.load_model` works."""
  from nasnet_rl.child import cell as _cell  # pylint: disable=g-import-not-at-top,unused-import
  from nasnet_rl.child import ops as _ops  # pylint: disable=g-import-not-at-top,unused-import
  from nasnet_rl import optim as _optim  # pylint: disable=g-import-not-at-top,unused-import


# `import nasnet_rl` registers them (the package's models all need TensorFlow anyway), except in
# a console script (nasnet-search, ...): there `cli/launch.py` parses the flags and answers
# --help first, without TensorFlow, and registers them afterwards.
_ARGV0 = (getattr(_sys, "argv", None) or [""])[0]
if not (_os.path.basename(_ARGV0).startswith("nasnet-") and not _ARGV0.endswith(".py")):
  register_keras_objects()
