"""nasnet_rl: reinforcement-learning neural architecture search (NASNet, ENAS) in TensorFlow 2."""

__version__ = "0.1.0"
