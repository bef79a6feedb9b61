"""Train a genotype's child network. See nasnet_rl/cli/train.py for flags."""
from nasnet_rl.cli import train

if __name__ == "__main__":
  train.run()
