"""nasnet_rl: reinforcement-learning neural architecture search (NASNet, ENAS) in TensorFlow 2."""

__version__ = "0.1.0"

# Registers the custom Keras layers and optimizers (nasnet_rl.optim), so
# `keras.models.load_model("model.keras")` works after `import nasnet_rl` (the package's models
# all need TensorFlow anyway).
from nasnet_rl.child import cell as _cell  # pylint: disable=g-import-not-at-top,unused-import
from nasnet_rl.child import ops as _ops  # pylint: disable=g-import-not-at-top,unused-import
from nasnet_rl import optim as _optim  # pylint: disable=g-import-not-at-top,unused-import
