"""Draw a genotype's cells as a picture. See nasnet_rl/cli/show.py for flags."""
from nasnet_rl.cli import show

if __name__ == "__main__":
  show.run()
